"""GAE against a straightforward NumPy reference, including the truncation/bootstrap cases."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from jaxcage.ppo.gae import compute_gae


def gae_reference(rewards, values, next_values, dones, terminals, gamma, lam):
    """Textbook backward loop, one env at a time, no vectorisation tricks."""
    T, N = rewards.shape
    adv = np.zeros((T, N))
    for n in range(N):
        running = 0.0
        for t in reversed(range(T)):
            bootstrap = 0.0 if terminals[t, n] else gamma * next_values[t, n]
            delta = rewards[t, n] + bootstrap - values[t, n]
            if dones[t, n]:
                running = 0.0  # nothing from the next episode flows back
            running = delta + gamma * lam * running
            adv[t, n] = running
    return adv, adv + values


@pytest.mark.parametrize("gamma,lam", [(0.99, 0.95), (0.9, 1.0), (0.5, 0.0)])
def test_gae_matches_numpy_reference(gamma, lam):
    rng = np.random.default_rng(0)
    T, N = 23, 5
    rewards = rng.normal(size=(T, N)).astype(np.float32)
    values = rng.normal(size=(T, N)).astype(np.float32)
    next_values = rng.normal(size=(T, N)).astype(np.float32)
    dones = rng.random((T, N)) < 0.15
    terminals = dones & (rng.random((T, N)) < 0.5)
    adv, ret = compute_gae(
        *map(jnp.asarray, (rewards, values, next_values, dones, terminals)), gamma, lam
    )
    ref_adv, ref_ret = gae_reference(rewards, values, next_values, dones, terminals, gamma, lam)
    np.testing.assert_allclose(adv, ref_adv, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ret, ref_ret, rtol=1e-5, atol=1e-5)


def test_truncation_bootstraps_from_final_value_and_terminal_does_not():
    # One env, 3 steps, the episode is cut after step 1 (index 1). V(final_obs) = 10.
    gamma, lam = 0.9, 1.0
    rewards = jnp.array([[1.0], [1.0], [1.0]])
    values = jnp.zeros((3, 1))
    next_values = jnp.array([[0.0], [10.0], [0.0]])  # step 1 bootstraps from V(final_obs)
    dones = jnp.array([[False], [True], [False]])
    truncated, _ = compute_gae(
        rewards, values, next_values, dones, jnp.zeros_like(dones), gamma, lam
    )
    terminal, _ = compute_gae(rewards, values, next_values, dones, dones, gamma, lam)
    # Truncated: A_2 = 1; A_1 = 1 + 0.9 * 10 = 10 (no carry across the cut); A_0 = 1 + 0.9 * A_1.
    np.testing.assert_allclose(truncated[:, 0], [10.0, 10.0, 1.0], rtol=1e-6)
    # Terminal: step 1 gets no bootstrap; step 0 sees only its successor's advantage.
    np.testing.assert_allclose(terminal[:, 0], [1.9, 1.0, 1.0], rtol=1e-6)
    # The advantage of the step after the cut never leaks into the step before it.
    assert float(truncated[2, 0]) == 1.0
