"""Placement: which arrays are split over the devices and which are replicated.

Mirrors no CybORG file: this is the scale-out layer of the trainer (``ppo/train.py``), the JAX
evaluation engine (``evaluation.py``) and the benchmarks, on JAX's own machinery: a 1-D
``jax.sharding.Mesh`` over every device JAX sees (the local ones, or every process's after
``jax.distributed.initialize``), ``NamedSharding`` s for what is split and what is replicated, and
``jit`` with those shardings, so XLA's SPMD partitioner inserts the collectives. The program is the
one a single device would run on the global arrays; only where its data lives changes.

What is split, and over which axis:

* independent work (training seeds, evaluation episodes, later the workflow search's workflows):
  the leading axis, with no communication (``split_leading``, ``leading``);
* one policy over many devices (``Placement.layout == "envs"``): the env axis of the rollout state
  and the sample axis of each minibatch; the params and the optimiser state are replicated and the
  gradient of every minibatch step is all-reduced (XLA's partitioner adds it, because the loss is a
  mean over a split axis while the params are replicated).

Public API (small on purpose; other modules build on it):
``initialize`` (``jax.distributed`` from explicit arguments or a detected cluster), ``make_mesh``,
``replicated``, ``split``, ``leading``, ``put`` (host arrays -> global arrays, multi-process safe),
``fetch`` (global arrays -> the whole numpy array on every process), ``split_leading``,
``describe``, ``is_writer``, ``barrier``, and ``plan`` / ``Placement`` for the trainer's layout.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "devices"  # the mesh's one axis

# Environment variables by which ``jax.distributed.initialize()`` (no arguments) finds a cluster:
# SLURM (srun) and Open MPI (mpirun). A single-task job is not a cluster: nothing to initialise.
_CLUSTER_SIZE_VARS = {
    "SLURM_STEP_NODELIST": "SLURM_NTASKS",
    "OMPI_MCA_orte_hnp_uri": "OMPI_COMM_WORLD_SIZE",
}


def cluster_detected() -> bool:
    """Whether this process was started as one task of a multi-process SLURM or Open MPI job."""
    for marker, size in _CLUSTER_SIZE_VARS.items():
        if marker in os.environ and int(os.environ.get(size, "1") or 1) > 1:
            return True
    return False


def initialize(
    coordinator: str | None = None, num_processes: int | None = None, process_id: int | None = None
) -> bool:
    """Start ``jax.distributed`` if asked to (a coordinator) or if a cluster is detected.

    Must run before anything touches a JAX device. Idempotent: a second call is a no-op. On CPU the
    cross-process collectives are gloo's (``jax_cpu_collectives_implementation``, JAX's default).

    Returns:
        True when this process is (now) part of a multi-process run.
    """
    if jax.distributed.is_initialized():
        return True
    explicit = coordinator is not None or num_processes is not None or process_id is not None
    if not explicit and not cluster_detected():
        return False
    if explicit and (coordinator is None or num_processes is None or process_id is None):
        raise ValueError(
            "multi-process training needs all of coordinator (HOST:PORT), num_processes and "
            f"process_id; got coordinator={coordinator!r}, num_processes={num_processes!r}, "
            f"process_id={process_id!r}"
        )
    if explicit and not 0 <= int(process_id or 0) < int(num_processes or 1):
        raise ValueError(f"process_id={process_id} is not in [0, num_processes={num_processes})")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(coordinator, num_processes, process_id)
    except RuntimeError as e:
        raise RuntimeError(
            f"jax.distributed.initialize failed ({e}); it must run before any JAX computation"
        ) from e
    return True


def make_mesh(num_devices: int | None = None, *, local: bool = False) -> Mesh:
    """A 1-D mesh named ``AXIS`` over all devices (global after ``initialize``) or the first
    ``num_devices`` of them (single process only: every process must take part in a run).
    ``local``: this process's devices only (work that one process does alone, e.g. evaluation)."""
    if local:
        devices = jax.local_devices()
        return Mesh(np.array(devices[: num_devices or len(devices)]), (AXIS,))
    devices = jax.devices()
    if num_devices is None or num_devices == len(devices):
        return Mesh(np.array(devices), (AXIS,))
    if not 1 <= num_devices <= len(devices):
        raise ValueError(f"num_devices={num_devices}, but JAX sees {len(devices)} device(s)")
    if jax.process_count() > 1:
        raise ValueError(
            f"num_devices={num_devices} with {jax.process_count()} processes: a multi-process "
            f"run uses all {len(devices)} devices (leave num_devices unset)"
        )
    return Mesh(np.array(devices[:num_devices]), (AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    """Every device holds the whole array."""
    return NamedSharding(mesh, PartitionSpec())


def split(mesh: Mesh, axis: int = 0) -> NamedSharding:
    """Axis ``axis`` is cut into ``mesh.size`` equal blocks, one per device."""
    return NamedSharding(mesh, PartitionSpec(*([None] * axis), AXIS))


def leading(mesh: Mesh) -> NamedSharding:
    """The sharding of independent work: the leading axis split, nothing communicated."""
    return split(mesh, 0)


def describe(mesh: Mesh) -> str:
    """``devices: 4 (processes: 1)``: what a run prints and records about its placement."""
    processes = len({d.process_index for d in mesh.devices.flat})
    return f"devices: {mesh.size} (processes: {processes})"


def is_writer() -> bool:
    """True on the one process that writes logs, CSVs, plots and checkpoints (process 0)."""
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Wait until every process gets here (a no-op in a single-process run); e.g. after process 0
    wrote a checkpoint that the others may read next."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)


def _is_key(x: Any) -> bool:
    return hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


@functools.lru_cache(maxsize=64)
def _wrap_keys(impl: str, sharding: NamedSharding) -> Callable[[jax.Array], jax.Array]:
    return jax.jit(lambda d: jax.random.wrap_key_data(d, impl=impl), out_shardings=sharding)


def _put_leaf(x: Any, sharding: NamedSharding) -> jax.Array:
    if _is_key(x):
        impl = str(jax.random.key_impl(x))
        data = _put_leaf(np.asarray(jax.random.key_data(x)), sharding)
        return _wrap_keys(impl, sharding)(data)
    a = np.asarray(x)
    if jax.process_count() == 1:
        return jax.device_put(a, sharding)
    # Every process holds the whole host array (same seed, or the same checkpoint file) and
    # contributes the blocks of its own devices.
    return jax.make_array_from_callback(a.shape, sharding, lambda index: a[index])


def put(tree: Any, shardings: Any) -> Any:
    """Host (numpy or local) arrays -> global arrays placed by ``shardings``: one sharding, or a
    pytree of them that is a prefix of ``tree`` (each sharding places its whole subtree). Every
    process must pass the same values."""
    return jax.tree.map(
        lambda s, sub: jax.tree.map(lambda x: _put_leaf(x, s), sub),
        shardings,
        tree,
        is_leaf=lambda s: isinstance(s, NamedSharding),
    )


def _fetch_leaf(x: Any) -> Any:
    if _is_key(x):
        impl = jax.random.key_impl(x)
        return jax.random.wrap_key_data(jnp.asarray(_fetch_leaf(jax.random.key_data(x))), impl=impl)
    if not isinstance(x, jax.Array) or x.is_fully_addressable:
        return np.asarray(jax.device_get(x))
    if x.is_fully_replicated:
        return np.asarray(x.addressable_data(0))
    return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def fetch(tree: Any) -> Any:
    """The whole value of every leaf as a host array, on every process (collective when the
    arrays span processes: every process must call it). PRNG keys stay typed keys."""
    return jax.tree.map(_fetch_leaf, tree)


def split_leading(tree: Any, mesh: Mesh) -> Any:
    """Place independent work: every leaf's leading axis split over ``mesh`` (it must divide)."""
    for leaf in jax.tree.leaves(tree):
        n = np.shape(leaf)[0] if np.ndim(leaf) else 0
        if n % mesh.size:
            raise ValueError(
                f"a leading axis of {n} does not split over {mesh.size} devices (use a multiple)"
            )
    return put(tree, leading(mesh))


# --- the trainer's layout ---------------------------------------------------------------------

LAYOUTS = ("seeds", "envs")


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where a training run's arrays live.

    Attributes:
        mesh: the 1-D device mesh.
        layout: ``"seeds"``: each device trains whole seeds (no communication); ``"envs"``: every
            seed's envs and minibatches are split over the devices, params replicated, gradients
            all-reduced every minibatch step. With one device both are the single-device program.
    """

    mesh: Mesh
    layout: str

    @property
    def num_devices(self) -> int:
        return self.mesh.size

    @property
    def num_processes(self) -> int:
        return len({d.process_index for d in self.mesh.devices.flat})

    @property
    def key(self) -> tuple[Any, ...]:
        """Hashable identity (compiled programs are cached on it)."""
        return (self.layout, tuple(d.id for d in self.mesh.devices.flat))

    def describe(self) -> str:
        return describe(self.mesh)

    @property
    def replicated(self) -> NamedSharding:
        return replicated(self.mesh)

    def seeds_sharding(self) -> NamedSharding:
        """Leaves with a leading seed axis: split in the seeds layout, else replicated."""
        return leading(self.mesh) if self.layout == "seeds" else self.replicated

    def envs_sharding(self) -> NamedSharding:
        """Leaves shaped (seeds, envs, ...): split by seed or by env."""
        return split(self.mesh, 1) if self.layout == "envs" else self.seeds_sharding()

    def constrain(self, tree: Any, axis: int) -> Any:
        """Inside the (seed-vmapped) update, in the envs layout: ``tree`` split on ``axis``, e.g.
        minibatches (M, samples, ...) on the sample axis, so each device computes the gradient of
        its share. A no-op otherwise."""
        if self.layout != "envs" or self.mesh.size == 1:
            return tree
        return jax.lax.with_sharding_constraint(tree, split(self.mesh, axis))


def plan(
    *,
    num_seeds: int,
    num_envs: int,
    minibatch_size: int,
    num_devices: int | None = None,
) -> Placement:
    """The layout of a run, validated before anything is compiled.

    Seeds are split when ``num_seeds`` divides by the device count (independent work needs no
    communication); otherwise one policy per seed is trained across all devices, which needs
    ``num_envs`` and the minibatch size to divide by it. ``num_envs`` and ``num_seeds`` are global
    counts: the device count changes where the work runs, never how much there is.
    """
    mesh = make_mesh(num_devices)
    d = mesh.size
    if d == 1 or num_seeds % d == 0:
        return Placement(mesh, "seeds")
    bad = [
        f"{name}={v}"
        for name, v in (("num_envs", num_envs), ("minibatch size", minibatch_size))
        if v % d
    ]
    if bad:
        raise ValueError(
            f"{describe(mesh)}: {' and '.join(bad)} must divide by the device count {d} to train "
            f"one policy across devices (or make num_seeds={num_seeds} a multiple of {d} to split "
            f"the seeds, or set num_devices)"
        )
    return Placement(mesh, "envs")


def devices_summary(devices: Sequence[Any] | None = None) -> dict[str, Any]:
    """Devices and processes JAX sees (for benchmark records)."""
    devices = list(devices if devices is not None else jax.devices())
    return {
        "devices": len(devices),
        "processes": len({d.process_index for d in devices}),
        "platform": devices[0].platform if devices else None,
    }
