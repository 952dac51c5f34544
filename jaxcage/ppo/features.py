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
* ``time``: the step counter within the episode divided by 100;
* ``scans``: per host, whether an earlier observation showed Scan activity on it, and whether it
  is the host of the latest such observation (26 bits). The Activity bits last one step
  (``BlueTableWrapper.observation_change``), so without this Blue forgets which hosts Red has
  mapped; the CAGE2 winner's wrapper kept the same scan state. B_line scans only the host it
  attacks next, Meander scans a whole subnet first, so it also tells the two apart.
* ``red_guess``: which red agent this is, latched from the first ``FINGERPRINT_STEPS``
  observations (3 bits, B_line / Meander / Sleep; zeros before). Both attackers open with a ping
  sweep and one port scan (``B_lineAgent.py``, ``RedMeanderAgent.py``); by Blue's fifth
  observation Meander has port-scanned a second User host while B_line is still on its first (it
  exploits, escalates, then scans Enterprise), and Sleep has scanned nothing: 2+, 1 or 0 hosts
  with Scan activity, the same in every episode (``tests/test_ppo_features.py``). The CAGE2
  winner switched between its B_line and Meander policies at the same step
  (``jaxcage.switch`` does that with whole policies).

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
# Observations after which the red agent is told apart (see the module docstring), and the guesses.
FINGERPRINT_STEPS = 4
RED_GUESSES: tuple[str, ...] = ("b_line", "meander", "sleep")

FEATURE_SIZES = {
    "prev_action": NUM_ACTIONS,
    "prev_obs": OBS_SIZE,
    "decoys": NUM_HOSTS * NUM_DECOYS,
    "time": 1,
    "scans": 2 * NUM_HOSTS,
    "red_guess": len(RED_GUESSES),
}


@struct.dataclass
class PolicyMemory:
    """Per-episode memory of one blue agent (batch it with ``vmap``)."""

    prev_action: jax.Array  # () int32, -1 at the episode start
    prev_obs: jax.Array  # (52,) int32
    decoys: jax.Array  # (13, 8) bool: decoy (host, kind) issued since host's last Restore
    time: jax.Array  # () int32: steps taken in the episode
    scans: jax.Array  # (13,) int32: 0 never scanned, 1 scanned before, 2 the latest scanned host
    guess: jax.Array  # () int32: index in RED_GUESSES, -1 before FINGERPRINT_STEPS observations


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
        scans=jnp.zeros(NUM_HOSTS, dtype=jnp.int32),
        guess=jnp.int32(-1),
    )


def init_memories(n: int) -> PolicyMemory:
    """``init_memory()`` for each of ``n`` envs (a leading env axis)."""
    return jax.tree.map(lambda m: jnp.broadcast_to(m, (n, *m.shape)), init_memory())


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
    obs = jnp.asarray(obs, dtype=jnp.int32)
    scans = _update_scans(memory.scans, obs)
    time = memory.time + 1
    guess = jnp.where(time == FINGERPRINT_STEPS, _fingerprint(scans), memory.guess)
    return PolicyMemory(
        prev_action=action, prev_obs=obs, decoys=decoys, time=time, scans=scans, guess=guess
    )


def _fingerprint(scans: jax.Array) -> jax.Array:
    """The red agent's index in ``RED_GUESSES`` from how many hosts showed Scan activity so far:
    2 or more Meander, 1 B_line, 0 Sleep (valid after ``FINGERPRINT_STEPS`` observations)."""
    scanned = jnp.sum(scans >= 1)
    return jnp.where(scanned >= 2, 1, jnp.where(scanned == 1, 0, 2)).astype(jnp.int32)


def _update_scans(scans: jax.Array, obs: jax.Array) -> jax.Array:
    """Scan state after seeing ``obs``: this step's Scan hosts become the latest (2), the hosts
    that were latest before become "scanned before" (1) if any host was scanned now."""
    rows = obs.reshape(NUM_HOSTS, 4)
    scanned = (rows[:, 0] == 1) & (rows[:, 1] == 0)  # Activity Scan is 10 (observation.py)
    aged = jnp.where(jnp.any(scanned) & (scans == 2), 1, scans)
    return jnp.where(scanned, 2, aged).astype(jnp.int32)


