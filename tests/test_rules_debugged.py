"""The ``debugged`` rule set: CybORG++'s ``Debugged_CybORG`` (CybORG_plus_plus c343476).

* each flag's effect on hand-built states, against ``current`` (which must stay as it was);
* recorded CybORG++ traces (``tests/data/cyborg_traces_debugged.npz``, from ``python -m
  jaxcage.parity.traces record --rules debugged``) replayed with zero mismatches, and told apart
  from the ``current`` game;
* TOST of jaxcage's returns against CybORG++'s (``tests/data/cyborg_returns_debugged.npz``, from
  ``python -m jaxcage.parity generate --rules debugged --backend debugged``);
* where CybORG++ is importable (``$JAXCAGE_DEBUGGED_CYBORG``), the live lockstep and a
  regeneration of the samples.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from envtools import (
    H,
    assert_no_mismatches,
    assert_return_parity,
    assert_samples_cover_cells,
    make_state,
    recorded_trace_blocks,
    red_at,
    step,
)

import jaxcage
from jaxcage import rules as R
from jaxcage.constants import (
    NUM_HOSTS,
    Activity,
    Decoy,
    Exploit,
    Port,
    RedActionType,
    decoy,
)
from jaxcage.dynamics.blue import apply_blue_action
from jaxcage.dynamics.events import Events, no_events
from jaxcage.dynamics.red import apply_red_action
from jaxcage.env import make_params
from jaxcage.noise import forced_noise
from jaxcage.observation import classify_activity
from jaxcage.parity import generate as gen
from jaxcage.parity import traces
from jaxcage.parity.lockstep import LockstepConfig, run_lockstep
from jaxcage.ppo.config import PPOConfig
from jaxcage.reference import ReferenceNotInstalled, cyborg_env, versions
from jaxcage.reward import reward_tenths
from jaxcage.state import init_state
from jaxcage.topology import EXPLOIT_PORT

CURRENT = make_params("sleep", rules="current")
DEBUGGED = make_params("sleep", rules="debugged")
TRACES = traces.DATA_PATHS["debugged"]
SAMPLES = gen.DATA_PATHS["debugged"]
_red = jax.jit(apply_red_action)
_blue = jax.jit(apply_blue_action)


def red(state, action, target, params, **forced):
    return _red(
        state, no_events(), jnp.int32(action), jnp.int32(target), forced_noise(**forced), params
    )


def remembering(host: str, *exploits: Exploit):
    """A state where Red remembers exactly these exploits' ports on ``host``."""
    ports = np.zeros((NUM_HOSTS, 8), bool)
    for e in exploits:
        ports[H[host], e] = True
    return make_state(red_mem_valid={host: True}, red_mem_ports=ports)


# --- the table --------------------------------------------------------------------------------


def test_debugged_rule_set_is_current_plus_five_flags():
    assert R.RULE_NAMES == ("current", "leaderboard", "debugged")
    rs = R.get_rule_set("debugged")
    assert "c343476" in rs.cyborg and "Debugged_CybORG" in rs.cyborg
    assert not rs.flags & R.get_rule_set("leaderboard").flags  # derives from 9421c8e = current
    # one flag per fix that changes Blue's game; fix 1 (Remove's success bit) has none
    assert len(R.DEBUGGED_FIXES) == 6 and R.DEBUGGED_FIXES["remove_success"] is None
    assert {f for f in R.DEBUGGED_FIXES.values() if f is not None} == rs.flags
    assert R.RULE_FLAGS[R.rules_id("debugged")].sum() == 5
    for flag in rs.flags:
        assert "CybORG++ c343476" in R.FLAG_SOURCES[flag]
    _, params = jaxcage.make("b_line", rules="debugged")
    assert int(params.rules) == 2 and R.rules_name(params.rules) == "debugged"
    assert PPOConfig(rules="debugged").rules == "debugged"


# --- fix 2: DecoyVsftpd listens on 21 ------------------------------------------------------------


