"""Smoke tests of the training benchmark scripts (bench_train, time_to_score, bench_scaling).

Each runs one script in a subprocess with tiny settings and checks the documented JSON keys.
Benchmarks are scripts that print numbers, not timed assertions: nothing here checks a speed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
# A tiny trainer: 4 envs x 10 steps, 2 minibatches, one 8-unit hidden layer.
TINY = ["--set", "num_steps=10", "--set", "num_minibatches=2", "--set", "hidden_sizes=[8]"]
ENV_KEYS = {"jax", "jaxlib", "devices", "device_kind", "cpu_count", "backend", "load_average"}


def _run(script: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_bench_train_smoke(tmp_path):
    out = tmp_path / "bench_train.json"
    args = ["--num-envs", "4", "--seeds", "--extra-configs", "--min-steps-per-call", "1"]
    proc = _run(
        "bench_train.py", [*args, "--repeats", "1", "--no-cyborg", *TINY, "--out", str(out)]
    )
    assert "steps/s" in proc.stdout
    result = json.loads(out.read_text())
    assert result["benchmark"] == "train_throughput"
    assert set(result) >= {"config", "environment", "cases", "cyborg", "best", "default"}
    assert set(result["environment"]) >= ENV_KEYS
    (case,) = result["cases"]
    assert case["status"] == "ok" and case["num_envs"] == 4 and case["num_steps"] == 10
    assert case["updates_per_call"] == 1 and case["steps_per_call"] == 40
    keys = {"compile_s", "init_compile_s", "time_to_first_update_s", "times_s", "median_s"}
    assert keys | {"steps_per_s", "seconds_per_update", "memory", "rss"} <= set(case)
    assert case["steps_per_s"] > 0 and len(case["times_s"]) == 1
    assert case["memory"] is None or case["memory"]["total"] > 0
    assert result["cyborg"]["status"] == "skipped" and "ratio_vs_cyborg" not in case
    assert result["best"]["num_envs"] == 4 and result["best"]["ratio_vs_cyborg"] is None


def test_time_to_score_smoke(tmp_path):
    out, png = tmp_path / "tts.json", tmp_path / "tts.png"
    spec = "default:num_envs=4;num_steps=10;num_minibatches=2;total_timesteps=80;hidden_sizes=[8]"
    args = ["--configs", spec, "--eval-every", "2", "--episodes", "2", "--thresholds=-1e9"]
    _run("time_to_score.py", [*args, "--out", str(out), "--plot", str(png)])
    result = json.loads(out.read_text())
    assert result["benchmark"] == "time_to_score"
    assert set(result["environment"]) >= ENV_KEYS
    assert result["evaluation"]["red"] == "b_line" and result["evaluation"]["steps"] == 100
    (run,) = result["runs"]
    assert run["updates_done"] == run["num_updates_planned"] == 2
    assert run["eval_every"] == 2 and run["stop_reason"] == "end of run"
    assert {"compile_s", "train_s", "eval_total_s", "train_steps_per_s", "points"} <= set(run)
    # Evaluations before training and after the one chunk of 2 updates.
    assert [p["update"] for p in run["points"]] == [0, 2]
    assert [p["env_steps"] for p in run["points"]] == [0, 80]
    point = run["points"][-1]
    assert {"train_s", "wall_s", "eval_s", "score", "score_std"} <= set(point)
    # A threshold any score reaches is reached at the first evaluation.
    hit = run["thresholds"]["-1000000000.0"]
    assert hit["reached"] and hit["update"] == 0 and hit["env_steps"] == 0
    assert png.stat().st_size > 0


def test_bench_scaling_smoke(tmp_path):
    out, trace = tmp_path / "scaling.json", tmp_path / "trace"
    args = [
        "--env-num-envs",
        "4",
        "--env-seeds",
        "--train-num-envs",
        "--train-seeds",
        "--no-breakdown",
        "--steps",
        "5",
    ]
    args += ["--repeats", "1", "--profile", str(trace), "--profile-num-envs", "4", *TINY]
    _run("bench_scaling.py", [*args, "--out", str(out)])
    result = json.loads(out.read_text())
    assert result["benchmark"] == "scaling"
    assert set(result["environment"]) >= ENV_KEYS
    (env,) = result["env_only"]["num_envs"]
    assert env["status"] == "ok" and env["num_envs"] == 4 and env["steps_per_call"] == 20
    assert {"compile_s", "steps_per_s", "memory", "rss"} <= set(env)
    assert result["env_only"]["num_seeds"] == []
    assert result["env_only"]["saturation_num_envs"]["saturates_at"] == 4
    assert result["training"]["num_envs"] == [] and result["breakdown"] is None
    profile = result["profile"]
    assert profile["num_envs"] == 4 and profile["summary"] is not None
    summary = profile["summary"]
    assert summary["work_s"] > 0 and summary["categories_s"] and summary["top_ops"]
    assert any(trace.glob("**/*.xplane.pb"))
