"""jaxcage.distill: the privileged teacher, its rule-set guard, DAgger and ``jaxcage distill``."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from envtools import H, red_at

from jaxcage import export as X
from jaxcage.cli import main
from jaxcage.constants import remove, restore
from jaxcage.distill import TEACHERS, DistillConfig, distill
from jaxcage.distill.dagger import _rollout_program
from jaxcage.evaluation import NetworkShape
from jaxcage.export import load_agent
from jaxcage.ppo.config import RED_AGENTS
from jaxcage.submission import BlueAgent

AGENT = "agents/current"  # trained under today's rules only: it has never seen the quirk
RULE = TEACHERS["haraka_restore"].fn
OWN = jnp.int32(1)  # the defender's action in the rule tests (Monitor)


@pytest.fixture(scope="module")
def agent():
    return load_agent(AGENT)


def _bline_on(user: str, **sessions: int):
    return red_at(user, **sessions).replace(bline_user=jnp.int32(H[user]))


@pytest.mark.parametrize("user", ["User3", "User4"])
def test_rule_restores_root_and_removes_shells_on_the_haraka_hosts(user):
    assert int(RULE(_bline_on(user, priv=1), OWN)) == restore(H[user])
    assert int(RULE(_bline_on(user, priv=1, removable=1), OWN)) == restore(H[user])
    assert int(RULE(_bline_on(user, removable=1), OWN)) == remove(H[user])
    # A session Remove cannot kill (SSH, or an undetected shell) is left to the defender.
    assert int(RULE(_bline_on(user, hidden=1), OWN)) == int(OWN)


def test_rule_leaves_every_other_state_alone():
    # User1/User2 have no Haraka: B_line there is the defender's business.
    assert int(RULE(_bline_on("User1", priv=1), OWN)) == int(OWN)
    # Meander (bline_user stays -1) on User3: not the B_line retry loop the rule relies on.
    assert int(RULE(red_at("User3", priv=1), OWN)) == int(OWN)


def test_teacher_only_for_rules_with_the_quirk():
    assert TEACHERS["haraka_restore"].rule_sets() == ("leaderboard",)
    with pytest.raises(ValueError, match="RESTORE_LOSES_PROCESS_VERSION"):
        DistillConfig(rules="current").validate()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("teacher", "oracle", "unknown teacher"),
        ("rules", "2022", "unknown rules"),
        ("red_agents", ("b_line", "cardiff"), "unknown red agent"),
        ("red_agents", (), "at least one red agent"),
        ("episodes", 0, "episodes must be a positive integer"),
        ("iterations", 1.5, "iterations must be a positive integer"),
        ("lr", 0.0, "lr must be in"),
    ],
)
def test_config_rejects_bad_fields(field, value, message):
    with pytest.raises(ValueError, match=message):
        DistillConfig(**{field: value}).validate()


def test_the_teachers_play_pays_only_in_the_leaderboard_game(agent):
    """The premise: against B_line, the defender plus the rule beats the defender alone under
    606813b (HarakaRCE dies on a restored host), and loses badly under today's rules."""
    shape = NetworkShape.of(agent.config)
    reds = jnp.full(256, RED_AGENTS.index("b_line"), jnp.int32)
    key = jax.random.key(0)
    gain = {}
    for rules in ("leaderboard", "current"):
        run = _rollout_program(shape, "haraka_restore", 256, 100, rules)
        teacher = run(agent.params, agent.params, key, reds, 1.0)
        alone = run(agent.params, agent.params, key, reds, 0.0)
        fired = np.asarray(teacher[2]).any(axis=0)  # episodes where the rule acted
        assert 0.3 < fired.mean() < 0.7  # U is User3 or User4 in half the episodes
        assert not np.asarray(alone[3]).all()  # the defender alone does not play the rule
        gain[rules] = float(np.asarray(teacher[4]).mean() - np.asarray(alone[4]).mean())
    assert gain["leaderboard"] > 1.0
    assert gain["current"] < -5.0


def test_dagger_teaches_the_rule_and_records_it(agent):
    cfg = DistillConfig(episodes=128, iterations=2, max_steps=30, epochs=20, minibatch_size=1024)
    student, reports = distill(agent, cfg)
    assert [r.beta for r in reports] == [1.0, 0.5]
    assert reports[0].rule_states > 0 and reports[0].rule_agreement == 0.0  # a copy, at first
    learned = reports[1].rule_agreement
    assert learned is not None and learned > 0.15  # from iteration 0's labels (0.26 seen)
    assert reports[1].dataset_size == 2 * 128 * 30
    assert student.rules == "leaderboard" and student.meta["trained_rules"] == "current"
    assert student.meta["distilled"]["config"]["teacher"] == "haraka_restore"
    assert student.config == agent.config
    changed = jax.tree.map(lambda a, b: bool(np.any(a != b)), student.params, agent.params)
    assert changed["params"]["actor_0"]["kernel"]
    assert not any(jax.tree.leaves(changed["params"]["critic_0"]))  # the loss is the actor's


def test_no_rule_states_reports_none_in_strict_json(agent):
    # The rule only acts against B_line: a Meander-only distillation never sees it fire.
    cfg = DistillConfig(red_agents=("meander",), episodes=8, iterations=1, max_steps=30, epochs=1)
    _, reports = distill(agent, cfg)
    assert reports[0].rule_states == 0 and reports[0].rule_agreement is None
    json.dumps([r.to_dict() for r in reports], allow_nan=False)


def test_cli_writes_an_agent_cyborg_can_load(tmp_path, capsys):
    out = tmp_path / "agents" / "taught"
    sets = ["episodes=32", "iterations=1", "max_steps=30", "epochs=1", "minibatch_size=512"]
    argv = ["distill", "--run", AGENT, "--out", str(out), "--quiet"]
    assert main([*argv, *[f"--set={s}" for s in sets]]) == 0
    assert "jaxcage eval --run" in capsys.readouterr().out
    header = json.loads((out / "agent.json").read_text())
    assert header["rules"] == "leaderboard"
    assert header["meta"]["distilled"]["source"] == AGENT
    report = json.loads((out / "distill.json").read_text())
    assert len(report["iterations"]) == 1 and report["config"]["episodes"] == 32
    assert "haraka_restore" in (out / "README.md").read_text()
    blue = BlueAgent(out)
    assert blue.rules == "leaderboard"
    assert 0 <= blue.get_action(np.zeros(52, np.int32), None) < 145
    # A run fine-tuned from it names the distillation in its lineage (export's init_from chain).
    chain = X._lineage(str(out), 1)
    assert chain[0]["distilled_with"] == "haraka_restore"
    assert chain[0]["env_steps"] == load_agent(AGENT).meta["env_steps"]  # DAgger is no PPO step
    assert all("distilled_with" not in a for a in chain[1:])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--rules", "current"], "RESTORE_LOSES_PROCESS_VERSION"),
        (["--set", "epochs=0"], "epochs must be a positive integer"),
        (["--set", "hidden_sizes=[8]"], "unknown distill setting"),
        (["--set", "rules=current"], "unknown distill setting"),
    ],
)
def test_cli_rejects_bad_input_before_compiling(extra, message, tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["distill", "--run", AGENT, "--out", str(out), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_cli_refuses_to_overwrite(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("keep me")
    assert main(["distill", "--run", AGENT, "--out", str(tmp_path)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    assert main(["distill", "--run", AGENT, "--out", AGENT]) == 2
    assert "is the defender being distilled" in capsys.readouterr().err
