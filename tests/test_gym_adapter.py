"""The gymnasium adapters: spaces, NumPy contract, seeding, auto-reset modes, input validation."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode
from gymnasium.wrappers.vector import RecordEpisodeStatistics

from jaxcage.gym_adapter import (
    CageGymEnv,
    CageVectorEnv,
    cyborg_action_space,
    cyborg_observation_space,
)

# One batch size everywhere: adapters of equal size and auto-reset mode share one compilation.
N = 64
MAX_STEPS = 100


def _rollout(envs: CageVectorEnv, steps: int, seed: int, action_seed: int = 1):
    """Random-action rollout; returns stacked (obs, rewards, truncations) and the last infos."""
    rng = np.random.default_rng(action_seed)
    obs, _ = envs.reset(seed=seed)
    all_obs, all_rew, all_trunc = [obs], [], []
    infos: dict = {}
    for _ in range(steps):
        obs, rew, _, trunc, infos = envs.step(rng.integers(0, 145, size=envs.num_envs))
        all_obs.append(obs)
        all_rew.append(rew)
        all_trunc.append(trunc)
    return np.stack(all_obs), np.stack(all_rew), np.stack(all_trunc), infos


@pytest.fixture(scope="module")
def envs() -> CageVectorEnv:
    return CageVectorEnv(N, "b_line", max_steps=MAX_STEPS)


def test_spaces_mirror_cyborg_challenge_wrapper(envs):
    assert envs.single_observation_space == gymnasium.spaces.Box(
        -1.0, 1.0, shape=(52,), dtype=np.float32
    )
    assert envs.single_action_space == gymnasium.spaces.Discrete(145)
    assert envs.observation_space.shape == (N, 52)
    assert envs.action_space.shape == (N,)
    assert envs.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP


@pytest.mark.parity
def test_spaces_equal_cyborg_spaces():
    reference = pytest.importorskip("jaxcage.reference.cyborg_env")
    if not reference.reference_available():
        pytest.skip("CybORG reference not installed")
    wrapper = reference.make_cyborg_env(red="b_line", seed=0).wrapper
    assert wrapper.observation_space == cyborg_observation_space()
    assert wrapper.action_space == cyborg_action_space()


def test_reset_and_step_shapes_dtypes(envs):
    obs, infos = envs.reset(seed=0)
    assert obs.shape == (N, 52) and obs.dtype == np.float32 and infos == {}
    assert envs.observation_space.contains(obs)
    obs, rew, term, trunc, infos = envs.step(envs.action_space.sample())
    assert isinstance(obs, np.ndarray) and obs.shape == (N, 52) and obs.dtype == np.float32
    assert rew.shape == (N,) and rew.dtype == np.float64
    assert term.shape == trunc.shape == (N,) and term.dtype == trunc.dtype == np.bool_
    assert set(np.unique(obs)) <= {0.0, 1.0}
    assert not term.any() and not trunc.any() and infos == {}
    # Rewards are CybORG's tenths exactly.
    np.testing.assert_array_equal(rew, np.round(rew, 1))


def test_same_seed_same_trajectory_different_seed_differs(envs):
    obs_a, rew_a, _, _ = _rollout(envs, 40, seed=3)
    obs_b, rew_b, _, _ = _rollout(envs, 40, seed=3)
    obs_c, rew_c, _, _ = _rollout(envs, 40, seed=4)
    np.testing.assert_array_equal(obs_a, obs_b)
    np.testing.assert_array_equal(rew_a, rew_b)
    assert not (np.array_equal(obs_a, obs_c) and np.array_equal(rew_a, rew_c))


def test_same_step_autoreset_and_final_obs(envs):
    obs, rew, trunc, infos = _rollout(envs, MAX_STEPS + 1, seed=0)
    # Truncation exactly at step 100 in every env, never before; terminations never.
    assert trunc[MAX_STEPS - 1].all() and not trunc[: MAX_STEPS - 1].any()
    assert not trunc[MAX_STEPS].any()
    # The returned obs at step 100 is the fresh episode's (52 zeros) ...
    np.testing.assert_array_equal(obs[MAX_STEPS], 0.0)
    # ... and the last step's infos (step 101) carry no final_obs.
    assert "final_obs" not in infos


def test_final_obs_present_at_episode_end():
    envs = CageVectorEnv(N, "b_line", max_steps=MAX_STEPS)
    envs.reset(seed=0)
    for _ in range(MAX_STEPS - 1):
        _, _, _, trunc, infos = envs.step(np.zeros(N, dtype=np.int64))
        assert "final_obs" not in infos and not trunc.any()
    obs, _, term, trunc, infos = envs.step(np.zeros(N, dtype=np.int64))
    assert trunc.all() and not term.any()
    assert infos["_final_obs"].all()
    final = infos["final_obs"]
    assert final.shape == (N, 52) and final.dtype == np.float32
    # B_line has been on the network for 100 steps: the last observation is not empty.
    assert final.any(axis=1).all()
    np.testing.assert_array_equal(obs, 0.0)


def test_next_step_autoreset():
    envs = CageVectorEnv(N, "b_line", max_steps=MAX_STEPS, autoreset_mode="next_step")
    assert envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    envs.reset(seed=0)
    zeros = np.zeros(N, dtype=np.int64)
    for _ in range(MAX_STEPS):
        obs, rew, _, trunc, infos = envs.step(zeros)
    # The step that ends the episode returns its last observation, no final_obs needed.
    assert trunc.all() and obs.any(axis=1).all() and "final_obs" not in infos
    # The next step only resets: action ignored, reward 0, not done, observation of a new episode.
    obs, rew, term, trunc, _ = envs.step(np.full(N, 144))
    np.testing.assert_array_equal(obs, 0.0)
    np.testing.assert_array_equal(rew, 0.0)
    assert not trunc.any() and not term.any()


def test_disabled_autoreset_with_reset_mask():
    envs = CageVectorEnv(N, "b_line", max_steps=5, autoreset_mode=AutoresetMode.DISABLED)
    envs.reset(seed=0)
    for _ in range(5):
        obs, _, _, trunc, _ = envs.step(np.zeros(N, dtype=np.int64))
    assert trunc.all()
    mask = np.arange(N) % 2 == 0
    obs_reset, _ = envs.reset(options={"reset_mask": mask})
    np.testing.assert_array_equal(obs_reset[mask], 0.0)
    np.testing.assert_array_equal(obs_reset[~mask], obs[~mask])
    _, _, _, trunc, _ = envs.step(np.zeros(N, dtype=np.int64))
    # Reset envs are at step 1 of 5; the others stay past their limit.
    np.testing.assert_array_equal(trunc, ~mask)


@pytest.mark.parametrize("mode", [AutoresetMode.SAME_STEP, AutoresetMode.NEXT_STEP])
def test_sleeping_blue_vs_bline_return_near_cyborg(mode):
    # CybORG: a sleeping Blue scores -1135.0 (std 19.0) over 100 steps against B_line (200 eps).
    n = N
    envs = RecordEpisodeStatistics(
        CageVectorEnv(n, "b_line", max_steps=MAX_STEPS, autoreset_mode=mode), buffer_length=n
    )
    envs.reset(seed=7)
    steps = MAX_STEPS + (1 if mode == AutoresetMode.NEXT_STEP else 0)
    for _ in range(steps):
        envs.step(np.zeros(n, dtype=np.int64))
    returns = np.asarray(envs.return_queue)
    assert len(returns) == n
    assert np.all(np.asarray(envs.length_queue) == MAX_STEPS)
    se = np.hypot(19.0 / np.sqrt(200), returns.std() / np.sqrt(n))
    assert abs(returns.mean() - (-1135.0)) < 4 * se, returns.mean()


def test_per_env_red_agent_mixture_matches_homogeneous_runs(envs):
    reds = ["b_line", "meander"] * (N // 2)
    mixed, _, _, _ = _rollout(CageVectorEnv(N, reds), 30, seed=5)
    bline, _, _, _ = _rollout(envs, 30, seed=5)
    meander, _, _, _ = _rollout(CageVectorEnv(N, "meander"), 30, seed=5)
    # Env i of the mixture gets the same key as env i of a homogeneous batch.
    np.testing.assert_array_equal(mixed[:, 0::2], bline[:, 0::2])
    np.testing.assert_array_equal(mixed[:, 1::2], meander[:, 1::2])
    assert not np.array_equal(bline[:, 1::2], meander[:, 1::2])


def test_sleep_red_never_costs_anything():
    _, rew, _, _ = _rollout(CageVectorEnv(N, "sleep"), 30, seed=0)
    # Only Blue's own Restore actions (-1) can cost anything against a sleeping Red.
    assert set(np.unique(rew)) <= {0.0, -1.0}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_envs": 0}, "num_envs"),
        ({"num_envs": 2.0}, "num_envs"),
        ({"num_envs": 2, "red_agent": "nobody"}, "unknown red agent"),
        ({"num_envs": 2, "red_agent": ["b_line"]}, "sequence of num_envs=2"),
        ({"num_envs": 2, "green_agent": "purple"}, "unknown green agent"),
        ({"num_envs": 2, "max_steps": 0}, "max_steps"),
        ({"num_envs": 2, "autoreset_mode": "sometimes"}, "autoreset_mode"),
    ],
)
def test_invalid_construction_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CageVectorEnv(**kwargs)


@pytest.mark.parametrize(
    ("actions", "match"),
    [
        (np.zeros(N + 1, dtype=np.int64), "shape"),
        (np.zeros((N, 1), dtype=np.int64), "shape"),
        (np.full(N, 145), "0..144"),
        (np.full(N, -1), "0..144"),
        (np.zeros(N, dtype=np.float32), "integers"),
        (np.zeros(N, dtype=bool), "integers"),
    ],
)
def test_invalid_actions_raise(envs, actions, match):
    envs.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        envs.step(actions)


def test_step_before_reset_and_bad_seed_raise():
    envs = CageVectorEnv(2)
    with pytest.raises(RuntimeError, match="reset"):
        envs.step(np.zeros(2, dtype=np.int64))
    with pytest.raises(ValueError, match="seed"):
        envs.reset(seed=-1)
    with pytest.raises(ValueError, match="reset_mask"):
        envs.reset(seed=0, options={"reset_mask": np.ones(3, dtype=bool)})


def test_single_env_passes_gymnasium_check_env():
    check_env(CageGymEnv("b_line"), skip_render_check=True)


def test_single_env_episode():
    env = CageGymEnv("b_line", max_steps=MAX_STEPS)
    obs, info = env.reset(seed=0)
    assert obs.shape == (52,) and obs.dtype == np.float32 and info == {}
    total = 0.0
    for t in range(MAX_STEPS):
        obs, reward, terminated, truncated, info = env.step(0)
        total += reward
        assert isinstance(reward, float) and reward == info["reward_tenths"] / 10
        assert terminated is False and truncated is (t == MAX_STEPS - 1)
        assert env.observation_space.contains(obs)
    # One sleeping-Blue episode against B_line: CybORG's mean -1135, std 19.
    assert -1135.0 - 6 * 19.0 < total < -1135.0 + 6 * 19.0
    # Same seed, same episode; NumPy scalar and 1-element actions are accepted.
    env.reset(seed=0)
    again = sum(env.step(np.int64(0))[1] for _ in range(MAX_STEPS // 2))
    again += sum(env.step(np.array([0]))[1] for _ in range(MAX_STEPS // 2))
    assert again == pytest.approx(total)


def test_single_env_invalid_action_raises():
    env = CageGymEnv("meander")
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    env.reset(seed=0)
    for bad, match in [(145, "0..144"), (-1, "0..144"), (1.5, "integers"), ([0, 1], "single")]:
        with pytest.raises(ValueError, match=match):
            env.step(bad)
    with pytest.raises(ValueError, match="render_mode"):
        CageGymEnv(render_mode="human")


def test_registered_ids():
    env = gymnasium.make("jaxcage/Cage2-Meander-v0", max_steps=30)
    assert isinstance(env.unwrapped, CageGymEnv)
    assert int(env.unwrapped.params.max_steps) == 30
    env.reset(seed=0)
    env.step(0)
    envs = gymnasium.make_vec("jaxcage/Cage2-BLine-v0", num_envs=N, max_steps=30)
    assert isinstance(envs.unwrapped, CageVectorEnv) and envs.num_envs == N
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (N, 52)
    assert envs.step(np.zeros(N, dtype=np.int64))[0].shape == (N, 52)
