"""B_lineAgent: a fixed kill chain User -> Enterprise -> Op_Server0 with failure jumps.

Mirrors ``CybORG/Agents/SimpleAgents/B_line.py``. The agent keeps a stage (``self.action``) and the
Action object built the first time each stage was reached (``action_history``), so every target is
fixed for the episode once drawn. Each call: success of Red's previous action advances the stage
(capped at 14), failure jumps back (``jumps``). Targets only depend on the stage-1 user host U,
which is drawn uniformly from User1..4 (the DRS observation minus User0's own IP).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxcage.constants import Host, RedActionType, Subnet
from jaxcage.noise import StepNoise, masked_argmax
from jaxcage.state import EnvState
from jaxcage.topology import (
    BLINE_ENTERPRISE_FOR_USER,
    BLINE_JUMPS,
    BLINE_NUM_STAGES,
    BLINE_USER_CANDIDATES,
)

R = RedActionType
_TARGET_U = -1  # the stage-1 user host U
_TARGET_E = -2  # the Enterprise host U's escalation reveals (Enterprise1 for User1/2, else 0)

# (action type, target) of each stage; DRS targets are subnet indices.
STAGE_ACTION = np.array(
    [
        R.DISCOVER_REMOTE_SYSTEMS,  # 0: User0's subnet
        R.DISCOVER_NETWORK_SERVICES,  # 1: U
        R.EXPLOIT_REMOTE_SERVICE,  # 2: U
        R.PRIVILEGE_ESCALATE,  # 3: U
        R.DISCOVER_NETWORK_SERVICES,  # 4: E
        R.EXPLOIT_REMOTE_SERVICE,  # 5: E
        R.PRIVILEGE_ESCALATE,  # 6: E
        R.DISCOVER_REMOTE_SYSTEMS,  # 7: E's subnet (Enterprise)
        R.DISCOVER_NETWORK_SERVICES,  # 8: the 3rd pingsweep entry = Enterprise2
        R.EXPLOIT_REMOTE_SERVICE,  # 9: Enterprise2
        R.PRIVILEGE_ESCALATE,  # 10: Enterprise2
        R.DISCOVER_NETWORK_SERVICES,  # 11: Op_Server0
        R.EXPLOIT_REMOTE_SERVICE,  # 12: Op_Server0
        R.PRIVILEGE_ESCALATE,  # 13: Op_Server0
        R.IMPACT,  # 14: Op_Server0
    ],
    dtype=np.int32,
)
STAGE_TARGET = np.array(
    [
        Subnet.USER,
        _TARGET_U,
        _TARGET_U,
        _TARGET_U,
        _TARGET_E,
        _TARGET_E,
        _TARGET_E,
        Subnet.ENTERPRISE,
        Host.ENTERPRISE2,
        Host.ENTERPRISE2,
        Host.ENTERPRISE2,
        Host.OP_SERVER0,
        Host.OP_SERVER0,
        Host.OP_SERVER0,
        Host.OP_SERVER0,
    ],
    dtype=np.int32,
)
assert len(STAGE_ACTION) == len(STAGE_TARGET) == BLINE_NUM_STAGES


def bline_decide(state: EnvState, noise: StepNoise) -> tuple[EnvState, jax.Array, jax.Array]:
    """B_line's ``get_action``: returns the updated agent memory and ``(action_type, target)``."""
    last_stage = BLINE_NUM_STAGES - 1
    stage = jnp.where(
        state.red_last_success,
        jnp.minimum(state.bline_stage + 1, last_stage),
        jnp.asarray(BLINE_JUMPS)[state.bline_stage],
    )
    # Stage 12 is built lazily from the stage-11 DNS observation. If that scan of Op_Server0
    # returned no host (Red had no Enterprise session, so Op was unreachable), B_line sets the
    # stage to 0 and loops: the DNS "succeeded", so it immediately re-advances to stage 1 and
    # replays the stored DNS of U, re-walking the chain (quirk 16).
    needs_stage12 = (stage == 12) & ~state.bline_stage12_built
    built12 = state.bline_stage12_built | (needs_stage12 & state.red_last_dns_ports)
    stage = jnp.where(needs_stage12 & ~state.red_last_dns_ports, 1, stage)
    # Stage 1 is built once per episode: U = random.choice(User1..4).
    drawn_user = masked_argmax(noise.red_target_key, jnp.asarray(BLINE_USER_CANDIDATES))
    user = jnp.where((stage == 1) & (state.bline_user < 0), drawn_user, state.bline_user)
    enterprise = jnp.asarray(BLINE_ENTERPRISE_FOR_USER)[jnp.clip(user, 0)]

    code = jnp.asarray(STAGE_TARGET)[stage]
    target = jnp.select([code == _TARGET_U, code == _TARGET_E], [user, enterprise], code)
    new_state = state.replace(bline_stage=stage, bline_user=user, bline_stage12_built=built12)
    return new_state, jnp.asarray(STAGE_ACTION)[stage], target.astype(jnp.int32)
