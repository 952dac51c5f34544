"""API contract of the environment: shapes, dtypes, jit/vmap, retracing, determinism, auto-reset,
input validation."""

from __future__ import annotations

import subprocess
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxcage
from jaxcage.constants import BLUE_ACTION_NAMES, NUM_BLUE_ACTIONS, OBS_SIZE
from jaxcage.env import make_params

RED_AGENTS = ["b_line", "meander", "sleep"]


def _rollout_python(env, params, key, actions):
    obs, state = env.reset(key, params)
    out = []
    for t, a in enumerate(actions):
        obs, state, r, d, info = env.step(jax.random.fold_in(key, t), state, int(a), params)
        out.append((np.asarray(obs), float(r), bool(d)))
    return out


@pytest.mark.parametrize("red", RED_AGENTS)
def test_shapes_dtypes_and_spaces(red):
    env, params = jaxcage.make(red, max_steps=30)
    key = jax.random.key(0)
    obs, state = env.reset(key, params)
    assert obs.shape == (OBS_SIZE,) and obs.dtype == jnp.int32
    assert not obs.any(), "reset observation is 52 zeros (ChallengeWrapper.reset)"
    assert env.action_space(params).n == 145 == NUM_BLUE_ACTIONS
    assert env.observation_space(params).shape == (52,)
    for t in range(5):
        action = env.action_space(params).sample(jax.random.fold_in(key, t))
        assert bool(env.action_space(params).contains(action))
        obs, state, reward, done, info = env.step(
            jax.random.fold_in(key, 100 + t), state, action, params
        )
        assert obs.shape == (52,) and obs.dtype == jnp.int32
        assert bool(env.observation_space(params).contains(obs))
        assert reward.shape == () and reward.dtype == jnp.float32
        assert done.shape == () and done.dtype == jnp.bool_
        assert info["final_obs"].shape == (52,)
        assert info["reward_tenths"].dtype == jnp.int32
        chex.assert_tree_all_finite(jax.tree.map(lambda x: x.astype(jnp.float32), state))
    for leaf in jax.tree.leaves(state):
        assert isinstance(leaf, jax.Array)
        assert not getattr(leaf, "weak_type", False), "no weakly typed leaves in the state"


def test_no_retracing_across_max_steps_and_red_agents():
    env = jaxcage.CageEnv()

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(key, state, action, params):
        return env.step(key, state, action, params)

    key = jax.random.key(0)
    for red in RED_AGENTS:
        for max_steps in (30, 50, 100):
            params = make_params(red, max_steps=max_steps)
            for green in ("sleep", "random"):
                params = make_params(red, max_steps=max_steps, green_agent=green)
                _, state = env.reset(key, params)
                step(key, state, jnp.int32(3), params)
    chex.clear_trace_counter()


def test_done_and_auto_reset_at_max_steps():
    env, params = jaxcage.make("b_line", max_steps=30)
    key = jax.random.key(1)
    obs, state = env.reset(key, params)
    step = jax.jit(env.step)
    for t in range(30):
        obs, state, reward, done, info = step(jax.random.fold_in(key, t), state, 0, params)
        assert bool(done) == (t == 29)
        assert bool(info["truncated"]) == bool(done)
        assert not bool(info["terminated"])
    # The returned obs/state belong to a fresh episode; final_obs is the last real observation.
    assert int(state.time) == 0
    assert not np.asarray(obs).any()
    assert np.asarray(info["final_obs"]).any(), "B_line has left traces by step 30"
    assert int(state.bline_stage) == 0 and int(state.bline_user) == -1


def test_determinism_and_key_sensitivity():
    env, params = jaxcage.make("meander", max_steps=50)
    actions = np.random.default_rng(0).integers(0, 145, size=50)
    a = _rollout_python(env, params, jax.random.key(7), actions)
    b = _rollout_python(env, params, jax.random.key(7), actions)
    c = _rollout_python(env, params, jax.random.key(8), actions)
    assert all(np.array_equal(x[0], y[0]) and x[1] == y[1] for x, y in zip(a, b, strict=True))
    assert any(not np.array_equal(x[0], y[0]) or x[1] != y[1] for x, y in zip(a, c, strict=True))


def test_vmap_equals_stacked_single_steps():
    env = jaxcage.CageEnv()
    reds = ["b_line", "meander", "sleep", "b_line"]
    params = jax.tree.map(lambda *x: jnp.stack(x), *[make_params(r) for r in reds])
    keys = jax.random.split(jax.random.key(3), 4)
    obs, states = jax.vmap(env.reset)(keys, params)
    vstep = jax.jit(jax.vmap(env.step))
    sstep = jax.jit(env.step)
    singles = [jax.tree.map(lambda x, i=i: x[i], states) for i in range(4)]
    rng = np.random.default_rng(0)
    for t in range(40):
        actions = jnp.asarray(rng.integers(0, 145, size=4), dtype=jnp.int32)
        step_keys = jax.random.split(jax.random.fold_in(keys[0], t), 4)
        vobs, states, vr, vd, _ = vstep(step_keys, states, actions, params)
        for i in range(4):
            p_i = jax.tree.map(lambda x, i=i: x[i], params)
            sobs, singles[i], sr, sd, _ = sstep(step_keys[i], singles[i], actions[i], p_i)
            np.testing.assert_array_equal(np.asarray(vobs[i]), np.asarray(sobs))
            assert float(vr[i]) == float(sr) and bool(vd[i]) == bool(sd)
    for i in range(4):
        chex.assert_trees_all_equal(jax.tree.map(lambda x, i=i: x[i], states), singles[i])


