"""Generalised advantage estimation, aware of the terminated / truncated distinction.

CAGE2 episodes never terminate: they are cut by a time limit. Treating the cut as terminal
(``next_value = 0``) teaches the critic that the last steps of an episode are worth less than the
middle ones, which the observation cannot explain (Pardo et al. 2018, "Time limits in RL"). So each
step carries its own bootstrap value: ``next_values[t]`` is V(s_{t+1}) for an ordinary step and
V(final_obs) (the pre-reset observation) for the step that ended an episode; ``dones`` stops the
advantage recursion at episode boundaries, ``terminals`` zeroes the bootstrap.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def compute_gae(
    rewards: jax.Array,
    values: jax.Array,
    next_values: jax.Array,
    dones: jax.Array,
    terminals: jax.Array,
    gamma: float,
    gae_lambda: float,
) -> tuple[jax.Array, jax.Array]:
    """GAE(lambda) over a time-major rollout.

    Args:
        rewards: (T, ...) reward of step t.
        values: (T, ...) V(s_t) under the rollout policy.
        next_values: (T, ...) value to bootstrap step t from: V(s_{t+1}), or V(final_obs) when
            step t ended the episode.
        dones: (T, ...) bool, step t ended the episode (terminated or truncated): the recursion
            does not carry advantages across it.
        terminals: (T, ...) bool, step t ended in a true terminal state: no bootstrap.
        gamma: discount.
        gae_lambda: GAE lambda.

    Returns:
        ``(advantages, returns)``, both (T, ...), with ``returns = advantages + values``.
    """
    not_terminal = 1.0 - terminals.astype(values.dtype)
    not_done = 1.0 - dones.astype(values.dtype)
    deltas = rewards + gamma * not_terminal * next_values - values

    def backward(carry: jax.Array, x: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        delta, nd = x
        adv = delta + gamma * gae_lambda * nd * carry
        return adv, adv

    _, advantages = jax.lax.scan(
        backward, jnp.zeros_like(values[0]), (deltas, not_done), reverse=True
    )
    return advantages, advantages + values
