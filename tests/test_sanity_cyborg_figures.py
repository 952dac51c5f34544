"""Sanity against figures measured on CybORG itself (spec §4.2, §7.1, §9; 200 episodes each).

A sleeping Blue scores -218.0/-480.0/-1135.0 (std 19.0) against B_line over 30/50/100 steps and
-41.7/-272.8/-978.1 (std 22.5/68.6/68.4) against Meander; the first Impact comes at step 15 in
88.5% of B_line episodes. The full statistical comparison (TOST against fresh CybORG samples) lives
in the parity tests; these are fast smoke checks with generous but meaningful tolerances.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

import jaxcage

N = 2000


def _returns(red: str, steps: int, action: int = 0):
    env, params = jaxcage.make(red, max_steps=steps)

    def episode(key):
        obs, state = env.reset(key, params)

        def body(carry, k):
            state, total = carry
            _, state, r, _, info = env.step(k, state, action, params)
            return (state, total + r), r

        (_, total), rewards = jax.lax.scan(body, (state, 0.0), jax.random.split(key, steps))
        return total, rewards

    totals, rewards = jax.jit(jax.vmap(episode))(jax.random.split(jax.random.key(123), N))
    return np.asarray(totals), np.asarray(rewards)


@pytest.mark.parametrize(
    ("red", "steps", "mean", "std"),
    [
        ("b_line", 30, -218.0, 19.0),
        ("b_line", 50, -480.0, 19.0),
        ("b_line", 100, -1135.0, 19.0),
        ("meander", 30, -41.7, 22.5),
        ("meander", 50, -272.8, 68.6),
        ("meander", 100, -978.1, 68.4),
    ],
)
def test_sleeping_blue_matches_cyborg_measurements(red, steps, mean, std):
    totals, _ = _returns(red, steps)
    # CybORG's figure has standard error std/sqrt(200); allow 4 combined standard errors.
    se = np.hypot(std / np.sqrt(200), totals.std() / np.sqrt(N))
    assert abs(totals.mean() - mean) < 4 * se, (totals.mean(), mean)
    assert abs(totals.std() - std) < 0.2 * std


def test_bline_reward_profile_and_first_impact_time():
    _, rewards = _returns("b_line", 100)
    # Per-step rewards seen with a sleeping Blue (spec §4.2).
    assert set(np.round(np.unique(rewards) * 10).astype(int)) <= {0, -1, -11, -21, -31, -131}
    first_impact = np.argmax(rewards <= -13.0, axis=1) + 1
    assert abs(np.mean(first_impact == 15) - 0.885) < 0.06
    assert first_impact.min() == 15
