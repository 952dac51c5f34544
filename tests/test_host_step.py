"""The packed host-step path: layouts round-trip, and the Gymnasium adapters' trajectories equal
``CageEnv``'s for the same keys and actions (single env, and the vector env in each auto-reset
mode); ``HostPolicy`` equals the unpacked policy loop."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from jaxcage.env import CageEnv, make_params
from jaxcage.gym_adapter import CageGymEnv, CageVectorEnv
from jaxcage.host_step import FlatLayout, HostPolicy

ENV = CageEnv()
MAX_STEPS = 5  # short episodes: every trajectory below crosses episode boundaries
N = 4


def test_flat_layout_round_trip_batched_and_unbatched():
    tree = {
        "b": jnp.array([True, False, True]),
        "i8": jnp.array([-3, 7], dtype=jnp.int8),
        "i": jnp.array([[1, -2], [3, 2**31 - 1]], dtype=jnp.int32),
        "u": jnp.array([0xFFFFFFFF, 5], dtype=jnp.uint32),
        "f": jnp.float32(-0.1),
    }
    layout = FlatLayout(tree)
    assert layout.size == 3 + 2 + 4 + 2 + 1
    flat = layout.pack(tree)
    assert flat.shape == (layout.size,) and flat.dtype == jnp.int32
    back = layout.unpack(flat)
    for name in tree:
        assert back[name].dtype == tree[name].dtype
        np.testing.assert_array_equal(back[name], tree[name])
    batched = jax.tree.map(lambda x: jnp.stack([x, x]), tree)
    flat2 = layout.pack(batched, batch_dims=1)
    assert flat2.shape == (2, layout.size)
    np.testing.assert_array_equal(layout.unpack(flat2)["u"], batched["u"])


def test_flat_layout_rejects_unsupported_dtypes():
    with pytest.raises(ValueError, match="cannot hold"):
        FlatLayout({"x": np.zeros(3, np.float64)})


def test_single_env_trajectory_equals_cage_env_step_env():
    params = make_params("meander", max_steps=MAX_STEPS)
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 145, size=3 * MAX_STEPS)
    env = CageGymEnv("meander", max_steps=MAX_STEPS)
    step_env = jax.jit(ENV.step_env)
    key = jax.random.key(11)
    obs, _ = env.reset(seed=11)
    key, _ = jax.random.split(key)  # reset consumes one split (its state is key-independent)
    _, state = ENV.reset(key, params)
    np.testing.assert_array_equal(obs, 0.0)
    for t, action in enumerate(actions):
        if t and t % MAX_STEPS == 0:  # a new episode, same key stream
            obs, _ = env.reset()
            key, _ = jax.random.split(key)
            _, state = ENV.reset(key, params)
        key, key_step = jax.random.split(key)
        ref_obs, state, ref_reward, ref_done, info = step_env(key_step, state, int(action), params)
        obs, reward, terminated, truncated, got = env.step(int(action))
        np.testing.assert_array_equal(obs, np.asarray(ref_obs, np.float32))
        assert reward == float(ref_reward) and terminated is False
        assert truncated is bool(ref_done)
        assert got == {
            "reward_tenths": int(info["reward_tenths"]),
            "red_action": int(info["red_action"]),
        }


def _reference_vector(mode: AutoresetMode, seed: int, actions: np.ndarray):
    """The vector env's documented semantics, written against ``CageEnv`` directly."""
    params = make_params("b_line", max_steps=MAX_STEPS)
    key = jax.random.key(seed)
    key, _ = jax.random.split(key)
    _, state = jax.vmap(ENV.reset, in_axes=(0, None))(jax.random.split(key, N), params)
    step = jax.jit(jax.vmap(ENV.step, in_axes=(0, 0, 0, None)))
    step_env = jax.jit(jax.vmap(ENV.step_env, in_axes=(0, 0, 0, None)))
    pending = np.zeros(N, dtype=bool)
    out = []
    for acts in actions:
        key, key_step = jax.random.split(key)
        keys = jax.random.split(key_step, N)
        acts = jnp.asarray(acts, jnp.int32)
        if mode == AutoresetMode.SAME_STEP:
            obs, state, _, done, info = step(keys, state, acts, params)
            reward = np.asarray(info["reward_tenths"]) / 10.0
            final = np.asarray(info["final_obs"], np.float32)
        else:
            obs, nxt, _, done, info = step_env(keys, state, acts, params)
            obs, done = np.asarray(obs), np.asarray(done)
            reward = np.asarray(info["reward_tenths"]) / 10.0
            if mode == AutoresetMode.NEXT_STEP:
                fresh = jax.tree.map(
                    lambda x: jnp.broadcast_to(x, (N, *x.shape)), ENV.reset(key, params)[1]
                )
                nxt = jax.tree.map(
                    lambda r, s, p=pending: jnp.where(p.reshape(-1, *([1] * (s.ndim - 1))), r, s),
                    fresh,
                    nxt,
                )
                obs = np.where(pending[:, None], 0, obs)
                reward = np.where(pending, 0.0, reward)
                done = done & ~pending
                pending = done.copy()
            state = nxt
            final = None
        out.append(
            (np.asarray(obs, np.float32), np.asarray(reward, np.float64), np.asarray(done), final)
        )
    return out


