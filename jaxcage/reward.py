"""Blue's per-step reward, in integer tenths of a point.

Mirrors ``CybORG/Shared/BlueRewardCalculator.py::HybridAvailabilityConfidentialityRewardCalculator``
(which negates ``RedRewardCalculator.py``'s Pwn and Disrupt calculators) plus the action cost, as
``EnvironmentController.step`` reports it: ``round(reward + cost, 1)``. All values are multiples of
0.1, so integer tenths reproduce CybORG's rounded float exactly.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxcage.rules import DEFAULT_RULES_ID, Flag, flag
from jaxcage.state import EnvState
from jaxcage.topology import (
    CONFIDENTIALITY_TENTHS,
    OT_AVAILABILITY_TENTHS,
    RED_USERS_ALL_REWARDED,
    RESTORE_COST_TENTHS,
)

assert RED_USERS_ALL_REWARDED  # REWARD_SERVICE_USERS below relies on it (see topology)


def counted_hosts(state: EnvState, rules: jax.Array | int = DEFAULT_RULES_ID) -> jax.Array:
    """(13,) bool: the hosts whose confidentiality value Blue loses this step (see
    ``reward_tenths``)."""
    any_session = (state.red_priv + state.red_user_removable + state.red_user_hidden) > 0
    return jnp.where(flag(rules, Flag.REWARD_SERVICE_USERS), any_session, state.red_priv > 0)


def reward_tenths(
    state: EnvState,
    cost_tenths: jax.Array,
    rules: jax.Array | int = DEFAULT_RULES_ID,
) -> jax.Array:
    """Blue reward x 10 on the post-Red state.

    Confidentiality: each host's value if Red holds a root (Linux) / SYSTEM (Windows) session there;
    a privileged session always has the right user for the host's OS in Scenario2. Under
    ``Flag.REWARD_SERVICE_USERS`` (CybORG++ ``RedRewardCalculator.py``) sessions of the service
    users count too, and every Red session of Scenario2 runs as one of them
    (``topology.RED_USERS_ALL_REWARDED``): the host counts if Red holds any session there.
    Availability: 10 while Op_Server0 has no OTService process.
    """
    confidentiality = jnp.sum(jnp.asarray(CONFIDENTIALITY_TENTHS) * counted_hosts(state, rules))
    availability = jnp.where(state.ot_proc_present, 0, OT_AVAILABILITY_TENTHS)
    return (-(confidentiality + availability) - cost_tenths).astype(jnp.int32)


# Largest possible penalty in tenths: every confidentiality value, the OT outage and a Restore.
MAX_PENALTY_TENTHS = (
    int(CONFIDENTIALITY_TENTHS.sum()) + OT_AVAILABILITY_TENTHS + RESTORE_COST_TENTHS
)
# float32 nearest to -k/10 for every reachable k. A table instead of ``tenths / 10`` because XLA
# may turn the division into a multiplication by 0.1, which rounds differently in the last bit.
_REWARD_VALUES = (0.0 - np.arange(MAX_PENALTY_TENTHS + 1, dtype=np.float64) / 10.0).astype(
    np.float32
)


def tenths_to_reward(tenths: jax.Array) -> jax.Array:
    """CybORG's rounded reward as the nearest float32 (``tenths`` is <= 0)."""
    return jnp.asarray(_REWARD_VALUES)[jnp.clip(-tenths, 0, MAX_PENALTY_TENTHS)]
