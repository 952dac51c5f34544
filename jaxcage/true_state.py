"""Red's sessions per host, as CybORG's true state reports them, as a pure function of ``EnvState``.

CybORG answers ``get_agent_state('True')`` with a dict per host whose ``Sessions`` list has one
entry per session (``CybORG/Shared/Observation.py`` built from ``Simulator/State.py`` hosts and
sessions); a session belongs to Red when ``Agent == 'Red'``, is privileged when its ``Username`` is
``root`` or ``SYSTEM``, and Red's starting session is ``ID == 0`` on User0
(``Scenario2.yaml`` Red ``starting_sessions``). The workflow project reads exactly these fields to
decide which hosts are compromised (spec ``../shared/workflows/SPEC.md`` §2).

``EnvState`` keeps Red's sessions as counts by class (privileged / removable user / hidden user),
so the view below is a few array operations and runs inside the compiled step, with no host round
trip. Session 0 can never be removed (Remove spares root/SYSTEM processes, and Restore(User0)
re-creates it from the backup, PARITY.md quirk 15), so the foothold is the first privileged session
on User0 whenever one exists, i.e. always.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxcage.constants import NUM_HOSTS, Host
from jaxcage.state import EnvState


class RedSessionView(struct.PyTreeNode):
    """Per-host summary of Red's sessions (host order ``constants.HOST_NAMES``)."""

    count: jax.Array  # (13,) int32: Red sessions on the host (any privilege)
    privileged: jax.Array  # (13,) bool: at least one of them runs as root/SYSTEM
    foothold: jax.Array  # (13,) bool: Red's starting session 0 is on the host (User0 only)

    @property
    def any(self) -> jax.Array:
        """(13,) bool: Red holds at least one session on the host."""
        return self.count > 0

    @property
    def beyond_foothold(self) -> jax.Array:
        """(13,) bool: Red holds a session on the host other than its starting session 0."""
        return (self.count - self.foothold.astype(self.count.dtype)) > 0


def red_session_view(state: EnvState) -> RedSessionView:
    """Red's sessions per host in ``state`` (jit/vmap-able)."""
    count = state.red_priv + state.red_user_removable + state.red_user_hidden
    is_user0 = jnp.arange(NUM_HOSTS) == Host.USER0
    return RedSessionView(
        count=count.astype(jnp.int32),
        privileged=state.red_priv > 0,
        foothold=is_user0 & (state.red_priv > 0),
    )
