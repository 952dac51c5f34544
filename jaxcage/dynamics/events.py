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
from jaxcage.state import EnvState
from jaxcage.topology import DECOY_PORT_ONEHOT, STATIC_LISTEN


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


def decoy_listeners(state: EnvState) -> jax.Array:
    """(13, 13) int32: decoy processes listening per host and port class.

    A broadcast sum rather than ``decoys @ DECOY_PORT_ONEHOT``: XLA:CPU runs a small int32 matmul
    as a separate, unfused Eigen call (~3% of a training update at 200 envs); this fuses.
    """
    onehot = jnp.asarray(DECOY_PORT_ONEHOT)  # (8 kinds, 13 ports)
    return jnp.sum(state.decoys[:, :, None] * onehot[None], axis=1)


def listening_connections(state: EnvState) -> jax.Array:
    """(13, 13) int32: listening connections per host and port class (what a port scan reports).

    Original processes plus one connection per decoy. Red's shells and SSH sessions always carry a
    remote port, so scans never report them.
    """
    return jnp.asarray(STATIC_LISTEN) + decoy_listeners(state)


def add_scan(events: Events, state: EnvState, target_mask: jax.Array) -> Events:
    """Events of a port scan (Red DiscoverNetworkServices or GreenPortScan) of the masked host."""
    scanned = jnp.where(target_mask[:, None], listening_connections(state), 0)
    return events.replace(port_counts=events.port_counts + scanned)
