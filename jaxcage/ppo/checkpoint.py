"""Atomic single-file checkpoints of a training run.

A checkpoint is one ``.npz`` holding every leaf of the runner state (params, Adam state, envs,
policy memories, PRNG key, update counter), the metrics history so far, and a JSON header with the
config, progress and wall time. One file, written to a temporary name, flushed, fsynced and
``os.replace``-d over the previous one: a crash mid-save leaves the previous checkpoint intact.

Leaves are restored into a *template* pytree (``jax.eval_shape`` of the trainer's init), so the
file needs no pickled Python objects; typed PRNG keys are stored as their raw key data.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
from pathlib import Path
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np

from jaxcage.ppo.config import PPOConfig, from_dict

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


def read_header(path: str | Path) -> dict[str, Any]:
    """The JSON header (config dict, progress) of a checkpoint, without loading arrays."""
    path = _existing(path)
    with np.load(path) as z:
        return json.loads(bytes(z["__header__"]).decode())


def load_config(path: str | Path) -> PPOConfig:
    """The config a checkpoint was written with."""
    return from_dict(read_header(path)["config"])


def load(path: str | Path, template: Any) -> Checkpoint:
    """Read a checkpoint into the structure of ``template`` (shapes and dtypes are checked).

    Raises:
        FileNotFoundError: no checkpoint at ``path``.
        ValueError: the file does not match the template (other config / code version).
    """
    path = _existing(path)
    with np.load(path) as z:
        header = json.loads(bytes(z["__header__"]).decode())
        if header.get("format") != FORMAT_VERSION:
            raise ValueError(f"{path}: unsupported checkpoint format {header.get('format')!r}")
        t_leaves, treedef = jax.tree.flatten(template)
        if header["num_leaves"] != len(t_leaves):
            raise ValueError(
                f"{path}: checkpoint has {header['num_leaves']} arrays, the trainer expects "
                f"{len(t_leaves)} (written by another version or config?)"
            )
        leaves = []
        for i, t in enumerate(t_leaves):
            name = f"leaf_{i:05d}"
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
    )


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
