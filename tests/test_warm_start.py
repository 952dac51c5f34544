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
