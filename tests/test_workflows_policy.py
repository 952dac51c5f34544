"""A trained workflow policy (search checkpoint) scored by the shared jaxcage and CybORG loops.

Uses the best policy of the committed default search vs B_line
(``benchmarks/results/workflows_bline_default/``: DSUEH, env return -20.3, compliance 0.947 in
the search's own evaluation). The CybORG tests need the reference (marker ``parity``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcage.parity.stats import REQUIRED_POWER, welch_tost
from jaxcage.state import init_state
from jaxcage.true_state import red_session_view
from jaxcage.workflows import orders
from jaxcage.workflows.baselines import evaluate_policy
from jaxcage.workflows.cyborg_eval import evaluate_in_cyborg
from jaxcage.workflows.policy import load_policy
from jaxcage.workflows.ppo import make_apply, make_env, make_evaluate, policy_input

RUN = Path(__file__).resolve().parent.parent / "benchmarks/results/workflows_bline_default"
CHECKPOINT = RUN / "best_DSUEH_agent.npz"


@pytest.fixture(scope="module")
def trained():
    return load_policy(CHECKPOINT)


def test_checkpoint_loads_with_its_run_config(trained) -> None:
    assert trained.order == orders.order_index("DSUEH")
    assert trained.cfg.red_agent == "b_line" and trained.cfg.workflow_input
    assert trained.meta["letters"] == "DSUEH"


def test_deterministic_policy_is_the_networks_argmax(trained) -> None:
    tp = load_policy(CHECKPOINT, deterministic=True)
    apply = make_apply(tp.cfg)
    obs = jax.random.bernoulli(jax.random.key(1), 0.3, (16, 52)).astype(jnp.int32)
    sessions = red_session_view(init_state())
    for o in (tp.order, 0, 119):
        ours = [int(tp.policy(jax.random.key(0), ob, sessions, jnp.int32(o))) for ob in obs]
        logits, _ = apply(tp.params, policy_input(tp.cfg, obs, jnp.full((16,), o, jnp.int32)))
        assert ours == np.asarray(jnp.argmax(logits, -1)).tolist()
    # the stochastic policy samples: different keys give different actions somewhere
    acts = {
        int(trained.policy(jax.random.key(k), obs[0], sessions, jnp.int32(0))) for k in range(64)
    }
    assert len(acts) > 1


@pytest.mark.slow
def test_policy_fn_scores_like_the_searchs_own_evaluation(trained) -> None:
    """The PolicyFn in the shared evaluation program and the search's batched evaluation (the
    rollout's sampler) are the same policy: means within 4 combined standard errors."""
    n = 512
    ours = evaluate_policy(
        trained.policy, trained.order, episodes=n, seed=5, spec=trained.cfg.compliance_spec()
    )
    env, env_params = make_env(trained.cfg)
    per_episode = make_evaluate(trained.cfg, env, env_params, n)
    theirs = jax.device_get(jax.jit(per_episode)(trained.params, trained.order, jax.random.key(9)))
    se = np.hypot(
        ours["env_return"].std() / np.sqrt(n), float(theirs["env_return_std"]) / np.sqrt(n)
    )
    assert abs(ours["env_return"].mean() - float(theirs["env_return"])) < 4 * se
    assert abs(ours["compliance"].mean() - float(theirs["compliance"])) < 0.03
    assert ours["compliance"].mean() > 0.9  # the search's compliant policy stays compliant


def test_load_policy_errors(tmp_path: Path, trained) -> None:
    with pytest.raises(FileNotFoundError, match="no workflow checkpoint"):
        load_policy(tmp_path / "missing.npz")
    lone = tmp_path / "lone.npz"
    shutil.copy(CHECKPOINT, lone)
    with pytest.raises(FileNotFoundError, match="experiment_config.json"):
        load_policy(lone)
    cfg = json.loads((RUN / "experiment_config.json").read_text())
    cfg["hidden_sizes"] = [32, 32]
    (tmp_path / "experiment_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="network"):
        load_policy(lone)


@pytest.mark.parity
@pytest.mark.slow
def test_trained_policy_in_cyborg(cyborg, trained) -> None:
    """The trained policy acting in CybORG: Red's sessions and the compliance counters equal
    jaxcage's in lockstep, and env return / compliance / fixes pass the parity rule (TOST)."""
    spec = trained.cfg.compliance_spec()
    lock = evaluate_in_cyborg(
        trained.policy, trained.order, episodes=2, spec=spec, seed=5, lockstep=True
    )
    assert not lock.mismatches, "\n".join(lock.mismatches[:5])
    assert lock.steps_compared == 202
    cy = evaluate_in_cyborg(trained.policy, trained.order, episodes=12, spec=spec, seed=77).episodes
    jx = evaluate_policy(trained.policy, trained.order, episodes=1024, seed=8, spec=spec)
    for key, margin in (("env_return", None), ("compliance", 0.05), ("fixes", 2.0)):
        t = welch_tost(cy[key], jx[key], margin=margin)
        assert t.verdict != "DIFFERENT" and (t.equivalent or t.power < REQUIRED_POWER), (key, t)
    assert cy["compliance"].mean() > 0.85


@pytest.mark.slow
def test_load_best_of_a_run(tmp_path: Path) -> None:
    """``load_best`` finds the best workflow's latest checkpoint of a finished search."""
    from jaxcage.workflows.config import load_config
    from jaxcage.workflows.policy import load_best
    from jaxcage.workflows.search import search

    cfg = load_config(
        "workflows",
        total_episodes=48,
        episodes_per_update=16,
        max_episodes_per_workflow=32,
        eval_episodes=16,
        num_minibatches=2,
        update_epochs=1,
        hidden_sizes=[8],
    )
    res = search(cfg, out_dir=tmp_path / "run")
    best = load_best(tmp_path / "run")
    assert best.order == res.summary["best_order_index"]
    assert best.cfg.hidden_sizes == (8,)
    final = res.params[best.order]  # the best workflow's weights at its latest visit
    for a, b in zip(jax.tree.leaves(best.params), jax.tree.leaves(final), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    with pytest.raises(FileNotFoundError, match="summary.json"):
        load_best(tmp_path)
