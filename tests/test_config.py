"""PPOConfig: loading, overrides, derived sizes, and clear validation errors before compiling."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from jaxcage.constants import RED_AGENT_NAMES
from jaxcage.ppo import config as C
from jaxcage.ppo.config import PPOConfig, load_config, parse_override
from jaxcage.ppo.logging import write_config

# Trainer configs only: configs/workflows*.yaml belong to tests/test_workflows_config.py.
CONFIGS = sorted(
    p
    for p in (Path(__file__).resolve().parent.parent / "configs").glob("*.yaml")
    if not p.stem.startswith("workflows")
)


def test_red_agent_names_match_the_environment():
    assert C.RED_AGENTS == RED_AGENT_NAMES


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_shipped_config_loads(path):
    cfg = load_config(path)
    assert cfg.num_updates >= 1
    assert load_config(path.stem) == cfg  # by name too


def test_required_configs_exist():
    names = {p.stem for p in CONFIGS}
    assert {"default", "b_line", "meander", "mixed", "guide"} <= names


def test_dataclass_defaults_are_the_default_config():
    assert PPOConfig() == load_config("default")


def test_guide_config_mirrors_the_acceleration_guide():
    cfg = load_config("guide")
    assert cfg.num_envs == 200 and cfg.num_steps == 50 and cfg.update_epochs == 4
    assert cfg.max_steps == 100
    assert cfg.env_steps_per_seed == 100_000 * 100  # 100,000 episodes of 100 steps


def test_mixed_config_is_a_bline_meander_mixture():
    cfg = load_config("mixed")
    assert set(cfg.red_agents) == {"b_line", "meander"}
    assert abs(sum(cfg.red_probs) - 1.0) < 1e-9


def test_overrides_and_derived_sizes():
    cfg = load_config(
        "default",
        num_envs=64,
        num_steps=50,
        num_minibatches=8,
        lr="1e-3",
        hidden_sizes=[128],
        total_timesteps=64 * 50 * 7 + 5,
    )
    assert cfg.batch_size == 3200 and cfg.minibatch_size == 400
    assert cfg.num_updates == 7 and cfg.env_steps_per_seed == 22400
    assert cfg.lr == 1e-3 and cfg.hidden_sizes == (128,)
    assert hash(cfg) == hash(cfg.replace())  # frozen and hashable (closed over by jit)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 1.0  # type: ignore[misc]


def test_parse_override_reads_yaml_values():
    assert parse_override("lr=1e-3") == ("lr", "1e-3")  # coerced to float by the config
    assert parse_override("hidden_sizes=[32, 32]") == ("hidden_sizes", [32, 32])
    assert parse_override("anneal_lr=false") == ("anneal_lr", False)
    assert load_config("default", **dict([parse_override("lr=1e-3")])).lr == 1e-3
    with pytest.raises(ValueError, match="key=value"):
        parse_override("lr")


@pytest.mark.parametrize(
    "changes,match",
    [
        ({"nmu_envs": 3}, "unknown config key 'nmu_envs'"),
        ({"num_minibatches": 7}, "does not divide the batch"),
        ({"num_envs": 0}, "num_envs must be a positive integer"),
        ({"num_steps": -5}, "num_steps must be a positive integer"),
        ({"update_epochs": 2.5}, "update_epochs must be an integer"),
        ({"red_agents": ["b_line", "redqueen"]}, "unknown red agent 'redqueen'"),
        ({"green_agent": "purple"}, "unknown green agent"),
        ({"lr": 0}, "lr must be a positive number"),
        ({"gamma": 1.5}, r"gamma must be in \[0, 1\]"),
        ({"hidden_sizes": []}, "hidden_sizes"),
        ({"activation": "gelu"}, "unknown activation"),
        ({"features": ["x_ray"]}, "unknown feature 'x_ray'"),
        ({"total_timesteps": 10}, "smaller than one update"),
        ({"red_weights": [1.0]}, "red_weights has 1 entries"),
        ({"anneal_lr": "yes"}, "anneal_lr must be true or false"),
    ],
)
def test_invalid_values_raise_clear_errors(changes, match):
    with pytest.raises(ValueError, match=match):
        load_config("default", **changes)


def test_alias_red_agent_and_single_string():
    cfg = load_config("default", red_agent="bline")
    assert cfg.red_agents == ("b_line",)
    assert PPOConfig(red_agents="meander").red_agents == ("meander",)  # type: ignore[arg-type]


def test_unknown_name_and_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="known configs"):
        load_config("no_such_config")
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="mapping"):
        load_config(bad)


def test_yaml_round_trip(tmp_path):
    cfg = load_config("mixed", num_seeds=3)
    p = tmp_path / "c.yaml"
    write_config(p, cfg)
    assert load_config(p) == cfg