@struct.dataclass
class PolicyInput:
    """The policy input in compact form: what the trainer stores, shuffles and feeds the network.

    ``expand_input`` turns it into the float vector ``policy_input`` returns; the network's first
    layer takes either (``first_layer``). Compact because the float vector is mostly one-hot and
    0/1 bits: storing those as bytes and the previous action as an index makes the trainer's
    per-epoch minibatch gathers ~14x lighter, and the one-hot block's product with the first-layer
    kernel becomes a row lookup instead of a (145 x hidden) matmul (BENCHMARKS.md).
    """

    bits: jax.Array  # (..., n) uint8 0/1: the observation, then each 0/1 feature in input order
    prev_action: jax.Array  # (...,) int32, -1 before the episode's first action
    time: jax.Array  # (...,) float32 steps taken in the episode / TIME_SCALE


def compact_input(obs: jax.Array, memory: PolicyMemory, features: Sequence[str]) -> PolicyInput:
    """The compact policy input for ``obs`` and ``memory`` (unbatched; vmap it)."""
    # The 0/1 blocks, in input order; the other blocks (prev_action, time) have their own fields.
    sources = {
        "obs": obs,
        "prev_obs": memory.prev_obs,
        "decoys": memory.decoys.reshape(-1),
        "scans": jnp.stack([memory.scans >= 1, memory.scans == 2], axis=-1).reshape(-1),
        "red_guess": memory.guess == jnp.arange(len(RED_GUESSES)),
    }
    bits = [
        jnp.asarray(sources[name]).astype(jnp.uint8)
        for name, _, _ in input_blocks(features)
        if name in sources
    ]
    return PolicyInput(
        bits=jnp.concatenate(bits, axis=-1),
        prev_action=jnp.asarray(memory.prev_action, jnp.int32),
        time=memory.time.astype(jnp.float32) / TIME_SCALE,
    )


def input_blocks(features: Sequence[str]) -> list[tuple[str, int, int]]:
    """``(name, start, size)`` of every block of the float input vector, in order."""
    blocks, start = [("obs", 0, OBS_SIZE)], OBS_SIZE
    for f in features:
        if f not in FEATURE_SIZES:  # PPOConfig validates names; this guards direct callers.
            raise ValueError(f"unknown feature {f!r}")
        blocks.append((f, start, FEATURE_SIZES[f]))
        start += FEATURE_SIZES[f]
    return blocks


def expand_input(inp: PolicyInput, features: Sequence[str]) -> jax.Array:
    """The float32 input vector of a compact input: the observation, then the features in order."""
    parts, bit = [], 0
    for name, _, size in input_blocks(features):
        if name == "prev_action":
            parts.append(jax.nn.one_hot(inp.prev_action, NUM_ACTIONS, dtype=jnp.float32))
        elif name == "time":
            parts.append(inp.time[..., None])
        else:
            parts.append(inp.bits[..., bit : bit + size].astype(jnp.float32))
            bit += size
    return jnp.concatenate(parts, axis=-1)


def policy_input(obs: jax.Array, memory: PolicyMemory, features: Sequence[str]) -> jax.Array:
    """The float32 network input: ``obs`` followed by the selected features, in the given order."""
    return expand_input(compact_input(obs, memory, features), features)


def first_layer(inp: PolicyInput, kernel: jax.Array, features: Sequence[str]) -> jax.Array:
    """``expand_input(inp, features) @ kernel``, without building the float vector.

    The 0/1 blocks go through one matmul with their kernel rows; the one-hot previous action
    selects its kernel row (no row before the first action, like the all-zero one-hot); the
    time scales its row. Same parameters, same product, ~half the FLOPs of the default input.
    """
    bit_rows, out = [], None
    for name, start, size in input_blocks(features):
        if name == "prev_action":
            rows = kernel[start : start + size]
            valid = (inp.prev_action >= 0)[..., None]
            term = jnp.where(valid, jnp.take(rows, jnp.maximum(inp.prev_action, 0), axis=0), 0.0)
        elif name == "time":
            term = inp.time[..., None] * kernel[start]
        else:
            bit_rows.append(kernel[start : start + size])
            continue
        out = term if out is None else out + term
    dense = inp.bits.astype(kernel.dtype) @ jnp.concatenate(bit_rows, axis=0)
    return dense if out is None else dense + out
