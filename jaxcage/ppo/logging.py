"""Host-side run artefacts: metrics CSV, optional TensorBoard events, learning-curve PNG, progress.

The compiled trainer returns a chunk's metrics as arrays; everything here runs between chunks
(batch logging), never inside the compiled program.

``metrics.csv`` has one row per update and seed:

* ``update`` (1-based), ``seed``, ``env_steps`` (per seed, cumulative), ``wall_time`` (seconds since
  the run started, all resumed sessions included; interpolated inside a chunk),
  ``steps_per_sec`` (env steps of all seeds per second of the chunk, compilation excluded);
* ``episodes`` ended in the update's rollout and their ``return_mean``/``return_min``/
  ``return_max`` (CAGE2 scores, unscaled; empty when no episode ended), ``return_<red>`` per
  opponent for mixtures, ``step_reward`` (mean reward per step);
* the update's means over epochs and minibatches: ``loss``, ``policy_loss``, ``value_loss``
  (scaled rewards), ``entropy``, ``approx_kl``, ``clip_frac``; ``explained_variance`` of the
  value targets by the rollout values; ``lr``.
"""

from __future__ import annotations

import contextlib
import csv
import importlib
import math
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jax
import numpy as np
import yaml
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from jaxcage.ppo.config import PPOConfig

# Leading CSV columns, in order; any other metric follows alphabetically.
CSV_FIRST = (
    "update",
    "seed",
    "env_steps",
    "wall_time",
    "steps_per_sec",
    "episodes",
    "return_mean",
    "return_min",
    "return_max",
)


def write_config(path: Path, cfg: PPOConfig) -> None:
    """Save the config as YAML (loadable with ``load_config(path)``)."""
    _atomic_write_text(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))


def config_diff(a: PPOConfig, b: PPOConfig) -> list[str]:
    """``['field: a -> b', ...]`` for fields that differ."""
    da, db = a.to_dict(), b.to_dict()
    return [f"{k}: {da[k]!r} -> {db[k]!r}" for k in da if da[k] != db[k]]


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _columns(keys: Any) -> list[str]:
    keys = set(keys) | {"seed"}
    return [k for k in CSV_FIRST if k in keys] + sorted(keys - set(CSV_FIRST))


def _rows(metrics: dict[str, np.ndarray]) -> Iterator[dict[str, float]]:
    """Yield one dict per (update, seed), update-major."""
    if not metrics:
        return
    num_seeds, n = next(iter(metrics.values())).shape
    for j in range(n):
        for s in range(num_seeds):
            row = {k: float(v[s, j]) for k, v in metrics.items()}
            row["seed"] = s
            yield row


def _fmt(v: float) -> str:
    if isinstance(v, int) or (math.isfinite(v) and float(v).is_integer() and abs(v) < 2**53):
        return str(int(v))
    if not math.isfinite(v):
        return "" if math.isnan(v) else str(v)
    return f"{v:.6g}"


class CsvLogger:
    """``metrics.csv``: one row per update and seed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.columns: list[str] | None = None

    def reset(self, history: dict[str, np.ndarray]) -> None:
        """Rewrite the file with exactly ``history`` (header only if empty)."""
        self.columns = _columns(history.keys()) if history else None
        tmp = self.path.with_name(f".{self.path.name}.tmp{os.getpid()}")
        with open(tmp, "w", newline="") as f:
            if self.columns is not None:
                w = csv.writer(f)
                w.writerow(self.columns)
                for row in _rows(history):
                    w.writerow([_fmt(row.get(c, math.nan)) for c in self.columns])
        os.replace(tmp, self.path)

    def append(self, metrics: dict[str, np.ndarray]) -> None:
        """Append a chunk's rows (arrays of shape (num_seeds, n))."""
        new_file = self.columns is None
        if new_file:
            self.columns = _columns(metrics.keys())
        assert self.columns is not None
        with open(self.path, "a", newline="") as f:
            w = csv.writer(f)
            if new_file:
                w.writerow(self.columns)
            for row in _rows(metrics):
                w.writerow([_fmt(row.get(c, math.nan)) for c in self.columns])


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


