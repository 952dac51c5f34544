"""Smoke tests of the benchmark scripts: they run end to end and write the documented JSON.

Benchmarks are scripts that print numbers, not timed assertions: nothing here checks a speed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
