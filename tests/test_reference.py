"""The CybORG reference harness and the state / outcome extraction, on CybORG alone.

Tests marked ``parity`` need the CybORG reference; without it they are reported as skipped with the
install commands (set ``JAXCAGE_REQUIRE_CYBORG=1`` to make a missing reference an error, as CI
should).
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from jaxcage.constants import (
    EXPLOIT_NAMES,
    Compromised,
    Decoy,
    Host,
    RedActionType,
    decoy,
    remove,
    restore,
)
from jaxcage.parity.policies import get_policy
from jaxcage.reference import cyborg_env
from jaxcage.reference import extract as X
from jaxcage.reference.cyborg_env import (
    INSTALL_HINT,
    ReferenceNotInstalled,
    load_backend,
    make_cyborg_env,
)

H = Host


# --- without CybORG ------------------------------------------------------------------------------


def test_missing_reference_raises_with_install_commands(monkeypatch):
    real_import = importlib.import_module

    def fake_import(name, *args, **kwargs):
        if name.startswith(("csle_cyborg", "gym_csle_cyborg", "CybORG")):
            raise ModuleNotFoundError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(cyborg_env.importlib, "import_module", fake_import)
    monkeypatch.setattr(cyborg_env, "_BACKEND_CACHE", {})
    for backend in ("auto", "csle", "official"):
        with pytest.raises(ReferenceNotInstalled) as err:
            make_cyborg_env(backend=backend)
        assert isinstance(err.value, ImportError)
        assert 'pip install -e ".[test,cyborg]"' in str(err.value)
        assert "pip install --no-deps gym-csle-cyborg==0.10.1" in str(err.value)
    assert not cyborg_env.reference_available()
    assert "--no-deps" in INSTALL_HINT


@pytest.mark.parametrize(
    ("ports", "options", "top"),
    [
        ((22, 21), ["SSHBruteForce", "FTPDirectoryTraversal"], "FTPDirectoryTraversal"),
        ((3390, 22), ["SSHBruteForce"], "SSHBruteForce"),  # SQLi also needs 80 or 443
        (
            (22, 80, 3390, 443, 25),
            ["HTTPRFI", "HTTPSRFI", "SSHBruteForce", "SQLInjection", "HarakaRCE"],
            "HarakaRCE",
        ),  # User4
        ((445, 139, 135, 3389), ["EternalBlue", "BlueKeep"], "EternalBlue"),  # User2
        ((53, 68), [], None),
    ],
)
def test_exploit_options_follow_the_selector(ports, options, top):
    # ExploitRemoteService.DefaultExploitActionSelector: options in dict order, top = max weight.
    got = X.exploit_options(ports)
    assert [EXPLOIT_NAMES[e] for e in got] == options
    if top is not None:
        assert EXPLOIT_NAMES[X.top_exploit(got)] == top


def test_unknown_backend_is_rejected():
    with pytest.raises(ValueError, match="backend"):
        load_backend("gym")


# --- the environment -----------------------------------------------------------------------------


@pytest.mark.parity
def test_env_api(cyborg):
    with pytest.raises(ValueError, match="red agent"):
        make_cyborg_env(red="killchain")
    env = make_cyborg_env("b_line", max_steps=3)
    obs = env.reset(seed=0)
    assert obs.shape == (52,) and obs.dtype == np.int32 and not obs.any()
    dones = []
    for _ in range(3):
        obs, reward, done, info = env.step(0)
        assert obs.shape == (52,) and set(np.unique(obs)) <= {0, 1}
        assert isinstance(reward, float) and reward <= 0
        assert isinstance(info, dict)
        dones.append(done)
    assert dones == [False, False, True]
    with pytest.raises(ValueError, match="0..144"):
        env.step(145)
    assert env.table_wrapper.__class__.__name__ == "BlueTableWrapper"


@pytest.mark.parity
def test_seeding_makes_episodes_reproducible(cyborg):
    def rollout(seed: int, red: str) -> list[tuple[float, bytes]]:
        env = make_cyborg_env(red, green="random", seed=seed)
        obs = env.reset()
        rng = np.random.default_rng(0)
        out = []
        for _ in range(40):
            obs, reward, _, _ = env.step(get_policy("random").act_numpy(obs, rng))
            out.append((reward, obs.tobytes()))
        return out

    for red in ("b_line", "meander"):
        assert rollout(11, red) == rollout(11, red)
        assert any(rollout(s, red) != rollout(11, red) for s in (12, 13, 14))


@pytest.mark.parity
def test_sleeping_blue_against_b_line_matches_spec(cyborg):
    # SPEC §4.2 [run]: -0.1 once U is privileged, then -1.1, -2.1, -3.1, and -13.1 per step from
    # the first Impact; rewards never improve while Blue sleeps.
    env = make_cyborg_env("b_line", max_steps=100)
    rewards = []
    env.reset(seed=153)
    for _ in range(100):
        rewards.append(env.step(0)[1])
    assert rewards[0] == 0.0
    assert set(rewards) <= {0.0, -0.1, -1.1, -2.1, -3.1, -13.1}
    assert rewards == sorted(rewards, reverse=True)
    assert rewards[-1] == -13.1


@pytest.mark.parity
def test_csle_and_official_cyborg_agree(cyborg):
    # Only where both distributions are importable (the official one needs a checkout of
    # cage-challenge-2 on sys.path and gym): same seeds and Blue actions, same trajectories.
    BOTH = ("csle", "official")
    if not all(cyborg_env.reference_available(b) for b in BOTH):
        pytest.skip("needs both csle-cyborg and the official CybORG package")

    def trajectory(env, seed: int) -> list[tuple[bytes, float]]:
        # Whole episodes one after the other: both engines draw from the one global `random`.
        rng = np.random.default_rng(seed)
        obs = env.reset(seed=seed)
        out = []
        for _ in range(60):
            obs, reward, _, _ = env.step(get_policy("random").act_numpy(obs, rng))
            out.append((obs.tobytes(), reward))
        return out

    for red in ("b_line", "meander"):
        csle, official = (make_cyborg_env(red, green="random", backend=b) for b in BOTH)
        for seed in range(3):
            assert trajectory(csle, seed) == trajectory(official, seed)


# --- extraction ----------------------------------------------------------------------------------


@pytest.mark.parity
def test_initial_state_extraction(cyborg):
    env = make_cyborg_env("b_line", green="random")
    env.reset(seed=5)
    s = X.extract_state(env)
    user0 = np.arange(13) == H.USER0
    np.testing.assert_array_equal(s["red_priv"], user0)
    assert not s["red_user_removable"].any() and not s["red_user_hidden"].any()
    assert not s["malware_file"].any() and not s["decoys"].any()
    assert s["ot_proc_present"] and s["ot_active"] and s["ot_pid_valid"]
    assert not s["ot_service_known"]
    assert not s["compromised"].any()
    assert not s["red_mem_valid"].any() and not s["red_mem_ports"].any()
    np.testing.assert_array_equal(s["known_ip"], user0)
    np.testing.assert_array_equal(s["known_host"], user0)
    np.testing.assert_array_equal(s["known_subnet"], [False, False, True])  # User
    assert not s["red_last_success"] and not s["red_last_dns_ports"]
    assert s["bline_stage"] == 0 and s["bline_user"] == -1 and not s["bline_stage12_built"]
    assert s["time"] == 0


def _run_with_outcomes(env, actions, seed):
    env.reset(seed=seed)
    index = X.episode_index(env)
    out = []
    for a in actions:
        pre = X.snapshot(env, index)
        obs, reward, _, _ = env.step(a)
        out.append((X.read_outcome(env, pre), X.extract_state(env, index), obs, reward))
    return out


@pytest.mark.parity
def test_b_line_kill_chain_is_read_back(cyborg):
    env = make_cyborg_env("b_line")
    steps = _run_with_outcomes(env, [0] * 40, seed=153)
    first, second = steps[0][0], steps[1][0]
    assert first.red_action_type == RedActionType.DISCOVER_REMOTE_SYSTEMS
    assert first.red_target == 2 and first.red_success  # the User subnet
    # Stage 1 draws U among User1..4 exactly once.
    assert second.red_draw_target in (H.USER1, H.USER2, H.USER3, H.USER4)
    assert [o.red_draw_target for o, *_ in steps[2:]] == [None] * 38
    u = second.red_draw_target
    assert all(s["bline_user"] == u for _, s, *_ in steps[1:])
    final = steps[-1][1]
    assert final["bline_stage"] == 14
    assert final["red_priv"][H.OP_SERVER0] >= 1 and final["red_priv"][H.ENTERPRISE2] >= 1
    assert final["ot_service_known"] and not final["ot_proc_present"] and not final["ot_active"]
    assert final["known_ip"][[H.ENTERPRISE0, H.ENTERPRISE1, H.ENTERPRISE2, H.OP_SERVER0]].all()
    assert final["known_subnet"][[0, 2]].all()
    assert final["red_mem_valid"][[u, H.ENTERPRISE2, H.OP_SERVER0]].all()
    assert steps[-1][3] == -13.1
    impacts = [o for o, *_ in steps if o.red_action_type == RedActionType.IMPACT]
    assert impacts and all(o.red_target == H.OP_SERVER0 and o.red_success for o in impacts)


@pytest.mark.parity
def test_draw_outcomes_have_cyborg_frequencies(cyborg):
    # Exploit selection takes the top-weighted option with p=0.75; reverse shells are detected with
    # p=0.95 (ExploitRemoteService.py, ExploitAction.py). Read back over many Meander exploits.
    env = make_cyborg_env("meander", green="random")
    drawn, top, shells, detected, green = 0, 0, 0, 0, 0
    n_steps = 0
    rng = np.random.default_rng(0)
    for seed in range(16):
        # Random Blue actions (with their Restores) make Meander re-exploit hosts.
        for outcome, *_ in _run_with_outcomes(env, rng.integers(0, 145, 100), seed):
            n_steps += 1
            green += outcome.green_scan
            if outcome.exploit_drawn:
                drawn += 1
                top += outcome.exploit_top
                assert outcome.exploit_top == (outcome.exploit_other is None)
            if outcome.detected is not None:
                shells += 1
                detected += outcome.detected
    assert drawn > 150 and abs(top / drawn - 0.75) < 0.1, (drawn, top)
    assert shells > 150 and abs(detected / shells - 0.95) < 0.05, (shells, detected)
    assert abs(green / n_steps - 0.5) < 0.05


@pytest.mark.parity
def test_decoys_restore_and_op_server_quirk_are_read_back(cyborg):
    env = make_cyborg_env("b_line")
    actions = [
        decoy(Decoy.APACHE, H.ENTERPRISE0),
        decoy(Decoy.VSFTPD, H.ENTERPRISE0),
        decoy(Decoy.VSFTPD, H.ENTERPRISE0),  # DecoyVsftpd checks port 21 but opens 80: stacks
        decoy(Decoy.APACHE, H.ENTERPRISE0),  # port 80 taken: fails
        decoy(Decoy.FEMITTER, H.ENTERPRISE0),  # Windows only: fails on Linux
        restore(H.OP_SERVER0),
    ] + [0] * 34
    steps = _run_with_outcomes(env, actions, seed=3)
    s = steps[4][1]
    assert s["decoys"][H.ENTERPRISE0].tolist() == [1, 0, 0, 0, 0, 0, 0, 2]
    assert s["decoys"].sum() == 3
    # SPEC §4.3: after Restore(Op_Server0) the backed-up service has no PID, so Impact can never
    # stop OTService again: at worst -3.1 per step.
    after = [st for _, st, *_ in steps[5:]]
    assert all(not st["ot_pid_valid"] and st["ot_proc_present"] for st in after)
    assert min(r for *_, r in steps) >= -3.1
    assert any(o.red_action_type == RedActionType.IMPACT and o.red_success for o, *_ in steps)


@pytest.mark.parity
def test_remove_clears_detected_user_shells(cyborg):
    # Run Meander with a Blue that sleeps until some host holds a removable shell, then Remove it.
    env = make_cyborg_env("meander")
    for seed in range(20):
        env.reset(seed=seed)
        index = X.episode_index(env)
        for _ in range(60):
            env.step(0)
            s = X.extract_state(env, index)
            hosts = np.flatnonzero(s["red_user_removable"])
            if hosts.size:
                break
        if not hosts.size:
            continue
        h = int(hosts[0])
        assert s["compromised"][h] == Compromised.USER
        pre = X.snapshot(env, index)
        env.step(remove(h))
        outcome = X.read_outcome(env, pre)
        if (
            outcome.red_target == h
            and outcome.red_action_type == RedActionType.EXPLOIT_REMOTE_SERVICE
        ):
            continue  # Red re-exploited h after Blue's Remove: not a clean check
        after = X.extract_state(env, index)
        # Blue acts first, so a PrivilegeEscalate of h in the same step only finds what is left.
        assert after["red_user_removable"][h] == 0
        assert after["red_user_hidden"][h] <= s["red_user_hidden"][h]
        assert after["compromised"][h] == Compromised.UNKNOWN
        return
    pytest.fail("no removable shell appeared in 20 Meander episodes")