def test_vsftpd_decoy_listens_on_21_no_longer_stacks_or_clashes_with_apache():
    host = "Enterprise0"  # Linux, only sshd on 22
    vsftpd = jnp.int32(decoy(Decoy.VSFTPD, H[host]))
    apache = jnp.int32(decoy(Decoy.APACHE, H[host]))
    for params, stacks in ((CURRENT, True), (DEBUGGED, False)):
        s, out1 = _blue(init_state(), vsftpd, params)
        s, out2 = _blue(s, vsftpd, params)
        assert bool(out1.decoy_placed[H[host]])
        assert bool(out2.decoy_placed[H[host]]) is stacks  # current: checks 21, listens on 80
        s, out3 = _blue(s, apache, params)
        assert bool(out3.decoy_placed[H[host]]) is not stacks  # current: 80 is taken
    # A scan of the host shows the decoy on 21 (debugged) instead of 80.
    decoys = np.zeros((NUM_HOSTS, 8), np.int32)
    decoys[H[host], Decoy.VSFTPD] = 1
    state = make_state(decoys=decoys)
    for params, port in ((CURRENT, Port.P80), (DEBUGGED, Port.P21)):
        s, events, _ = red(state, RedActionType.DISCOVER_NETWORK_SERVICES, H[host], params)
        counts = np.asarray(events.port_counts[H[host]])
        assert counts[port] == 1 and counts.sum() == 2  # + sshd
        remembered = np.asarray(s.red_mem_ports[H[host]])
        expect = EXPLOIT_PORT == Port.P22
        expect |= port == EXPLOIT_PORT
        np.testing.assert_array_equal(remembered, expect)


def test_vsftpd_decoy_on_21_catches_no_exploit():
    decoys = np.zeros((NUM_HOSTS, 8), np.int32)
    decoys[H["Enterprise0"], Decoy.VSFTPD] = 1
    state = make_state(decoys=decoys)
    for exploit, params, events_expected in (
        (Exploit.HTTP_RFI, CURRENT, 2),  # current: on 80, caught (attempt + decoy event)
        (Exploit.HTTP_RFI, DEBUGGED, 0),
        (Exploit.FTP_DIRECTORY_TRAVERSAL, DEBUGGED, 0),  # on 21, but no femitter
    ):
        ports = np.zeros((NUM_HOSTS, 8), bool)
        ports[H["Enterprise0"], exploit] = True
        s = state.replace(
            red_mem_valid=state.red_mem_valid.at[H["Enterprise0"]].set(True),
            red_mem_ports=jnp.asarray(ports),
        )
        s2, events, out = red(s, RedActionType.EXPLOIT_REMOTE_SERVICE, H["Enterprise0"], params)
        assert int(out.exploit) == exploit and not bool(out.success)
        assert int(np.asarray(events.port_counts[H["Enterprise0"]]).sum()) == events_expected


# --- fix 3: smss.exe on Enterprise1/2 is an smb process ---------------------------------------


@pytest.mark.parametrize("host", ["Enterprise1", "Enterprise2"])
def test_eternal_blue_works_on_enterprise_hosts_as_system(host):
    state = remembering(host, Exploit.ETERNAL_BLUE).replace(
        red_priv=init_state().red_priv.at[H["Enterprise0"]].set(1)
    )
    for params, works in ((CURRENT, False), (DEBUGGED, True)):
        s, events, out = red(state, RedActionType.EXPLOIT_REMOTE_SERVICE, H[host], params)
        assert int(out.exploit) == Exploit.ETERNAL_BLUE and bool(out.success) is works
        assert int(s.red_priv[H[host]]) == int(works)  # SYSTEM
        counts = np.asarray(events.port_counts[H[host]])
        # current: no smb process on 139, no event at all; debugged: 139 + the shell's 4444
        assert counts[Port.P139] == int(works) and counts.sum() == 2 * int(works)
        assert bool(events.shell_4444[H[host]]) is works


# --- fix 4: User3's mysql listens on 3390 -------------------------------------------------------


def test_user3_offers_sql_injection_instead_of_bluekeep():
    for params, has_3389 in ((CURRENT, True), (DEBUGGED, False)):
        s, events, _ = red(
            init_state(), RedActionType.DISCOVER_NETWORK_SERVICES, H["User3"], params
        )
        counts = np.asarray(events.port_counts[H["User3"]])
        assert counts[Port.P3389] == int(has_3389) and counts[Port.P3390] == int(not has_3389)
        mem = np.asarray(s.red_mem_ports[H["User3"]])
        assert bool(mem[Exploit.BLUE_KEEP]) is has_3389
        assert bool(mem[Exploit.SQL_INJECTION]) is not has_3389
    state = remembering("User3", Exploit.SQL_INJECTION, Exploit.HTTP_RFI)
    s, _, out = red(
        state, RedActionType.EXPLOIT_REMOTE_SERVICE, H["User3"], DEBUGGED, exploit_top=True
    )
    assert int(out.exploit) == Exploit.SQL_INJECTION and bool(out.success)
    assert int(s.red_priv[H["User3"]]) == 1  # mysql runs as root
    s, _, out = red(
        state, RedActionType.EXPLOIT_REMOTE_SERVICE, H["User3"], CURRENT, exploit_top=True
    )
    assert int(out.exploit) == Exploit.SQL_INJECTION and not bool(out.success)


