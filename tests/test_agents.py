"""B_line and Meander state machines: decisions, jumps, the stage-12 loop, the failure cascade."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from envtools import H, make_state, step

from jaxcage.agents.b_line import bline_decide
from jaxcage.agents.meander import meander_decide
from jaxcage.constants import HOST_NAMES, RedActionType, Subnet
from jaxcage.noise import forced_noise
from jaxcage.state import init_state
from jaxcage.topology import BLINE_JUMPS

R = RedActionType
_bline = jax.jit(bline_decide)
_meander = jax.jit(meander_decide)


def bline(state, **forced):
    s, kind, target = _bline(state, forced_noise(**forced))
    return s, RedActionType(int(kind)).name, int(target)


def meander(state, **forced):
    s, kind, target = _meander(state, forced_noise(**forced))
    return s, RedActionType(int(kind)).name, int(target)


@pytest.mark.parametrize(
    ("user", "enterprise"),
    [
        ("User1", "Enterprise1"),
        ("User2", "Enterprise1"),
        ("User3", "Enterprise0"),
        ("User4", "Enterprise0"),
    ],
)
def test_bline_walks_the_kill_chain_on_success(user, enterprise):
    state = init_state()
    expected = [
        ("DISCOVER_REMOTE_SYSTEMS", Subnet.USER),
        ("DISCOVER_NETWORK_SERVICES", H[user]),
        ("EXPLOIT_REMOTE_SERVICE", H[user]),
        ("PRIVILEGE_ESCALATE", H[user]),
        ("DISCOVER_NETWORK_SERVICES", H[enterprise]),
        ("EXPLOIT_REMOTE_SERVICE", H[enterprise]),
        ("PRIVILEGE_ESCALATE", H[enterprise]),
        ("DISCOVER_REMOTE_SYSTEMS", Subnet.ENTERPRISE),
        ("DISCOVER_NETWORK_SERVICES", H["Enterprise2"]),
        ("EXPLOIT_REMOTE_SERVICE", H["Enterprise2"]),
        ("PRIVILEGE_ESCALATE", H["Enterprise2"]),
        ("DISCOVER_NETWORK_SERVICES", H["Op_Server0"]),
        ("EXPLOIT_REMOTE_SERVICE", H["Op_Server0"]),
        ("PRIVILEGE_ESCALATE", H["Op_Server0"]),
        ("IMPACT", H["Op_Server0"]),
        ("IMPACT", H["Op_Server0"]),
    ]
    got = []
    for t in range(len(expected)):
        # The first decision follows a reset (success UNKNOWN); then every action "succeeded", and
        # the stage-11 DNS returned ports.
        state = state.replace(
            red_last_success=jnp.bool_(t > 0), red_last_dns_ports=jnp.bool_(t == 12)
        )
        state, kind, target = bline(state, red_target=H[user])
        got.append((kind, target))
    assert got == [(k, int(t)) for k, t in expected]
    assert int(state.bline_user) == H[user] and bool(state.bline_stage12_built)


@pytest.mark.parametrize("stage", range(15))
def test_bline_failure_jumps(stage):
    state = make_state(bline_stage=stage, bline_user=H["User2"], bline_stage12_built=True)
    state, _, _ = bline(state.replace(red_last_success=jnp.bool_(False)))
    assert int(state.bline_stage) == BLINE_JUMPS[stage]


def test_bline_stage12_with_empty_scan_replays_the_user_scan():
    state = make_state(bline_stage=11, bline_user=H["User4"], red_last_success=True)
    s, kind, target = bline(state.replace(red_last_dns_ports=jnp.bool_(False)))
    assert (kind, target) == ("DISCOVER_NETWORK_SERVICES", H["User4"])
    assert int(s.bline_stage) == 1 and not bool(s.bline_stage12_built)
    # U is not redrawn on the replay.
    s, kind, target = bline(
        state.replace(red_last_dns_ports=jnp.bool_(False)), red_target=H["User1"]
    )
    assert target == H["User4"]


def test_bline_user_draw_is_uniform_over_user1_to_4():
    state = make_state(red_last_success=True)  # stage 0 -> 1

    def user(key):
        from jaxcage.noise import sample_step_noise

        s, _, _ = bline_decide(state, sample_step_noise(key))
        return s.bline_user

    users = np.asarray(jax.jit(jax.vmap(user))(jax.random.split(jax.random.key(0), 8000)))
    counts = np.bincount(users, minlength=13)
    assert set(np.flatnonzero(counts)) == {H["User1"], H["User2"], H["User3"], H["User4"]}
    assert np.all(np.abs(counts[counts > 0] / 8000 - 0.25) < 0.02)


def test_meander_priorities_impact_subnet_ip_host_exploit():
    # Escalated Op_Server0 -> Impact.
    _, kind, target = meander(make_state(meander_escalated={"Op_Server0": True}))
    assert (kind, target) == ("IMPACT", H["Op_Server0"])
    # Unscanned known subnet first (Enterprise before User in dict order).
    s = make_state(known_subnet=[True, False, True])
    s2, kind, target = meander(s)
    assert (kind, target) == ("DISCOVER_REMOTE_SYSTEMS", Subnet.ENTERPRISE)
    assert bool(s2.meander_scanned_subnets[Subnet.ENTERPRISE])
    # Then unscanned known IPs (uniform choice: forced here).
    s = make_state(meander_scanned_subnets=[False, False, True], known_ip={"User0": 1, "User3": 1})
    s2, kind, target = meander(s, red_target=H["User3"])
    assert (kind, target) == ("DISCOVER_NETWORK_SERVICES", H["User3"])
    assert bool(s2.meander_scanned_ips[H["User3"]])
    # Then escalation of known hosts (User0 is known from the start).
    s = s2.replace(meander_scanned_ips=s2.known_ip)
    s3, kind, target = meander(s, red_target=H["User0"])
    assert (kind, target) == ("PRIVILEGE_ESCALATE", H["User0"])
    assert int(s3.meander_last_host) == H["User0"]
    # Then exploits of known, unexploited IPs.
    s = s3.replace(red_last_success=jnp.bool_(True))
    s4, kind, target = meander(s, red_target=H["User3"])
    assert (kind, target) == ("EXPLOIT_REMOTE_SERVICE", H["User3"])
    assert int(s4.meander_last_ip) == H["User3"] and bool(s4.meander_exploited_ips[H["User3"]])


def test_meander_records_successful_exploit_and_escalates_that_host_later():
    s = make_state(
        meander_scanned_subnets=[False, False, True],
        known_ip={h: True for h in ["User0", "User1"]},
        meander_scanned_ips={h: True for h in ["User0", "User1"]},
        meander_escalated={"User0": True},
        meander_exploited_ips={"User1": True},
        meander_last_ip=H["User1"],
        known_host={"User0": True, "User1": True},
        red_last_success=True,
    )
    s2, kind, target = meander(s, red_target=H["User1"])
    assert bool(s2.meander_host_ip_map[H["User1"]])
    assert (kind, target) == ("PRIVILEGE_ESCALATE", H["User1"])


def test_meander_failed_exploit_cascade_unescalates_op_hosts_first():
    base = dict(
        meander_scanned_subnets=[True, True, True],
        meander_scanned_ips={h: True for h in HOST_NAMES},
        known_ip={h: True for h in HOST_NAMES},
        meander_host_ip_map={"Enterprise0": True, "Op_Host0": True, "Enterprise1": True},
        meander_escalated={"Enterprise0": True, "Op_Host0": True},
        meander_exploited_ips={"Enterprise0": True, "Op_Host0": True, "Defender": True},
        meander_last_ip=H["Defender"],
        red_last_success=False,
    )
    s, _, _ = meander(make_state(**base))
    assert not bool(s.meander_escalated[H["Op_Host0"]])
    assert bool(s.meander_escalated[H["Enterprise0"]])  # 'Ent' only if no 'Op' was escalated
    assert not bool(s.meander_exploited_ips[H["Op_Host0"]])
    assert not bool(s.meander_exploited_ips[H["Defender"]])
    base["meander_escalated"] = {"Enterprise0": True}
    s, _, _ = meander(make_state(**base))
    assert not bool(s.meander_escalated[H["Enterprise0"]])
    assert not bool(s.meander_exploited_ips[H["Enterprise0"]])


def test_meander_failed_escalation_forgets_host():
    s = make_state(
        meander_escalated={"User2": True},
        meander_exploited_ips={"User2": True},
        meander_host_ip_map={"User2": True},
        meander_last_host=H["User2"],
        red_last_success=False,
    )
    s2, _, _ = meander(s)
    assert not bool(s2.meander_escalated[H["User2"]])
    assert not bool(s2.meander_exploited_ips[H["User2"]])


def test_meander_runs_out_of_options_flags_stuck():
    everything = {h: True for h in HOST_NAMES}
    s = make_state(
        known_subnet=[True, True, True],
        meander_scanned_subnets=[True, True, True],
        known_ip=everything,
        meander_scanned_ips=everything,
        meander_exploited_ips=everything,
        known_host=everything,
        meander_escalated={h: h != "Op_Server0" for h in HOST_NAMES},
        meander_host_ip_map=everything,
    )
    s = s.replace(meander_escalated=s.meander_escalated.at[H["Op_Server0"]].set(False))
    s = s.replace(known_host=s.known_host.at[H["Op_Server0"]].set(False))
    s2, kind, target = meander(s)
    assert kind == "SLEEP" and target == -1 and bool(s2.red_stuck)


def test_sleep_red_never_acts():
    state = init_state()
    for _ in range(30):
        state, obs, reward, trace = step(state, 0, red="sleep")
        assert int(trace.red_action_type) == R.SLEEP and reward == 0 and not obs.any()
