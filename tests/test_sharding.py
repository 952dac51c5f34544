"""Scale-out (jaxcage/sharding.py and the sharded trainer): placement rules, checkpoint errors, and
in subprocesses 4 forced CPU devices against 1 and two ``jax.distributed`` processes on localhost.

The device-count flag must be set before JAX starts, hence the subprocesses (tests/scale/*.py)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from jaxcage import sharding as shd
from jaxcage.cli import main
from jaxcage.ppo import checkpoint as ckpt
from jaxcage.ppo.config import PPOConfig

SCRIPTS = Path(__file__).parent / "scale"
REPO = Path(__file__).resolve().parent.parent


def test_describe_and_single_device_plan():
    p = shd.plan(num_seeds=3, num_envs=7, minibatch_size=5)
    assert p.num_devices == len(jax.devices()) == 1
    assert p.describe() == "devices: 1 (processes: 1)"
    assert shd.is_writer()
    with pytest.raises(ValueError, match="num_devices=2, but JAX sees 1"):
        shd.plan(num_seeds=1, num_envs=8, minibatch_size=8, num_devices=2)


def test_put_fetch_split_leading_round_trip():
    mesh = shd.make_mesh()
    tree = {"a": np.arange(6.0).reshape(3, 2), "k": jax.random.split(jax.random.key(1), 3)}
    placed = shd.split_leading(tree, mesh)
    back = shd.fetch(placed)
    np.testing.assert_array_equal(back["a"], tree["a"])
    np.testing.assert_array_equal(jax.random.key_data(back["k"]), jax.random.key_data(tree["k"]))


def test_initialize_needs_all_three_arguments_and_detects_clusters(monkeypatch):
    with pytest.raises(ValueError, match="coordinator"):
        shd.initialize(coordinator="localhost:1234")
    for var in ("SLURM_STEP_NODELIST", "SLURM_NTASKS", "OMPI_MCA_orte_hnp_uri"):
        monkeypatch.delenv(var, raising=False)
    assert not shd.cluster_detected()
    monkeypatch.setenv("SLURM_STEP_NODELIST", "node[1-2]")
    monkeypatch.setenv("SLURM_NTASKS", "1")
    assert not shd.cluster_detected()  # a one-task job is not a cluster
    monkeypatch.setenv("SLURM_NTASKS", "8")
    assert shd.cluster_detected()


def test_cli_distributed_flags_are_checked_before_anything_runs(tmp_path, capsys):
    assert main(["train", "--coordinator", "localhost:1", "--quiet"]) == 2
    assert "needs --out" in capsys.readouterr().err
    argv = ["train", "--coordinator", "localhost:1", "--out", str(tmp_path / "r"), "--quiet"]
    assert main(argv) == 2
    assert "num_processes" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_placement_fields_are_validated_and_ignored_by_resume_checks(tmp_path):
    with pytest.raises(ValueError, match="num_devices"):
        PPOConfig(num_devices=0)
    with pytest.raises(ValueError, match="minibatch_shuffle"):
        PPOConfig(minibatch_shuffle="random")
    a = PPOConfig(num_devices=4)
    ckpt.check_compatible(tmp_path / "c.npz", a, PPOConfig(num_devices=1, coordinator="h:1"))
    with pytest.raises(ValueError, match=r"c\.npz.*num_envs: 256 -> 128"):
        ckpt.check_compatible(tmp_path / "c.npz", a, PPOConfig(num_envs=128))


def _checkpoint(path: Path) -> None:
    runner = {"w": np.ones((2, 3), np.float32), "key": jax.random.split(jax.random.key(0), 2)}
    ckpt.save(path, ckpt.Checkpoint(PPOConfig(), runner, 1, 1.0, {"loss": np.zeros((1, 1))}))


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_unreadable_checkpoint_names_the_file(tmp_path, damage):
    path = tmp_path / ckpt.CHECKPOINT_NAME
    _checkpoint(path)
    data = path.read_bytes()
    path.write_bytes(
        {"truncate": data[: len(data) // 2], "garbage": b"x" * 999, "empty": b""}[damage]
    )
    template = {"w": np.ones((2, 3), np.float32), "key": jax.random.split(jax.random.key(0), 2)}
    for read in (lambda: ckpt.load(path, template), lambda: ckpt.load_config(path)):
        with pytest.raises(ValueError, match=rf"{path}: not a readable checkpoint.*truncated"):
            read()


def test_checkpoint_of_another_shape_names_the_file(tmp_path):
    path = tmp_path / ckpt.CHECKPOINT_NAME
    _checkpoint(path)
    template = {"w": np.ones((2, 4), np.float32), "key": jax.random.split(jax.random.key(0), 2)}
    with pytest.raises(ValueError, match=rf"{path}: array .* expected float32\(2, 4\)"):
        ckpt.load(path, template)


def _run(args: list[str], timeout: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)
    return subprocess.Popen(
        [sys.executable, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _result(proc: subprocess.Popen, timeout: float) -> dict:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-4000:]
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    return {**json.loads(line[len("RESULT ") :]), "_out": out}


@pytest.mark.slow
def test_four_devices_train_like_one(tmp_path):
    found = _result(_run([str(SCRIPTS / "multidevice_check.py"), str(tmp_path)], 900), 900)
    assert found["devices_seen"] == 4
    assert "devices: 4 (processes: 1)" in found["_out"].splitlines()
    assert found["bad_divisor_error"] and "num_envs=6" in found["bad_divisor_error"]
    # One policy, envs split over 4 devices: same rollout, losses to float tolerance.
    assert found["envs_devices"] == [1, 4]
    assert found["rollout_first_exact"]  # episodes, min and max returns
    assert found["rollout_first_mean_relerr"] < 1e-6  # means: another summation order
    assert found["loss_first_maxdiff"] < 1e-5
    assert found["params_maxdiff"] < 1e-4
    assert found["local_rollout_first_exact"] and found["local_params_finite"]
    # Independent seeds, one per device, against all four on one device: the same first rollout,
    # then float-close, not bit-identical, on XLA CPU (measured: params 3e-8, metrics 5e-7 apart
    # after 3 updates; the per-device program has a batch of 1 seed instead of 4). Bit-identity
    # across batch shapes is not XLA's to give: seed 0 alone vs seed 0 vmapped with three others,
    # both on one device, differ by as much (recorded here, 3.3e-8 when measured). What holds bit
    # for bit is reproducibility: the same layout run again gives the same bits.
    assert found["seeds_first_rollout_exact"]
    assert found["seeds_params_maxdiff"] < 1e-4 and found["seeds_metrics_maxdiff"] < 1e-4
    assert found["seeds_rerun_equal"]
    assert found["seed_alone_vs_vmapped_maxdiff"] < 1e-4
    # 4 devices -> 2 -> 1 across two resumes: every update once, the same result.
    assert found["resume_updates"] == [1, 2, 3]
    assert found["resume_first_update_kept"]  # update 1's row, from 4 devices, kept as it was
    assert found["resume_params_maxdiff"] < 1e-4


def _port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _pair(mode: str, out: Path) -> list[subprocess.Popen]:
    port, worker = _port(), str(SCRIPTS / "multiprocess_worker.py")
    return [_run([worker, mode, str(i), str(port), str(out)], 900) for i in range(2)]


def _results(procs: list[subprocess.Popen]) -> list[dict]:
    try:
        return sorted((_result(p, 900) for p in procs), key=lambda r: r["process"])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()


def _csv_rows(path: Path) -> int:
    return max(len(path.read_text().splitlines()) - 1, 0) if path.is_file() else 0


@pytest.mark.slow
def test_two_processes_train_one_policy_and_resume_after_sigkill(tmp_path):
    a, b = _results(_pair("train", tmp_path))
    assert (a["devices"], a["processes"]) == (2, 2)
    assert "devices: 2 (processes: 2)" in a["_out"].splitlines()
    assert a["full"] == b["full"]  # one policy, the same parameters on both processes
    assert a["resumed"] == b["resumed"] == a["full"]  # the stopped run resumed exactly
    assert a["updates"] == [1, 2, 3]
    assert a["long"] == b["long"]
    assert (tmp_path / "full" / ckpt.CHECKPOINT_NAME).is_file()
    rows = (tmp_path / "stopped" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 1 + 3  # header + one row per update: written once, by process 0

    # The long run, SIGKILLed (both processes, no clean-up) while it checkpoints every update.
    victims = _pair("victim", tmp_path)
    csv = tmp_path / "killed" / "metrics.csv"
    deadline = time.monotonic() + 600
    try:
        while _csv_rows(csv) < 20 and time.monotonic() < deadline:
            assert all(p.poll() is None for p in victims), victims[0].communicate()[0][-4000:]
            time.sleep(0.05)
    finally:
        for p in victims:
            p.send_signal(signal.SIGKILL)
    for p in victims:
        p.wait(timeout=60)
    killed_at = _csv_rows(csv)
    assert 20 <= killed_at < a["long_updates"]  # killed part-way, not after it finished

    c, d = _results(_pair("resume", tmp_path))
    assert c["long"] == d["long"] == a["long"]  # resumed to the uninterrupted run's parameters
    assert c["updates"] == list(range(1, a["long_updates"] + 1))  # every update once
    assert _csv_rows(csv) == a["long_updates"]
