"""Level 1 parity: CybORG and jaxcage in lockstep, compared exactly after every step.

Needs the CybORG reference (marker ``parity``); without it the tests are reported as skipped with
the install commands (``JAXCAGE_REQUIRE_CYBORG=1`` turns that into an error, as CI should).
"""

from __future__ import annotations

import numpy as np
import pytest
from envtools import assert_no_mismatches

from jaxcage.parity import lockstep
from jaxcage.parity.__main__ import main as parity_main
from jaxcage.parity.lockstep import LockstepConfig, LockstepRunner, run_lockstep
from jaxcage.reference import extract
from jaxcage.state import init_state

pytestmark = pytest.mark.parity

# CI budget: >= 100 episodes x 100 steps per red agent, GreenAgent in a fifth of them.
EPISODES_GREEN_SLEEP = 80
EPISODES_GREEN_RANDOM = 20


@pytest.fixture(scope="module")
def runner(cyborg: None) -> LockstepRunner:
    """One runner (one compiled transition) for the module; skips without CybORG."""
    return LockstepRunner()


@pytest.mark.slow
@pytest.mark.parametrize("red", ["b_line", "meander"])
def test_lockstep_zero_mismatches(runner, red, capsys):
    configs = [
        LockstepConfig(red, "sleep", episodes=EPISODES_GREEN_SLEEP),
        # a different seed range, so GreenAgent episodes are not replays of the ones above
        LockstepConfig(
            red, "random", episodes=EPISODES_GREEN_RANDOM, seed=lockstep.DEFAULT_SEED + 10**6
        ),
    ]
    result = run_lockstep(configs, runner=runner, stop_after=3)
    with capsys.disabled():
        print(
            f"\nlockstep {red}: {result.episodes} episodes, {result.steps} steps, "
            f"{len(result.mismatches)} mismatches ({result.seconds:.0f}s)"
        )
    assert_no_mismatches(result)
    assert result.episodes == EPISODES_GREEN_SLEEP + EPISODES_GREEN_RANDOM
    assert result.steps == 100 * result.episodes


def test_lockstep_sleeping_red_with_green_agent(runner):
    # No Red: what remains is Blue's actions (all 145 kinds) and GreenAgent's false-positive scans.
    configs = [LockstepConfig("sleep", "random", policies=("random", "decoy_heavy"), episodes=6)]
    result = run_lockstep(configs, runner=runner, stop_after=1)
    assert_no_mismatches(result)
    assert result.coverage["draw:green scan"] > 200


def test_reset_state_matches(runner):
    for red in ("b_line", "meander", "sleep"):
        env = runner.env(red, "random", 100)
        env.reset(seed=1)
        assert lockstep.compare_state(extract.extract_state(env), init_state(), red) == []


# --- the comparison can fail ---------------------------------------------------------------------


def test_lockstep_catches_wrong_detection_probability(runner, monkeypatch):
    # jaxcage told that reverse shells are never detected: the first detected shell must show up
    # as a mismatch (obs / compromised / removable sessions).
    real = lockstep.make_params

    def undetectable(*args, **kwargs):
        return real(*args, **kwargs).replace(detection_prob=np.float32(0.0))

    monkeypatch.setattr(lockstep, "make_params", undetectable)
    steps, bad = runner.run_episode("b_line", "sleep", "sleep", seed=3)
    assert bad is not None and bad.step <= steps
    names = {d.name for d in bad.diffs}
    assert names & {"obs", "red_user_removable", "compromised"}, names
    text = bad.format()
    assert "MISMATCH red=b_line" in text and "repro: python -m jaxcage.parity lockstep" in text
    assert "ExploitRemoteService" in text or "EXPLOIT_REMOTE_SERVICE" in text


def test_lockstep_catches_wrong_injected_outcome(runner, monkeypatch):
    # Feeding jaxcage the opposite exploit choice must break the lockstep at that exploit.
    real = extract.StepOutcome.noise_kwargs

    def flipped(self):
        kwargs = real(self)
        if self.exploit_drawn:
            kwargs["exploit_top"] = not self.exploit_top
            kwargs["exploit_other"] = None
        return kwargs

    monkeypatch.setattr(extract.StepOutcome, "noise_kwargs", flipped)
    lockstep._cached_noise.cache_clear()
    try:
        found = [runner.run_episode("meander", "sleep", "sleep", seed=s)[1] for s in range(5)]
    finally:
        lockstep._cached_noise.cache_clear()
    assert any(m is not None for m in found)


def test_compare_state_reports_each_differing_field(runner):
    env = runner.env("b_line", "sleep", 100)
    env.reset(seed=0)
    cyborg = extract.extract_state(env)
    state = init_state()
    wrong = state.replace(
        red_priv=state.red_priv.at[3].set(2), known_subnet=state.known_subnet.at[0].set(True)
    )
    diffs = lockstep.compare_state(cyborg, wrong, "b_line")
    assert [d.name for d in diffs] == ["red_priv", "known_subnet"]
    # Meander-only fields are not compared for B_line.
    odd = dict(extract.extract_state(env))
    odd["meander_last_ip"] = np.int32(4)
    assert lockstep.compare_state(odd, state, "b_line") == []
    assert [d.name for d in lockstep.compare_state(odd, state, "meander")] == ["meander_last_ip"]


def test_cli_lockstep_smoke(runner, capsys):
    rc = parity_main(
        [
            "lockstep",
            "--episodes",
            "2",
            "--red",
            "meander",
            "--green",
            "random",
            "--policy",
            "decoy_heavy",
            "--max-steps",
            "30",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "2 episodes, 60 steps compared, 0 mismatching episodes" in out
