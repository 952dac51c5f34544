"""Fast host-driven calls: one packed buffer in, one out, per step of a host-side loop.

Host-side loops (the Gymnasium adapters, the CybORG-engine evaluation, a drop-in CybORG agent)
call one small jitted program per environment step. What such a call costs beyond the program's
own work is per *argument and result buffer* and per Python object: pytree flattening of a
29-leaf ``EnvState``, a typed PRNG key object (flatten, unflatten and its data check), one XLA
buffer per leaf in and out, and several ``device_get`` round trips. This module removes those:

* ``FlatLayout``: a pytree (state, PRNG key data, params, policy memory...) as one flat int32
  vector (bools and small ints widened, uint32/float32 bit-cast), packed and unpacked *inside* the
  compiled program, so the host holds a single buffer between calls;
* ``PackedCall``: an ahead-of-time compiled (``jit(...).lower(...).compile()``) program
  ``(carry, *inputs) -> (carry, result)`` whose carry buffer is donated and whose result is one
  array, so a step is one dispatch, one small host-to-device transfer (the action) and one
  device-to-host read (the result);
* ``HostPolicy``: the same for a policy acting from NumPy observations, with its memory and PRNG
  key kept in the carry (``jaxcage.evaluation.make_host_policy`` builds one from a trained run).

* ``inline_cpu_runtime``: an opt-in, process-wide switch for processes that only step from the
  host (an SB3 / CleanRL loop, CybORG's ``evaluation.py`` with the drop-in agent): JAX's
  threads on one core and XLA:CPU's intra-op pool of one thread, so the ~150 thunks of a step
  are not handed between cores (about 60% of a small call's cost on an idle 2-core VM).

The dynamics are untouched: the programs call ``jaxcage.env.CageEnv`` as every other path does.
On XLA:CPU the remaining per-call cost is the runtime executing the step's ~150 thunks once
(~170-200 us on an idle 2-core VM with the default runtime, ~70 us with
``inline_cpu_runtime``, against ~10-14 us per step inside a ``lax.scan``); see BENCHMARKS.md,
"Host-side stepping", and ``benchmarks/bench_gym.py --profile``.

No CybORG counterpart: CybORG's ``ChallengeWrapper.step`` is plain Python.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax._src import xla_bridge

__all__ = [
    "FlatLayout",
    "HostPolicy",
    "PackedCall",
    "inline_cpu_runtime",
    "inline_cpu_runtime_active",
    "key_from_data",
    "key_to_data",
]

# XLA sizes its CPU client's intra-op thread pool from NPROC when set (``DefaultThreadPoolSize``
# in xla/pjrt/utils.cc), else from the CPUs this process may run on; it is read once, when JAX
# creates its CPU backend.
_POOL_ENV = "NPROC"

# Dtypes a FlatLayout can hold losslessly in an int32 slot.
_WIDENED = (np.dtype(np.bool_), np.dtype(np.int8), np.dtype(np.int16), np.dtype(np.int32))
_BITCAST = (np.dtype(np.uint32), np.dtype(np.float32))


@dataclass(frozen=True)
class _Leaf:
    shape: tuple[int, ...]  # per-item shape (after the batch dimensions)
    dtype: np.dtype
    start: int
    size: int


class FlatLayout:
    """A fixed pytree structure stored as one int32 vector (per item of a leading batch).

    Built from an example tree (unbatched); ``pack``/``unpack`` are traceable and accept any
    number of leading batch dimensions (``batch_dims``), so the same layout serves one environment
    and ``num_envs`` of them. Leaves must be bool / int8 / int16 / int32 (widened) or uint32 /
    float32 (bit-cast); a typed PRNG key must be converted with ``key_to_data`` first.

    Raises:
        ValueError: a leaf of another dtype (e.g. float64 or int64 under x64).
    """

    def __init__(self, example: Any) -> None:
        leaves, self.treedef = jax.tree.flatten(example)
        specs = []
        start = 0
        for leaf in leaves:
            dtype = np.dtype(leaf.dtype)
            if dtype not in _WIDENED + _BITCAST:
                raise ValueError(f"FlatLayout cannot hold a {dtype} leaf (shape {leaf.shape})")
            size = int(np.prod(leaf.shape, dtype=np.int64))
            specs.append(_Leaf(tuple(leaf.shape), dtype, start, size))
            start += size
        self.leaves = tuple(specs)
        self.size = start  # int32 slots per item

    def pack(self, tree: Any, batch_dims: int = 0) -> jax.Array:
        """``tree`` (leaves shaped ``batch + leaf.shape``) as an int32 array ``batch + (size,)``."""
        leaves = self.treedef.flatten_up_to(tree)
        parts = []
        for spec, leaf in zip(self.leaves, leaves, strict=True):
            leaf = jnp.asarray(leaf)
            batch = leaf.shape[:batch_dims]
            if spec.dtype in _BITCAST:
                flat = jax.lax.bitcast_convert_type(leaf.astype(spec.dtype), jnp.int32)
            else:
                flat = leaf.astype(jnp.int32)
            parts.append(flat.reshape(*batch, spec.size))
        return jnp.concatenate(parts, axis=-1)

    def unpack(self, flat: jax.Array) -> Any:
        """The tree stored in ``flat`` (an int32 array ``batch + (size,)``)."""
        batch = flat.shape[:-1]
        leaves = []
        for spec in self.leaves:
            part = flat[..., spec.start : spec.start + spec.size].reshape(*batch, *spec.shape)
            if spec.dtype == np.bool_:
                leaves.append(part != 0)
            elif spec.dtype in _BITCAST:
                leaves.append(jax.lax.bitcast_convert_type(part, spec.dtype))
            else:
                leaves.append(part.astype(spec.dtype))
        return self.treedef.unflatten(leaves)


def key_to_data(key: jax.Array) -> jax.Array:
    """A typed PRNG key's raw uint32 data (what a ``FlatLayout`` can hold)."""
    return jax.random.key_data(key)