def test_scan_rollout_equals_python_loop():
    env, params = jaxcage.make("b_line", max_steps=100)
    key = jax.random.key(11)
    actions = jnp.asarray(np.random.default_rng(1).integers(0, 145, size=60), dtype=jnp.int32)

    def scan_rollout(key):
        obs, state = env.reset(key, params)

        def body(state, xs):
            t, a = xs
            obs, state, r, d, _ = env.step(jax.random.fold_in(key, t), state, a, params)
            return state, (obs, r)

        _, (obs_seq, rewards) = jax.lax.scan(body, state, (jnp.arange(60), actions))
        return obs_seq, rewards

    obs_seq, rewards = jax.jit(scan_rollout)(key)
    loop = _rollout_python(env, params, key, np.asarray(actions))
    np.testing.assert_array_equal(np.asarray(obs_seq), np.stack([x[0] for x in loop]))
    np.testing.assert_array_equal(np.asarray(rewards), np.array([x[1] for x in loop], np.float32))


def test_reward_is_cyborg_rounded_value():
    env, params = jaxcage.make("b_line", max_steps=100)
    key = jax.random.key(0)
    _, state = env.reset(key, params)
    for t in range(40):
        _, state, reward, _, info = env.step(jax.random.fold_in(key, t), state, 0, params)
        assert round(float(reward), 1) == int(info["reward_tenths"]) / 10


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: jaxcage.make("bline2"), "unknown red agent"),
        (lambda: jaxcage.make("b_line", max_steps=0), "max_steps must be positive"),
        (lambda: jaxcage.make("b_line", max_steps=-5), "max_steps must be positive"),
        (lambda: jaxcage.make("b_line", max_steps=2.5), "max_steps must be a positive integer"),
        (lambda: jaxcage.make("b_line", green_agent="chatty"), "unknown green agent"),
    ],
)
def test_bad_construction_raises_clear_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize("action", [-1, 145, 1000])
def test_bad_python_action_raises_before_compiling(action):
    env, params = jaxcage.make("b_line")
    obs, state = env.reset(jax.random.key(0), params)
    with pytest.raises(ValueError, match="blue action id must be in 0..144"):
        env.step(jax.random.key(0), state, action, params)


def test_out_of_range_traced_action_acts_as_sleep():
    env, params = jaxcage.make("sleep")
    _, state = env.reset(jax.random.key(0), params)
    step = jax.jit(env.step)
    _, s_bad, r_bad, _, _ = step(jax.random.key(0), state, jnp.int32(999), params)
    _, s_sleep, r_sleep, _, _ = step(jax.random.key(0), state, jnp.int32(0), params)
    chex.assert_trees_all_equal(s_bad, s_sleep)
    assert float(r_bad) == float(r_sleep) == 0.0


def test_action_names_follow_cyborg_order():
    assert BLUE_ACTION_NAMES[0] == "Sleep" and BLUE_ACTION_NAMES[1] == "Monitor"
    assert BLUE_ACTION_NAMES[2] == "Analyse Defender"
    assert BLUE_ACTION_NAMES[9] == "Analyse Op_Server0"
    assert BLUE_ACTION_NAMES[15] == "Remove Defender"
    assert BLUE_ACTION_NAMES[28] == "DecoyApache Defender"
    assert BLUE_ACTION_NAMES[41 + 8] == "DecoyFemitter User0"
    assert BLUE_ACTION_NAMES[119 + 12] == "DecoyVsftpd User4"
    assert BLUE_ACTION_NAMES[132] == "Restore Defender"
    assert BLUE_ACTION_NAMES[139] == "Restore Op_Server0"
    assert BLUE_ACTION_NAMES[144] == "Restore User4"


def test_runs_with_x64_enabled():
    # x64 changes default dtypes; the env must keep its explicit ones. Run in a fresh interpreter.
    code = (
        "import jax; jax.config.update('jax_enable_x64', True)\n"
        "import jax.numpy as jnp, jaxcage\n"
        "env, p = jaxcage.make('meander', max_steps=20)\n"
        "o, s = env.reset(jax.random.key(0), p)\n"
        "step = jax.jit(env.step)\n"
        "for t in range(25):\n"
        "    o, s, r, d, i = step(jax.random.key(t), s, t % 145, p)\n"
        "assert o.dtype == jnp.int32 and r.dtype == jnp.float32, (o.dtype, r.dtype)\n"
        "assert s.red_priv.dtype == jnp.int32\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")
