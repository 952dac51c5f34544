"""One CybORG step as a deterministic function of (state, blue action, noise, params).

Mirrors ``CybORG/Shared/EnvironmentController.py::step``: agents act in YAML order Blue, Green, Red,
each applied immediately to the shared state; the reward is computed on the state after Red; then
Blue's end-of-step Monitor collects the step's events into Blue's observation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxcage.agents.select import select_red_action
from jaxcage.dynamics.blue import apply_blue_action
from jaxcage.dynamics.events import no_events
from jaxcage.dynamics.green import step_green
from jaxcage.dynamics.red import apply_red_action
from jaxcage.noise import StepNoise
from jaxcage.observation import classify_activity, observation_vector, update_compromised
from jaxcage.reward import reward_tenths
from jaxcage.state import EnvParams, EnvState


class StepTrace(struct.PyTreeNode):
    """What happened in a step (diagnostics, lockstep comparison and episode statistics)."""

    red_action_type: jax.Array  # () int32: constants.RedActionType
    red_target: jax.Array  # () int32: host index (subnet index for DiscoverRemoteSystems), -1 none
    red_success: jax.Array  # () bool: Red's observation 'success' == TRUE
    red_exploit: jax.Array  # () int32: constants.Exploit used by ExploitRemoteService, -1 none
    green_scan_host: jax.Array  # () int32: host GreenAgent port-scanned, -1 if it slept
    blue_success: jax.Array  # () bool: a decoy was placed (only decoys can fail to do anything)
    activity: jax.Array  # (13,) int32: constants.Activity of each host this step


def transition(
    state: EnvState, blue_action: jax.Array, noise: StepNoise, params: EnvParams
) -> tuple[EnvState, jax.Array, jax.Array, StepTrace]:
    """One step. Deterministic given ``noise``; no auto-reset.

    Returns ``(next_state, obs (52,) int32, reward_tenths () int32, trace)``.
    """
    # Blue acts first, on the state Red left.
    state, blue = apply_blue_action(state, blue_action, params)
    events = no_events().replace(decoy_entry=blue.decoy_placed)
    # Green next (its events precede Red's in Blue's observation).
    events, green_host = step_green(state, events, noise, params)
    # Red decides from its own previous observation, then acts on the current state.
    state, red_type, red_target = select_red_action(state, noise, params)
    state, events, red = apply_red_action(state, events, red_type, red_target, noise, params)
    state = state.replace(red_last_success=red.success, red_last_dns_ports=red.dns_ports)
    # Reward on the post-Red state; then Blue's end-of-step Monitor feeds the table wrapper.
    reward = reward_tenths(state, blue.cost_tenths, params.rules)
    activity = classify_activity(events, params.rules)
    compromised = update_compromised(state.compromised, activity, blue)
    state = state.replace(compromised=compromised, time=state.time + 1)
    trace = StepTrace(
        red_action_type=red_type,
        red_target=red_target,
        red_success=red.success,
        red_exploit=red.exploit,
        green_scan_host=green_host,
        blue_success=jnp.any(blue.decoy_placed),
        activity=activity,
    )
    return state, observation_vector(activity, compromised), reward, trace
