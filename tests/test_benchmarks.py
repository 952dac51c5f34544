"""Smoke tests of the benchmark scripts: they run end to end and write the documented JSON.

Benchmarks are scripts that print numbers, not timed assertions: nothing here checks a speed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def test_bench_env_smoke(tmp_path):
    out = tmp_path / "bench_env.json"
    cmd = [sys.executable, str(BENCHMARKS / "bench_env.py"), "--num-envs", "2", "--steps", "5"]
    cmd += ["--no-cyborg", "--repeats", "1", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "steps/s" in proc.stdout
    result = json.loads(out.read_text())
    assert set(result) >= {"benchmark", "config", "environment", "jaxcage", "cyborg", "best"}
    assert result["benchmark"] == "env_throughput"
    env = result["environment"]
    assert {"jax", "jaxlib", "devices", "device_kind", "cpu_count", "backend"} <= set(env)
    (record,) = result["jaxcage"]
    assert record["status"] == "ok" and record["num_envs"] == 2 and record["steps_per_call"] == 10
    assert {"compile_s", "first_run_s", "times_s", "median_s", "steps_per_s"} <= set(record)
    assert len(record["times_s"]) == 1 and record["steps_per_s"] > 0
    # Random Blue against B_line over 5 steps: rewards are non-positive tenths.
    assert record["mean_reward_per_step"] <= 0
    assert result["cyborg"]["status"] == "skipped"
    assert result["best"]["num_envs"] == 2 and result["best"]["ratio_vs_cyborg"] is None


def test_cyborg_rate_is_pooled_from_before_and_after_the_jaxcage_timings():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from _common import bracket_cyborg, cyborg_line
    finally:
        sys.path.remove(str(BENCHMARKS))

    def run(steps: int, seconds: float) -> dict:
        return {"status": "ok", "source": "x", "steps": steps, "episodes": steps // 100,
                "seconds": seconds, "steps_per_s": steps / seconds}  # fmt: skip

    pooled = bracket_cyborg(run(3000, 5.0), run(2000, 5.0))
    assert pooled["steps_per_s"] == 500.0 and pooled["steps"] == 5000
    assert (pooled["steps_per_s_before"], pooled["steps_per_s_after"]) == (600.0, 400.0)
    assert "600.0 before and 400.0 after" in cyborg_line(pooled)
    # One side missing: the other alone; both missing: the 'skipped' record as it was.
    assert bracket_cyborg({"status": "unavailable"}, run(2000, 5.0))["steps_per_s"] == 400.0
    skipped = {"status": "skipped", "note": "--no-cyborg"}
    assert bracket_cyborg(skipped, skipped) == skipped


def _fake_run(path: Path, returns, compliance) -> None:
    path.mkdir(parents=True)
    rows = [
        {"order": o, "letters": f"W{o}", "eval_env_return": r, "eval_compliance": c}
        for o, (r, c) in enumerate(zip(returns, compliance, strict=True))
    ]
    (path / "summary.json").write_text(json.dumps({"workflows": rows, "episodes_used": 1000}))
    (path / "experiment_config.json").write_text(json.dumps({"threshold": 0.9}))


def test_compare_workflow_policies_joins_per_workflow(tmp_path):
    ret = -np.arange(120, dtype=float)
    _fake_run(tmp_path / "u", ret, np.where(np.arange(120) % 2 == 0, 0.95, 0.5))
    _fake_run(tmp_path / "s", ret - 1.0, np.full(120, 0.92))
    cmd = [sys.executable, str(BENCHMARKS / "compare_workflow_policies.py")]
    cmd += ["--universal", str(tmp_path / "u"), "--sweep", str(tmp_path / "s")]
    cmd += ["--out", str(tmp_path / "cmp")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((tmp_path / "cmp.json").read_text())
    uni, ind = doc["table"]
    assert uni["compliant_workflows"] == 60 and ind["compliant_workflows"] == 120
    assert uni["best_compliant"] == "W0" and ind["best_compliant_env_return"] == -1.0
    assert doc["universal_higher_return"] == 120 and doc["return_correlation"] > 0.999
    assert len((tmp_path / "cmp.csv").read_text().splitlines()) == 121
    _fake_run(tmp_path / "short", ret[:10], np.full(10, 0.9))
    cmd[cmd.index(str(tmp_path / "s"))] = str(tmp_path / "short")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode != 0 and "all 120 workflows" in proc.stderr
