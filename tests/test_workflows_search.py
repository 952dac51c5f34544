"""The search driver end to end: budget accounting, early stop, GP feeding, output files.

Most tests run the real driver and the real compiled inner loop on a tiny stand-in environment
(same API as ``WorkflowEnv``, trivial dynamics) so they compile in seconds; the ``slow`` ones run
the real CybORG-port environment with a tiny budget.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from jaxcage.workflows import logs
from jaxcage.workflows import ppo as wppo
from jaxcage.workflows.config import load_config
from jaxcage.workflows.orders import NUM_ORDERS
from jaxcage.workflows.search import search, sweep


@struct.dataclass
class FakeParams:
    max_steps: jax.Array
    compliance: jax.Array  # the compliance every episode reports


@struct.dataclass
class FakeState:
    t: jax.Array
    order_idx: jax.Array


class FakeEnv:
    """Episodes of ``max_steps`` steps; env reward -1 unless Sleep; alignment 1 per fix action
    (Remove 15-27); every episode reports ``params.compliance`` and 2 fixes."""

    def reset(self, key, params, order_idx):  # noqa: ANN001, ANN201
        del key, params
        return jnp.zeros(52, jnp.int32), FakeState(jnp.int32(0), jnp.asarray(order_idx, jnp.int32))

    def step(self, key, s, action, params):  # noqa: ANN001, ANN201
        del key
        t = s.t + 1
        done = t >= params.max_steps
        obs = jnp.zeros(52, jnp.int32).at[0].set(s.order_idx % 2)
        env_r = jnp.where(action == 0, 0.0, -1.0)
        align = jnp.where((action >= 15) & (action <= 27), 1.0, 0.0)
        info = {
            "compliance": jnp.float32(params.compliance),
            "fixes": jnp.int32(2),
            "final_obs": obs,
        }
        return obs, FakeState(jnp.where(done, 0, t), s.order_idx), env_r, align, done, info


def _cfg(**kw):  # noqa: ANN003, ANN202
    base = {
        "total_episodes": 165,
        "episodes_per_update": 10,
        "max_episodes_per_workflow": 30,
        "max_steps": 5,
        "eval_episodes": 10,
        "num_minibatches": 2,
        "update_epochs": 1,
        "hidden_sizes": [8],
        "threshold": 0.9,
    }
    return load_config("workflows", **{**base, **kw})


# One object per compliance level, so runs share their compiled programs (search's cache).
_ENVS: dict[float, tuple[FakeEnv, FakeParams]] = {}


def _env(compliance: float):  # noqa: ANN202
    if compliance not in _ENVS:
        _ENVS[compliance] = (FakeEnv(), FakeParams(jnp.int32(5), jnp.float32(compliance)))
    return _ENVS[compliance]


def _read(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


def test_budget_accounting_exact_with_capped_last_workflow(tmp_path: Path) -> None:
    cfg = _cfg()
    res = search(cfg, out_dir=tmp_path, env=_env(0.5))  # never compliant: every workflow to cap
    s = res.summary
    # 165 episodes, 10 per update, cap 3 updates: 3+3+3+3+3 updates, then 1 (15 left), 5 unused.
    assert [w["updates"] for w in res.workflows] == [3, 3, 3, 3, 3, 1]
    assert s["episodes_used"] == 160 and s["episodes_unused"] == 5
    assert s["env_steps"] == 160 * 5
    assert s["eval_env_steps"] == 6 * 10 * 5
    assert s["workflows_evaluated"] == 6 and s["successes"] == 0
    train = _read(tmp_path / "training_log.csv")
    assert list(train[0]) == list(logs.TRAINING_COLUMNS)
    assert len(train) == 16
    assert [int(r["Total_Episodes_Sampled"]) for r in train] == list(range(10, 161, 10))
    gp = _read(tmp_path / "gp_sampling_log.csv")
    assert list(gp[0]) == list(logs.GP_COLUMNS)
    assert [r["GP_Updated"] for r in gp] == ["False"] * 6  # failures are not fed (repo)
    assert sum(int(r["Episodes_Trained"]) for r in gp) == 160


def test_early_stop_success_files_and_summary(tmp_path: Path) -> None:
    cfg = _cfg(total_episodes=60, first_order="DESHU")
    res = search(cfg, out_dir=tmp_path, env=_env(0.95))
    assert [w["updates"] for w in res.workflows] == [1] * 6  # threshold met after one update
    assert all(w["success"] and w["gp_updated"] for w in res.workflows)
    assert res.workflows[0]["letters"] == "DESHU"
    s = json.loads((tmp_path / "summary.json").read_text())
    for k in (
        "best_order",
        "best_env_return",
        "best_compliance",
        "episodes_used",
        "env_steps",
        "workflows_evaluated",
        "wall_time_s",
    ):
        assert k in s, k
    assert len(s["best_order"]) == 5 and s["best_compliance"] == pytest.approx(0.95)
    assert s["best_is_compliant"] and s["episodes_used"] == 60
    cfg_json = json.loads((tmp_path / "experiment_config.json").read_text())
    assert cfg_json["total_episodes"] == 60
    ckpts = sorted((tmp_path / "checkpoints").glob("workflow_*.npz"))
    assert len(ckpts) == 6
    template = wppo.make_init_params(cfg)(jax.random.key(0))
    params, meta = logs.load_params(ckpts[0], template)
    assert meta["letters"] == "DESHU"
    assert jax.tree.structure(params) == jax.tree.structure(template)
    assert (tmp_path / "search.png").stat().st_size > 1000


def test_feed_failures_flag_and_reproducible() -> None:
    cfg = _cfg(total_episodes=60, feed_failures=True, inherit="previous")
    a = search(cfg, env=_env(0.5))
    b = search(cfg, env=_env(0.5))
    assert all(w["gp_updated"] and not w["success"] for w in a.workflows)
    assert [w["order"] for w in a.workflows] == [w["order"] for w in b.workflows]
    assert [w["eval_env_return"] for w in a.workflows] == [
        w["eval_env_return"] for w in b.workflows
    ]
    assert a.workflows[1]["warm_start_from"] == a.workflows[0]["letters"]


def test_plateau_stop() -> None:
    cfg = _cfg(total_episodes=30, max_episodes_per_workflow=30, patience_updates=2)
    # Compliance never improves after the first update: 2 more without a gain, then stop.
    res = search(cfg, env=_env(0.5))
    assert res.workflows[0]["updates"] == 3


@pytest.mark.slow
def test_sweep_trains_every_workflow(tmp_path: Path) -> None:
    cfg = _cfg(sweep_episodes_per_workflow=20, sweep_chunk=16, checkpoints=False)
    res = sweep(cfg, out_dir=tmp_path, env=_env(0.95))
    assert sorted(w["order"] for w in res.workflows) == list(range(NUM_ORDERS))
    assert res.summary["episodes_used"] == NUM_ORDERS * 10  # each stops after one update
    assert len(_read(tmp_path / "sweep.csv")) == NUM_ORDERS


@pytest.mark.slow
def test_universal_mode_on_tiny_env(tmp_path: Path) -> None:
    cfg = _cfg(mode="universal", total_episodes=40, sweep_chunk=40)
    res = search(cfg, out_dir=tmp_path, env=_env(0.95))
    s = res.summary
    assert s["mode"] == "universal" and s["episodes_used"] == 40
    assert s["workflows_evaluated"] == NUM_ORDERS and s["compliant_workflows"] == NUM_ORDERS
    assert len(_read(tmp_path / "training_log.csv")) == 4


def test_mc_returns_normalised_and_leak() -> None:
    cfg = load_config("seed_v2", max_steps=3, episodes_per_update=200)
    r = jnp.array([[1.0, 0.0], [0.0, 0.0], [2.0, 1.0]])  # (T=3, N=2)
    d = jnp.array([[False, False], [False, False], [True, True]])
    g = 0.99
    raw_cut = np.array([[1 + g * g * 2, g * g], [g * 2, g], [2, 1]])
    out = np.asarray(wppo.mc_returns(cfg.replace(return_leak=False), r, d))
    np.testing.assert_allclose(out, (raw_cut - raw_cut.mean()) / (raw_cut.std() + 1e-5), rtol=1e-5)
    # Leak: env 0's episode continues into env 1's (concatenated env by env).
    leak = raw_cut.copy()
    leak[:, 0] += g ** np.array([3, 2, 1]) * raw_cut[0, 1]
    out = np.asarray(wppo.mc_returns(cfg, r, d))
    np.testing.assert_allclose(out, (leak - leak.mean()) / (leak.std() + 1e-5), rtol=1e-5)


def test_torch_init_bounds() -> None:
    cfg = load_config("seed_v2")
    params = wppo.make_init_params(cfg)(jax.random.key(0))["params"]
    k, b = params["actor_0"]["kernel"], params["actor_0"]["bias"]
    assert k.shape == (77, 64)
    bound = 1 / np.sqrt(77)
    assert float(jnp.abs(k).max()) <= bound and float(jnp.abs(k).max()) > 0.9 * bound
    assert float(jnp.abs(b).max()) <= bound and float(jnp.abs(b).std()) > 0
    assert params["critic_out"]["kernel"].shape == (64, 1)


@pytest.mark.slow
def test_tiny_search_real_env(tmp_path: Path) -> None:
    cfg = load_config(
        "workflows",
        total_episodes=64,
        episodes_per_update=16,
        max_episodes_per_workflow=32,
        eval_episodes=16,
        num_minibatches=2,
        update_epochs=1,
    )
    res = search(cfg, out_dir=tmp_path)
    s = res.summary
    assert s["episodes_used"] == 64 and s["env_steps"] == 6400
    assert [w["updates"] for w in res.workflows] == [2, 2]
    for w in res.workflows:
        assert 0.0 <= w["eval_compliance"] <= 1.0
        assert -2000 < w["eval_env_return"] <= 0 and w["eval_fixes"] >= 0
    for name in (
        "training_log.csv",
        "gp_sampling_log.csv",
        "summary.json",
        "experiment_config.json",
        "search.png",
    ):
        assert (tmp_path / name).exists(), name


@pytest.mark.slow
def test_universal_real_env_tiny() -> None:
    cfg = load_config(
        "workflows",
        mode="universal",
        total_episodes=32,
        episodes_per_update=16,
        eval_episodes=16,
        num_minibatches=2,
        update_epochs=1,
        sweep_chunk=60,
    )
    s = search(cfg).summary
    assert s["workflows_evaluated"] == NUM_ORDERS and s["episodes_used"] == 32
    comps = [w["eval_compliance"] for w in s["workflows"]]
    assert np.all((np.array(comps) >= 0) & (np.array(comps) <= 1))


@pytest.mark.slow
def test_sweep_fine_tunes_from_sweep_init(tmp_path: Path) -> None:
    """``sweep_init``: every workflow starts from the checkpoint's weights (with a vanishing
    learning rate they end there), and a missing file fails before anything is compiled."""
    cfg = _cfg(sweep_episodes_per_workflow=20, sweep_chunk=60, checkpoints=False, lr=1e-12)
    start = wppo.make_init_params(cfg)(jax.random.key(42))
    ckpt = tmp_path / "init.npz"
    logs.save_params(ckpt, start, {"mode": "universal"})
    res = sweep(cfg.replace(sweep_init=str(ckpt)), env=_env(0.95))
    assert res.summary["sweep_init"] == str(ckpt)
    for o in (0, 77, 119):
        for a, b in zip(jax.tree.leaves(res.params[o]), jax.tree.leaves(start), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)
    scratch = sweep(cfg, env=_env(0.95))
    diff = max(
        float(np.abs(np.asarray(a) - np.asarray(b)).max())
        for a, b in zip(jax.tree.leaves(scratch.params[0]), jax.tree.leaves(start), strict=True)
    )
    assert diff > 1e-2
    with pytest.raises(FileNotFoundError, match="no workflow checkpoint"):
        sweep(cfg.replace(sweep_init=str(tmp_path / "missing.npz")), env=_env(0.95))


@pytest.mark.slow
def test_continuing_windows_continue_the_training_runs() -> None:
    """``continuing_windows`` (V0/V1): a window starts where the previous one stopped; the
    training loop carries its envs across updates, so the flag changes what it trains on."""
    cfg = load_config(
        "workflows",
        continuing_windows=True,
        max_steps=6,
        episodes_per_update=4,
        max_episodes_per_workflow=12,
        eval_episodes=4,
        num_minibatches=1,
        update_epochs=1,
        hidden_sizes=[8],
        early_stop=False,
    )
    env, env_params = wppo.make_env(cfg)
    assert env.continuing_windows
    params = wppo.make_init_params(cfg)(jax.random.key(0))
    orders = jnp.zeros(4, jnp.int32)
    window = jax.jit(wppo.make_window(cfg, env, env_params))
    obs, ws = wppo.make_reset(env, env_params)(jax.random.key(1), orders)
    ro1, obs1, ws1 = window(jax.random.key(2), params, orders, obs, ws)
    ro2, _, ws2 = window(jax.random.key(3), params, orders, obs1, ws1)
    assert np.asarray(ws1.env_state.time).tolist() == [6] * 4  # no reset at the window end
    assert np.asarray(ws2.env_state.time).tolist() == [12] * 4
    np.testing.assert_array_equal(np.asarray(ro2.inputs[0, :, :52]), np.asarray(obs1))
    assert np.asarray(ro1.dones[-1]).all() and not np.asarray(ro1.dones[:-1]).any()
    train = jax.jit(wppo.make_train_workflow(cfg, env, env_params, cfg.cap_updates, 4))
    run = train(params, jnp.int32(0), jax.random.key(4), jnp.int32(3))
    plain_cfg = cfg.replace(continuing_windows=False)
    penv, pparams = wppo.make_env(plain_cfg)
    plain = jax.jit(wppo.make_train_workflow(plain_cfg, penv, pparams, cfg.cap_updates, 4))
    run_plain = plain(params, jnp.int32(0), jax.random.key(4), jnp.int32(3))
    assert int(run.updates) == 3 and int(run_plain.updates) == 3
    # the continuing run trains on windows that start mid-run: other returns than fresh episodes
    assert not np.allclose(np.asarray(run.metrics["env_return"]), run_plain.metrics["env_return"])
    with pytest.raises(ValueError, match="continuing_windows"):
        load_config("workflows", continuing_windows=True, mode="universal")
