"""Workflow compliance against CybORG: true-state sessions in lockstep, and TOST of the baselines.

The lockstep and TOST tests need the CybORG reference (marker ``parity``; skipped with the install
commands without it, an error in CI with ``JAXCAGE_REQUIRE_CYBORG=1``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from jaxcage.constants import HOST_NAMES, Host
from jaxcage.parity.stats import REQUIRED_POWER, welch_tost
from jaxcage.workflows import orders
from jaxcage.workflows.baselines import evaluate_policy
from jaxcage.workflows.compliance import ComplianceSpec
from jaxcage.workflows.cyborg_eval import evaluate_in_cyborg, sessions_from_true_state

DESHU = orders.order_index("DESHU")
UDESH = orders.order_index("UDESH")


def _sess(agent, ident, user="ubuntu"):
    return {"Agent": agent, "ID": ident, "Username": user, "PID": 1, "Timeout": 0}


def test_sessions_from_true_state_dict():
    true_state: dict[str, Any] = {name: {"Sessions": [_sess("Blue", 3)]} for name in HOST_NAMES}
    true_state["success"] = "UNKNOWN"  # get_agent_state adds this non-host key
    true_state["User0"]["Sessions"] += [_sess("Green", 0), _sess("Red", 0, "SYSTEM")]
    true_state["User2"]["Sessions"] += [_sess("Red", 4, "vagrant"), _sess("Red", 7, "SYSTEM")]
    true_state["Enterprise1"]["Sessions"] += [_sess("Red", 5, "pi")]
    view = sessions_from_true_state(true_state)
    count = np.zeros(13, int)
    count[[Host.USER0, Host.USER2, Host.ENTERPRISE1]] = [1, 2, 1]
    assert np.asarray(view.count).tolist() == count.tolist()
    assert np.flatnonzero(view.privileged).tolist() == [Host.USER0, Host.USER2]
    assert np.flatnonzero(view.foothold).tolist() == [Host.USER0]
    assert np.flatnonzero(view.beyond_foothold).tolist() == [Host.ENTERPRISE1, Host.USER2]


# (policy, order, red, spec): the greedy policies exercise Restore (incl. Restore(User0), which
# keeps the foothold), the random one Remove, decoys and Analyse; both rules and targets are used.
LOCKSTEP_CASES = [
    ("greedy_host", DESHU, "b_line", ComplianceSpec()),
    ("greedy_exact", UDESH, "b_line", ComplianceSpec(compromise="any_red_session")),
    ("random", DESHU, "b_line", ComplianceSpec(target="host")),
    ("greedy_host", UDESH, "meander", ComplianceSpec(rule="sequence")),
    ("random", 77, "meander", ComplianceSpec()),
]


@pytest.mark.parity
@pytest.mark.slow
@pytest.mark.parametrize(("policy", "order", "red", "spec"), LOCKSTEP_CASES)
def test_true_state_sessions_and_compliance_in_lockstep(cyborg, policy, order, red, spec):
    """Red sessions per host (count, privileged, foothold) from ``get_agent_state('True')`` equal
    ``red_session_view`` of jaxcage's state before every step, and the compliance counters agree."""
    res = evaluate_in_cyborg(policy, order, episodes=1, red=red, spec=spec, seed=11, lockstep=True)
    assert not res.mismatches, "\n".join(res.mismatches[:5])
    assert res.steps_compared == 101
    assert res.episodes["fixes"].sum() > 0


def _consistent(x, y, margin=None):
    t = welch_tost(x, y, margin=margin)
    ok = t.verdict != "DIFFERENT" and (t.equivalent or t.power < REQUIRED_POWER)
    return ok, t


@pytest.mark.parity
@pytest.mark.slow
@pytest.mark.parametrize(
    ("policy", "order", "episodes"),
    [("greedy_host", DESHU, 20), ("greedy_exact", UDESH, 10)],
)
def test_baselines_agree_with_cyborg(cyborg, policy, order, episodes):
    """TOST (the parity acceptance rule) of env return, compliance and fixes per episode."""
    cy = evaluate_in_cyborg(policy, order, episodes=episodes, seed=2024).episodes
    jx = evaluate_policy(policy, order, episodes=1024, seed=7)
    for key, margin in (("env_return", None), ("compliance", 0.05), ("fixes", 2.0)):
        ok, t = _consistent(cy[key], jx[key], margin)
        assert ok, f"{policy} {key}: cyborg {t.mean_x:.3f}±{t.se_x:.3f} jaxcage {t.mean_y:.3f}"
        if key != "env_return":
            assert t.equivalent, (key, t)
