"""Blue actions on hand-built states: exact state, observation and reward deltas."""

from __future__ import annotations

import chex
import numpy as np
import pytest
from envtools import H, compromised, host_values, make_state, obs_rows, red_at, step

from jaxcage import constants as C
from jaxcage.constants import HOST_NAMES, Compromised, Decoy
from jaxcage.state import init_state

# Spec §8 compatibility matrix (confirmed by running CybORG): which decoys can be placed on a
# fresh host. Vsftpd stacks without limit on every Linux host.
DECOY_TABLE = {
    "Defender": "Apache Haraka Tomcat Vsftpd",
    "Enterprise0": "Apache Haraka Tomcat Vsftpd",
    "Enterprise1": "Femitter",
    "Enterprise2": "Femitter",
    "Op_Host0": "Apache Haraka Tomcat Vsftpd",
    "Op_Host1": "Apache Haraka Tomcat Vsftpd",
    "Op_Host2": "Apache Haraka Tomcat Vsftpd",
    "Op_Server0": "Apache Haraka Tomcat Vsftpd",
    "User0": "Apache Smss Svchost Tomcat",
    "User1": "Apache Smss Svchost Tomcat",
    "User2": "Apache Femitter SSHD Tomcat",
    "User3": "SSHD Vsftpd",
    "User4": "Vsftpd",
}
KIND = {
    "Apache": Decoy.APACHE,
    "Femitter": Decoy.FEMITTER,
    "Haraka": Decoy.HARAKA_SMPT,
    "Smss": Decoy.SMSS,
    "SSHD": Decoy.SSHD,
    "Svchost": Decoy.SVCHOST,
    "Tomcat": Decoy.TOMCAT,
    "Vsftpd": Decoy.VSFTPD,
}


def test_sleep_and_monitor_are_identical_no_ops():
    state = red_at("User2", priv=1, malware_file={"User2": True}, compromised={"User2": 3})
    s_sleep, o_sleep, r_sleep, _ = step(state, 0)
    s_mon, o_mon, r_mon, _ = step(state, 1)
    chex.assert_trees_all_equal(s_sleep, s_mon)
    np.testing.assert_array_equal(o_sleep, o_mon)
    assert r_sleep == r_mon == -1  # User2 is worth 0.1 while Red holds SYSTEM there
    chex.assert_trees_all_equal(s_sleep.replace(time=state.time), state)


def test_analyse_flags_privileged_only_where_a_malware_file_exists():
    state = red_at("User3", removable=1, malware_file={"User3": True})
    s, obs, reward, _ = step(state, C.analyse(H["User3"]))
    assert compromised(s)["User3"] == "PRIVILEGED"  # even for a user-level compromise (quirk 7)
    assert obs_rows(obs)["User3"] == (0, 0, 1, 1)
    assert reward == 0
    chex.assert_trees_all_equal(s.replace(compromised=state.compromised, time=state.time), state)
    # An SSH-only compromise leaves no file: Analyse sees nothing.
    state = red_at("Enterprise0", hidden=1)
    s, obs, _, _ = step(state, C.analyse(H["Enterprise0"]))
    assert compromised(s)["Enterprise0"] == "NO"


def test_remove_kills_only_detected_user_shells_on_the_target():
    state = make_state(
        red_user_removable={"User1": 2, "User2": 1},
        red_user_hidden={"User1": 1},
        red_priv={"User0": 1, "User1": 1},
        compromised={"User1": Compromised.USER, "User2": Compromised.USER},
    )
    s, obs, _, _ = step(state, C.remove(H["User1"]))
    assert host_values(s.red_user_removable)["User1"] == 0
    assert host_values(s.red_user_removable)["User2"] == 1
    assert host_values(s.red_user_hidden)["User1"] == 1
    assert host_values(s.red_priv)["User1"] == 1
    table = compromised(s)
    assert table["User1"] == "UNKNOWN" and table["User2"] == "USER"
    # Remove on a host marked No leaves it No (BlueTableWrapper._process_last_action).
    s2, _, _, _ = step(init_state(), C.remove(H["User4"]))
    assert compromised(s2)["User4"] == "NO"


