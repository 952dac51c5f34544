"""Output files of a workflow search, in the workflow project's V2 formats (spec §7 "Log formats").

``training_log.csv`` (one row per update) and ``gp_sampling_log.csv`` (one row per workflow) keep
the columns of ``workflow_rl/executor_async_train_workflow_rl.py`` so the author's parsing and
plotting scripts read them unchanged; ``experiment_config.json``, ``summary.json`` and per-workflow
checkpoints (``checkpoints/workflow_<iteration>_<letters>.npz``) complete the run directory. Every
file is written to a temporary name and ``os.replace``-d, so a killed run never leaves a torn file.

Two columns have a different meaning here: the rollout and the update of an iteration run fused in
one compiled program, so ``Collection_Time`` is the per-update share of the workflow's wall time
and ``Update_Time`` is 0.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import serialization

TRAINING_COLUMNS = (
    "Workflow_ID",
    "Workflow_Order",
    "Update",
    "Episodes",
    "Total_Episodes_Sampled",
    "Env_Reward",
    "Alignment_Bonus",
    "Total_Reward",
    "Compliance",
    "Avg_Fixes",
    "Collection_Time",
    "Update_Time",
)
GP_COLUMNS = (
    "Iteration",
    "Workflow",
    "UCB_Score",
    "Reward",
    "Final_Compliance",
    "Episodes_Trained",
    "GP_Updated",
)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(_jsonable(obj), indent=2) + "\n")


def _jsonable(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (np.floating, float)):
        f = float(x)
        return f if np.isfinite(f) else None
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


class CsvTable:
    """A CSV file rewritten whole (atomically) on every ``append``: runs are small."""

    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        self.path, self.columns = path, tuple(columns)
        self.rows: list[dict[str, Any]] = []
        self._flush()

    def append(self, rows: Iterable[Mapping[str, Any]]) -> None:
        self.rows.extend(dict(r) for r in rows)
        self._flush()

    def _flush(self) -> None:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=self.columns, lineterminator="\n")
        w.writeheader()
        for r in self.rows:
            w.writerow({c: _fmt(r.get(c, "")) for c in self.columns})
        atomic_write_text(self.path, buf.getvalue())


def _fmt(v: Any) -> Any:
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.6g}"
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    return v


def order_label(names: Sequence[str]) -> str:
    """The repo's order format: ``defender → enterprise → ...``."""
    return " → ".join(names)


def save_params(path: Path, params: Any, meta: Mapping[str, Any]) -> None:
    """Network params (flax msgpack) plus a JSON header, atomically, as one ``.npz``."""
    blob = serialization.to_bytes(jax.device_get(params))
    buf = io.BytesIO()
    np.savez(
        buf,
        params=np.frombuffer(blob, dtype=np.uint8),
        meta=np.frombuffer(json.dumps(_jsonable(meta)).encode(), dtype=np.uint8),
    )
    atomic_write_bytes(path, buf.getvalue())


def load_params(path: Path, template: Any) -> tuple[Any, dict[str, Any]]:
    """``(params, meta)`` from ``save_params``; ``template`` gives the tree structure."""
    with np.load(path) as z:
        params = serialization.from_bytes(template, z["params"].tobytes())
        meta = json.loads(z["meta"].tobytes().decode())
    return params, meta
