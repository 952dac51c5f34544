"""Policy inputs: the observation plus features a CybORG blue agent can compute from its own past.

This is the *only* place where a policy input is built, for training, the jaxcage evaluation and
the CybORG evaluation alike (``jaxcage.evaluation`` calls the same functions on CybORG's numpy
observations), so a trained policy sees identical inputs in both engines.

The 52-bit CAGE2 observation is Markov for neither the defender nor the attacker: the Activity
bits last one step, and Blue cannot see its own decoys. Optional features (``PPOConfig.features``)
give the policy a little memory that a real agent has for free:

* ``prev_action``: one-hot of Blue's previous action (145; zeros at an episode's first step);
* ``prev_obs``: the previous step's 52-bit observation (zeros at the first step);
* ``decoys``: which (decoy kind, host) decoy actions Blue issued since that host's last Restore
  (104 bits; Restore removes decoys in CybORG, Remove does not; spec §8);
* ``time``: the step counter within the episode divided by 100.

The memory is reset at every episode start; in CybORG that is every ``env.reset()``.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import struct

from jaxcage.constants import (
    DECOY_BASE,
    NUM_BLUE_ACTIONS,
    NUM_DECOYS,
    NUM_HOSTS,
    OBS_SIZE,
    RESTORE_BASE,
)

NUM_ACTIONS = NUM_BLUE_ACTIONS
TIME_SCALE = 100.0

FEATURE_SIZES = {
    "prev_action": NUM_ACTIONS,
    "prev_obs": OBS_SIZE,
    "decoys": NUM_HOSTS * NUM_DECOYS,
    "time": 1,
}


@struct.dataclass
class PolicyMemory:
    """Per-episode memory of one blue agent (batch it with ``vmap``)."""

    prev_action: jax.Array  # () int32, -1 at the episode start
    prev_obs: jax.Array  # (52,) int32
    decoys: jax.Array  # (13, 8) bool: decoy (host, kind) issued since host's last Restore
    time: jax.Array  # () int32: steps taken in the episode


def input_size(features: Sequence[str]) -> int:
    """Length of the policy input vector for these features."""
    return OBS_SIZE + sum(FEATURE_SIZES[f] for f in features)


def init_memory() -> PolicyMemory:
    """Memory at the start of an episode."""
    return PolicyMemory(
        prev_action=jnp.int32(-1),
        prev_obs=jnp.zeros(OBS_SIZE, dtype=jnp.int32),
        decoys=jnp.zeros((NUM_HOSTS, NUM_DECOYS), dtype=bool),
        time=jnp.int32(0),
    )


def update_memory(memory: PolicyMemory, obs: jax.Array, action: jax.Array) -> PolicyMemory:
    """Memory after Blue took ``action`` while seeing ``obs`` (the input it acted on)."""
    action = jnp.asarray(action, dtype=jnp.int32)
    hosts = jnp.arange(NUM_HOSTS)
    kinds = jnp.arange(NUM_DECOYS)
    rel = action - DECOY_BASE
    is_decoy = (rel >= 0) & (action < RESTORE_BASE)
    placed = is_decoy & (hosts[:, None] == rel % NUM_HOSTS) & (kinds[None, :] == rel // NUM_HOSTS)
    restored = hosts == action - RESTORE_BASE
    decoys = (memory.decoys | placed) & ~restored[:, None]
    return PolicyMemory(
        prev_action=action,
        prev_obs=jnp.asarray(obs, dtype=jnp.int32),
        decoys=decoys,
        time=memory.time + 1,
    )


def policy_input(obs: jax.Array, memory: PolicyMemory, features: Sequence[str]) -> jax.Array:
    """The float32 network input: ``obs`` followed by the selected features, in the given order."""
    parts = [jnp.asarray(obs, dtype=jnp.float32)]
    for f in features:
        if f == "prev_action":
            parts.append(jax.nn.one_hot(memory.prev_action, NUM_ACTIONS, dtype=jnp.float32))
        elif f == "prev_obs":
            parts.append(memory.prev_obs.astype(jnp.float32))
        elif f == "decoys":
            parts.append(memory.decoys.reshape(-1).astype(jnp.float32))
        elif f == "time":
            parts.append((memory.time.astype(jnp.float32) / TIME_SCALE)[None])
        else:  # PPOConfig validates names; this guards direct callers.
            raise ValueError(f"unknown feature {f!r}")
    return jnp.concatenate(parts, axis=-1)