# --- fix 5: service users count for confidentiality -------------------------------------------


@pytest.mark.parametrize(
    ("host", "kind", "tenths"),
    [("Enterprise1", "removable", 10), ("User2", "hidden", 1), ("Op_Server0", "hidden", 10)],
)
def test_user_level_sessions_cost_blue_under_debugged_rules(host, kind, tenths):
    state = red_at(host, **{kind: 1})
    assert int(reward_tenths(state, jnp.int32(0), CURRENT.rules)) == 0
    assert int(reward_tenths(state, jnp.int32(0), DEBUGGED.rules)) == -tenths
    # privileged sessions count once per host under both
    state = red_at(host, priv=1, **{kind: 2})
    for params in (CURRENT, DEBUGGED):
        assert int(reward_tenths(state, jnp.int32(0), params.rules)) == -tenths


def test_a_sleeping_blue_pays_for_b_line_user_shells_under_debugged_rules():
    # B_line's first exploit of a user host: a user-level shell (e.g. HTTPRFI on User3) is free
    # today and costs 0.1 a step under the debugged reward.
    state = red_at("User3", removable=1)
    _, _, r_current, _ = step(state, params=CURRENT)
    _, _, r_debugged, _ = step(state, params=DEBUGGED)
    assert (r_current, r_debugged) == (0, -1)


# --- fix 6: a 4444 connection is an Exploit before the Scan rule ---------------------------------


def test_exploit_before_scan():
    counts = np.zeros((NUM_HOSTS, 13), np.int32)
    for p in (Port.P22, Port.P80, Port.EPHEMERAL):  # a scan-like burst plus a detected shell
        counts[H["User1"], p] += 1
    ev = no_events()
    events = Events(
        port_counts=jnp.asarray(counts),
        shell_4444=ev.shell_4444.at[H["User1"]].set(True),
        decoy_entry=ev.decoy_entry,
    )
    assert int(classify_activity(events)[H["User1"]]) == Activity.SCAN  # default: current
    assert int(classify_activity(events, CURRENT.rules)[H["User1"]]) == Activity.SCAN
    assert int(classify_activity(events, DEBUGGED.rules)[H["User1"]]) == Activity.EXPLOIT
    # without a shell the two orders agree
    plain = events.replace(shell_4444=ev.shell_4444)
    for params in (CURRENT, DEBUGGED):
        assert int(classify_activity(plain, params.rules)[H["User1"]]) == Activity.SCAN


def test_one_compiled_program_runs_all_three_rule_sets():
    env, _ = jaxcage.make("sleep")
    rules = jnp.arange(3, dtype=jnp.int32)
    params = jax.vmap(lambda r: make_params("sleep").replace(rules=r))(rules)
    keys = jax.random.split(jax.random.key(0), 3)
    _, state = jax.vmap(env.reset)(keys, params)
    state = state.replace(red_user_hidden=state.red_user_hidden.at[:, H["User3"]].set(1))
    _, _, reward, _, _ = jax.jit(jax.vmap(env.step))(keys, state, jnp.zeros(3, jnp.int32), params)
    np.testing.assert_allclose(np.asarray(reward), [0.0, 0.0, -0.1])


# --- the reference backend ------------------------------------------------------------------------


def test_debugged_backend_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv(cyborg_env.DEBUGGED_PATH_ENV, str(tmp_path))
    monkeypatch.delitem(cyborg_env._BACKEND_CACHE, "debugged", raising=False)
    with pytest.raises(ReferenceNotInstalled, match="CybORG_plus_plus"):
        cyborg_env.load_backend("debugged")
    monkeypatch.setattr(versions, "cyborg_rules", lambda backend: "current")
    with pytest.raises(ReferenceNotInstalled, match=cyborg_env.DEBUGGED_PATH_ENV):
        versions.cyborg_backend_for_rules("debugged")