class TensorBoardLogger:
    """TensorBoard scalars via ``tensorboardX`` or ``torch.utils.tensorboard``, whichever is
    installed; a warning and no-op otherwise (TensorBoard is optional)."""

    def __init__(self, log_dir: Path) -> None:
        self.writers: list[Any] = []
        writer_cls = None
        for mod in ("tensorboardX", "torch.utils.tensorboard"):
            try:
                writer_cls = importlib.import_module(mod).SummaryWriter
                break
            except ImportError:
                continue
        if writer_cls is None:
            warnings.warn(
                "tensorboard=true but neither tensorboardX nor torch is installed; "
                "skipping TensorBoard events (metrics.csv has everything)",
                stacklevel=2,
            )
            return
        self._cls = writer_cls
        self._dir = log_dir

    def write(self, metrics: dict[str, np.ndarray]) -> None:
        if not hasattr(self, "_cls"):
            return
        num_seeds = next(iter(metrics.values())).shape[0]
        while len(self.writers) < num_seeds:
            self.writers.append(self._cls(str(self._dir / f"seed{len(self.writers)}")))
        for row in _rows(metrics):
            w = self.writers[int(row["seed"])]
            step = int(row["env_steps"])
            for k, v in row.items():
                if k not in ("seed", "update", "env_steps") and math.isfinite(v):
                    w.add_scalar(k, v, step)

    def close(self) -> None:
        for w in self.writers:
            w.close()


def plot_learning_curve(path: Path, metrics: dict[str, np.ndarray], cfg: PPOConfig) -> None:
    """Episode return (mean, with min-max band) and losses against env steps, one line per seed."""
    fig = Figure(figsize=(11, 4.2))
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    steps = metrics["env_steps"][0] / 1e6
    for s in range(metrics["return_mean"].shape[0]):
        m = np.isfinite(metrics["return_mean"][s])
        ax1.plot(steps[m], metrics["return_mean"][s][m], label=f"seed {s}")
        ax1.fill_between(
            steps[m], metrics["return_min"][s][m], metrics["return_max"][s][m], alpha=0.15
        )
    ax1.set_xlabel("env steps (millions, per seed)")
    ax1.set_ylabel(f"episode return ({cfg.max_steps} steps)")
    ax1.set_title(f"PPO vs {'+'.join(cfg.red_agents)}")
    ax1.grid(alpha=0.3)
    ax1.legend(loc="lower right", fontsize=8)
    for k in ("value_loss", "entropy", "approx_kl"):
        if k in metrics:
            ax2.plot(steps, np.nanmean(metrics[k], axis=0), label=k)
    ax2.set_yscale("log")
    ax2.set_xlabel("env steps (millions, per seed)")
    ax2.set_title("losses (mean over seeds)")
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}.png")
    fig.savefig(tmp, dpi=100)
    os.replace(tmp, path)


def _hms(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def progress_line(
    cfg: PPOConfig, rows: dict[str, np.ndarray], done_updates: int, elapsed: float
) -> str:
    """``[####----] update 40/380 | 1,024,000 env steps | 52,345 steps/s | return -123.4 | ...``"""
    frac = done_updates / cfg.num_updates
    bar = "#" * int(20 * frac) + "-" * (20 - int(20 * frac))
    # The latest update in which an episode ended, averaged over seeds.
    ret = rows["return_mean"]
    cols = [j for j in range(ret.shape[1]) if np.isfinite(ret[:, j]).any()]
    ret_s = f"{np.nanmean(ret[:, cols[-1]]):9.1f}" if cols else "      n/a"
    sps = float(rows["steps_per_sec"][0, -1])
    steps = done_updates * cfg.batch_size * cfg.num_seeds
    total = cfg.num_updates * cfg.batch_size * cfg.num_seeds
    eta = (total - steps) / sps if sps > 0 else float("nan")
    return (
        f"[{bar}] update {done_updates}/{cfg.num_updates} | {steps:,} env steps | "
        f"{sps:,.0f} steps/s | return {ret_s} | {_hms(elapsed)} elapsed, ETA "
        f"{_hms(eta) if math.isfinite(eta) else '?'}"
    )


@contextlib.contextmanager
def maybe_trace(log_dir: Path | None) -> Iterator[None]:
    """A JAX profiler trace around the block when ``log_dir`` is given (skipped with a warning if
    the profiler can't start)."""
    if log_dir is None:
        yield
        return
    try:
        jax.profiler.start_trace(str(log_dir))
    except Exception as e:  # noqa: BLE001 - the profiler is optional tooling
        warnings.warn(f"could not start the JAX profiler: {e}", stacklevel=2)
        yield
        return
    try:
        yield
    finally:
        jax.profiler.stop_trace()
        print(f"profile: JAX trace written to {log_dir} (open with TensorBoard/Perfetto)")
