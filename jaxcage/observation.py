"""Blue's 52-dim observation: the BlueTableWrapper table as a vector.

Mirrors ``CybORG/Agents/Wrappers/BlueTableWrapper.py`` (``observation_change``,
``_process_last_action``, ``_detect_anomalies``, ``_process_anomalies``, ``_interpret_connections``,
``_create_vector``). Rows are in host order; each row is [Activity (2 bits), Compromised (2 bits)].
Activity is recomputed every step; Compromised persists in ``state.compromised``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxcage.constants import Activity, Compromised
from jaxcage.dynamics.blue import BlueOutcome
from jaxcage.dynamics.events import Events
from jaxcage.rules import DEFAULT_RULES_ID, Flag, flag

# Activity None 00 / Scan 10 / Exploit 11; Compromised No 00 / Unknown 10 / User 01 / Privileged 11.
# numpy, not jnp: a jnp array built at import would start JAX's backend, and
# jax.distributed.initialize (multi-process training) must run before that.
_ACTIVITY_BITS = np.array([[0, 0], [1, 0], [1, 1]], dtype=np.int32)
_COMPROMISED_BITS = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=np.int32)


def classify_activity(events: Events, rules: jax.Array | int = DEFAULT_RULES_ID) -> jax.Array:
    """(13,) int32 Activity per host from this step's anomalous process entries.

    With n entries, P the set of their first-connection local ports (the decoy entry has none) and
    R4 "some entry has remote port 4444", the first matching rule wins:
    n>=3 and |P|>=3 -> Scan; R4 -> Exploit; n>=3 and |P|==1 -> Exploit; first entry is a decoy
    placed this step -> None; otherwise Scan. No entries -> None. (Rule order matters: a green scan
    masks a red exploit on the same host, quirk 12.) Under ``Flag.EXPLOIT_BEFORE_SCAN`` (CybORG++
    ``BlueTableWrapper._interpret_connections``) R4 is tried first, so quirk 12 is gone. (CybORG++
    also skips a host whose last entry has no connection, which leaves it None; only a decoy entry
    has none, and it is the first entry, alone only when it is None under either order.)
    """
    num_entries = jnp.sum(events.port_counts, axis=1) + events.decoy_entry.astype(jnp.int32)
    num_ports = jnp.sum(events.port_counts > 0, axis=1)
    exploit_first = flag(rules, Flag.EXPLOIT_BEFORE_SCAN)
    activity = jnp.select(
        [
            num_entries == 0,
            exploit_first & events.shell_4444,
            (num_entries >= 3) & (num_ports >= 3),
            events.shell_4444,
            (num_entries >= 3) & (num_ports == 1),
            events.decoy_entry,
        ],
        [
            Activity.NONE,
            Activity.EXPLOIT,
            Activity.SCAN,
            Activity.EXPLOIT,
            Activity.EXPLOIT,
            Activity.NONE,
        ],
        Activity.SCAN,
    )
    return activity.astype(jnp.int32)


def update_compromised(compromised: jax.Array, activity: jax.Array, blue: BlueOutcome) -> jax.Array:
    """Persistent Compromised column after this step.

    Order as in ``observation_change``: first the blue action's class alone (Restore -> No,
    Remove -> Unknown unless No; whatever actually happened, quirk 11), then Exploit activity ->
    User (overwriting Privileged, quirk 10), then an analysed density-0.9 file -> Privileged.
    """
    c = jnp.where(blue.is_restore & blue.host_mask, Compromised.NO, compromised)
    c = jnp.where(blue.is_remove & blue.host_mask & (c != Compromised.NO), Compromised.UNKNOWN, c)
    c = jnp.where(activity == Activity.EXPLOIT, Compromised.USER, c)
    c = jnp.where(blue.analysed_malware, Compromised.PRIVILEGED, c)
    return c.astype(jnp.int32)


def observation_vector(activity: jax.Array, compromised: jax.Array) -> jax.Array:
    """(52,) int32 ChallengeWrapper vector: per host [activity bits, compromised bits]."""
    rows = jnp.concatenate(
        [jnp.asarray(_ACTIVITY_BITS)[activity], jnp.asarray(_COMPROMISED_BITS)[compromised]], axis=1
    )
    return rows.reshape(-1)
