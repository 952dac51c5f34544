"""Blue's actions on the true state: Sleep, Monitor, Analyse, Remove, the 8 decoys, Restore.

Mirrors ``CybORG/Shared/Actions/AbstractActions/{Monitor,Analyse,Remove,Restore}.py``,
``ConcreteActions/{StopProcess,RestoreFromBackup,Decoy*}.py`` and ``Simulator/Host.py::restore``.
Blue acts first in a step, so everything here sees the state Red left at the end of the previous
step. Each handler is computed for the targeted host and applied under a mask.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxcage.actions import decode_blue_action
from jaxcage.constants import NUM_HOSTS, BlueActionType, Exploit, Host
from jaxcage.dynamics.events import decoy_listeners, static_listen
from jaxcage.rules import Flag, flag
from jaxcage.state import EnvParams, EnvState
from jaxcage.topology import (
    DECOY_CHECK_PORT,
    DECOY_OS_OK,
    REAL_MATCH,
    RESTORE_COST_TENTHS,
)


class BlueOutcome(struct.PyTreeNode):
    """What Blue's action leaves for the observation and the reward of this step."""

    host_mask: jax.Array  # (13,) bool: the targeted host (all False for Sleep/Monitor)
    is_remove: jax.Array  # () bool
    is_restore: jax.Array  # () bool
    analysed_malware: jax.Array  # (13,) bool: Analyse listed a density-0.9 file on that host
    decoy_placed: jax.Array  # (13,) bool: a decoy was placed (its process entry shows up)
    cost_tenths: jax.Array  # () int32: action cost in tenths (Restore: 10)


def port_in_use(state: EnvState, rules: jax.Array) -> jax.Array:
    """(13, 13) bool: some process on the host has a connection on that port class.

    This is ``Misinform._is_host_using_port``: original processes and decoys. Red's shells listen on
    ephemeral ports and its SSH sessions only exist on hosts whose port 22 is already taken by a
    real sshd, so they never change the answer for a decoy port.
    """
    return (static_listen(rules) > 0) | (decoy_listeners(state, rules) > 0)


def decoy_compatible(state: EnvState, rules: jax.Array) -> jax.Array:
    """(8, 13) bool: decoy kind d can be placed on host h now (OS rule and its port free)."""
    used = port_in_use(state, rules)  # (13 hosts, 13 ports)
    check_port_used = used[:, jnp.asarray(DECOY_CHECK_PORT)].T  # (8, 13)
    return jnp.asarray(DECOY_OS_OK) & ~check_port_used


def apply_blue_action(
    state: EnvState, action: jax.Array, params: EnvParams
) -> tuple[EnvState, BlueOutcome]:
    """Apply blue action ``action`` (0..144) to the state (``params``: only its rule set)."""
    rules = params.rules
    action_type, host, decoy_kind = decode_blue_action(action)
    host_mask = jnp.arange(NUM_HOSTS) == host
    is_analyse = action_type == BlueActionType.ANALYSE
    is_remove = action_type == BlueActionType.REMOVE
    is_decoy = action_type == BlueActionType.DECOY
    is_restore = action_type == BlueActionType.RESTORE

    # Analyse (DensityScout) lists every file on the host; only Red's cmd.* / escalate.* files
    # exist, all with density 0.9, which the table wrapper reads as 'Privileged'.
    analysed_malware = is_analyse & host_mask & state.malware_file

    # Remove kills every process whose PID Blue's Monitor flagged on the host (sus_pids) unless it
    # runs as root/SYSTEM, and the Red session owning it: exactly the detected user-level shells.
    removable = jnp.where(is_remove & host_mask, 0, state.red_user_removable)

    # Decoy: a new process on the decoy's port if the OS matches and the checked port is free.
    kind_mask = jnp.arange(state.decoys.shape[1]) == decoy_kind
    compatible = jnp.any(decoy_compatible(state, rules) & kind_mask[:, None], axis=0)  # (13,)
    decoy_placed = is_decoy & host_mask & compatible
    decoys = state.decoys + (decoy_placed[:, None] & kind_mask[None, :]).astype(jnp.int32)

    # Restore: the host goes back to its backup, taken after every agent's starting sessions were
    # created, so Red's session 0 on User0 survives (quirk 15); files, decoys and shells go.
    restored = is_restore & host_mask
    backup_priv = (jnp.arange(NUM_HOSTS) == Host.USER0).astype(jnp.int32)
    restore_ot = is_restore & (host == Host.OP_SERVER0)
    state = state.replace(
        red_priv=jnp.where(restored, backup_priv, state.red_priv),
        red_user_removable=jnp.where(restored, 0, removable),
        red_user_hidden=jnp.where(restored, 0, state.red_user_hidden),
        malware_file=state.malware_file & ~restored,
        decoys=jnp.where(restored[:, None], 0, decoys),
        # The backup's OTService entry has process None (Host.create_backup reads a 'PID' key the
        # live dict doesn't have), so after a restore Impact can no longer remove the process
        # (quirk 1): keep the process, mark the service active, invalidate the PID link.
        ot_proc_present=state.ot_proc_present | restore_ot,
        ot_active=state.ot_active | restore_ot,
        ot_pid_valid=state.ot_pid_valid & ~restore_ot,
        # 606813b (before 3ead7fd): the rebuilt processes carry ProcessVersion.UNKNOWN, and the
        # Haraka on User3/User4 stops being exploitable (see jaxcage.rules).
        haraka_unknown=state.haraka_unknown
        | (
            restored
            & jnp.asarray(REAL_MATCH[:, Exploit.HARAKA_RCE])
            & flag(rules, Flag.RESTORE_LOSES_PROCESS_VERSION)
        ),
    )
    outcome = BlueOutcome(
        host_mask=host_mask,
        is_remove=is_remove,
        is_restore=is_restore,
        analysed_malware=analysed_malware,
        decoy_placed=decoy_placed,
        cost_tenths=jnp.where(is_restore, RESTORE_COST_TENTHS, 0).astype(jnp.int32),
    )
    return state, outcome
