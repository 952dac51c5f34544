"""Invariants and metamorphic relations checked on thousands of reachable states.

States come from rollouts of a uniformly random Blue against B_line / Meander with the random
green agent. At every step the real transition is compared with alternative transitions from the
same state and the same noise.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcage import constants as C
from jaxcage.dynamics.step import transition
from jaxcage.env import make_params
from jaxcage.noise import sample_step_noise
from jaxcage.reward import MAX_PENALTY_TENTHS
from jaxcage.state import init_state

NUM_ENVS = 64
NUM_STEPS = 100


def _rollout_checks(red: str):
    params = make_params(red, green_agent="random")

    def one_env(key):
        def body(state, key):
            key_a, key_h, key_n = jax.random.split(key, 3)
            action = jax.random.randint(key_a, (), 0, C.NUM_BLUE_ACTIONS)
            noise = sample_step_noise(key_n)
            nxt, obs, reward, trace = transition(state, action, noise, params)
            # Alternatives from the same state and noise.
            host = jax.random.randint(key_h, (), 0, C.NUM_HOSTS)
            s_sleep, _, r_sleep, _ = transition(state, jnp.int32(0), noise, params)
            s_mon, o_mon, r_mon, _ = transition(state, jnp.int32(1), noise, params)
            o_sleep = transition(state, jnp.int32(0), noise, params)[1]
            s_rem, _, _, _ = transition(state, C.REMOVE_BASE + host, noise, params)
            s_res, _, r_res, _ = transition(state, C.RESTORE_BASE + host, noise, params)
            clean = (
                (
                    state.red_priv[host]
                    + state.red_user_removable[host]
                    + state.red_user_hidden[host]
                    == jnp.where(host == C.Host.USER0, 1, 0)
                )
                & ~state.malware_file[host]
                & (jnp.sum(state.decoys[host]) == 0)
                & (state.compromised[host] == 0)
                & ((host != C.Host.OP_SERVER0) | ~state.ot_pid_valid)
            )
            same_as_sleep = jax.tree.map(lambda a, b: jnp.all(a == b), s_res, s_sleep)
            checks = {
                "reward_nonpositive": reward <= 0,
                "reward_bounded": reward >= -MAX_PENALTY_TENTHS,
                "obs_binary": jnp.all((obs == 0) | (obs == 1)),
                "counts_nonnegative": jnp.all(
                    (nxt.red_priv >= 0) & (nxt.red_user_removable >= 0) & (nxt.red_user_hidden >= 0)
                ),
                "user0_foothold": nxt.red_priv[C.Host.USER0] >= 1,
                "at_most_one_new_session": jnp.sum(
                    nxt.red_priv + nxt.red_user_removable + nxt.red_user_hidden
                )
                <= jnp.sum(state.red_priv + state.red_user_removable + state.red_user_hidden) + 1,
                "monitor_is_sleep": jnp.all(o_mon == o_sleep)
                & (r_mon == r_sleep)
                & jax.tree.reduce(
                    jnp.logical_and, jax.tree.map(lambda a, b: jnp.all(a == b), s_mon, s_sleep)
                ),
                "remove_never_raises_privilege": jnp.all(s_rem.red_priv <= s_sleep.red_priv),
                "clean_restore_only_costs_one": ~clean
                | ((r_res == r_sleep - 10) & jax.tree.reduce(jnp.logical_and, same_as_sleep)),
                "reward_matches_state": reward
                == -(
                    jnp.sum(
                        jnp.asarray([1, 10, 10, 10, 1, 1, 1, 10, 0, 1, 1, 1, 1])
                        * (nxt.red_priv > 0)
                    )
                    + jnp.where(nxt.ot_proc_present, 0, 100)
                    + jnp.where((action >= C.RESTORE_BASE), 10, 0)
                ),
                "ot_penalty_needs_impact_history": nxt.ot_proc_present | ~nxt.ot_active,
            }
            return nxt, (checks, clean)

        keys = jax.random.split(key, NUM_STEPS)
        _, (checks, clean) = jax.lax.scan(body, init_state(), keys)
        return checks, clean

    return jax.jit(jax.vmap(one_env))(jax.random.split(jax.random.key(42), NUM_ENVS))


@pytest.mark.parametrize("red", ["b_line", "meander"])
def test_invariants_hold_on_random_rollouts(red):
    checks, clean = _rollout_checks(red)
    for name, ok in checks.items():
        ok = np.asarray(ok)
        assert ok.all(), f"{name} violated at {np.argwhere(~ok)[:5].tolist()} (env, step)"
    # The clean-restore relation must actually have been exercised.
    assert np.asarray(clean).sum() > 100


def test_sleep_against_sleep_is_silent():
    params = make_params("sleep")
    state = init_state()
    step = jax.jit(transition)
    for t in range(50):
        state, obs, reward, trace = step(
            state, jnp.int32(0), sample_step_noise(jax.random.key(t)), params
        )
        assert int(reward) == 0 and not np.asarray(obs).any()
    assert int(jnp.sum(state.red_priv)) == 1 and not bool(
        jnp.any(state.known_ip & ~init_state().known_ip)
    )