@pytest.mark.parametrize("host", HOST_NAMES)
def test_restore_resets_host_and_costs_one(host):
    state = make_state(
        red_priv={h: 1 for h in HOST_NAMES},
        red_user_removable={h: 1 for h in HOST_NAMES},
        red_user_hidden={h: 2 for h in HOST_NAMES},
        malware_file={h: True for h in HOST_NAMES},
        decoys=np.ones((13, 8), np.int32),
        compromised={h: Compromised.PRIVILEGED for h in HOST_NAMES},
    )
    s, obs, reward, _ = step(state, C.restore(H[host]))
    i = H[host]
    assert int(s.red_priv[i]) == (1 if host == "User0" else 0)  # Red's foothold survives (q15)
    assert int(s.red_user_removable[i]) == 0 and int(s.red_user_hidden[i]) == 0
    assert not bool(s.malware_file[i]) and not np.asarray(s.decoys[i]).any()
    assert compromised(s)[host] == "NO"
    others = [j for j in range(13) if j != i]
    assert (np.asarray(s.red_priv)[others] == 1).all()
    assert np.asarray(s.decoys)[others].all()
    # Reward: every other host still privileged, plus the Restore cost.
    conf = {"Enterprise0": 10, "Enterprise1": 10, "Enterprise2": 10, "Op_Server0": 10, "User0": 0}
    expected = -sum(conf.get(h, 1) for h in HOST_NAMES if h != host or host == "User0") - 10
    assert reward == expected


def test_restore_on_a_clean_host_only_costs_one():
    for host in HOST_NAMES:
        s, obs, reward, _ = step(init_state(), C.restore(H[host]))
        assert reward == -10
        chex.assert_trees_all_equal(
            s.replace(time=init_state().time, ot_pid_valid=init_state().ot_pid_valid),
            init_state(),
        )


def test_restore_op_server0_brings_ot_back_but_unlinks_the_pid():
    state = red_at("Op_Server0", priv=1).replace(
        ot_proc_present=np.bool_(False), ot_active=np.bool_(False)
    )
    s, _, reward, _ = step(state, C.restore(H["Op_Server0"]))
    assert bool(s.ot_proc_present) and bool(s.ot_active) and not bool(s.ot_pid_valid)
    assert reward == -10  # the availability penalty stops in the same step (spec §4.3)


@pytest.mark.parametrize("host", HOST_NAMES)
def test_decoy_compatibility_matrix_and_capacity(host):
    allowed = set(DECOY_TABLE[host].split())
    for name, kind in KIND.items():
        s, obs, reward, trace = step(init_state(), C.decoy(kind, H[host]))
        placed = int(s.decoys[H[host], kind])
        assert placed == (1 if name in allowed else 0), (host, name)
        assert bool(trace.blue_success) == (name in allowed)
        assert reward == 0
        # Placing a decoy shows no activity (BlueTableWrapper rule 4, commit 3d68dd3).
        assert obs_rows(obs)[host] == (0, 0, 0, 0)
        if name in allowed:
            s2, _, _, _ = step(s, C.decoy(kind, H[host]))
            expected = 2 if name == "Vsftpd" else 1  # one decoy per port, except Vsftpd (quirk 3)
            assert int(s2.decoys[H[host], kind]) == expected, (host, name)


def test_apache_and_vsftpd_share_port_80_only_in_one_order():
    s, _, _, _ = step(init_state(), C.decoy(Decoy.APACHE, H["Enterprise0"]))
    s, _, _, _ = step(s, C.decoy(Decoy.VSFTPD, H["Enterprise0"]))
    assert int(s.decoys[H["Enterprise0"], Decoy.VSFTPD]) == 1
    t, _, _, _ = step(init_state(), C.decoy(Decoy.VSFTPD, H["Enterprise0"]))
    t, _, _, _ = step(t, C.decoy(Decoy.APACHE, H["Enterprise0"]))
    assert int(t.decoys[H["Enterprise0"], Decoy.APACHE]) == 0  # port 80 now taken by vsftpd


def test_decoys_survive_remove_and_vanish_on_restore():
    s, _, _, _ = step(init_state(), C.decoy(Decoy.FEMITTER, H["Enterprise1"]))
    s, _, _, _ = step(s, C.remove(H["Enterprise1"]))
    assert int(s.decoys[H["Enterprise1"], Decoy.FEMITTER]) == 1
    s, _, _, _ = step(s, C.restore(H["Enterprise1"]))
    assert int(s.decoys[H["Enterprise1"], Decoy.FEMITTER]) == 0
