"""The switch defender (jaxcage/switch.py): routing by the latched red-agent guess, the directory
round trip and CLI, and the composite inside CybORG's official loop, action by action."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcage import evaluation as E
from jaxcage import export as X
from jaxcage.cli import main as cli_main
from jaxcage.ppo.features import FINGERPRINT_STEPS, RED_GUESSES, init_memory, update_memory
from jaxcage.reference.cyborg_env import reference_available
from jaxcage.submission import BlueAgent
from jaxcage.switch import SwitchAgent, SwitchShape
from tests.test_submission import CFG, memory_sensitive_params, official_loop


@dataclasses.dataclass(frozen=True)
class ConstShape:
    """A policy that always plays ``action`` (to see which member the switch picked)."""

    action: int

    def build(self, deterministic: bool) -> E.PolicyFn:
        return lambda params, obs, memory, key: jnp.int32(self.action)


@dataclasses.dataclass(frozen=True)
class ConstDefender:
    action: int
    rules: str = "leaderboard"

    def policy_spec(self) -> tuple[Any, ConstShape]:
        return (), ConstShape(self.action)


def test_switch_plays_the_default_until_the_guess_then_the_specialist():
    agent = SwitchAgent(
        default=ConstDefender(7),
        specialists={"meander": ConstDefender(30), "b_line": ConstDefender(3)},
    )
    assert agent.reds == ("b_line", "meander") and agent.rules == "leaderboard"
    params, shape = agent.policy_spec()
    assert isinstance(shape, SwitchShape) and shape.routes == (1, 2, 0)
    policy = jax.jit(shape.build(deterministic=True))
    obs, key = jnp.zeros(52, jnp.int32), jax.random.key(0)
    played = {}
    for guess in (-1, 0, 1, 2):
        memory = dataclasses.replace(init_memory(), guess=jnp.int32(guess))
        played[guess] = int(policy(params, obs, memory, key))
    assert played == {-1: 7, 0: 3, 1: 30, 2: 7}  # Sleep has no specialist: the default


def test_switch_members_must_agree_and_be_known():
    with pytest.raises(ValueError, match="unknown red agent 'red_meander'"):
        SwitchAgent(default=ConstDefender(0), specialists={"red_meander": ConstDefender(1)})
    with pytest.raises(ValueError, match="different rule sets"):
        SwitchAgent(default=ConstDefender(0), specialists={"b_line": ConstDefender(1, "current")})
    with pytest.raises(ValueError, match="at least one specialist"):
        SwitchAgent(default=ConstDefender(0), specialists={})


def single(tmp_path: Path, name: str, seed: int, rules: str = "leaderboard") -> Path:
    cfg = CFG.replace(rules=rules)
    agent = X.ExportedAgent(memory_sensitive_params(cfg, seed), cfg, rules, {"seed": seed})
    return X.save_agent(agent, tmp_path / name)


def test_identical_members_play_exactly_as_the_member(tmp_path):
    one = single(tmp_path, "one", seed=1)
    switch = X.compose_switch(one, {"b_line": one, "meander": one}, tmp_path / "switch")
    kw: dict[str, Any] = {"episodes": 4, "reds": ("b_line", "meander"), "steps": (30,)}
    alone = E.evaluate(X.load_agent(one), **kw)
    both = E.evaluate(X.load_agent(switch), **kw)
    assert both.rules == alone.rules == "leaderboard"
    assert both.cells == alone.cells


def test_export_specialists_round_trip_and_errors(tmp_path, capsys):
    a, b = single(tmp_path, "a", seed=1), single(tmp_path, "b", seed=2)
    out = tmp_path / "agents" / "switch"
    argv = ["export", "--run", str(a), "--specialist", f"b_line={b}", "--out", str(out)]
    assert cli_main(argv) == 0
    assert "leaderboard rules" in capsys.readouterr().out
    header = json.loads((out / X.AGENT_FILE).read_text())
    assert header["kind"] == X.SWITCH_KIND and header["specialists"] == {"b_line": "b_line"}
    assert all((out / m / X.PARAMS_FILE).is_file() for m in ("default", "b_line"))
    loaded = X.load_agent(out)
    assert isinstance(loaded, SwitchAgent) and loaded.reds == ("b_line",)
    assert loaded.default.policy_spec()[1] == E.NetworkShape.of(CFG)
    assert BlueAgent(out).rules == "leaderboard"

    def fails(argv: list[str], message: str) -> None:
        assert cli_main(argv) == 2
        assert message in capsys.readouterr().err

    base = ["export", "--run", str(a), "--out", str(tmp_path / "x")]
    fails([*base, "--specialist", "b_line"], "expects RED=PATH")
    fails([*base, "--specialist", f"b_line={b}", "--specialist", f"b_line={a}"], "given twice")
    fails([*base, "--specialist", f"bline={b}"], "unknown red agent 'bline'")
    other = single(tmp_path, "other", seed=3, rules="current")
    fails([*base, "--specialist", f"meander={other}"], "different rule sets")
    fails([*base, "--specialist", f"meander={out}"], "a member must be a single network")
    assert not (tmp_path / "x").exists()  # nothing written on bad input
    (out / "b_line" / X.AGENT_FILE).unlink()
    with pytest.raises(ValueError, match="not an exported single-network agent"):
        X.load_agent(out)


def replay(params: Any, observations: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """What CFG's deterministic policy would play at each step of an episode whose memory was
    built from the ``actions`` actually taken (fresh memory at the start)."""
    policy = E.make_policy(CFG, deterministic=True)

    @jax.jit
    def run(obs_seq, act_seq):
        def step(memory, xs):
            obs, taken = xs
            action = policy(params, obs, memory, jax.random.key(0))
            return update_memory(memory, obs, taken), action

        return jax.lax.scan(step, init_memory(), (obs_seq, act_seq))[1]

    return np.asarray(run(jnp.asarray(observations, jnp.int32), jnp.asarray(actions, jnp.int32)))


@pytest.mark.skipif(not reference_available("csle"), reason="csle-cyborg is not installed")
def test_official_loop_switches_to_the_specialist_at_the_fingerprint_step(cyborg, tmp_path):
    """Inside CybORG's loop: the default's actions for the first 4 steps, then the B_line
    specialist's against B_line, and the default throughout against Meander (no specialist)."""
    a, b = single(tmp_path, "a", 1, "current"), single(tmp_path, "b", 2, "current")
    switch = X.compose_switch(a, {"b_line": b}, tmp_path / "switch")
    agent = X.load_agent(switch)
    assert isinstance(agent, SwitchAgent)
    pa, pb = agent.default.policy_spec()[0], agent.specialists["b_line"].policy_spec()[0]
    blue = BlueAgent(switch)
    for red in ("b_line", "meander"):
        seen, actions, _ = official_loop("csle", blue, red, 12, 2, seed=11)
        for ep in range(len(seen)):
            by_a, by_b = replay(pa, seen[ep], actions[ep]), replay(pb, seen[ep], actions[ep])
            k = FINGERPRINT_STEPS
            np.testing.assert_array_equal(actions[ep][:k], by_a[:k])
            later = by_b[k:] if red == "b_line" else by_a[k:]
            np.testing.assert_array_equal(actions[ep][k:], later)
            assert (by_a[k:] != by_b[k:]).any()  # the members differ: the check can fail
    assert RED_GUESSES.index("b_line") == 0
