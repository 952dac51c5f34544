"""Per-host summary of the NetworkConnections events of one step (what Blue's Monitor collects).

CybORG appends one event dict per connection to ``host.events`` (``ConcreteActions/Portscan.py``,
``ExploitAction.py``, ``SSHBruteForce.py``, ``GreenActions/GreenPortScan.py``) and the end-of-step
``AbstractActions/Monitor.py`` turns each into one process entry of Blue's observation. The activity
classifier (``BlueTableWrapper._interpret_connections``) only needs, per host, how many entries
there are, the set of their first-connection local ports, whether one has remote port 4444, and
whether the first entry is a freshly placed decoy; so that is all that is kept.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxcage.constants import NUM_HOSTS, NUM_PORTS
from jaxcage.rules import Flag, flag
from jaxcage.state import EnvState
from jaxcage.topology import (
    DECOY_PORT_ONEHOT,
    DECOY_PORT_ONEHOT_VSFTPD_21,
    STATIC_LISTEN,
    STATIC_LISTEN_USER3_3390,
)


class Events(struct.PyTreeNode):
    """Anomalous process entries Blue will see this step, per host."""

    port_counts: jax.Array  # (13, 13) int32: entries per first-connection local port class
    shell_4444: jax.Array  # (13,) bool: an entry with remote_port 4444 (a detected reverse shell)
    decoy_entry: jax.Array  # (13,) bool: Blue placed a decoy here this step (its entry comes first)


def no_events() -> Events:
    """An empty event summary."""
    return Events(
        port_counts=jnp.zeros((NUM_HOSTS, NUM_PORTS), dtype=jnp.int32),
        shell_4444=jnp.zeros(NUM_HOSTS, dtype=bool),
        decoy_entry=jnp.zeros(NUM_HOSTS, dtype=bool),
    )


def static_listen(rules: jax.Array) -> jax.Array:
    """(13, 13) int32: ``topology.STATIC_LISTEN`` under rule set ``rules`` (User3's mysql is on
    3390 under ``Flag.USER3_MYSQL_ON_3390``)."""
    return jnp.where(
        flag(rules, Flag.USER3_MYSQL_ON_3390),
        jnp.asarray(STATIC_LISTEN_USER3_3390),
        jnp.asarray(STATIC_LISTEN),
    )


def decoy_listeners(state: EnvState, rules: jax.Array) -> jax.Array:
    """(13, 13) int32: decoy processes listening per host and port class.

    A broadcast sum rather than ``decoys @ DECOY_PORT_ONEHOT``: XLA:CPU runs a small int32 matmul
    as a separate, unfused Eigen call (~3% of a training update at 200 envs); this fuses.
    DecoyVsftpd listens on 80, or on 21 under ``Flag.VSFTPD_LISTENS_ON_21`` (CybORG++).
    """
    onehot = jnp.where(
        flag(rules, Flag.VSFTPD_LISTENS_ON_21),
        jnp.asarray(DECOY_PORT_ONEHOT_VSFTPD_21),
        jnp.asarray(DECOY_PORT_ONEHOT),
    )  # (8 kinds, 13 ports)
    return jnp.sum(state.decoys[:, :, None] * onehot[None], axis=1)


def listening_connections(state: EnvState, rules: jax.Array) -> jax.Array:
    """(13, 13) int32: listening connections per host and port class (what a port scan reports).

    Original processes plus one connection per decoy. Red's shells and SSH sessions always carry a
    remote port, so scans never report them.
    """
    return static_listen(rules) + decoy_listeners(state, rules)


def add_scan(events: Events, state: EnvState, target_mask: jax.Array, rules: jax.Array) -> Events:
    """Events of a port scan (Red DiscoverNetworkServices or GreenPortScan) of the masked host."""
    scanned = jnp.where(target_mask[:, None], listening_connections(state, rules), 0)
    return events.replace(port_counts=events.port_counts + scanned)
