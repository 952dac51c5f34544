"""The ``jaxcage`` console script: train a tiny config to a directory, then evaluate it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from jaxcage import cli
from jaxcage.evaluation import EvalTable
from jaxcage.ppo.config import load_config
from jaxcage.ppo.logging import read_csv
from jaxcage.ppo.train import TrainResult

# The same program as tests/test_ppo_train.py's TINY (with --set num_seeds=2), so a test session
# compiles it once for both files.
TINY_YAML = """\
num_envs: 8
num_steps: 10
max_steps: 10
total_timesteps: 320
num_minibatches: 2
update_epochs: 2
hidden_sizes: [16]
features: [prev_action, time]
updates_per_chunk: 1
checkpoint_every: 2
"""


@pytest.fixture(autouse=True)
def _no_disk_cache(monkeypatch):
    # The CLI turns on JAX's persistent compilation cache; keep the tests hermetic.
    monkeypatch.setenv("JAXCAGE_CACHE_DIR", "off")


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("JAXCAGE_CACHE_DIR", "off")
    d = tmp_path_factory.mktemp("cli")
    (d / "tiny.yaml").write_text(TINY_YAML)
    out = d / "run"
    rc = cli.main(
        [
            "train",
            "--config",
            str(d / "tiny.yaml"),
            "--set",
            "num_seeds=2",
            "--out",
            str(out),
            "--quiet",
            "--eval-episodes",
            "2",
        ]
    )
    mp.undo()
    assert rc == 0
    return out


def test_train_writes_the_run_directory(trained_run, capsys):
    names = ("config.yaml", "metrics.csv", "checkpoint.npz", "learning_curve.png")
    for name in (*names, "eval_jax_deterministic.json"):  # the table printed after training
        assert (trained_run / name).is_file(), name
    cfg = load_config(trained_run / "config.yaml")
    assert cfg.num_seeds == 2 and cfg.num_updates == 4
    rows = read_csv(trained_run / "metrics.csv")
    assert [(r["update"], r["seed"]) for r in rows] == [
        (str(u), str(s)) for u in (1, 2, 3, 4) for s in (0, 1)
    ]
    assert all(float(r["steps_per_sec"]) > 0 and r["return_mean"] != "" for r in rows)


def test_eval_prints_and_saves_the_table(trained_run, capsys):
    assert cli.main(["eval", "--run", str(trained_run), "--episodes", "3"]) == 0
    out = capsys.readouterr().out
    assert "B_line" in out and "Meander" in out and "Total" in out and "deterministic" in out
    saved = json.loads((trained_run / "eval_jax_deterministic.json").read_text())
    assert len(saved["cells"]) == 9 and saved["deterministic"] is True
    assert saved["total"] == pytest.approx(sum(c["mean"] for c in saved["cells"].values()))
    assert cli.main(["eval", "--run", str(trained_run), "--episodes", "2", "--stochastic"]) == 0
    assert (trained_run / "eval_jax_stochastic.json").is_file()


def test_resume_of_a_finished_run_adds_nothing(trained_run, capsys):
    before = (trained_run / "metrics.csv").read_text()
    assert cli.main(["train", "--out", str(trained_run), "--resume", "--quiet"]) == 0
    assert (trained_run / "metrics.csv").read_text() == before


def test_errors_are_reported_not_raised(tmp_path, capsys):
    assert cli.main(["eval", "--run", str(tmp_path)]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert cli.main(["train", "--set", "bogus=1", "--out", str(tmp_path / "x")]) == 2
    assert "unknown config key 'bogus'" in capsys.readouterr().err
    assert cli.main(["train", "--out", str(tmp_path / "y"), "--resume"]) == 2
    assert cli.main(["train", "--eval-episodes", "-1", "--out", str(tmp_path / "z")]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_train_refuses_to_overwrite_a_run(trained_run, capsys):
    assert (
        cli.main(["train", "--config", str(trained_run / "config.yaml"), "--out", str(trained_run)])
        == 2
    )
    assert "--resume" in capsys.readouterr().err


def test_no_arguments_trains_the_default_config(monkeypatch, tmp_path, capsys):
    seen = {}

    def fake_train(cfg, **kwargs):
        seen["cfg"], seen["kwargs"] = cfg, kwargs
        nan = np.full((1, 1), -10.0)
        return TrainResult(
            config=cfg,
            params={},
            metrics={"return_mean": nan},
            wall_time=1.0,
            compile_time=0.5,
            env_steps=100,
        )

    class FakeTable:
        engine, rules, deterministic = "jax", "current", True

        def save_json(self, path):
            seen["table_path"] = path

        def __str__(self):
            return "CAGE2 TABLE"

    def fake_evaluate(result, **kwargs):
        seen["eval_kwargs"] = kwargs
        return FakeTable()

    monkeypatch.setattr(cli, "train", fake_train)
    monkeypatch.setattr(cli, "evaluate", fake_evaluate)
    monkeypatch.chdir(tmp_path)
    assert cli.main([]) == 0
    assert "CAGE2 TABLE" in capsys.readouterr().out
    assert seen["eval_kwargs"] == {"engine": "jax", "episodes": 100, "deterministic": True}
    assert seen["cfg"] == load_config("default")
    assert str(seen["kwargs"]["out_dir"]).startswith("runs/default-")
    assert seen["kwargs"]["verbose"] is True


@pytest.mark.parametrize(
    ("engine", "rules", "deterministic", "name"),
    [
        ("jax", "current", True, "eval_jax_deterministic.json"),
        ("jax", "leaderboard", True, "eval_jax_leaderboard_deterministic.json"),
        ("cyborg", "debugged", False, "eval_cyborg_debugged_stochastic.json"),
    ],
)
def test_tables_are_named_by_engine_rules_and_mode(engine, rules, deterministic, name):
    # One name for `train`'s closing table and `eval`'s: a leaderboard run's table never takes
    # the current-rules name.
    table = EvalTable(cells={}, engine=engine, deterministic=deterministic, episodes=1, rules=rules)
    assert cli._table_name(table) == name