def key_from_data(data: jax.Array, like: jax.Array) -> jax.Array:
    """The typed key with raw ``data``, of the same PRNG implementation as the key ``like``."""
    return jax.random.wrap_key_data(data, impl=jax.random.key_impl(like))


def inline_cpu_runtime(*, strict: bool = True, cpu: int | None = None) -> bool:
    """Run XLA:CPU programs on one core with a one-thread pool, for host-driven stepping.

    A single-env (or few-env) step is ~150 small thunks. With the default runtime (a pool thread
    per CPU, an async dispatch thread) XLA hands them between threads on different cores, and on
    an idle VM every hand-off wakes a sleeping core: that is most of a small call (BENCHMARKS.md,
    "Host-side stepping": ``CageGymEnv`` 207 -> 74 us per step, ``CageVectorEnv`` at 8 envs
    234 -> 102 us, idle 2-core VM). This switch pins the calling thread, and so every thread
    started after it (JAX's pool and dispatch threads among them), to one CPU (Linux
    ``sched_setaffinity``; elsewhere only the pool size is set), sizes XLA's intra-op pool to one
    thread (``NPROC=1``, read when JAX starts its CPU backend) and disables the hop to JAX's
    dispatch thread (``jax_cpu_enable_async_dispatch=False``).

    For processes whose JAX work is host-side stepping (a PyTorch or SB3 loop over the Gymnasium
    adapters, CybORG's ``evaluation.py`` with the drop-in agent): large batches lose the other
    cores (8,192 envs: 1.15M -> ~0.6M steps/s), and threads the process starts later (PyTorch's)
    share that core unless they set their own affinity. Process-wide and one-way: it must run
    before the first JAX computation of the process.

    Args:
        strict: raise when JAX's backend has already started (else return ``False``).
        cpu: the CPU to run on (default: the first this process may use).

    Returns:
        whether the runtime is (now) inline.

    Raises:
        RuntimeError: ``strict`` and the backend started before this call.
        ValueError: ``cpu`` is not one this process may run on.
    """
    if xla_bridge.backends_are_initialized():
        if inline_cpu_runtime_active():  # started inline (e.g. NPROC=1 taskset ... python)
            return True
        if strict:
            raise RuntimeError(
                "inline_cpu_runtime() must run before JAX's first computation in this process "
                "(the CPU backend has already started with its thread pool); call it first, or "
                f"start Python with {_POOL_ENV}=1 (and taskset -c 0 on Linux)"
            )
        return False
    if hasattr(os, "sched_setaffinity"):
        allowed = sorted(os.sched_getaffinity(0))
        target = allowed[0] if cpu is None else cpu
        if target not in allowed:
            raise ValueError(f"cpu {cpu} is not one this process may run on: {allowed}")
        os.sched_setaffinity(0, {target})
    os.environ[_POOL_ENV] = "1"
    jax.config.update("jax_cpu_enable_async_dispatch", False)
    return True


