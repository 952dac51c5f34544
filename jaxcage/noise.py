"""All randomness of one step, drawn up front, so the transition itself is deterministic.

CybORG draws from Python's global ``random`` inside the agents and actions (spec §6). Only these
draws can change what happens; every other draw (IP addresses, PIDs, ephemeral ports, the choice
among Blue's sessions on a host) is cosmetic. Each draw is represented so that an outcome read back
from CybORG can be written into a ``StepNoise`` directly (the lockstep tests do this):

* a uniform choice among an eligible set (B_line's user host, Meander's ``shuffle`` + first
  eligible, GreenAgent's host, the non-top exploit) is the eligible index with the largest key in a
  vector of i.i.d. uint32 keys. Injecting outcome ``i`` = a key vector that is ``FORCED_KEY`` at
  ``i`` and ``0`` elsewhere. Ties between random keys happen with probability < 4e-8 per draw and
  go to the lower index (see PARITY.md).
* a Bernoulli(p) draw is ``u < p`` with ``u`` uniform in [0, 1): inject ``0.0`` for "yes", ``1.0``
  for "no".
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxcage.constants import NUM_EXPLOITS, NUM_HOSTS

# Order of the scalar uniforms drawn by ``sample_step_noise``.
_NUM_UNIFORMS = 4
_NUM_KEYS = 2 * NUM_HOSTS + NUM_EXPLOITS
# Key value that makes an injected choice win every comparison in ``masked_argmax``.
FORCED_KEY = 0xFFFFFFFF


class StepNoise(struct.PyTreeNode):
    """Every random outcome a step can consume (unused ones are simply ignored)."""

    # GreenAgent: random.choice([Sleep, GreenPortScan]) -> scan iff green_act_u >= 0.5
    green_act_u: jax.Array  # () float32
    # GreenAgent: random.choice(8 hosts) -> argmax over GREEN_TARGETS of these keys
    green_host_key: jax.Array  # (13,) uint32
    # Red target choice: B_line's stage-1 user host, or Meander's DNS / PrivEsc / Exploit target
    red_target_key: jax.Array  # (13,) uint32
    # ExploitRemoteService: top-weighted exploit iff exploit_top_u < params.exploit_top_prob
    exploit_top_u: jax.Array  # () float32
    # ... otherwise uniform among the other applicable exploits: argmax of these keys
    exploit_other_key: jax.Array  # (8,) uint32
    # ExploitAction.__add_reverse_session: Blue sees the shell's PID iff detect_u < detection_prob
    detect_u: jax.Array  # () float32
    # PrivilegeEscalate with no root/SYSTEM session: random.choice(sessions); the chosen one is a
    # removable (detected) shell iff privesc_u < n_removable / n_sessions
    privesc_u: jax.Array  # () float32


def sample_step_noise(key: jax.Array) -> StepNoise:
    """Draw the randomness of one step from ``key``."""
    key_u, key_bits = jax.random.split(key)
    u = jax.random.uniform(key_u, (_NUM_UNIFORMS,), dtype=jnp.float32)
    bits = jax.random.bits(key_bits, (_NUM_KEYS,), dtype=jnp.uint32)
    return StepNoise(
        green_act_u=u[0],
        green_host_key=bits[:NUM_HOSTS],
        red_target_key=bits[NUM_HOSTS : 2 * NUM_HOSTS],
        exploit_top_u=u[1],
        exploit_other_key=bits[2 * NUM_HOSTS :],
        detect_u=u[2],
        privesc_u=u[3],
    )


def forced_noise(
    *,
    green_scan: bool = False,
    green_host: int | None = None,
    red_target: int | None = None,
    exploit_top: bool = True,
    exploit_other: int | None = None,
    detected: bool = True,
    privesc_removable: bool = True,
) -> StepNoise:
    """A ``StepNoise`` that forces the given outcomes (host-side helper for tests and lockstep).

    Args:
        green_scan: GreenAgent port-scans (True) or sleeps (False).
        green_host: host index GreenAgent scans.
        red_target: host index Red picks where it draws a target (B_line stage 1, Meander).
        exploit_top: Red takes the top-weighted applicable exploit.
        exploit_other: exploit index taken when ``exploit_top`` is False.
        detected: a successful reverse shell is detected by Blue.
        privesc_removable: PrivilegeEscalate upgrades a removable (detected) user shell rather than
            a hidden one, when it has to choose.
    """

    def onehot(index: int | None, size: int) -> jax.Array:
        keys = jnp.zeros(size, dtype=jnp.uint32)
        return keys if index is None else keys.at[int(index)].set(FORCED_KEY)

    def bern(yes: bool) -> jax.Array:
        return jnp.float32(0.0 if yes else 1.0)

    return StepNoise(
        green_act_u=jnp.float32(1.0 if green_scan else 0.0),
        green_host_key=onehot(green_host, NUM_HOSTS),
        red_target_key=onehot(red_target, NUM_HOSTS),
        exploit_top_u=bern(exploit_top),
        exploit_other_key=onehot(exploit_other, NUM_EXPLOITS),
        detect_u=bern(detected),
        privesc_u=bern(privesc_removable),
    )


def masked_argmax(keys: jax.Array, mask: jax.Array) -> jax.Array:
    """Index of the largest key among ``mask`` (a uniform choice for i.i.d. keys); 0 if none.

    Keys are halved and offset by one so that every eligible entry scores above every ineligible
    one, in uint32 and without overflow.
    """
    scores = jnp.where(mask, (keys >> 1) + jnp.uint32(1), jnp.uint32(0))
    return jnp.argmax(scores).astype(jnp.int32)
