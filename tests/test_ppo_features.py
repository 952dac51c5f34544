"""Policy-input features: what the memory remembers and forgets, and the input layout."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxcage.constants import DECOY_BASE, NUM_BLUE_ACTIONS, OBS_SIZE, RESTORE_BASE, decoy, restore
from jaxcage.ppo import features as F


def test_feature_constants_match_the_environment():
    assert F.NUM_ACTIONS == NUM_BLUE_ACTIONS
    assert F.OBS_SIZE == OBS_SIZE
    assert F.DECOY_BASE == DECOY_BASE and F.RESTORE_BASE == RESTORE_BASE


def test_memory_tracks_decoys_until_restore_and_counts_time():
    update = jax.jit(F.update_memory)
    m = F.init_memory()
    obs = jnp.zeros(52, jnp.int32).at[5].set(1)
    m = update(m, obs, jnp.int32(decoy(2, 7)))  # Haraka on Op_Server0
    m = update(m, obs, jnp.int32(decoy(0, 7)))  # Apache on Op_Server0
    m = update(m, obs, jnp.int32(decoy(6, 1)))  # Tomcat on Enterprise0
    assert int(m.time) == 3 and int(m.prev_action) == decoy(6, 1)
    d = np.asarray(m.decoys)
    assert d[7, 2] and d[7, 0] and d[1, 6] and d.sum() == 3
    m = update(m, obs, jnp.int32(15 + 7))  # Remove keeps decoys (spec §8)
    assert np.asarray(m.decoys).sum() == 3
    m = update(m, obs, jnp.int32(restore(7)))  # Restore wipes that host's decoys
    d = np.asarray(m.decoys)
    assert d.sum() == 1 and d[1, 6]
    np.testing.assert_array_equal(m.prev_obs, obs)


def _activity_obs(scan=(), exploit=()) -> jax.Array:
    """A 52-bit observation with Scan (10) / Exploit (11) Activity on the given hosts."""
    obs = np.zeros((13, 4), np.int32)
    for h in scan:
        obs[h, 0] = 1
    for h in exploit:
        obs[h, :2] = 1
    return jnp.asarray(obs.reshape(-1))


def test_scan_state_remembers_scanned_hosts_and_the_latest_one():
    update = jax.jit(F.update_memory)
    m = F.init_memory()
    m = update(m, _activity_obs(scan=(9,)), jnp.int32(0))  # User0..: host 9 = User1
    assert np.asarray(m.scans).tolist() == [0] * 9 + [2, 0, 0, 0]
    m = update(m, _activity_obs(exploit=(9,)), jnp.int32(0))  # an exploit is not a scan
    assert np.asarray(m.scans).tolist() == [0] * 9 + [2, 0, 0, 0]
    m = update(m, _activity_obs(), jnp.int32(0))  # nothing seen: the latest stays the latest
    assert np.asarray(m.scans)[9] == 2
    m = update(m, _activity_obs(scan=(10, 11)), jnp.int32(0))
    assert np.asarray(m.scans).tolist() == [0] * 9 + [1, 2, 2, 0]
    m = update(m, _activity_obs(scan=(9,)), jnp.int32(0))  # a rescan makes it the latest again
    assert np.asarray(m.scans).tolist() == [0] * 9 + [2, 1, 1, 0]
    x = np.asarray(F.policy_input(_activity_obs(), m, ("scans",)))
    assert x.shape == (52 + 26,)
    bits = x[52:].reshape(13, 2)  # (scanned before, latest) per host
    assert bits[9].tolist() == [1, 1] and bits[10].tolist() == [1, 0] and bits[:9].sum() == 0
    assert np.asarray(F.init_memory().scans).sum() == 0


def test_policy_input_layout():
    m = F.update_memory(F.init_memory(), jnp.ones(52, jnp.int32), jnp.int32(decoy(1, 2)))
    obs = jnp.zeros(52, jnp.int32).at[0].set(1)
    feats = ("prev_action", "prev_obs", "decoys", "time")
    x = np.asarray(F.policy_input(obs, m, feats))
    assert x.shape == (F.input_size(feats),) == (52 + 145 + 52 + 104 + 1,)
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x[:52], np.asarray(obs))
    assert x[52 + decoy(1, 2)] == 1 and x[52:197].sum() == 1
    assert x[197:249].sum() == 52
    assert x[249 + 2 * 8 + 1] == 1 and x[249:353].sum() == 1
    assert x[-1] == np.float32(1 / 100)
    # Plain observation when no feature is selected; zeros (not a one-hot) before any action.
    np.testing.assert_array_equal(F.policy_input(obs, F.init_memory(), ()), np.asarray(obs))
    assert np.asarray(F.policy_input(obs, F.init_memory(), ("prev_action",)))[52:].sum() == 0


def _memories(n: int, key: jax.Array) -> F.PolicyMemory:
    """``n`` memories with every previous action (-1 included) and random decoys and times."""
    k_dec, k_time, k_obs, k_scan = jax.random.split(key, 4)
    return F.PolicyMemory(
        prev_action=jnp.arange(n, dtype=jnp.int32) % (F.NUM_ACTIONS + 1) - 1,
        prev_obs=(jax.random.uniform(k_obs, (n, 52)) < 0.3).astype(jnp.int32),
        decoys=jax.random.uniform(k_dec, (n, 13, 8)) < 0.2,
        time=jax.random.randint(k_time, (n,), 0, 101),
        scans=jax.random.randint(k_scan, (n, 13), 0, 3),
        guess=jnp.arange(n, dtype=jnp.int32) % 4 - 1,
    )


FEATURE_ORDERS = [
    (),
    ("prev_action",),
    ("prev_action", "decoys", "time"),
    ("time", "decoys", "prev_obs", "prev_action"),
    ("prev_action", "decoys", "time", "scans"),
    ("scans", "prev_obs"),
    ("red_guess", "time", "scans"),
]


def test_compact_input_is_the_policy_input_in_bytes():
    mem = _memories(146, jax.random.key(0))
    obs = (jax.random.uniform(jax.random.key(1), (146, 52)) < 0.3).astype(jnp.int32)
    for feats in FEATURE_ORDERS:
        inp = jax.vmap(lambda o, m, f=feats: F.compact_input(o, m, f))(obs, mem)
        assert inp.bits.dtype == jnp.uint8
        n_bits = 52 + sum(F.FEATURE_SIZES[f] for f in feats if f not in ("prev_action", "time"))
        assert inp.bits.shape == (146, n_bits)
        x = F.expand_input(inp, feats)
        assert x.shape == (146, F.input_size(feats)) and x.dtype == jnp.float32
        ref = jax.vmap(lambda o, m, f=feats: F.policy_input(o, m, f))(obs, mem)
        np.testing.assert_array_equal(x, ref)
        np.testing.assert_array_equal(x[:, :52], obs)


def test_first_layer_of_a_compact_input_is_the_dense_product():
    """The trainer's first layer (matmul on the bits + kernel-row lookup for the previous action)
    equals ``policy_input @ kernel``, values and kernel gradients alike, for every feature order
    and every previous action including none (-1)."""
    mem = _memories(292, jax.random.key(2))
    obs = (jax.random.uniform(jax.random.key(3), (292, 52)) < 0.3).astype(jnp.int32)
    for feats in FEATURE_ORDERS:
        inp = jax.vmap(lambda o, m, f=feats: F.compact_input(o, m, f))(obs, mem)
        x = F.expand_input(inp, feats)
        kernel = jax.random.normal(jax.random.key(4), (F.input_size(feats), 16))
        cot = jax.random.normal(jax.random.key(5), (292, 16))

        def dense(k, x=x, cot=cot):
            return jnp.sum((x @ k) * cot)

        def compact(k, inp=inp, feats=feats, cot=cot):
            return jnp.sum(F.first_layer(inp, k, feats) * cot)

        np.testing.assert_allclose(
            F.first_layer(inp, kernel, feats), x @ kernel, rtol=1e-5, atol=1e-5
        )
        np.testing.assert_allclose(
            jax.grad(compact)(kernel), jax.grad(dense)(kernel), rtol=1e-4, atol=1e-4
        )


def test_red_guess_counts_scanned_hosts_at_the_fingerprint_step():
    update = jax.jit(F.update_memory)
    for scans, want in (((), "sleep"), ((9,), "b_line"), ((9, 10), "meander")):
        m = F.init_memory()
        for t in range(F.FINGERPRINT_STEPS):
            assert int(m.guess) == -1
            m = update(m, _activity_obs(scan=scans[t : t + 1]), jnp.int32(0))
        assert F.RED_GUESSES[int(m.guess)] == want
        m = update(m, _activity_obs(scan=(11, 12)), jnp.int32(0))  # latched: scans don't move it
        assert F.RED_GUESSES[int(m.guess)] == want
        bits = np.asarray(F.policy_input(_activity_obs(), m, ("red_guess",)))[52:]
        assert bits.tolist() == [float(g == want) for g in F.RED_GUESSES]
    fresh = F.policy_input(_activity_obs(), F.init_memory(), ("red_guess",))
    assert np.asarray(fresh)[52:].sum() == 0


def test_red_guess_is_right_in_every_episode_under_any_blue_behaviour():
    """In jaxcage (both rule sets), with Blue acting at random, the fingerprint names the red
    agent of every episode: the property the switch defender (jaxcage.switch) relies on."""
    from jaxcage.env import make

    for rules in ("current", "leaderboard"):
        for red in F.RED_GUESSES:
            env, params = make(red, max_steps=100, green_agent="sleep", rules=rules)

            def episode(key, env=env, params=params):
                key, k_reset = jax.random.split(key)
                obs, state = env.reset(k_reset, params)

                def step(carry, k):
                    obs, state, mem = carry
                    k_act, k_env = jax.random.split(k)
                    action = jax.random.randint(k_act, (), 0, NUM_BLUE_ACTIONS)
                    obs2, state, _, _, _ = env.step(k_env, state, action, params)
                    return (obs2, state, F.update_memory(mem, obs, action)), None

                keys = jax.random.split(key, F.FINGERPRINT_STEPS + 2)
                (_, _, mem), _ = jax.lax.scan(step, (obs, state, F.init_memory()), keys)
                return mem.guess

            guesses = jax.jit(jax.vmap(episode))(jax.random.split(jax.random.key(3), 300))
            assert np.all(np.asarray(guesses) == F.RED_GUESSES.index(red)), (rules, red)