def inline_cpu_runtime_active() -> bool:
    """Whether JAX's CPU backend runs (or will start) with a one-thread intra-op pool."""
    return os.environ.get(_POOL_ENV, "").strip() == "1"


class PackedCall:
    """An AOT-compiled ``fn(carry, *inputs) -> (carry, result)`` with the carry buffer donated.

    ``carry`` is whatever ``fn`` keeps between calls (typically a ``FlatLayout``-packed int32
    buffer); ``inputs`` are small host arrays sent each call (an action); ``result`` is one
    array the host reads. Compiling ahead of time for the exact example shapes means a call skips
    jit's cache lookup and argument-signature checks.

    Args:
        fn: the traceable function.
        carry: example carry (its shapes and dtypes fix the program).
        inputs: example inputs.
    """

    def __init__(self, fn: Callable[..., tuple[Any, Any]], carry: Any, *inputs: Any) -> None:
        self.compiled = jax.jit(fn, donate_argnums=0).lower(carry, *inputs).compile()

    def __call__(self, carry: Any, *inputs: Any) -> tuple[Any, Any]:
        return self.compiled(carry, *inputs)


# A policy step: (obs (52,) int32, memory, key) -> (action () int32, next memory).
ActFn = Callable[[jax.Array, Any, jax.Array], tuple[jax.Array, Any]]


class HostPolicy:
    """A policy for host-driven environments: NumPy observation in, Python int action out.

    The policy's memory (e.g. ``jaxcage.ppo.features.PolicyMemory``) and its PRNG key live in one
    packed, donated device buffer; each ``act`` sends the observation, splits the key inside the
    program (``key, sub = split(key)``, then ``act_fn(obs, memory, sub)``, as
    ``jaxcage.evaluation`` always did) and reads back one int32.

    Args:
        act_fn: ``(obs, memory, key) -> (action, next_memory)`` for one observation; network
            parameters are closed over (compile-time constants).
        init_memory: the memory at an episode start.
        key: the PRNG key stream to draw from (continues across ``reset``).
        obs_size: observation length (52 for CAGE2's Blue).

    Example::

        policy = HostPolicy(act_fn, init_memory(), jax.random.key(0))
        obs = cyborg_env.reset()
        policy.reset()
        action = policy.act(obs)
    """

    def __init__(self, act_fn: ActFn, init_memory: Any, key: jax.Array, obs_size: int = 52) -> None:
        self._key_like = key
        self._init_memory = init_memory
        self.layout = FlatLayout((key_to_data(key), init_memory))
        self.obs_size = obs_size
        layout = self.layout

        def step(carry: jax.Array, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
            key_data, memory = layout.unpack(carry)
            key_step, key_act = jax.random.split(key_from_data(key_data, key))
            action, memory = act_fn(obs, memory, key_act)
            action = jnp.asarray(action, jnp.int32)
            return layout.pack((key_to_data(key_step), memory)), action

        def reset(carry: jax.Array) -> jax.Array:
            key_data, _ = layout.unpack(carry)
            return layout.pack((key_data, init_memory))

        self._carry = self._pack(key)
        self._step = PackedCall(step, self._carry, np.zeros(obs_size, np.int32))
        self._reset = PackedCall(lambda c: (reset(c), jnp.int32(0)), self._carry)

    def _pack(self, key: jax.Array) -> jax.Array:
        return jax.jit(self.layout.pack)((key_to_data(key), self._init_memory))

    def reset(self, key: jax.Array | None = None) -> None:
        """Start an episode: memory back to its initial value; the key stream goes on, or
        restarts from ``key``."""
        if key is not None:
            self._carry = self._pack(key)
        else:
            self._carry, _ = self._reset(self._carry)

    def act(self, obs: Any) -> int:
        """The action for one observation (anything ``np.asarray`` turns into ``(obs_size,)``)."""
        arr = np.asarray(obs)
        if arr.shape != (self.obs_size,):
            raise ValueError(f"observation must have shape ({self.obs_size},), got {arr.shape}")
        self._carry, action = self._step(self._carry, arr.astype(np.int32, copy=False))
        return int(action)

    @property
    def memory(self) -> Any:
        """The current memory (unpacked; for tests and debugging)."""
        return jax.jit(self.layout.unpack)(self._carry)[1]