@pytest.mark.slow
@pytest.mark.parametrize("packed", [True, False], ids=["packed_state", "state_leaves"])
@pytest.mark.parametrize("mode", list(AutoresetMode))
def test_vector_env_trajectory_equals_cage_env(mode, packed, monkeypatch):
    """Both carry layouts (one packed buffer for small batches, the state's leaves for large
    ones: ``PACKED_MAX_ENVS``) step the trajectories of ``CageEnv``."""
    from jaxcage import gym_adapter

    monkeypatch.setattr(gym_adapter, "PACKED_MAX_ENVS", N if packed else 0)
    rng = np.random.default_rng(1)
    actions = rng.integers(0, 145, size=(2 * MAX_STEPS + 2, N))
    envs = CageVectorEnv(N, "b_line", max_steps=MAX_STEPS, autoreset_mode=mode)
    carried = envs._blank
    assert (isinstance(carried, np.ndarray) and carried.ndim == 2) == packed
    obs, _ = envs.reset(seed=5)
    np.testing.assert_array_equal(obs, 0.0)
    reference = _reference_vector(mode, 5, actions)
    for acts, (ref_obs, ref_reward, ref_done, ref_final) in zip(actions, reference, strict=True):
        obs, reward, terminated, truncated, infos = envs.step(acts)
        np.testing.assert_array_equal(obs, ref_obs)
        np.testing.assert_array_equal(reward, ref_reward)
        np.testing.assert_array_equal(truncated, ref_done)
        assert not terminated.any()
        if ref_final is not None and ref_done.any():
            np.testing.assert_array_equal(infos["final_obs"], ref_final)
            np.testing.assert_array_equal(infos["_final_obs"], ref_done)
        else:
            assert "final_obs" not in infos
        if mode == AutoresetMode.DISABLED and truncated.all():
            break  # past the limit a DISABLED env keeps stepping; the reference does the same


def test_host_policy_equals_unpacked_loop():
    def act_fn(obs, memory, key):
        noise = jax.random.uniform(key, (52,))
        action = jnp.argmax(obs + noise + memory["count"]).astype(jnp.int32)
        return action, {"count": memory["count"] + 1, "last": action}

    init = {"count": jnp.int32(0), "last": jnp.int32(-1)}
    policy = HostPolicy(act_fn, init, jax.random.key(3))
    jitted = jax.jit(act_fn)
    key, memory = jax.random.key(3), init
    rng = np.random.default_rng(2)
    for t in range(12):
        if t == 6:
            policy.reset()
            memory = init
        obs = rng.integers(0, 2, size=52)
        key, sub = jax.random.split(key)
        ref, memory = jitted(jnp.asarray(obs, jnp.int32), memory, sub)
        assert policy.act(obs) == int(ref)
    assert int(policy.memory["count"]) == 6
    with pytest.raises(ValueError, match="shape"):
        policy.act(np.zeros(51))


_INLINE_ROLLOUT = """
import json, os, sys
os.environ.pop("NPROC", None)
from jaxcage.host_step import inline_cpu_runtime, inline_cpu_runtime_active
assert not inline_cpu_runtime_active()
assert inline_cpu_runtime() is True
import jax
from jaxcage.gym_adapter import CageGymEnv
env = CageGymEnv("b_line", max_steps=7)
obs, _ = env.reset(seed=3)
rows = [obs.tolist()]
for t in range(20):
    obs, r, _, trunc, _ = env.step((t * 37) % 145)
    rows.append(obs.tolist() + [r])
    if trunc:
        obs, _ = env.reset()
        rows.append(obs.tolist())
print(json.dumps({
    "rows": rows,
    "nproc": os.environ["NPROC"],
    "async": bool(jax.config.values["jax_cpu_enable_async_dispatch"]),
    "cpus": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
}))
"""


def _rollout_here() -> list[list[float]]:
    env = CageGymEnv("b_line", max_steps=7)
    obs, _ = env.reset(seed=3)
    rows = [obs.tolist()]
    for t in range(20):
        obs, r, _, trunc, _ = env.step((t * 37) % 145)
        rows.append([*obs.tolist(), r])
        if trunc:
            obs, _ = env.reset()
            rows.append(obs.tolist())
    return rows


def test_inline_cpu_runtime_same_trajectories_in_a_fresh_process():
    """The one-thread runtime is a speed setting only: a fresh process that switches it on
    first steps the same trajectory, and the switch took effect there."""
    import json
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", _INLINE_ROLLOUT], capture_output=True, text=True, check=True
    )
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["nproc"] == "1" and got["async"] is False
    if got["cpus"] is not None:
        assert len(got["cpus"]) == 1  # pinned to one core (Linux)
    assert got["rows"] == _rollout_here()


def test_inline_cpu_runtime_refuses_once_the_backend_started(monkeypatch):
    from jaxcage.host_step import inline_cpu_runtime, inline_cpu_runtime_active

    monkeypatch.delenv("NPROC", raising=False)
    jnp.zeros(1).block_until_ready()  # the backend has started
    assert not inline_cpu_runtime_active()
    with pytest.raises(RuntimeError, match="before JAX's first computation"):
        inline_cpu_runtime()
    assert inline_cpu_runtime(strict=False) is False
    assert "NPROC" not in os.environ
