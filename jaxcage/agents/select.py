"""Dispatch to the red agent chosen by ``params.red_agent`` (B_line, Meander, Sleep).

The id is traced, so one compiled program can run a batch of environments against different
opponents. Each agent only touches its own memory fields in ``EnvState``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxcage.agents.b_line import bline_decide
from jaxcage.agents.meander import meander_decide
from jaxcage.constants import RedActionType
from jaxcage.noise import StepNoise
from jaxcage.state import EnvParams, EnvState


def _sleep_decide(state: EnvState, noise: StepNoise) -> tuple[EnvState, jax.Array, jax.Array]:
    """SleepAgent: always ``Sleep()``."""
    del noise
    return state, jnp.int32(RedActionType.SLEEP), jnp.int32(-1)


def select_red_action(
    state: EnvState, noise: StepNoise, params: EnvParams
) -> tuple[EnvState, jax.Array, jax.Array]:
    """Red's decision for this step: ``(state with updated agent memory, action_type, target)``."""
    index = jnp.clip(params.red_agent, 0, 2)
    return jax.lax.switch(index, [bline_decide, meander_decide, _sleep_decide], state, noise)
