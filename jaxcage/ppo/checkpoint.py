"""Atomic single-file checkpoints of a training run.

A checkpoint is one ``.npz`` holding every leaf of the runner state (params, Adam state, envs,
policy memories, PRNG key, update counter), the metrics history so far, and a JSON header with the
config, progress and wall time. One file, written to a temporary name, flushed, fsynced and
``os.replace``-d over the previous one: a crash mid-save leaves the previous checkpoint intact.

Leaves are restored into a *template* pytree (``jax.eval_shape`` of the trainer's init), so the
file needs no pickled Python objects; typed PRNG keys are stored as their raw key data.

The file holds the *global* state (every seed, every env), whatever the devices and processes that
wrote it: a sharded run gathers its arrays to the host before saving, and a resume places them with
the resuming run's shardings (``jaxcage.sharding.put``), so a run checkpointed on 4 devices resumes
on 1 or 2 and the other way round. Orbax's sharded checkpoints were measured against this: see
BENCHMARKS.md ("Scale-out"); the state is a few MB, so one gathered file is simpler and faster.

A file that is truncated, corrupt, or from an incompatible config raises ``ValueError`` naming the
file and what is wrong.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np

from jaxcage.ppo.config import PPOConfig, from_dict, without_host_fields

CHECKPOINT_NAME = "checkpoint.npz"
FORMAT_VERSION = 1


@dataclasses.dataclass
class Checkpoint:
    """Host-side contents of a checkpoint."""

    config: PPOConfig
    runner: Any  # runner-state pytree (numpy / jax leaves)
    update: int  # updates completed
    wall_time: float  # seconds of training so far (all sessions)
    metrics: dict[str, np.ndarray]  # history, each (num_seeds, update)
    placement: dict[str, int] | None = None  # {"devices": D, "processes": P} of the writer


def _is_key(x: Any) -> bool:
    return hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def save(path: str | Path, checkpoint: Checkpoint) -> None:
    """Write ``checkpoint`` to ``path`` atomically."""
    path = Path(path)
    leaves = jax.tree.leaves(checkpoint.runner)
    arrays: dict[str, np.ndarray] = {}
    key_impls: dict[str, str] = {}
    for i, leaf in enumerate(leaves):
        name = f"leaf_{i:05d}"
        if _is_key(leaf):
            key_impls[name] = str(jax.random.key_impl(leaf))
            leaf = jax.random.key_data(leaf)
        arrays[name] = np.asarray(leaf)
    for k, v in checkpoint.metrics.items():
        arrays[f"metric/{k}"] = np.asarray(v)
    header = {
        "format": FORMAT_VERSION,
        "config": checkpoint.config.to_dict(),
        "update": int(checkpoint.update),
        "wall_time": float(checkpoint.wall_time),
        "num_leaves": len(leaves),
        "key_impls": key_impls,
        "placement": checkpoint.placement,
    }
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)

    buf = io.BytesIO()
    np.savez(buf, **cast(dict[str, Any], arrays))
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "wb") as f:
        f.write(buf.getbuffer())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    # Make the rename itself durable (best effort: not every filesystem allows a dir fsync).
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


# What a truncated or corrupt ``.npz`` raises from ``np.load`` / member reads.
_UNREADABLE = (zipfile.BadZipFile, EOFError, OSError, KeyError, UnicodeDecodeError, ValueError)


def _unreadable(path: Path, e: BaseException) -> ValueError:
    return ValueError(
        f"{path}: not a readable checkpoint, the file is truncated or corrupt "
        f"({type(e).__name__}: {e}); restore a good copy or start the run afresh"
    )


def read_header(path: str | Path) -> dict[str, Any]:
    """The JSON header (config dict, progress) of a checkpoint, without loading arrays."""
    path = _existing(path)
    try:
        with np.load(path) as z:
            return json.loads(bytes(z["__header__"]).decode())
    except _UNREADABLE as e:
        raise _unreadable(path, e) from e


def load_config(path: str | Path) -> PPOConfig:
    """The config a checkpoint was written with."""
    header = read_header(path)
    try:
        return from_dict(header["config"])
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(
            f"{_existing(path)}: the checkpoint's config is not valid here: {e}"
        ) from e


def check_compatible(path: str | Path, saved: PPOConfig, cfg: PPOConfig) -> None:
    """Raise ``ValueError`` naming ``path`` and the differing fields unless ``cfg`` continues the
    run ``saved`` describes (placement fields may differ: a run resumes on other devices; so may
    the host loop's logging and checkpoint intervals, which change no result)."""
    a, b = without_host_fields(saved), without_host_fields(cfg)
    if a != b:
        diff = [
            f"{f.name}: {getattr(a, f.name)!r} -> {getattr(b, f.name)!r}"
            for f in dataclasses.fields(a)
            if getattr(a, f.name) != getattr(b, f.name)
        ]
        raise ValueError(
            f"{path}: the checkpoint was written with a different config; differing fields: "
            + "; ".join(diff)
        )


def load(path: str | Path, template: Any) -> Checkpoint:
    """Read a checkpoint into the structure of ``template`` (shapes and dtypes are checked).

    Raises:
        FileNotFoundError: no checkpoint at ``path``.
        ValueError: the file does not match the template (other config / code version).
    """
    path = _existing(path)
    try:
        return _load(path, template)
    except _UNREADABLE as e:
        if isinstance(e, ValueError) and str(e).startswith(str(path)):
            raise  # already says what is wrong with which file
        raise _unreadable(path, e) from e


def _load(path: Path, template: Any) -> Checkpoint:
    with np.load(path) as z:
        header = json.loads(bytes(z["__header__"]).decode())
        if header.get("format") != FORMAT_VERSION:
            raise ValueError(f"{path}: unsupported checkpoint format {header.get('format')!r}")
        t_paths, treedef = jax.tree_util.tree_flatten_with_path(template)
        t_leaves = [t for _, t in t_paths]
        # Leaves added to the runner state since the checkpoint was written get their fresh
        # value; every other leaf keeps its saved index order.
        added = [i for i, (p, _) in enumerate(t_paths) if _added_field(p) is not None]
        if header["num_leaves"] == len(t_leaves):
            added = []
        elif header["num_leaves"] != len(t_leaves) - len(added):
            raise ValueError(
                f"{path}: checkpoint has {header['num_leaves']} arrays, the trainer expects "
                f"{len(t_leaves)} (written by another version or config?)"
            )
        saved_index = {
            i: n for n, i in enumerate(i for i in range(len(t_leaves)) if i not in added)
        }
        leaves = []
        for i, t in enumerate(t_leaves):
            if i in added:
                fill = _added_field(t_paths[i][0])
                leaves.append(np.full(t.shape, fill, t.dtype))
                continue
            name = f"leaf_{saved_index[i]:05d}"
            a = z[name]
            if name in header["key_impls"]:
                leaf: Any = jax.random.wrap_key_data(a, impl=header["key_impls"][name])
            else:
                leaf = a
            if tuple(leaf.shape) != tuple(t.shape) or leaf.dtype != t.dtype:
                raise ValueError(
                    f"{path}: array {i} is {leaf.dtype}{tuple(leaf.shape)}, expected "
                    f"{t.dtype}{tuple(t.shape)}"
                )
            leaves.append(leaf)
        metrics = {k[len("metric/") :]: z[k] for k in z.files if k.startswith("metric/")}
    return Checkpoint(
        config=from_dict(header["config"]),
        runner=jax.tree.unflatten(treedef, leaves),
        update=int(header["update"]),
        wall_time=float(header["wall_time"]),
        metrics=metrics,
        placement=header.get("placement"),
    )


# Runner-state fields added after checkpoints were already being written, with the value a
# checkpoint without them restores: PolicyMemory.guess (the latched red-agent guess,
# jaxcage/ppo/features.py; -1 "not made yet", re-made at every env's next episode start).
_ADDED_FIELDS: dict[str, int] = {"guess": -1}


def _added_field(path: tuple[Any, ...]) -> int | None:
    last = path[-1] if path else None
    name = getattr(last, "name", None)
    return _ADDED_FIELDS.get(name) if isinstance(name, str) else None


def _existing(path: str | Path) -> Path:
    p = Path(path)
    if p.is_dir():
        p = p / CHECKPOINT_NAME
    if not p.is_file():
        raise FileNotFoundError(
            f"no checkpoint at {p} (train first, or point at a run directory that has "
            f"{CHECKPOINT_NAME})"
        )
    return p
