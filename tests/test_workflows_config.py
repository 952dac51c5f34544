"""WorkflowConfig: defaults equal configs/workflows.yaml, presets load, bad input fails early."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from jaxcage.ppo.config import resolve_config_path
from jaxcage.workflows.config import WorkflowConfig, from_dict, load_config


def test_default_yaml_equals_dataclass_defaults() -> None:
    with open(resolve_config_path("workflows")) as f:
        data = yaml.safe_load(f)
    assert from_dict(data) == WorkflowConfig()
    assert set(data) == {f.name for f in dataclasses.fields(WorkflowConfig)}


@pytest.mark.parametrize("name", ["workflows", "seed_v2", "seed_v0", "workflows_seed_v2"])
def test_presets_load(name: str) -> None:
    cfg = load_config(name)
    assert isinstance(cfg, WorkflowConfig)


def test_seed_v2_is_the_repo_main_method() -> None:
    cfg = load_config("seed_v2")
    assert (cfg.advantage, cfg.num_minibatches, cfg.update_epochs) == ("mc_normalized", 1, 6)
    assert (cfg.lr, cfg.adam_b1, cfg.adam_b2, cfg.max_grad_norm) == (2e-3, 0.9, 0.99, 0.0)
    assert (cfg.init, cfg.episodes_per_update, cfg.hidden_sizes) == ("torch", 200, (64, 64))
    assert (cfg.selector, cfg.inherit, cfg.threshold, cfg.lam) == (
        "repo_heuristic",
        "nearest_kendall",
        0.9,
        30.0,
    )


def test_overrides_and_order_forms() -> None:
    cfg = load_config("workflows", first_order="UHSED", total_episodes="2e5")
    assert cfg.first_order == ("user", "op_host", "op_server", "enterprise", "defender")
    assert cfg.total_episodes == 200_000
    assert cfg.replace(lam=10).lam == 10.0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"first_order": ["user", "user", "defender", "op_host", "op_server"]}, "permutation"),
        ({"first_order": "DESHX"}, "permutation"),
        ({"baseline_order": ["defender", "enterprise"]}, "permutation"),
        ({"rule": "fixed-types"}, "rule must be one of"),
        ({"compromise": "foothold"}, "compromise must be one of"),
        ({"selector": "ucb"}, "selector must be one of"),
        ({"inherit": "nearest"}, "inherit must be one of"),
        ({"total_episodes": 100}, "smaller than one update"),
        ({"max_episodes_per_workflow": 199}, "smaller than one update"),
        ({"threshold": 0.0}, r"threshold must be in \(0, 1\]"),
        ({"return_norm_eps": 0.0}, "return_norm_eps must be > 0"),
        ({"nofix_penalty": -0.2}, "nofix_penalty must be >= 0"),
        ({"continuing_windows": True, "mode": "universal"}, "needs mode: independent"),
        ({"threshold": 1.5}, r"threshold must be in \(0, 1\]"),
        ({"num_minibatches": 3}, "must divide the batch"),
        ({"not_a_key": 1}, "unknown workflow config key"),
        ({"return_leak": True}, "return_leak only applies"),
    ],
)
def test_bad_input_is_a_clear_error(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WorkflowConfig().replace(**changes)


def test_bad_direct_construction_is_validated() -> None:
    with pytest.raises(ValueError, match="permutation"):
        WorkflowConfig(first_order=("defender",) * 5)


def test_cli_rejects_bad_input_before_compiling(capsys: pytest.CaptureFixture[str]) -> None:
    from jaxcage.cli import main

    for action in ("search", "sweep", "baselines"):
        rc = main(["workflows", action, "--set", "threshold=1.5", "--out", "/nonexistent/x"])
        assert rc == 2
        assert "threshold must be in (0, 1]" in capsys.readouterr().err
    assert main(["workflows", "search", "--set", "first_order=DDSHU", "--out", "/x"]) == 2
    assert "permutation" in capsys.readouterr().err


def test_package_exports_and_baselines_driver_wiring(tmp_path: Path) -> None:
    import jaxcage.workflows as wf
    from jaxcage.workflows.baselines import FIXED_ORDER_POLICIES

    assert callable(wf.search) and callable(wf.sweep) and callable(wf.baselines)
    assert len(FIXED_ORDER_POLICIES) == 6
    res = wf.baselines(WorkflowConfig(), out_dir=tmp_path, scripted=False, ppo=False)
    assert res.summary["baseline_order"] == list(WorkflowConfig().baseline_order)
    assert (tmp_path / "summary.json").exists() and (tmp_path / "baselines.csv").exists()
