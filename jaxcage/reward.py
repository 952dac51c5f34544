"""Blue's per-step reward, in integer tenths of a point.

Mirrors ``CybORG/Shared/BlueRewardCalculator.py::HybridAvailabilityConfidentialityRewardCalculator``
(which negates ``RedRewardCalculator.py``'s Pwn and Disrupt calculators) plus the action cost, as
``EnvironmentController.step`` reports it: ``round(reward + cost, 1)``. All values are multiples of
0.1, so integer tenths reproduce CybORG's rounded float exactly.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxcage.state import EnvState
from jaxcage.topology import CONFIDENTIALITY_TENTHS, OT_AVAILABILITY_TENTHS


def reward_tenths(state: EnvState, cost_tenths: jax.Array) -> jax.Array:
    """Blue reward x 10 on the post-Red state.

    Confidentiality: each host's value if Red holds a root (Linux) / SYSTEM (Windows) session there;
    a privileged session always has the right user for the host's OS in Scenario2. Availability:
    10 while Op_Server0 has no OTService process.
    """
    confidentiality = jnp.sum(jnp.asarray(CONFIDENTIALITY_TENTHS) * (state.red_priv > 0))
    availability = jnp.where(state.ot_proc_present, 0, OT_AVAILABILITY_TENTHS)
    return (-(confidentiality + availability) - cost_tenths).astype(jnp.int32)
