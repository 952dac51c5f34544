"""Run artefacts: CSV rows, progress line, optional TensorBoard, learning-curve PNG."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest

from jaxcage.ppo import logging as L
from jaxcage.ppo.config import PPOConfig


def _chunk(first: int, n: int, seeds: int = 2) -> dict[str, np.ndarray]:
    upd = np.broadcast_to(np.arange(first, first + n, dtype=float), (seeds, n))
    ret = -100.0 + upd + np.arange(seeds)[:, None]
    ret[:, 0] = np.nan  # an update in which no episode ended
    return {
        "update": upd,
        "env_steps": upd * 1000,
        "wall_time": upd * 0.5,
        "steps_per_sec": np.full((seeds, n), 2000.0),
        "episodes": np.where(np.isnan(ret), 0.0, 8.0),
        "return_mean": ret,
        "return_min": ret - 1,
        "return_max": ret + 1,
        "value_loss": np.full((seeds, n), 0.25),
        "entropy": np.full((seeds, n), 3.0),
        "approx_kl": np.full((seeds, n), 0.01),
    }


def test_csv_rows_columns_and_reset(tmp_path):
    log = L.CsvLogger(tmp_path / "m.csv")
    log.reset({})
    log.append(_chunk(1, 3))
    log.append(_chunk(4, 2))
    rows = L.read_csv(tmp_path / "m.csv")
    assert list(rows[0])[:5] == ["update", "seed", "env_steps", "wall_time", "steps_per_sec"]
    assert [(r["update"], r["seed"]) for r in rows] == [
        (str(u), str(s)) for u in range(1, 6) for s in (0, 1)
    ]
    assert rows[0]["return_mean"] == "" and float(rows[2]["return_mean"]) == -98.0
    # reset() rewrites exactly the given history (what a resume does).
    log.reset(_chunk(1, 2))
    assert len(L.read_csv(tmp_path / "m.csv")) == 4


def test_progress_line_and_png(tmp_path):
    cfg = PPOConfig(num_envs=10, num_steps=100, total_timesteps=10 * 100 * 50)
    line = L.progress_line(cfg, _chunk(1, 3), done_updates=3, elapsed=65.0)
    assert "update 3/50" in line and "3,000 env steps" in line and "2,000 steps/s" in line
    assert "return     -96.5" in line and "01:05 elapsed" in line
    all_nan = _chunk(1, 1)
    assert "n/a" in L.progress_line(cfg, all_nan, done_updates=1, elapsed=1.0)
    history = {
        k: np.concatenate([a, b], 1)
        for (k, a), b in zip(_chunk(1, 3).items(), _chunk(4, 3).values(), strict=True)
    }
    L.plot_learning_curve(tmp_path / "c.png", history, cfg)
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(
    importlib.util.find_spec("tensorboardX") is not None
    or importlib.util.find_spec("torch") is not None,
    reason="a TensorBoard writer is installed",
)
def test_tensorboard_is_optional(tmp_path):
    with pytest.warns(UserWarning, match="TensorBoard"):
        tb = L.TensorBoardLogger(tmp_path / "tb")
    tb.write(_chunk(1, 2))  # a no-op, not an error
    tb.close()
    assert not (tmp_path / "tb").exists()


def test_config_diff():
    a, b = PPOConfig(), PPOConfig(lr=1e-3, num_envs=8)
    diff = L.config_diff(a, b)
    assert len(diff) == 2 and any(d.startswith("lr: ") for d in diff)
    assert not math.isnan(len(L.config_diff(a, a)))
    assert L.config_diff(a, a) == []
