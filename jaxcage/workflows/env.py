"""``WorkflowEnv``: CAGE2 with a workflow (priority order) per environment and its alignment reward.

Mirrors how the workflow-search project steps CybORG for a workflow-conditioned defender (spec
``../shared/workflows/SPEC.md`` §2-3, §8.1): before Blue acts, read Red's sessions (the repo calls
``get_agent_state('True')``), judge the action with the compliance rule, step the env, and pay
``env_reward`` and ``align_reward`` separately (the trainer adds them). The order is data
(``WorkflowState.order_idx``, traced), so one compiled program serves all 120 workflows.

Two episode modes:

* default: standard ``max_steps``-step episodes with auto-reset (spec §8.1's recommendation);
* ``continuing_windows=True`` (V0/V1 replication): the env is never reset (CybORG's ``done`` is
  never True in the repo), an "episode" is a window of ``max_steps`` steps of one continuing run,
  and only the compliance counters restart at each window.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxcage.constants import OBS_SIZE
from jaxcage.env import CageEnv
from jaxcage.state import EnvParams, EnvState
from jaxcage.workflows.compliance import (
    ComplianceSpec,
    ComplianceState,
    compliance_step,
    episode_compliance,
    init_compliance,
)
from jaxcage.workflows.orders import NUM_ORDERS, ONEHOT, ONEHOT_SIZE, ORDERS

# fold_in stream of the order drawn at an auto-reset when ``resample_orders`` is on.
STREAM_ORDER = 7


class WorkflowState(struct.PyTreeNode):
    """State of one workflow environment."""

    env_state: EnvState
    cstate: ComplianceState
    order_idx: jax.Array  # () int32: the workflow, 0..119 (orders.ORDERS row)
    window_t: jax.Array  # () int32: steps taken in the current episode / window


def order_types(order_idx: jax.Array | int) -> jax.Array:
    """(5,) int32: the types of order ``order_idx`` in priority order."""
    return jnp.asarray(ORDERS)[order_idx]


def workflow_input(order_idx: jax.Array | int) -> jax.Array:
    """(25,) float32: the position x type one-hot the policy reads after the 52-dim obs."""
    return jnp.asarray(ONEHOT)[order_idx]


def policy_input(obs: jax.Array, wstate: WorkflowState) -> jax.Array:
    """(77,) float32: the observation followed by the workflow one-hot (the repo's 77 inputs)."""
    return jnp.concatenate([obs.astype(jnp.float32), workflow_input(wstate.order_idx)], axis=-1)


class WorkflowEnv:
    """Pure, jit/vmap-able workflow wrapper around ``jaxcage.env.CageEnv``.

    Args:
        spec: the compliance rule (static).
        continuing_windows: V0/V1 mode (no env reset; windows of ``params.max_steps`` steps).
        resample_orders: draw a new order uniformly from the 120 at every episode end (the
            "universal" training mode); otherwise an environment keeps its order.
    """

    obs_size = OBS_SIZE
    input_size = OBS_SIZE + ONEHOT_SIZE
    num_actions = CageEnv.num_actions

    def __init__(
        self,
        spec: ComplianceSpec | None = None,
        *,
        continuing_windows: bool = False,
        resample_orders: bool = False,
    ) -> None:
        self.spec = (spec or ComplianceSpec()).validate()
        self.continuing_windows = bool(continuing_windows)
        self.resample_orders = bool(resample_orders)
        self.env = CageEnv()

    def reset(
        self, key: jax.Array, params: EnvParams, order_idx: jax.Array | int
    ) -> tuple[jax.Array, WorkflowState]:
        """Start an episode of workflow ``order_idx``; returns ``(obs52, wstate)``."""
        if isinstance(order_idx, int) and not 0 <= order_idx < NUM_ORDERS:
            raise ValueError(f"order_idx must be in 0..{NUM_ORDERS - 1}, got {order_idx}")
        obs, env_state = self.env.reset(key, params)
        wstate = WorkflowState(
            env_state=env_state,
            cstate=init_compliance(),
            order_idx=jnp.asarray(order_idx, dtype=jnp.int32),
            window_t=jnp.int32(0),
        )
        return obs, wstate

    def step(
        self, key: jax.Array, wstate: WorkflowState, action: jax.Array | int, params: EnvParams
    ) -> tuple[jax.Array, WorkflowState, jax.Array, jax.Array, jax.Array, dict[str, jax.Array]]:
        """One step: ``(obs52, wstate, env_reward, align_reward, done, info)``.

        ``info["compliance"]`` / ``info["fixes"]`` / ``info["compliant_fixes"]`` describe the
        episode that ``done`` ends (valid when ``done``); ``info["is_fix"]`` and
        ``info["is_compliant"]`` describe this step; ``info["final_obs"]`` is the last observation
        of a finished episode (as ``CageEnv.step``).
        """
        # The rule reads the state Blue acts on: after the previous step's Blue, Green and Red.
        cstate, align, is_fix, is_compliant = compliance_step(
            self.spec, wstate.cstate, wstate.env_state, action, order_types(wstate.order_idx)
        )
        window_t = wstate.window_t + 1
        if self.continuing_windows:
            obs, env_state, reward, _, env_info = self.env.step_env(
                key, wstate.env_state, action, params
            )
            done = window_t >= params.max_steps
            env_info = {**env_info, "final_obs": obs}
        else:
            obs, env_state, reward, done, env_info = self.env.step(
                key, wstate.env_state, action, params
            )
        if self.spec.nofix_penalty > 0.0:  # static: the term is absent unless switched on
            nofix_end = done & (cstate.total == 0)
            penalty = self.spec.nofix_penalty * self.spec.lam
            align = align - jnp.where(nofix_end, penalty, 0.0).astype(align.dtype)
        info = {
            **env_info,
            "compliance": episode_compliance(self.spec, cstate),
            "fixes": cstate.total,
            "compliant_fixes": cstate.compliant,
            "is_fix": is_fix,
            "is_compliant": is_compliant,
        }
        order_idx = wstate.order_idx
        if self.resample_orders:
            drawn = jax.random.randint(
                jax.random.fold_in(key, STREAM_ORDER), (), 0, NUM_ORDERS, dtype=jnp.int32
            )
            order_idx = jnp.where(done, drawn, order_idx)
        fresh = init_compliance()
        wstate = WorkflowState(
            env_state=env_state,
            cstate=jax.tree.map(lambda r, s: jnp.where(done, r, s), fresh, cstate),
            order_idx=order_idx,
            window_t=jnp.where(done, 0, window_t).astype(jnp.int32),
        )
        return obs, wstate, reward, align, done, info
