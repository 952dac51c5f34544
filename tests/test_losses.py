"""jaxcage.losses: a defender's return split into confidentiality, outage and Restore costs."""

from __future__ import annotations

import json

import jax.numpy as jnp
import numpy as np
import pytest
from envtools import H, red_at

from jaxcage import evaluate
from jaxcage.cli import main
from jaxcage.constants import HOST_NAMES, restore
from jaxcage.env import make_params
from jaxcage.evaluation import rollout
from jaxcage.export import load_agent
from jaxcage.losses import _record, loss_breakdown

AGENT = "agents/leaderboard"


@pytest.fixture(scope="module")
def agent():
    return load_agent(AGENT)


def test_parts_sum_to_the_return(agent):
    found = loss_breakdown(agent, "b_line", 30, 64)
    assert found.rules == "leaderboard" and found.episodes == 64
    # loss_breakdown itself checks the per-episode identity exactly; here the summary.
    assert found.total == pytest.approx(-found.mean_return, abs=1e-9)
    assert found.mean_return < -1  # B_line always takes a user host
    # Red's foothold: User0's SYSTEM session every step, worth nothing (value None).
    assert found.held_steps["User0"] == 30 and found.confidentiality["User0"] == 0
    assert all(0 <= found.held_steps[h] <= 30 for h in HOST_NAMES)
    assert sum(found.held_steps[f"User{i}"] for i in range(1, 5)) > 10
    assert found.outage == 10 * found.outage_steps


def test_a_sleeping_red_costs_nothing(agent):
    found = loss_breakdown(agent, "sleep", 30, 16)
    assert found.total == 0 and found.mean_return == 0
    assert sum(found.restores.values()) == 0


def test_rollout_is_the_evaluation_program(agent):
    returns, values, rules = rollout(agent, _record, "meander", 30, 32, seed=3)
    table = evaluate(agent, episodes=32, seed=3, reds=["meander"], steps=[30])
    assert rules == table.rules == "leaderboard"
    assert returns.mean() == pytest.approx(table.cells[("meander", 30)]["mean"], abs=1e-9)
    assert values["counted"].shape == (32, 30, len(HOST_NAMES))


@pytest.mark.parametrize(("rules", "counts"), [("current", False), ("debugged", True)])
def test_the_record_counts_what_the_rules_reward(rules, counts):
    # A user-level shell on Enterprise1 costs Blue only under CybORG++'s REWARD_SERVICE_USERS.
    state = red_at("Enterprise1", removable=1)
    values = _record(state, jnp.int32(restore(H["User2"])), make_params("b_line", rules=rules))
    assert bool(values["counted"][H["Enterprise1"]]) is counts
    assert bool(values["counted"][H["User0"]])  # the SYSTEM foothold counts (worth 0)
    assert np.flatnonzero(values["restored"]).tolist() == [H["User2"]]
    assert not bool(values["ot_down"])


def test_debugged_accounting_still_sums(agent):
    debugged = loss_breakdown(agent, "b_line", 30, 32, rules="debugged")
    assert debugged.rules == "debugged"
    assert debugged.total == pytest.approx(-debugged.mean_return, abs=1e-9)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--steps", "0"], "steps must be a positive integer"),
        (["--episodes", "0"], "episodes must be a positive integer"),
    ],
)
def test_cli_rejects_bad_input(args, message, capsys):
    assert main(["losses", "--run", AGENT, *args]) == 2
    assert message in capsys.readouterr().err


def test_cli_refuses_a_directory_for_json(tmp_path, capsys):
    assert main(["losses", "--run", AGENT, "--json", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_cli_prints_and_saves(tmp_path, capsys):
    out = tmp_path / "losses.json"
    args = ["--red", "meander", "--steps", "30", "--episodes", "16", "--json", str(out)]
    assert main(["losses", "--run", AGENT, *args]) == 0
    printed = capsys.readouterr().out
    assert "Loss breakdown: meander-30, rules=leaderboard" in printed
    saved = json.loads(out.read_text())
    assert saved["total"] == pytest.approx(-saved["mean_return"], abs=1e-9)
    assert set(saved["restores"]) == set(HOST_NAMES)
