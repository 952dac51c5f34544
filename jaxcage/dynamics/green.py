"""Green's turn: the scenario default (SleepAgent) or CybORG's ``GreenAgent``.

Mirrors ``CybORG/Agents/SimpleAgents/GreenAgent.py`` and ``Shared/Actions/GreenActions/
GreenPortScan.py``: each step GreenAgent sleeps or port-scans one of User0..4 / Enterprise0..2 with
equal probability. The scan ignores NACLs and leaves one event per listening connection, which Blue
reads as Scan activity (a false positive). Green acts after Blue and before Red.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxcage.constants import NUM_HOSTS, GreenAgent
from jaxcage.dynamics.events import Events, add_scan
from jaxcage.noise import StepNoise, masked_argmax
from jaxcage.state import EnvParams, EnvState
from jaxcage.topology import GREEN_TARGETS


def step_green(
    state: EnvState, events: Events, noise: StepNoise, params: EnvParams
) -> tuple[Events, jax.Array]:
    """Green's action. Returns the events it adds and the scanned host (-1 if none)."""
    scans = (params.green_agent == GreenAgent.RANDOM) & (noise.green_act_u >= 0.5)
    host = masked_argmax(noise.green_host_key, jnp.asarray(GREEN_TARGETS))
    target_mask = scans & (jnp.arange(NUM_HOSTS) == host)
    scanned_host = jnp.where(scans, host, -1).astype(jnp.int32)
    return add_scan(events, state, target_mask, params.rules), scanned_host
