"""Parity of the ``leaderboard`` rule set with the original CybORG at commit 606813b, without it.

CI cannot fetch that CybORG, so it checks against data recorded from it (``tests/data/``):

* ``cyborg_traces_leaderboard.npz`` (``python -m jaxcage.parity.traces record``): lockstep traces,
  replayed through jaxcage's ``transition``: zero mismatches under ``rules="leaderboard"``, and
  behavioural mismatches under ``rules="current"`` (the data tells the two games apart);
* ``cyborg_returns_leaderboard.npz`` (``python -m jaxcage.parity generate --rules leaderboard``):
  return samples, compared by TOST with jaxcage's leaderboard-rules returns.

Where a CybORG at 606813b is importable (``PYTHONPATH=<cage-challenge-2 @ 606813b>/CybORG``), the
live lockstep and a bit-for-bit regeneration of the samples run too.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from envtools import (
    assert_no_mismatches,
    assert_return_parity,
    assert_samples_cover_cells,
    recorded_trace_blocks,
)

from jaxcage.constants import Exploit
from jaxcage.parity import generate as gen
from jaxcage.parity import traces
from jaxcage.parity.lockstep import LockstepConfig, run_lockstep
from jaxcage.reference import ReferenceNotInstalled
from jaxcage.reference.versions import cyborg_rules

TRACES = traces.DATA_PATH
SAMPLES = gen.DATA_PATHS["leaderboard"]


def _require(path: str) -> None:
    if not os.path.exists(path):
        pytest.fail(f"committed leaderboard data missing: {path}")


@pytest.fixture(scope="module")
def original_cyborg() -> str:
    """The official CybORG at 606813b, if importable (skipped otherwise: CI has none)."""
    try:
        found = cyborg_rules("official")
    except ReferenceNotInstalled:
        pytest.skip("the official CybORG (cage-challenge-2 @ 606813b) is not importable")
    if found != "leaderboard":
        pytest.skip(f"the importable official CybORG implements rules={found!r}, not 606813b")
    return "official"


# --- recorded traces -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def replays() -> dict[str, traces.ReplayResult]:
    _require(TRACES)
    return {rules: traces.replay(TRACES, rules) for rules in ("leaderboard", "current")}


def test_traces_cover_both_red_agents_and_the_rule_changes():
    blocks = recorded_trace_blocks(TRACES, "leaderboard")
    per_red: dict[str, int] = {}
    for block in blocks:
        per_red[block.red] = per_red.get(block.red, 0) + block.step["action"].shape[0]
    assert {"b_line", "meander"} <= set(per_red) and min(per_red.values()) >= 20
    # The 3ead7fd difference occurs in the recording: HarakaRCE run against a host whose
    # Haraka version a Restore had lost, and failing.
    failed_on_restored = 0
    for block in blocks:
        lost = block.state["haraka_unknown"][:, :-1]  # (E, T, 13) before each step
        target = np.clip(block.step["red_target"], 0, 12)
        hit = np.take_along_axis(lost, target[..., None], axis=2)[..., 0] == 1
        haraka = block.step["exploit"] == Exploit.HARAKA_RCE
        failed_on_restored += int((hit & haraka & (block.step["red_success"] == 0)).sum())
    assert failed_on_restored >= 5


@pytest.mark.slow
def test_leaderboard_traces_replay_with_zero_mismatches(replays):
    assert_no_mismatches(replays["leaderboard"], "leaderboard", min_episodes=60)


@pytest.mark.slow
def test_traces_tell_the_rule_sets_apart(replays):
    res = replays["current"]
    # Not just the hidden Haraka flag: what Blue observes or Red does differs in many episodes.
    assert len(res.behavioural()) >= 10, [m.format() for m in res.mismatches[:5]]


# --- return samples + TOST ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def samples() -> gen.Dataset:
    _require(SAMPLES)
    return gen.load_dataset(SAMPLES)


def test_leaderboard_samples_cover_their_cells(samples):
    assert_samples_cover_cells(
        samples, gen.LEADERBOARD_CELLS, rules="leaderboard", backend="official"
    )


def test_react_restore_bline_30_is_the_issue_figure(samples):
    # Issue 11: a react-and-restore defender vs B_line over 30 steps scores about -10.9 under
    # 606813b and -14.9 today.
    returns = samples.returns["react_restore/b_line/30"] / 10.0
    se = returns.std(ddof=1) / np.sqrt(returns.size)
    assert abs(returns.mean() - (-10.9)) < 4 * se + 0.2


@pytest.mark.slow
def test_statistical_parity_with_cyborg_606813b(samples, capsys):
    # jaxcage: 10x CybORG's episodes per cell (at least 2,000); today's rules on one cell only.
    assert_return_parity(samples.rewards, "leaderboard", "CybORG 606813b", capsys)


# --- live checks, only where the original CybORG is importable ----------------------------------


@pytest.mark.parity
def test_live_lockstep_against_cyborg_606813b(original_cyborg):
    configs = [LockstepConfig(r, "sleep", episodes=3, max_steps=50) for r in ("b_line", "meander")]
    result = run_lockstep(configs, backend=original_cyborg, rules="leaderboard", stop_after=1)
    assert not result.mismatches, result.mismatches[0].format()


@pytest.mark.parity
def test_generate_reproduces_leaderboard_samples(samples, original_cyborg):
    for cell in gen.LEADERBOARD_CELLS:
        again = gen.generate_cell(cell, episodes=1, backend=original_cyborg)
        np.testing.assert_array_equal(again, samples.rewards[cell.key][:1], err_msg=cell.key)