# --- recorded CybORG++ traces ---------------------------------------------------------------------


def _require(path: str) -> None:
    if not os.path.exists(path):
        pytest.fail(f"committed debugged data missing: {path}")


@pytest.fixture(scope="module")
def replays() -> dict[str, traces.ReplayResult]:
    _require(TRACES)
    return {rules: traces.replay(TRACES, rules) for rules in ("debugged", "current")}


def test_debugged_traces_cover_the_fixes():
    blocks = recorded_trace_blocks(TRACES, "debugged", backend="debugged")
    assert {"b_line", "meander"} <= {block.red for block in blocks}
    hits = dict.fromkeys(
        (
            "eternal_blue_enterprise",
            "sqli_user3",
            "vsftpd_decoys",
            "vsftpd_with_apache",
            "green_scan_and_shell_on_one_host",
        ),
        0,
    )
    for block in blocks:
        exploit, target = block.step["exploit"], block.step["red_target"]
        ok = block.step["red_success"] == 1
        ent = (target == H["Enterprise1"]) | (target == H["Enterprise2"])
        hits["eternal_blue_enterprise"] += int((ok & ent & (exploit == 0)).sum())
        hits["sqli_user3"] += int((ok & (target == H["User3"]) & (exploit == 5)).sum())
        decoys = block.state["decoys"]
        hits["vsftpd_decoys"] += int(decoys[..., Decoy.VSFTPD].sum())
        assert decoys[..., Decoy.VSFTPD].max() <= 1  # listening on 21, it cannot stack
        both = (decoys[..., Decoy.VSFTPD] > 0) & (decoys[..., Decoy.APACHE] > 0)
        hits["vsftpd_with_apache"] += int(both.sum())
        # Green's scan and a detected shell on one host in one step: Exploit under debugged
        # rules, Scan (quirk 12) under current ones.
        shell = (exploit >= 0) & ok & (block.step["detected"] == 1)
        hits["green_scan_and_shell_on_one_host"] += int(
            (shell & (block.step["green_host"] == target)).sum()
        )
    assert min(hits.values()) > 0, hits


@pytest.mark.slow
def test_debugged_traces_replay_with_zero_mismatches(replays):
    assert_no_mismatches(replays["debugged"], "debugged", min_episodes=60)


@pytest.mark.slow
def test_debugged_traces_tell_the_games_apart(replays):
    assert len(replays["current"].behavioural()) >= 30


# --- return samples + TOST ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def samples() -> gen.Dataset:
    _require(SAMPLES)
    return gen.load_dataset(SAMPLES)


def test_debugged_samples_cover_their_cells(samples):
    assert_samples_cover_cells(samples, gen.DEBUGGED_CELLS, rules="debugged", backend="debugged")


@pytest.mark.slow
def test_statistical_parity_with_debugged_cyborg(samples, capsys):
    assert_return_parity(samples.rewards, "debugged", "CybORG++ Debugged_CybORG", capsys)


# --- live checks, only where CybORG++ is importable ---------------------------------------------


@pytest.fixture(scope="module")
def debugged_cyborg() -> str:
    """CybORG++'s Debugged_CybORG, if importable (skipped otherwise: CI has none)."""
    try:
        found = versions.cyborg_rules("debugged")
    except ReferenceNotInstalled:
        pytest.skip("CybORG++ Debugged_CybORG is not importable ($JAXCAGE_DEBUGGED_CYBORG)")
    assert found == "debugged"
    return "debugged"


@pytest.mark.parity
def test_live_lockstep_against_debugged_cyborg(debugged_cyborg):
    configs = [LockstepConfig(r, "sleep", episodes=3, max_steps=50) for r in ("b_line", "meander")]
    result = run_lockstep(configs, backend=debugged_cyborg, rules="debugged", stop_after=1)
    assert not result.mismatches, result.mismatches[0].format()


@pytest.mark.parity
def test_generate_reproduces_debugged_samples(samples, debugged_cyborg):
    for cell in gen.DEBUGGED_CELLS[:3]:
        again = gen.generate_cell(cell, episodes=1, backend=debugged_cyborg)
        np.testing.assert_array_equal(again, samples.rewards[cell.key][:1], err_msg=cell.key)
