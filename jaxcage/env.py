"""The environment object: reset / step with auto-reset, spaces, and ``make``.

Mirrors what a Blue learner sees through CybORG's ``ChallengeWrapper(agent_name='Blue')``
(``CybORG/Agents/Wrappers/ChallengeWrapper.py``): 145 discrete actions, a 52-dim 0/1 observation,
the per-step Blue reward rounded to 0.1, and ``done`` once ``max_steps`` steps were taken. The
dynamics live in ``jaxcage.dynamics``; this module only orchestrates them.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxcage.constants import (
    GREEN_AGENT_NAMES,
    NUM_BLUE_ACTIONS,
    OBS_SIZE,
    RED_AGENT_NAMES,
)
from jaxcage.dynamics.step import transition
from jaxcage.noise import sample_step_noise
from jaxcage.reward import tenths_to_reward
from jaxcage.rules import DEFAULT_RULES, rules_id
from jaxcage.state import EnvParams, EnvState, init_state


class Discrete(struct.PyTreeNode):
    """A discrete space {0, ..., n-1}."""

    n: int = struct.field(pytree_node=False)

    def sample(self, key: jax.Array) -> jax.Array:
        return jax.random.randint(key, (), 0, self.n, dtype=jnp.int32)

    def contains(self, x: Any) -> jax.Array:
        x = jnp.asarray(x)
        return jnp.logical_and(x >= 0, x < self.n)


class Box(struct.PyTreeNode):
    """A box of 0/1 integers (the Blue vector observation)."""

    low: int = struct.field(pytree_node=False)
    high: int = struct.field(pytree_node=False)
    shape: tuple[int, ...] = struct.field(pytree_node=False)
    dtype: Any = struct.field(pytree_node=False)

    def contains(self, x: Any) -> jax.Array:
        x = jnp.asarray(x)
        return jnp.logical_and(
            jnp.array(x.shape == self.shape), jnp.all((x >= self.low) & (x <= self.high))
        )


def _name_to_id(name: str | int, names: tuple[str, ...], what: str) -> int:
    if isinstance(name, (int, np.integer)) and not isinstance(name, bool):
        if 0 <= int(name) < len(names):
            return int(name)
        raise ValueError(f"unknown {what} id {name!r}; expected 0..{len(names) - 1}")
    key = str(name).strip().lower().replace("-", "_")
    aliases = {"bline": "b_line", "b_lineagent": "b_line", "redmeanderagent": "meander"}
    key = aliases.get(key, key)
    if key not in names:
        raise ValueError(f"unknown {what} {name!r}; expected one of {list(names)}")
    return names.index(key)


def make_params(
    red_agent: str | int = "b_line",
    *,
    max_steps: int = 100,
    green_agent: str | int = "sleep",
    rules: str | int = DEFAULT_RULES,
) -> EnvParams:
    """Validated ``EnvParams`` (raises ``ValueError`` on bad input, before anything compiles).

    ``rules``: ``"current"`` (today's CybORG, the default), ``"leaderboard"`` (CybORG at the
    2022 leaderboard commit 606813b) or ``"debugged"`` (CybORG++); see ``jaxcage.rules``.
    """
    if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)):
        raise ValueError(f"max_steps must be a positive integer, got {max_steps!r}")
    if int(max_steps) <= 0:
        raise ValueError(f"max_steps must be positive, got {max_steps}")
    return EnvParams(
        red_agent=jnp.int32(_name_to_id(red_agent, RED_AGENT_NAMES, "red agent")),
        green_agent=jnp.int32(_name_to_id(green_agent, GREEN_AGENT_NAMES, "green agent")),
        max_steps=jnp.int32(max_steps),
        rules=jnp.int32(rules_id(rules)),
    )


class CageEnv:
    """CAGE2 Scenario2 for the Blue agent. Stateless: all state is in ``EnvState``."""

    num_actions = NUM_BLUE_ACTIONS
    obs_size = OBS_SIZE

    @property
    def default_params(self) -> EnvParams:
        return EnvParams()

    def action_space(self, params: EnvParams | None = None) -> Discrete:
        del params
        return Discrete(n=NUM_BLUE_ACTIONS)

    def observation_space(self, params: EnvParams | None = None) -> Box:
        del params
        return Box(low=0, high=1, shape=(OBS_SIZE,), dtype=jnp.int32)

    def reset(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        """Start an episode. The state is the same for every key (CybORG's reset randomness is
        cosmetic); ``key`` is accepted for API symmetry. The observation is 52 zeros."""
        del key, params
        return jnp.zeros(OBS_SIZE, dtype=jnp.int32), init_state()

    def step_env(
        self, key: jax.Array, state: EnvState, action: jax.Array | int, params: EnvParams
    ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, dict[str, jax.Array]]:
        """One CybORG step without auto-reset."""
        action = self._check_action(action)
        noise = sample_step_noise(key)
        next_state, obs, reward_tenths, trace = transition(state, action, noise, params)
        done = next_state.time >= params.max_steps
        reward = tenths_to_reward(reward_tenths)
        info = {"reward_tenths": reward_tenths, "red_action": trace.red_action_type}
        return obs, next_state, reward, done, info

    def step(
        self, key: jax.Array, state: EnvState, action: jax.Array | int, params: EnvParams
    ) -> tuple[jax.Array, EnvState, jax.Array, jax.Array, dict[str, jax.Array]]:
        """One step with auto-reset.

        Returns ``(obs, state, reward, done, info)``. When ``done`` (the episode reached
        ``params.max_steps``), ``obs``/``state`` already belong to a fresh episode, and
        ``info["final_obs"]`` holds the last observation of the finished one (bootstrap from it
        on truncation). ``info["truncated"]`` is ``done`` (CAGE2 episodes only end by time limit),
        ``info["terminated"]`` is always False.
        """
        obs, next_state, reward, done, info = self.step_env(key, state, action, params)
        obs_out, state_out = self.auto_reset(key, done, obs, next_state, params)
        info = {
            **info,
            "final_obs": obs,
            "truncated": done,
            "terminated": jnp.zeros_like(done),
        }
        return obs_out, state_out, reward, done, info

    def auto_reset(
        self, key: jax.Array, done: jax.Array, obs: jax.Array, state: EnvState, params: EnvParams
    ) -> tuple[jax.Array, EnvState]:
        """``(obs, state)`` of a fresh episode where ``done``, else the given ones (what ``step``
        returns after ``step_env``)."""
        reset_obs, reset_state = self.reset(key, params)
        state_out = jax.tree.map(lambda r, s: jnp.where(done, r, s), reset_state, state)
        return jnp.where(done, reset_obs, obs), state_out

    @staticmethod
    def _check_action(action: jax.Array | int) -> jax.Array:
        # Python ints are validated eagerly (a clear error instead of a silent clip under jit);
        # traced ids are taken as given: out-of-range ids act as Sleep (see actions.py).
        if isinstance(action, (int, np.integer)) and not isinstance(action, bool):
            if not 0 <= int(action) < NUM_BLUE_ACTIONS:
                raise ValueError(
                    f"blue action id must be in 0..{NUM_BLUE_ACTIONS - 1}, got {int(action)}"
                )
        elif isinstance(action, np.ndarray) and action.shape == ():
            return CageEnv._check_action(int(action))
        return jnp.asarray(action, dtype=jnp.int32)


def make(
    red_agent: str | int = "b_line",
    *,
    max_steps: int = 100,
    green_agent: str | int = "sleep",
    rules: str | int = DEFAULT_RULES,
) -> tuple[CageEnv, EnvParams]:
    """Create the environment and its parameters.

    Args:
        red_agent: ``"b_line"``, ``"meander"`` or ``"sleep"`` (or the ``RedAgent`` id).
        max_steps: episode length (30, 50 and 100 are the official ones); a traced parameter.
        green_agent: ``"sleep"`` (the evaluation default) or ``"random"`` (CybORG's GreenAgent).
        rules: ``"current"`` (today's CybORG 2.1, default), ``"leaderboard"`` (CybORG at commit
            606813b, on which the 2022 CAGE2 leaderboard was scored) or ``"debugged"`` (CybORG++'s
            Debugged_CybORG); a traced parameter (``jaxcage.rules``).
    """
    params = make_params(red_agent, max_steps=max_steps, green_agent=green_agent, rules=rules)
    return CageEnv(), params
