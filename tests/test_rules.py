"""Rule sets (``jaxcage.rules``): the table, the traced parameter, each flag's effect on hand-built
states, mixing rule sets in one program, and the config / CLI / evaluation plumbing."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from envtools import H, make_state
from test_evaluation import fixed_action_params

import jaxcage
from jaxcage import rules as R
from jaxcage.actions import decode_blue_action
from jaxcage.cli import _build_parser
from jaxcage.constants import RESTORE_BASE, Exploit, Port, RedActionType
from jaxcage.dynamics.blue import apply_blue_action
from jaxcage.dynamics.events import no_events
from jaxcage.dynamics.red import apply_red_action
from jaxcage.env import make_params
from jaxcage.evaluation import EvalTable, evaluate
from jaxcage.noise import forced_noise
from jaxcage.ppo.config import PPOConfig, load_config
from jaxcage.reference import ReferenceNotInstalled, versions
from jaxcage.state import EnvParams, init_state
from jaxcage.topology import EXPLOIT_PORT

CURRENT = make_params("b_line", rules="current")
LEADERBOARD = make_params("b_line", rules="leaderboard")
_red = jax.jit(apply_red_action)
_blue = jax.jit(apply_blue_action)


def red(state, action, target, params, **forced):
    return _red(
        state, no_events(), jnp.int32(action), jnp.int32(target), forced_noise(**forced), params
    )


# --- the table and the parameter ------------------------------------------------------------------


def test_rule_table():
    assert R.RULE_NAMES == ("current", "leaderboard", "debugged")  # debugged: test_rules_debugged
    assert R.DEFAULT_RULES == "current"
    assert not R.RULE_FLAGS[R.rules_id("current")].any()  # today's code: no old behaviour
    # 606813b: both fixes missing, and nothing else
    assert set(np.flatnonzero(R.RULE_FLAGS[R.rules_id("leaderboard")])) == {
        R.Flag.RESTORE_LOSES_PROCESS_VERSION,
        R.Flag.RESCAN_APPENDS_PORTS,
    }
    for flag in R.Flag:
        assert flag in R.FLAG_SOURCES
    assert "606813b" in R.get_rule_set("leaderboard").cyborg
    assert "leaderboard" in R.describe()


def test_make_takes_rules_as_a_traced_parameter():
    _, params = jaxcage.make("meander", rules="leaderboard")
    assert isinstance(params.rules, jax.Array) and int(params.rules) == 1
    assert int(jaxcage.make()[1].rules) == 0 == int(EnvParams().rules)
    assert R.rules_name(params.rules) == "leaderboard"
    assert int(make_params(rules=1).rules) == 1 and int(make_params(rules=" Leaderboard").rules)


@pytest.mark.parametrize("bad", ["leaderbord", "", 3, -1, True])
def test_unknown_rules_raise_before_compiling(bad):
    with pytest.raises(ValueError, match="rules"):
        jaxcage.make(rules=bad)


# --- 9421c8e: a rescan replaces (current) or extends (leaderboard) Red's port memory -------------


def test_rescan_replaces_ports_now_and_appended_them_at_the_leaderboard():
    # Red remembers port 21 on User2 (say, from a Femitter decoy a Restore has removed since).
    stale = np.zeros((13, 8), bool)
    stale[H["User2"], Exploit.FTP_DIRECTORY_TRAVERSAL] = True
    state = make_state(red_mem_valid={"User2": True}, red_mem_ports=stale)
    fresh = np.asarray(
        [Port(p) in (Port.P139, Port.P3389, Port.P445, Port.P135) for p in EXPLOIT_PORT]
    )
    for params, expect_stale in ((CURRENT, False), (LEADERBOARD, True)):
        s, _, _ = red(state, RedActionType.DISCOVER_NETWORK_SERVICES, H["User2"], params)
        got = np.asarray(s.red_mem_ports[H["User2"]])
        np.testing.assert_array_equal(got[fresh], True)
        assert bool(got[Exploit.FTP_DIRECTORY_TRAVERSAL]) is expect_stale
        # Other hosts' memories are untouched either way.
        np.testing.assert_array_equal(np.asarray(s.red_mem_ports[H["User3"]]), False)


# --- 3ead7fd: after a Restore, HarakaRCE on User3/User4 fails (leaderboard) --------------------


@pytest.mark.parametrize("host", ["User3", "User4"])
def test_restore_breaks_haraka_only_under_leaderboard_rules(host):
    action = RESTORE_BASE + H[host]
    assert int(decode_blue_action(jnp.int32(action))[1]) == H[host]
    for params, broken in ((CURRENT, False), (LEADERBOARD, True)):
        s, _ = _blue(init_state(), jnp.int32(action), params)
        expected = np.zeros(13, bool)
        expected[H[host]] = broken
        np.testing.assert_array_equal(np.asarray(s.haraka_unknown), expected)
    # Restoring a host without Haraka changes nothing.
    s, _ = _blue(init_state(), jnp.int32(RESTORE_BASE + H["User2"]), LEADERBOARD)
    assert not np.asarray(s.haraka_unknown).any()


def test_haraka_on_a_restored_host_fails_with_only_the_port_event():
    ports = np.zeros((13, 8), bool)
    ports[H["User3"], Exploit.HARAKA_RCE] = True  # only 25 remembered: Haraka is the one option
    base = make_state(red_mem_valid={"User3": True}, red_mem_ports=ports)
    ok, ev_ok, out_ok = red(base, RedActionType.EXPLOIT_REMOTE_SERVICE, H["User3"], LEADERBOARD)
    assert bool(out_ok.success) and int(out_ok.exploit) == Exploit.HARAKA_RCE
    assert int(ok.red_priv[H["User3"]]) == 1  # smtp runs as root
    broken = base.replace(haraka_unknown=base.haraka_unknown.at[H["User3"]].set(True))
    s, events, out = red(broken, RedActionType.EXPLOIT_REMOTE_SERVICE, H["User3"], LEADERBOARD)
    assert not bool(out.success) and int(out.exploit) == Exploit.HARAKA_RCE
    assert int(s.red_priv[H["User3"]] + s.red_user_hidden[H["User3"]]) == 0
    assert not bool(s.malware_file[H["User3"]])
    counts = np.asarray(events.port_counts[H["User3"]])
    assert counts[Port.P25] == 1 and counts.sum() == 1  # the connection, no shell, no decoy event
    assert not bool(events.shell_4444[H["User3"]])


# --- one program, several rule sets ------------------------------------------------------------


def test_one_compiled_program_mixes_rule_sets():
    env, _ = jaxcage.make("b_line")
    rules = jnp.array([0, 1, 0, 1], jnp.int32)
    params = jax.vmap(lambda r: make_params("b_line").replace(rules=r))(rules)
    # Restore User3 every step: under leaderboard rules the Haraka version is lost.
    actions = jnp.full(4, RESTORE_BASE + H["User3"], jnp.int32)
    keys = jax.random.split(jax.random.key(0), 4)
    _, state = jax.vmap(env.reset)(keys, params)
    _, state, _, _, _ = jax.jit(jax.vmap(env.step))(keys, state, actions, params)
    np.testing.assert_array_equal(np.asarray(state.haraka_unknown[:, H["User3"]]), rules == 1)


# --- config, CLI, evaluation ---------------------------------------------------------------------


def test_config_rules_field():
    assert PPOConfig().rules == "current"
    assert load_config("default", rules="leaderboard").rules == "leaderboard"
    with pytest.raises(ValueError, match="unknown rules 'old'"):
        PPOConfig(rules="old")


def test_cli_eval_has_rules_option():
    parser = _build_parser()
    args = parser.parse_args(["eval", "--run", "x", "--rules", "leaderboard"])
    assert args.rules == "leaderboard"
    assert parser.parse_args(["eval", "--run", "x"]).rules is None
    with pytest.raises(SystemExit):
        parser.parse_args(["eval", "--run", "x", "--rules", "nope"])


def test_eval_table_states_its_rules():
    cells = {("b_line", 30): {"mean": -10.9, "std": 3.0, "n": 10}}
    table = EvalTable(cells, "jax", True, 10, rules="leaderboard")
    assert table.to_dict()["rules"] == "leaderboard"
    assert "606813b" in table.to_dict()["rules_cyborg"]
    assert "rules=leaderboard" in str(table)
    assert EvalTable(cells, "jax", True, 10).to_dict()["rules"] == "current"


def test_cyborg_engine_leaderboard_needs_the_original_cyborg(monkeypatch):
    # Whatever is installed here (csle-cyborg = current rules), no 606813b CybORG is importable.
    monkeypatch.setattr(versions, "cyborg_rules", lambda backend: "current")
    with pytest.raises(ReferenceNotInstalled, match="606813b"):
        evaluate({}, engine="cyborg", cfg=PPOConfig(), rules="leaderboard", reds=("b_line",))
    with pytest.raises(ReferenceNotInstalled, match="csle-cyborg and every later install"):
        versions.cyborg_backend_for_rules("leaderboard")
    # csle-cyborg is never used for leaderboard rules, even if it were the only CybORG around.
    tried = []
    monkeypatch.setattr(versions, "cyborg_rules", lambda b: tried.append(b) or "leaderboard")
    assert versions.cyborg_backend_for_rules("leaderboard") == "official"
    assert tried == ["official"]
    with pytest.raises(ValueError, match="unknown rules"):
        evaluate({}, engine="cyborg", cfg=PPOConfig(), rules="x")


def test_installed_csle_cyborg_implements_the_current_rules(cyborg):
    try:
        found = versions.cyborg_rules("csle")
    except ReferenceNotInstalled:
        pytest.skip("csle-cyborg not installed")
    assert found == "current"


@pytest.mark.slow
def test_jax_evaluation_plays_the_requested_rules():
    # A defender that restores User3 every step against B_line: when B_line goes for User3, the
    # leaderboard game (Haraka broken by the first Restore) differs from today's. Same seed and
    # keys, so identical dynamics would give identical means.
    cfg = PPOConfig(hidden_sizes=(16,), features=("prev_action", "decoys", "time"))
    params = fixed_action_params(cfg, RESTORE_BASE + H["User3"])

    def table(rules, config=cfg):
        kw = {"episodes": 100, "reds": ("b_line",), "steps": (30,), "seed": 1}
        return evaluate(params, cfg=config, rules=rules, **kw)

    tables = {rules: table(rules) for rules in ("current", "leaderboard")}
    assert tables["leaderboard"].rules == "leaderboard" and tables["current"].rules == "current"
    means = {r: t.cells[("b_line", 30)]["mean"] for r, t in tables.items()}
    assert means["current"] != means["leaderboard"], means
    # Default: the rules the config was trained on.
    assert table(None).total == tables["current"].total
    lb = table(None, cfg.replace(rules="leaderboard"))
    assert lb.rules == "leaderboard" and lb.total == tables["leaderboard"].total
