"""Where a defender loses reward: its CAGE2 return split into the terms CybORG sums.

Blue's reward (``CybORG/Shared/BlueRewardCalculator.py::HybridAvailabilityConfidentialityReward
Calculator`` plus the action cost, as ``jaxcage.reward`` computes it) has three sources: each
host's confidentiality value while Red holds a counted session there, 10 per step while
Op_Server0's OTService is down, and 1 per Restore (Scenario2's only action cost). This module
rolls a defender out in jaxcage (``jaxcage.evaluation.rollout``) and reports each term per host,
in points per episode; they sum to the mean return exactly (integer tenths, checked).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxcage.constants import HOST_NAMES, NUM_HOSTS, RESTORE_BASE
from jaxcage.evaluation import rollout
from jaxcage.reward import counted_hosts
from jaxcage.rules import get_rule_set
from jaxcage.state import EnvParams, EnvState
from jaxcage.topology import CONFIDENTIALITY_TENTHS, OT_AVAILABILITY_TENTHS, RESTORE_COST_TENTHS


def _record(state: EnvState, action: jax.Array, params: EnvParams) -> dict[str, jax.Array]:
    return {
        "counted": counted_hosts(state, params.rules),
        "ot_down": ~state.ot_proc_present,
        "restored": jnp.arange(NUM_HOSTS) == action - RESTORE_BASE,
    }


@dataclasses.dataclass(frozen=True)
class LossBreakdown:
    """Mean points lost per episode, by source, for one cell (``red``, ``steps``)."""

    red: str
    steps: int
    episodes: int
    seed: int
    rules: str
    mean_return: float
    held_steps: dict[str, float]  # steps per episode Red's session on the host is counted
    outage_steps: float  # steps per episode OTService is down on Op_Server0
    restores: dict[str, float]  # Restores per episode (1 point each)

    @property
    def confidentiality(self) -> dict[str, float]:
        """Points lost per episode to Red's counted sessions, per host."""
        return {
            name: self.held_steps[name] * float(CONFIDENTIALITY_TENTHS[h]) / 10
            for h, name in enumerate(HOST_NAMES)
        }

    @property
    def outage(self) -> float:
        """Points lost per episode to the OTService outage."""
        return self.outage_steps * OT_AVAILABILITY_TENTHS / 10

    @property
    def total(self) -> float:
        """Sum of the parts: minus the mean return."""
        return sum(self.confidentiality.values()) + self.outage + sum(self.restores.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            **dataclasses.asdict(self),
            "confidentiality": self.confidentiality,
            "outage": self.outage,
            "total": self.total,
        }

    def __str__(self) -> str:
        lines = [
            f"Loss breakdown: {self.red}-{self.steps}, rules={self.rules} "
            f"({get_rule_set(self.rules).cyborg}), {self.episodes} episodes, seed {self.seed}, "
            f"jaxcage, deterministic policy",
            f"mean return {self.mean_return:.2f} = -(confidentiality + outage + restores)",
            f"{'host':<12}{'Red held':>10}{'lost':>8}{'restores':>10}",
        ]
        for name in HOST_NAMES:
            held, lost, restores = (
                self.held_steps[name],
                self.confidentiality[name],
                self.restores[name],
            )
            if held or restores:
                lines.append(f"{name:<12}{held:>10.2f}{lost:>8.2f}{restores:>10.2f}")
        lines += [
            f"{'OT outage':<12}{self.outage_steps:>10.2f}{self.outage:>8.2f}",
            f"confidentiality {sum(self.confidentiality.values()):.2f}, outage {self.outage:.2f}, "
            f"restores {sum(self.restores.values()):.2f}: total {self.total:.2f}",
        ]
        return "\n".join(lines)


def loss_breakdown(
    subject: Any,
    red: str = "b_line",
    steps: int = 100,
    episodes: int = 1000,
    seed: int = 0,
    *,
    rules: str | None = None,
) -> LossBreakdown:
    """Split a defender's mean return on one cell into its sources (a run directory, a
    ``TrainResult`` or a loaded agent, as ``jaxcage.evaluate`` takes; ``rules`` default: the
    defender's)."""
    returns, values, rules = rollout(subject, _record, red, steps, episodes, seed, rules=rules)
    counted = np.asarray(values["counted"], bool)  # (episodes, steps, 13)
    restored = np.asarray(values["restored"], bool).sum(axis=1)  # (episodes, 13)
    down = np.asarray(values["ot_down"], bool).sum(axis=1)  # (episodes,)
    held = counted.sum(axis=1)  # (episodes, 13)
    tenths = (
        held @ CONFIDENTIALITY_TENTHS
        + OT_AVAILABILITY_TENTHS * down
        + RESTORE_COST_TENTHS * restored.sum(axis=1)
    )
    # Exact accounting: the parts are the whole (integer tenths per episode).
    np.testing.assert_array_equal(-tenths, np.round(returns * 10).astype(np.int64))
    return LossBreakdown(
        red=red,
        steps=steps,
        episodes=episodes,
        seed=seed,
        rules=rules,
        mean_return=float(returns.mean()),
        held_steps={n: float(v) for n, v in zip(HOST_NAMES, held.mean(axis=0), strict=True)},
        outage_steps=float(down.mean()),
        restores={n: float(v) for n, v in zip(HOST_NAMES, restored.mean(axis=0), strict=True)},
    )
