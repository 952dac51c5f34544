"""Blue action ids <-> (action type, target host, decoy kind).

Mirrors ``CybORG/Agents/Wrappers/EnumActionWrapper.py``: the 145 actions are the classes of Blue's
YAML action list in order, each expanded over the 13 hostnames in host order (Sleep and Monitor take
no host). An id outside 0..144 that reaches the jitted code (Python ints are rejected earlier, in
``env.py``) acts as Sleep rather than being silently clipped onto Restore(User4).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxcage.constants import (
    ANALYSE_BASE,
    DECOY_BASE,
    NUM_BLUE_ACTIONS,
    NUM_HOSTS,
    REMOVE_BASE,
    RESTORE_BASE,
    BlueActionType,
)

_ids = np.arange(NUM_BLUE_ACTIONS)
BLUE_ACTION_TYPE = np.select(
    [_ids == 0, _ids == 1, _ids < REMOVE_BASE, _ids < DECOY_BASE, _ids < RESTORE_BASE],
    [
        BlueActionType.SLEEP,
        BlueActionType.MONITOR,
        BlueActionType.ANALYSE,
        BlueActionType.REMOVE,
        BlueActionType.DECOY,
    ],
    BlueActionType.RESTORE,
).astype(np.int32)
BLUE_ACTION_HOST = np.select(
    [_ids < ANALYSE_BASE, _ids < DECOY_BASE, _ids < RESTORE_BASE],
    [-1, (_ids - ANALYSE_BASE) % NUM_HOSTS, (_ids - DECOY_BASE) % NUM_HOSTS],
    _ids - RESTORE_BASE,
).astype(np.int32)
BLUE_ACTION_DECOY = np.where(
    (_ids >= DECOY_BASE) & (_ids < RESTORE_BASE), (_ids - DECOY_BASE) // NUM_HOSTS, -1
).astype(np.int32)


def decode_blue_action(action: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Split a (traced) blue action id into ``(type, host, decoy_kind)`` (-1: not applicable)."""
    action = jnp.asarray(action, dtype=jnp.int32)
    valid = (action >= 0) & (action < NUM_BLUE_ACTIONS)
    index = jnp.where(valid, action, 0)
    return (
        jnp.asarray(BLUE_ACTION_TYPE)[index],
        jnp.asarray(BLUE_ACTION_HOST)[index],
        jnp.asarray(BLUE_ACTION_DECOY)[index],
    )
