"""Smoke test of benchmarks/bench_gym.py: it runs end to end at tiny sizes and writes its JSON.

A benchmark is a script that prints numbers, not a timed assertion: nothing here checks a speed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.mark.slow
def test_bench_gym_smoke(tmp_path):
    out = tmp_path / "bench_gym.json"
    cmd = [sys.executable, str(BENCHMARKS / "bench_gym.py"), "--num-envs", "2", "--seconds"]
    cmd += ["0.05", "--min-calls", "3", "--warmup", "1", "--no-cyborg", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "steps/s" in proc.stdout and "floor:" in proc.stdout
    result = json.loads(out.read_text())
    assert result["benchmark"] == "gym_adapters"
    single, vector = result["jaxcage"]
    assert (single["adapter"], single["num_envs"]) == ("CageGymEnv", 1)
    assert (vector["adapter"], vector["num_envs"]) == ("CageVectorEnv", 2)
    for record in (single, vector):
        assert record["status"] == "ok" and record["calls"] >= 3 and record["steps_per_s"] > 0
    assert vector["steps_per_s"] == vector["calls"] * 2 / vector["seconds"]
    assert set(result["floor"]) == {"trivial_jit_us", "compiled_step_us", "scan_step_us"}
    assert result["cyborg"]["status"] == "skipped"
