"""A composite defender: tell the red agent from its first scans, then play a policy trained
against that agent.

The CAGE2 winner (Cardiff; ``Agents/MainAgent.py`` of its released code,
john-cardiff/-cyborg-cage-2) ran one PPO policy per attacker and picked the policy from the first
observations, switching at step 4. jaxcage does the same with its own fingerprint,
``jaxcage.ppo.features.RED_GUESSES``: after ``FINGERPRINT_STEPS`` (4) observations, Meander has
shown Scan activity on 2+ hosts, B_line on 1 and Sleep on none, in every episode and whatever
Blue did (``tests/test_ppo_features.py``). The guess is latched in ``PolicyMemory.guess``.

A ``SwitchAgent`` holds a *default* defender, used until the guess exists and for any attacker
without a specialist, and one specialist per guessed attacker. All members share one policy
memory (a superset of every member's features) and one rule set; the members' actions are all
computed each step and the guess selects one (fixed shapes, no host branching), so the
composite is a ``PolicyShape`` like a single network: ``jaxcage.evaluation`` (both engines),
``jaxcage.submission.BlueAgent`` and ``jaxcage export`` take it unchanged. The directory format
is ``jaxcage.export``'s (``save_agent`` / ``load_agent``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp

from jaxcage.evaluation import Defender, PolicyFn, PolicyShape
from jaxcage.ppo.features import RED_GUESSES, PolicyMemory


@dataclasses.dataclass(frozen=True)
class SwitchShape:
    """The composite's policy: member 0 is the default, ``routes[g]`` the member that plays
    against ``RED_GUESSES[g]`` once the guess is made."""

    members: tuple[PolicyShape, ...]
    routes: tuple[int, ...]

    def build(self, deterministic: bool) -> PolicyFn:
        fns = [m.build(deterministic) for m in self.members]
        routes = self.routes

        def policy(params: Any, obs: jax.Array, memory: PolicyMemory, key: jax.Array) -> jax.Array:
            actions = jnp.stack([f(p, obs, memory, key) for f, p in zip(fns, params, strict=True)])
            route = jnp.asarray(routes, jnp.int32)[jnp.maximum(memory.guess, 0)]
            return actions[jnp.where(memory.guess >= 0, route, 0)]

        return policy


@dataclasses.dataclass(frozen=True)
class SwitchAgent:
    """A default defender plus specialists keyed by red agent (any of ``RED_GUESSES``).

    Raises:
        ValueError: an unknown red agent, no specialist, or members trained under different rules.
    """

    default: Defender
    specialists: Mapping[str, Defender]
    meta: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.specialists:
            raise ValueError("a switch defender needs at least one specialist")
        for red in self.specialists:
            if red not in RED_GUESSES:
                raise ValueError(
                    f"unknown red agent {red!r} for a specialist; expected any of "
                    f"{list(RED_GUESSES)}"
                )
        rules = {self.default.rules, *(m.rules for m in self.specialists.values())}
        if len(rules) != 1:
            raise ValueError(
                f"the members were trained under different rule sets {sorted(rules)}; a switch "
                "defender plays one game"
            )

    @property
    def rules(self) -> str:
        return self.default.rules

    @property
    def reds(self) -> tuple[str, ...]:
        """The specialists' red agents, in ``RED_GUESSES`` order."""
        return tuple(r for r in RED_GUESSES if r in self.specialists)

    def policy_spec(self) -> tuple[Any, SwitchShape]:
        specs = [self.default.policy_spec()] + [
            self.specialists[r].policy_spec() for r in self.reds
        ]
        routes = tuple(1 + self.reds.index(r) if r in self.specialists else 0 for r in RED_GUESSES)
        params = tuple(p for p, _ in specs)
        return params, SwitchShape(members=tuple(s for _, s in specs), routes=routes)
