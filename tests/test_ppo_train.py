"""End-to-end trainer tests: jit/vmap over seeds, the chunked host loop, checkpoints and resume."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcage.evaluation import evaluate
from jaxcage.ppo import checkpoint as ckpt
from jaxcage.ppo.config import PPOConfig
from jaxcage.ppo.features import init_memory, input_size, policy_input, update_memory
from jaxcage.ppo.logging import read_csv
from jaxcage.ppo.networks import sample_action
from jaxcage.ppo.probe_env import make_probe
from jaxcage.ppo.rollout import collect, init_env_batch, sample_red
from jaxcage.ppo.train import (
    make_init,
    make_network_for,
    make_train,
    seed_keys,
    shuffled_indices,
    train,
)

# Small enough to compile and run in seconds on CPU, but with whole episodes in every rollout.
TINY = PPOConfig(
    num_envs=8,
    num_steps=10,
    max_steps=10,
    total_timesteps=8 * 10 * 4,
    num_minibatches=2,
    update_epochs=2,
    num_seeds=2,
    hidden_sizes=(16,),
    features=("prev_action", "time"),
    updates_per_chunk=1,
    checkpoint_every=1,
)
HOST_COLUMNS = {"wall_time", "steps_per_sec"}


def _leaves_equal(a, b) -> bool:
    return all(
        np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    )


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("run_full")
    return train(TINY, out_dir=out), out


@pytest.fixture(scope="module")
def one_program():
    """The whole run as one jitted, seed-vmapped program."""
    runner, metrics = jax.jit(jax.vmap(make_train(TINY)))(seed_keys(TINY))
    return jax.device_get(runner), jax.device_get(metrics)


def test_make_train_under_jit_and_vmap_two_seeds(one_program):
    runner, metrics = one_program
    assert metrics["loss"].shape == (2, TINY.num_updates)
    assert np.array_equal(np.asarray(runner.update), [4, 4])
    for k in ("loss", "value_loss", "entropy", "approx_kl", "return_mean", "explained_variance"):
        assert np.all(np.isfinite(metrics[k])), k
    # Every rollout holds whole 10-step CAGE2 episodes: rewards are within [-14, 0] per step.
    assert np.all(metrics["episodes"] == TINY.num_envs)
    assert np.all(metrics["return_mean"] <= 0) and np.all(metrics["return_mean"] >= -140)
    # Seeds are independent: different initial weights and different trajectories.
    p = runner.train_state.params["params"]["actor_0"]["kernel"]
    assert not np.allclose(p[0], p[1])
    assert not np.array_equal(metrics["return_mean"][0], metrics["return_mean"][1])


def test_chunked_host_loop_equals_one_program(uninterrupted, one_program):
    result, _ = uninterrupted
    runner, metrics = one_program
    # Same maths in a differently-shaped scan: equal up to float reassociation.
    for a, b in zip(
        jax.tree.leaves(result.params), jax.tree.leaves(runner.train_state.params), strict=True
    ):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(result.metrics["return_mean"], metrics["return_mean"], rtol=1e-5)
    assert result.env_steps == 2 * 4 * 80


def test_resume_gives_exactly_the_uninterrupted_result(uninterrupted, tmp_path):
    full, full_dir = uninterrupted
    partial = train(TINY, out_dir=tmp_path, stop_after_updates=2)
    assert ckpt.read_header(tmp_path / ckpt.CHECKPOINT_NAME)["update"] == 2
    assert partial.metrics["loss"].shape == (2, 2)
    # Simulate a kill after the CSV was written but before the next checkpoint: a stray row.
    with open(tmp_path / "metrics.csv", "a") as f:
        f.write("3,0,240,1.0,1.0,8,-5,-5,-5" + ",0" * 20 + "\n")
    resumed = train(TINY, out_dir=tmp_path, resume=True)
    assert _leaves_equal(resumed.params, full.params)
    for k, v in full.metrics.items():
        if k not in HOST_COLUMNS:
            np.testing.assert_array_equal(resumed.metrics[k], v, err_msg=k)
    rows = read_csv(tmp_path / "metrics.csv")
    assert [(int(r["update"]), int(r["seed"])) for r in rows] == [
        (u, s) for u in range(1, 5) for s in range(2)
    ]
    full_rows = read_csv(full_dir / "metrics.csv")
    for r, f in zip(rows, full_rows, strict=True):
        assert {k: v for k, v in r.items() if k not in HOST_COLUMNS} == {
            k: v for k, v in f.items() if k not in HOST_COLUMNS
        }
    assert (tmp_path / "learning_curve.png").stat().st_size > 1000


def test_resume_needs_a_checkpoint_and_the_same_config(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train(TINY, out_dir=tmp_path, resume=True)
    train(TINY, out_dir=tmp_path, stop_after_updates=1)
    with pytest.raises(ValueError, match="lr"):
        train(TINY.replace(lr=1e-3), out_dir=tmp_path, resume=True)


def test_crash_during_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    train(TINY, out_dir=tmp_path, stop_after_updates=1)
    path = tmp_path / ckpt.CHECKPOINT_NAME
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed mid-save")

    monkeypatch.setattr(ckpt.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        train(TINY, out_dir=tmp_path, resume=True)
    monkeypatch.undo()
    assert path.read_bytes() == before  # the latest checkpoint is untouched and loadable
    template = jax.eval_shape(jax.vmap(make_init(TINY)), seed_keys(TINY))
    assert ckpt.load(path, template).update == 1
    for leftover in tmp_path.glob(".checkpoint.npz.tmp*"):
        os.remove(leftover)  # a stale temp file is harmless; resume still works
    assert train(TINY, out_dir=tmp_path, resume=True).metrics["loss"].shape == (2, 4)


def _probe_setup(cfg: PPOConfig):
    env, base = make_probe(max_steps=cfg.max_steps)
    net = make_network_for(cfg)
    params = jax.jit(net.init)(jax.random.key(0), jnp.zeros((1, input_size(cfg.features))))
    ids = jnp.array([0, 2], jnp.int32)
    probs = jnp.array([0.5, 0.5], jnp.float32)
    envs = jax.jit(init_env_batch, static_argnums=(1, 3))(
        jax.random.key(1), env, base, cfg.num_envs, ids, probs
    )
    return env, net, params, envs, ids, probs


def _probe_rollout(cfg: PPOConfig, steps: int = 25):
    env, net, params, envs, ids, probs = _probe_setup(cfg)
    _, traj = jax.jit(
        collect,
        static_argnums=(1, 2),
        static_argnames=("num_steps", "features", "reward_scale", "treat_truncation_as_terminal"),
    )(
        jax.random.key(2),
        env,
        net.apply,
        params,
        envs,
        num_steps=steps,
        features=cfg.features,
        reward_scale=0.1,
        treat_truncation_as_terminal=cfg.treat_truncation_as_terminal,
        red_ids=ids,
        red_probs=probs,
    )
    return jax.device_get(traj), net, params


def test_rollout_matches_a_plain_step_by_step_loop():
    """``collect`` (sampling by inverse CDF, critic on final observations only where an episode
    ends) against a direct loop: same keys, V(s_{t+1}) from the next observation and the updated
    memory at every step, bootstrap V(final_obs) recomputed at every step."""
    cfg = PPOConfig(num_envs=6, max_steps=5, features=("prev_action",), hidden_sizes=(8,))
    traj, _, _ = _probe_rollout(cfg, steps=12)
    env, net, params, envs, red_ids, red_probs = _probe_setup(cfg)
    inputs = jax.jit(jax.vmap(lambda o, m: policy_input(o, m, cfg.features)))
    apply = jax.jit(net.apply)
    env_step = jax.jit(jax.vmap(env.step))
    obs, state, memory, env_params = envs.obs, envs.env_state, envs.memory, envs.env_params
    fresh = jax.tree.map(lambda m: jnp.broadcast_to(m, (6, *m.shape)), init_memory())
    for t, key in enumerate(jax.random.split(jax.random.key(2), 12)):
        key_act, key_env, key_red = jax.random.split(key, 3)
        logits, value = apply(params, inputs(obs, memory))
        probs = np.asarray(jax.nn.softmax(logits))
        action = sample_action(key_act, logits)
        np.testing.assert_array_equal(traj.actions[t], action)
        np.testing.assert_allclose(traj.values[t], value, rtol=1e-5, atol=1e-6)
        assert np.all(probs[np.arange(6), np.asarray(action)] > 0)
        obs2, state, _, done, info = env_step(
            jax.random.split(key_env, 6), state, action, env_params
        )
        memory = jax.vmap(update_memory)(memory, obs, action)
        _, next_value = apply(params, inputs(info["final_obs"], memory))
        np.testing.assert_allclose(traj.next_values[t], next_value, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(traj.dones[t], done)
        memory = jax.tree.map(
            lambda f, m, d=done: jnp.where(d.reshape(-1, *[1] * (m.ndim - 1)), f, m), fresh, memory
        )
        new_red = sample_red(key_red, red_ids, red_probs, 6)
        env_params = env_params.replace(red_agent=jnp.where(done, new_red, env_params.red_agent))
        obs = obs2
    assert traj.dones.any() and not traj.dones.all()


def test_sample_action_is_the_categorical_distribution():
    logits = jnp.log(jnp.array([0.5, 0.2, 0.0, 0.3]))  # one impossible action
    actions = jax.jit(jax.vmap(sample_action, in_axes=(0, None)))(
        jax.random.split(jax.random.key(0), 200_000), logits
    )
    freq = np.bincount(np.asarray(actions), minlength=4) / 200_000
    assert freq[2] == 0.0
    np.testing.assert_allclose(freq, [0.5, 0.2, 0.0, 0.3], atol=0.005)  # ~4.5 standard errors


def test_sample_action_over_145_actions_crosses_blocks_exactly():
    """The two-level CDF search over the 145-action space (10 blocks of 16, the last one padded):
    frequencies match, impossible actions (including whole blocks and the last action's
    neighbours) are never drawn, and the last action can be."""
    p = np.zeros(145)
    p[[0, 15, 16, 17, 70, 143, 144]] = [0.1, 0.2, 0.05, 0.15, 0.2, 0.1, 0.2]
    logits = jnp.log(jnp.asarray(p, jnp.float32))
    actions = jax.jit(jax.vmap(sample_action, in_axes=(0, None)))(
        jax.random.split(jax.random.key(3), 200_000), logits
    )
    freq = np.bincount(np.asarray(actions), minlength=145) / 200_000
    assert np.all(freq[p == 0] == 0.0)
    np.testing.assert_allclose(freq, p, atol=0.005)
    # A batch of different distributions at once (the rollout's case).
    many = jnp.log(jax.random.dirichlet(jax.random.key(4), jnp.ones(145), (3,)))
    draws = jax.jit(jax.vmap(sample_action, in_axes=(0, None)))(
        jax.random.split(jax.random.key(5), 100_000), many
    )
    for row in range(3):
        freq = np.bincount(np.asarray(draws[:, row]), minlength=145) / 100_000
        np.testing.assert_allclose(freq, np.exp(np.asarray(many[row])), atol=0.006)


@pytest.mark.parametrize("n", [1, 2, 1000, 25_600, 409_600, (1 << 20) + 1])
def test_shuffled_indices_is_a_permutation(n):
    perms = [np.asarray(shuffled_indices(jax.random.key(i), n)) for i in range(3)]
    for p in perms:
        np.testing.assert_array_equal(np.sort(p), np.arange(n))
    if n > 2:
        assert not np.array_equal(perms[0], perms[1])


def test_shuffled_indices_puts_every_element_anywhere_uniformly():
    """Where elements land (and so which minibatch they join) is uniform: a chi-square test of
    the positions of the first, a middle and the last element of 40 over 20,000 shuffles."""
    perms = np.asarray(
        jax.jit(jax.vmap(lambda k: shuffled_indices(k, 40)))(
            jax.random.split(jax.random.key(9), 20_000)
        )
    )
    for element in (0, 17, 39):
        position = np.argmax(perms == element, axis=1)
        counts = np.bincount(position, minlength=40)
        chi2 = float(((counts - 500.0) ** 2 / 500.0).sum())
        assert chi2 < 80.0, (element, chi2)  # 39 dof: P(chi2 > 80) < 1e-4


def test_shuffled_indices_mixes_large_batches_with_many_tied_keys():
    """2^20 samples leave 12 random bits per key (~256 elements share each value): each quarter
    of the indices still lands evenly in each of 4 minibatches (binomial sd ~ 242 per cell)."""
    n = 1 << 20
    perm = np.asarray(shuffled_indices(jax.random.key(11), n))
    minibatch = np.empty(n, np.int64)
    minibatch[perm] = np.arange(n) // (n // 4)
    counts = np.zeros((4, 4), np.int64)
    np.add.at(counts, (np.arange(n) // (n // 4), minibatch), 1)
    assert np.abs(counts - n // 16).max() < 5 * 242, counts


def test_rollout_bootstraps_truncation_from_the_pre_reset_observation():
    cfg = PPOConfig(num_envs=6, max_steps=5, features=("prev_action",), hidden_sizes=(8,))
    traj, _, _ = _probe_rollout(cfg)
    done = traj.dones
    assert done.sum() == 6 * 5 and not traj.terminals.any()
    # An ordinary step bootstraps from the next step's value (same input)...
    cont = ~done[:-1]
    np.testing.assert_allclose(traj.next_values[:-1][cont], traj.values[1:][cont], rtol=1e-5)
    # ...a cut step from V(final_obs), not from the value of the fresh episode's first state.
    assert not np.allclose(traj.next_values[:-1][done[:-1]], traj.values[1:][done[:-1]])
    # Rewards are scaled; episode returns (unscaled) are sums of 5 rewards.
    assert np.all(traj.episode_returns[done] <= 0)
    terminal = _probe_rollout(cfg.replace(treat_truncation_as_terminal=True))[0]
    np.testing.assert_array_equal(terminal.terminals, terminal.dones)


def test_opponent_mixture_is_redrawn_per_episode():
    cfg = PPOConfig(num_envs=16, max_steps=5, hidden_sizes=(8,))
    traj, _, _ = _probe_rollout(cfg)
    reds = traj.red_agents  # (T, N)
    assert set(np.unique(reds)) == {0, 2}
    # Constant within an episode (changes only right after a done step).
    changed = reds[1:] != reds[:-1]
    assert not np.any(changed & ~traj.dones[:-1])
    # Redrawn per episode: some env changes opponent between its episodes.
    assert changed.any()


@pytest.mark.slow
def test_short_training_beats_the_sleeping_defender_by_far():
    """About 1M env steps against B_line; a sleeping blue scores about -1135 (spec §9)."""
    cfg = PPOConfig(
        red_agents=("b_line",),
        features=(),
        num_envs=256,
        num_steps=100,
        total_timesteps=256 * 100 * 40,
        num_seeds=1,
        updates_per_chunk=40,
    )
    result = train(cfg)
    table = evaluate(result, episodes=50, reds=("b_line",), steps=(100,))
    score = table.cells[("b_line", 100)]["mean"]
    assert score > -400, score


def test_init_each_equals_one_init_per_key():
    """``init_each`` (the deadlock-free replacement of a vmapped init) gives exactly the
    per-key initial states."""
    from jaxcage.ppo.networks import init_each

    one = make_init(TINY)
    keys = jax.random.split(jax.random.key(3), 3)
    together = init_each(one, keys)
    for i in range(3):
        alone = jax.jit(one)(keys[i])
        for a, b in zip(jax.tree.leaves(together), jax.tree.leaves(alone), strict=True):
            if jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
                a, b = jax.random.key_data(a), jax.random.key_data(b)
            np.testing.assert_array_equal(np.asarray(a)[i], np.asarray(b))
