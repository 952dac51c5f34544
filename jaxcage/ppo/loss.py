"""The PPO objective (clipped surrogate + optionally clipped value loss - entropy bonus).

``ppo_loss_terms`` works on network outputs so it can be checked against a NumPy reference without
a network; ``ppo_loss`` wraps it around ``ActorCritic.apply`` for ``jax.grad``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxcage.ppo.features import PolicyInput


@struct.dataclass
class Minibatch:
    """One minibatch of flattened transitions (leading axis = samples)."""

    inputs: jax.Array | PolicyInput  # (B, ...) float input vectors or compact inputs
    actions: jax.Array  # (B,) int32
    log_probs: jax.Array  # (B,) float32, behaviour policy log pi(a|s)
    values: jax.Array  # (B,) float32, behaviour value V(s) (for value clipping)
    advantages: jax.Array  # (B,) float32
    returns: jax.Array  # (B,) float32 value targets


def ppo_loss_terms(
    logits: jax.Array,
    values: jax.Array,
    batch: Minibatch,
    *,
    clip_eps: float,
    vf_coef: float,
    ent_coef: float,
    clip_value_loss: bool,
    normalize_advantages: bool,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Total loss and its parts for new ``logits``/``values`` on ``batch``.

    Returns ``(loss, aux)`` with aux keys ``policy_loss``, ``value_loss``, ``entropy``,
    ``approx_kl`` (the low-variance ``(r - 1) - log r`` estimator, Schulman 2020) and
    ``clip_frac`` (fraction of samples whose ratio left ``[1 - eps, 1 + eps]``).
    """
    log_pi = jax.nn.log_softmax(logits)
    log_prob = jnp.take_along_axis(log_pi, batch.actions[:, None], axis=-1)[:, 0]
    log_ratio = log_prob - batch.log_probs
    ratio = jnp.exp(log_ratio)

    adv = batch.advantages
    if normalize_advantages:
        # Per minibatch, as in the PPO reference implementations.
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    pg_unclipped = ratio * adv
    pg_clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * adv
    policy_loss = -jnp.minimum(pg_unclipped, pg_clipped).mean()

    v_err = jnp.square(values - batch.returns)
    if clip_value_loss:
        v_clipped = batch.values + jnp.clip(values - batch.values, -clip_eps, clip_eps)
        v_err = jnp.maximum(v_err, jnp.square(v_clipped - batch.returns))
    value_loss = 0.5 * v_err.mean()

    entropy = -(jnp.exp(log_pi) * log_pi).sum(-1).mean()
    loss = policy_loss + vf_coef * value_loss - ent_coef * entropy
    aux = {
        "policy_loss": policy_loss,
        "value_loss": value_loss,
        "entropy": entropy,
        "approx_kl": ((ratio - 1.0) - log_ratio).mean(),
        "clip_frac": (jnp.abs(ratio - 1.0) > clip_eps).astype(jnp.float32).mean(),
    }
    return loss, aux


def ppo_loss(
    params: Any,
    apply_fn: Callable[[Any, jax.Array | PolicyInput], tuple[jax.Array, jax.Array]],
    batch: Minibatch,
    **coefs: Any,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """``ppo_loss_terms`` of the network ``apply_fn(params, inputs)``; differentiable in params."""
    logits, values = apply_fn(params, batch.inputs)
    return ppo_loss_terms(logits, values, batch, **coefs)
