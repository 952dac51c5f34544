"""Red actions on hand-built states: sessions, files, memory, events and success exactly as in
CybORG (spec §5.1 outcome table, quirks 1, 2, 4, 6, 8, 9, 13, 14)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from envtools import H, host_values, make_state, red_at

from jaxcage.constants import Activity, Decoy, Exploit, Port, RedActionType, Subnet
from jaxcage.dynamics.events import no_events
from jaxcage.dynamics.red import applicable_exploits, apply_red_action
from jaxcage.env import make_params
from jaxcage.noise import forced_noise
from jaxcage.observation import classify_activity
from jaxcage.state import init_state
from jaxcage.topology import EXPLOIT_PORT, STATIC_LISTEN

R = RedActionType
_apply = jax.jit(apply_red_action)
PARAMS = make_params("b_line")


def red(state, action, target, **forced):
    s, events, out = _apply(
        state, no_events(), jnp.int32(action), jnp.int32(target), forced_noise(**forced), PARAMS
    )
    return s, events, out


def scanned(state, host):
    """``state`` after Red port-scanned ``host`` (memory as a DNS leaves it)."""
    s, _, out = red(state, R.DISCOVER_NETWORK_SERVICES, H[host])
    return s


def activity(events, host):
    return Activity(int(classify_activity(events)[H[host]])).name


def test_discover_remote_systems_reveals_subnet_ips():
    s, events, out = red(init_state(), R.DISCOVER_REMOTE_SYSTEMS, Subnet.USER)
    assert bool(out.success)
    known = host_values(s.known_ip)
    assert all(known[h] for h in ["User0", "User1", "User2", "User3", "User4"])
    assert not known["Enterprise0"]
    assert not np.asarray(events.port_counts).any()  # pingsweeps leave no events


def test_operational_unreachable_without_an_enterprise_session():
    s, _, out = red(init_state(), R.DISCOVER_REMOTE_SYSTEMS, Subnet.OPERATIONAL)
    assert not bool(out.success) and not bool(s.known_ip[H["Op_Host0"]])
    # The DNS still "succeeds", returns no ports and leaves memory untouched (quirk 13).
    s, events, out = red(init_state(), R.DISCOVER_NETWORK_SERVICES, H["Op_Server0"])
    assert bool(out.success) and not bool(out.dns_ports)
    assert not bool(s.red_mem_valid[H["Op_Server0"]])
    assert not np.asarray(events.port_counts).any()
    # Any Red session on an Enterprise host opens the Operational subnet.
    s, _, out = red(red_at("Enterprise1", hidden=1), R.DISCOVER_REMOTE_SYSTEMS, Subnet.OPERATIONAL)
    assert bool(out.success) and bool(s.known_ip[H["Op_Host2"]])


@pytest.mark.parametrize("host", ["Defender", "User2", "User3", "User4", "Enterprise1", "Op_Host0"])
def test_port_scan_events_and_memory(host):
    state = red_at("Enterprise0", hidden=1)  # so Op hosts are reachable
    s, events, out = red(state, R.DISCOVER_NETWORK_SERVICES, H[host])
    assert bool(out.success) and bool(out.dns_ports)
    counts = np.asarray(events.port_counts[H[host]])
    np.testing.assert_array_equal(counts, STATIC_LISTEN[H[host]])
    remembered = np.asarray(s.red_mem_ports[H[host]])
    np.testing.assert_array_equal(remembered, STATIC_LISTEN[H[host]][EXPLOIT_PORT] > 0)
    assert activity(events, host) == "SCAN"


def test_rescan_replaces_port_memory():
    # Memory of a decoy port survives a Restore until the host is scanned again (quirk 14, §3.6).
    state = make_state(decoys=np.eye(13, 8, dtype=np.int32) * 0)
    state = state.replace(decoys=state.decoys.at[H["Enterprise1"], Decoy.FEMITTER].set(1))
    s = scanned(state, "Enterprise1")
    assert bool(s.red_mem_ports[H["Enterprise1"], Exploit.FTP_DIRECTORY_TRAVERSAL])
    s = s.replace(decoys=s.decoys.at[H["Enterprise1"]].set(0))
    assert bool(s.red_mem_ports[H["Enterprise1"], Exploit.FTP_DIRECTORY_TRAVERSAL])
    s = scanned(s, "Enterprise1")
    assert not bool(s.red_mem_ports[H["Enterprise1"], Exploit.FTP_DIRECTORY_TRAVERSAL])


def test_applicable_exploits_follow_remembered_ports():
    expected = {
        "User0": {"SSH_BRUTE_FORCE", "FTP_DIRECTORY_TRAVERSAL"},
        "User2": {"ETERNAL_BLUE", "BLUE_KEEP"},
        "User3": {"BLUE_KEEP", "HTTP_RFI", "HTTPS_RFI", "HARAKA_RCE"},
        "User4": {"SSH_BRUTE_FORCE", "HTTP_RFI", "SQL_INJECTION", "HTTPS_RFI", "HARAKA_RCE"},
        "Enterprise0": {"SSH_BRUTE_FORCE"},
        "Enterprise1": {"ETERNAL_BLUE", "BLUE_KEEP", "HTTP_RFI", "HTTPS_RFI", "SSH_BRUTE_FORCE"},
        "Defender": {"SSH_BRUTE_FORCE"},
    }
    for host, names in expected.items():
        s = scanned(init_state(), host)
        got = {Exploit(i).name for i in np.flatnonzero(np.asarray(applicable_exploits(s, H[host])))}
        assert got == names, host


# (host, forced exploit or None for the top one, success, session class, activity, file)
EXPLOIT_CASES = [
    ("User1", None, True, "priv", "EXPLOIT", True),  # FTP: SYSTEM shell (quirk 6)
    ("User1", Exploit.SSH_BRUTE_FORCE, True, "hidden", "EXPLOIT", False),  # vagrant, no PID (q8)
    ("User2", None, True, "priv", "EXPLOIT", True),  # EternalBlue: SYSTEM
    ("User2", Exploit.BLUE_KEEP, True, "removable", "EXPLOIT", True),  # NetworkService
    ("User3", None, True, "priv", "EXPLOIT", True),  # Haraka: root
    ("User3", Exploit.HTTP_RFI, True, "removable", "EXPLOIT", True),  # www-data
    ("User3", Exploit.BLUE_KEEP, False, None, "NONE", False),  # 3389 is mysql: no trace (q4)
    ("User4", Exploit.SQL_INJECTION, True, "priv", "EXPLOIT", True),  # mysql root
    ("Enterprise0", None, True, "hidden", "EXPLOIT", False),  # SSH only: pi
    ("Enterprise1", None, True, "removable", "EXPLOIT", True),  # HTTPS RFI: NetworkService
    ("Enterprise1", Exploit.BLUE_KEEP, True, "priv", "EXPLOIT", True),  # svchost SYSTEM
    ("Enterprise1", Exploit.ETERNAL_BLUE, False, None, "NONE", False),  # smss.exe untyped (q4)
    ("Defender", None, False, None, "EXPLOIT", False),  # no bruteforceable user, 10 events
]


@pytest.mark.parametrize(("host", "forced", "ok", "session", "act", "file"), EXPLOIT_CASES)
def test_exploit_outcomes(host, forced, ok, session, act, file):
    state = scanned(init_state(), host)
    kwargs = {} if forced is None else {"exploit_top": False, "exploit_other": forced}
    s, events, out = red(state, R.EXPLOIT_REMOTE_SERVICE, H[host], detected=True, **kwargs)
    assert bool(out.success) == ok
    i = H[host]
    base_priv = 1 if host == "User0" else 0
    got = {
        "priv": int(s.red_priv[i]) - base_priv,
        "removable": int(s.red_user_removable[i]),
        "hidden": int(s.red_user_hidden[i]),
    }
    assert got == {k: int(k == session) for k in got}
    assert activity(events, host) == act
    assert bool(s.malware_file[i]) == file
    assert bool(s.known_host[i]) == ok


def test_undetected_shell_is_hidden_and_looks_like_a_scan():
    state = scanned(init_state(), "User3")
    s, events, out = red(
        state,
        R.EXPLOIT_REMOTE_SERVICE,
        H["User3"],
        exploit_top=False,
        exploit_other=Exploit.HTTPS_RFI,
        detected=False,
    )
    assert bool(out.success)
    assert int(s.red_user_hidden[H["User3"]]) == 1 and int(s.red_user_removable[H["User3"]]) == 0
    assert activity(events, "User3") == "SCAN"  # 1 entry on 443: rule 5 (quirk 9)


@pytest.mark.parametrize(
    ("host", "kind", "exploit"),
    [
        ("Enterprise1", Decoy.FEMITTER, Exploit.FTP_DIRECTORY_TRAVERSAL),
        ("Enterprise0", Decoy.APACHE, Exploit.HTTP_RFI),
        ("Op_Server0", Decoy.HARAKA_SMPT, Exploit.HARAKA_RCE),
        ("User1", Decoy.TOMCAT, Exploit.HTTPS_RFI),
        ("User2", Decoy.SSHD, Exploit.SSH_BRUTE_FORCE),
    ],
)
def test_decoy_hit_fails(host, kind, exploit):
    state = red_at("Enterprise2", hidden=1)
    state = state.replace(decoys=state.decoys.at[H[host], kind].set(1))
    state = scanned(state, host)
    assert bool(state.red_mem_ports[H[host], exploit])
    s, events, out = red(
        state, R.EXPLOIT_REMOTE_SERVICE, H[host], exploit_top=False, exploit_other=exploit
    )
    if int(out.exploit) != exploit:  # the decoy's exploit became the top choice
        s, events, out = red(state, R.EXPLOIT_REMOTE_SERVICE, H[host], exploit_top=True)
    assert int(out.exploit) == exploit
    assert not bool(out.success)
    assert int(s.red_user_removable[H[host]] + s.red_user_hidden[H[host]]) == 0
    expected = "EXPLOIT" if exploit == Exploit.SSH_BRUTE_FORCE else "SCAN"  # 10 SSH events (q8)
    assert activity(events, host) == expected


def test_real_process_beats_a_decoy_on_the_same_port():
    # User3's apache comes before any decoy: a Vsftpd decoy never catches HTTPRFI there.
    state = make_state()
    state = state.replace(decoys=state.decoys.at[H["User3"], Decoy.VSFTPD].set(3))
    state = scanned(state, "User3")
    s, _, out = red(
        state,
        R.EXPLOIT_REMOTE_SERVICE,
        H["User3"],
        exploit_top=False,
        exploit_other=Exploit.HTTP_RFI,
    )
    assert bool(out.success)


def test_exploit_without_port_memory_fails_silently():
    s, events, out = red(init_state(), R.EXPLOIT_REMOTE_SERVICE, H["User1"])
    assert not bool(out.success) and int(out.exploit) == -1
    assert not np.asarray(events.port_counts).any()


def test_stale_memory_after_restore_fails_without_trace():
    state = make_state()
    state = state.replace(decoys=state.decoys.at[H["Enterprise1"], Decoy.FEMITTER].set(1))
    state = scanned(state, "Enterprise1")
    state = state.replace(decoys=state.decoys.at[H["Enterprise1"]].set(0))  # Blue restored
    s, events, out = red(state, R.EXPLOIT_REMOTE_SERVICE, H["Enterprise1"], exploit_top=True)
    assert int(out.exploit) == Exploit.FTP_DIRECTORY_TRAVERSAL
    assert not bool(out.success) and not np.asarray(events.port_counts).any()


def test_op_exploit_needs_enterprise_session_at_exploit_time():
    state = scanned(red_at("Enterprise0", hidden=1), "Op_Server0")
    lost = state.replace(red_user_hidden=state.red_user_hidden.at[H["Enterprise0"]].set(0))
    s, events, out = red(lost, R.EXPLOIT_REMOTE_SERVICE, H["Op_Server0"])
    assert not bool(out.success) and not np.asarray(events.port_counts).any()
    s, events, out = red(state, R.EXPLOIT_REMOTE_SERVICE, H["Op_Server0"])
    assert bool(out.success) and int(s.red_user_hidden[H["Op_Server0"]]) == 1


def test_privilege_escalate_upgrades_one_session_and_explores():
    state = red_at("User1", removable=1, hidden=2)
    s, _, out = red(state, R.PRIVILEGE_ESCALATE, H["User1"], privesc_removable=True)
    assert bool(out.success)
    assert (int(s.red_priv[H["User1"]]), int(s.red_user_removable[H["User1"]])) == (1, 0)
    assert int(s.red_user_hidden[H["User1"]]) == 2 and bool(s.malware_file[H["User1"]])
    assert bool(s.known_ip[H["Enterprise1"]])  # User1's 'info' reveals Enterprise1's IP
    s, _, _ = red(state, R.PRIVILEGE_ESCALATE, H["User1"], privesc_removable=False)
    assert int(s.red_user_hidden[H["User1"]]) == 1 and int(s.red_user_removable[H["User1"]]) == 1
    # With a privileged session already there nothing changes but the host is still explored.
    state = red_at("User3", priv=1, removable=1)
    s, _, out = red(state, R.PRIVILEGE_ESCALATE, H["User3"])
    assert bool(out.success) and int(s.red_user_removable[H["User3"]]) == 1
    assert not bool(s.malware_file[H["User3"]]) and bool(s.known_ip[H["Enterprise0"]])
    # No session: failure, nothing revealed.
    s, _, out = red(init_state(), R.PRIVILEGE_ESCALATE, H["User3"])
    assert not bool(out.success) and not bool(s.known_ip[H["Enterprise0"]])


def test_privilege_escalate_choice_is_proportional_to_session_counts():
    state = red_at("User1", removable=1, hidden=3)
    from jaxcage.noise import sample_step_noise

    def upgraded_removable(key):
        s, _, _ = apply_red_action(
            state,
            no_events(),
            jnp.int32(R.PRIVILEGE_ESCALATE),
            jnp.int32(H["User1"]),
            sample_step_noise(key),
            PARAMS,
        )
        return s.red_user_removable[H["User1"]] == 0

    frac = jax.jit(jax.vmap(upgraded_removable))(jax.random.split(jax.random.key(0), 20000))
    assert abs(float(frac.mean()) - 0.25) < 0.015


def test_escalating_enterprise_and_op_hosts_reveals_subnets_and_ot_service():
    s, _, _ = red(red_at("Enterprise2", hidden=1), R.PRIVILEGE_ESCALATE, H["Enterprise2"])
    assert bool(s.known_subnet[Subnet.ENTERPRISE]) and bool(s.known_ip[H["Op_Server0"]])
    s, _, _ = red(red_at("Op_Server0", hidden=1), R.PRIVILEGE_ESCALATE, H["Op_Server0"])
    assert bool(s.known_subnet[Subnet.OPERATIONAL]) and bool(s.ot_service_known)


def test_impact_stops_ot_service_unless_restored():
    state = red_at("Op_Server0", priv=1, ot_service_known=True)
    s, _, out = red(state, R.IMPACT, H["Op_Server0"])
    assert bool(out.success) and not bool(s.ot_proc_present) and not bool(s.ot_active)
    # Impact again: nothing left to stop, still success (quirk 2).
    s2, _, out2 = red(s, R.IMPACT, H["Op_Server0"])
    assert bool(out2.success)
    # After a Restore of Op_Server0 the service link is None: Impact "succeeds" but the process
    # stays (quirk 1).
    restored = state.replace(ot_pid_valid=jnp.bool_(False))
    s3, _, out3 = red(restored, R.IMPACT, H["Op_Server0"])
    assert bool(out3.success) and bool(s3.ot_proc_present) and not bool(s3.ot_active)
    # Without knowing the service, or without a session, Impact fails.
    _, _, out4 = red(state.replace(ot_service_known=jnp.bool_(False)), R.IMPACT, H["Op_Server0"])
    _, _, out5 = red(make_state(ot_service_known=True), R.IMPACT, H["Op_Server0"])
    assert not bool(out4.success) and not bool(out5.success)


def test_exploit_selection_frequencies_match_the_weights():
    """User3: Haraka top with 0.75; HTTPRFI / HTTPSRFI / BlueKeep 1/12 each (spec §5.1)."""
    from jaxcage.noise import sample_step_noise

    state = scanned(init_state(), "User3")

    def chosen(key):
        _, _, out = apply_red_action(
            state,
            no_events(),
            jnp.int32(R.EXPLOIT_REMOTE_SERVICE),
            jnp.int32(H["User3"]),
            sample_step_noise(key),
            PARAMS,
        )
        return out.exploit

    picks = np.asarray(jax.jit(jax.vmap(chosen))(jax.random.split(jax.random.key(1), 24000)))
    freq = {Exploit(e).name: float(np.mean(picks == e)) for e in np.unique(picks)}
    assert abs(freq["HARAKA_RCE"] - 0.75) < 0.012
    for name in ("HTTP_RFI", "HTTPS_RFI", "BLUE_KEEP"):
        assert abs(freq[name] - 1 / 12) < 0.008, freq


def test_detected_shell_event_uses_an_ephemeral_port():
    state = scanned(init_state(), "User2")
    _, events, _ = red(state, R.EXPLOIT_REMOTE_SERVICE, H["User2"], detected=True)
    counts = np.asarray(events.port_counts[H["User2"]])
    assert counts[Port.P139] == 1 and counts[Port.EPHEMERAL] == 1 and counts.sum() == 2
    assert bool(events.shell_4444[H["User2"]])
