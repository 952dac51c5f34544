"""A jaxcage-trained defender as a CybORG blue agent, for the official CAGE2 evaluation loop.

Mirrors ``CybORG/Agents/SimpleAgents/BaseAgent.py`` (cage-challenge-2): the interface that
``CybORG/Evaluation/evaluation.py`` drives, ``agent.get_action(observation, action_space)`` once
per step and ``agent.end_episode()`` after each episode. Replacing that script's
``agent = BlueLoadAgent()`` with ``agent = BlueAgent("agents/leaderboard")`` scores a jaxcage
defender unchanged, in the original CybORG or in csle-cyborg.

The policy input carries per-episode memory (``jaxcage.ppo.features``: previous action, decoys
placed, step counter). CybORG's loop never tells the agent that an episode began, only that one
ended, so the memory starts fresh at construction and after every ``end_episode()``: the same
reset points as ``jaxcage.evaluation``'s CybORG engine, whose jitted per-step policy call
(``make_host_policy``: one packed, donated device buffer per step) this agent uses. Inference
needs numpy and jax only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jax
import numpy as np

from jaxcage.constants import NUM_BLUE_ACTIONS, OBS_SIZE
from jaxcage.evaluation import make_host_policy
from jaxcage.export import ExportedAgent, load_agent
from jaxcage.switch import SwitchAgent


class BlueAgent:
    """CybORG blue agent backed by an exported jaxcage defender (or a training run directory).

    Args:
        path: an agent directory from ``jaxcage export`` (a single network or a switch
            defender, ``jaxcage.switch``) or a ``jaxcage train`` run directory.
        deterministic: argmax actions (the protocol the leaderboard used) or sampled ones.
        seed: PRNG seed of the sampled actions (unused when deterministic).
    """

    def __init__(self, path: str | Path, deterministic: bool = True, seed: int = 0) -> None:
        self.agent: ExportedAgent | SwitchAgent = load_agent(path)
        self.deterministic = deterministic
        params, shape = self.agent.policy_spec()
        self._policy = make_host_policy(params, shape, deterministic, jax.random.key(seed))

    @property
    def rules(self) -> str:
        """The rule set the defender was trained under (``current`` or ``leaderboard``)."""
        return self.agent.rules

    def get_action(self, observation: Any, action_space: Any = None) -> int:
        """Blue's action id (0..144) for the ChallengeWrapper observation of this step.

        ``action_space`` is what ``ChallengeWrapper.get_action_space('Blue')`` returns (the number
        of actions, 145); it is checked when given. csle-cyborg's ``reset()`` returns
        ``(observation, info)``; that pair is accepted too.
        """
        if isinstance(observation, tuple) and len(observation) == 2:
            observation = observation[0]
        obs = np.asarray(observation)
        if obs.shape != (OBS_SIZE,):
            raise ValueError(
                f"expected the ChallengeWrapper's {OBS_SIZE}-element Blue observation, got shape "
                f"{obs.shape} (wrap CybORG with ChallengeWrapper(agent_name='Blue', env=...))"
            )
        if isinstance(action_space, (int, np.integer)) and int(action_space) != NUM_BLUE_ACTIONS:
            raise ValueError(
                f"action space has {action_space} actions; the defender was trained for "
                f"ChallengeWrapper's {NUM_BLUE_ACTIONS}"
            )
        return self._policy.act(obs)

    def end_episode(self) -> None:
        """Forget the episode: the next ``get_action`` is an episode's first step."""
        self._policy.reset()

    def train(self, results: Any) -> None:
        """No-op: the policy was trained in jaxcage (BaseAgent lists ``train``)."""

    def set_initial_values(self, action_space: Any, observation: Any) -> None:
        """No-op: nothing to initialise from CybORG (BaseAgent lists ``set_initial_values``)."""
