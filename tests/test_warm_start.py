"""``init_from`` (ppo/warm_start.py): a run that starts from a trained defender's network."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxcage import export as X
from jaxcage.ppo.train import train
from jaxcage.ppo.warm_start import start_params
from tests.test_submission import CFG, exported, same_tree


def test_a_run_starts_from_the_agents_network_for_every_seed(tmp_path):
    agent, path = exported(tmp_path)
    # One update at a negligible learning rate: the trained params are the starting params.
    cfg = CFG.replace(init_from=str(path), num_seeds=2, lr=1e-12, anneal_lr=False)
    result = train(cfg)
    for seed in range(2):
        got = jax.tree.map(lambda x, s=seed: np.asarray(x[s]), result.params)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6), got, agent.params)
    fresh = train(cfg.replace(init_from=None))  # the check above can fail: a random init differs
    assert not same_tree(jax.tree.map(lambda x: np.asarray(x[0]), fresh.params), agent.params)


def test_bad_init_from_fails_before_training(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        start_params(CFG.replace(init_from=str(tmp_path / "missing")))
    _, path = exported(tmp_path)
    other = CFG.replace(features=("prev_action", "time"), init_from=str(path))
    with pytest.raises(ValueError, match="differs from this config's"):
        train(other)
    switch = X.compose_switch(path, {"b_line": path}, tmp_path / "switch")
    with pytest.raises(ValueError, match="no single network"):
        start_params(CFG.replace(init_from=str(switch)))
    with pytest.raises(ValueError, match="init_from must be a directory path"):
        CFG.replace(init_from=" ")


def test_an_export_names_the_defenders_it_was_fine_tuned_from(tmp_path):
    base = X.ExportedAgent(
        params=exported(tmp_path)[0].params, config=CFG, rules="current", meta={"env_steps": 500}
    )
    base_dir = X.save_agent(base, tmp_path / "base")
    first = tmp_path / "ft1"
    train(CFG.replace(init_from=str(base_dir)), out_dir=first, verbose=False)
    second = tmp_path / "ft2"
    train(CFG.replace(init_from=str(first)), out_dir=second, verbose=False)
    agent = X.from_run(second)
    steps = agent.meta["env_steps"]
    assert agent.meta["init_from"] == [
        {"source": str(first), "env_steps": steps, "rules": "current"},
        {"source": str(base_dir), "env_steps": 500, "rules": "current"},
    ]
    assert agent.meta["env_steps_total"] == 2 * steps + 500
    out = X.save_agent(agent, tmp_path / "agents" / "ft2")
    again = X.load_agent(out)
    assert isinstance(again, X.ExportedAgent)
    assert again.meta["init_from"] == agent.meta["init_from"]
    readme = (out / "README.md").read_text()
    assert f"fine-tuned from {first} ({2 * steps + 500:,} env steps in all)" in readme


def test_an_unreadable_ancestor_is_named_not_counted(tmp_path):
    _, path = exported(tmp_path)
    run = tmp_path / "ft"
    train(CFG.replace(init_from=str(path)), out_dir=run, verbose=False)
    for f in path.iterdir():
        f.unlink()
    path.rmdir()
    agent = X.from_run(run)
    (entry,) = agent.meta["init_from"]
    assert entry["source"] == str(path) and entry["env_steps"] is None and "note" in entry
    assert "env_steps_total" not in agent.meta
