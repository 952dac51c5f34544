"""Scripted Blue policies that drive both engines from the same code.

A policy is a pure function ``(obs, u, xp) -> action`` of the 52-dim Blue observation, a vector of
``NUM_UNIFORMS`` uniforms in [0, 1), and an array namespace (``numpy`` or ``jax.numpy``). The
CybORG side calls it with numpy and uniforms from a seeded ``numpy.random.Generator``; the jaxcage
side calls it, traced, with ``jax.numpy`` and uniforms from a JAX key, so the statistical test runs
the very same decision rule vmapped. Actions use CybORG's ``EnumActionWrapper`` ids (see
``jaxcage.constants``); the observation layout is ``BlueTableWrapper._create_vector``'s: per host
(order ``constants.HOST_NAMES``) two Activity bits then two Compromised bits.

``react_restore`` is the rule named in the parity issue (restore the first host, in observation
order, whose Compromised field is not No; else sleep). It is *not* CybORG's
``BlueReactRestoreAgent``, which parses raw observations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxcage.constants import (
    ANALYSE_BASE,
    DECOY_BASE,
    NUM_BLUE_ACTIONS,
    NUM_DECOYS,
    NUM_HOSTS,
    REMOVE_BASE,
    RESTORE_BASE,
)

NUM_UNIFORMS = 4
SLEEP = 0
MONITOR = 1

PolicyFn = Callable[[Any, Any, ModuleType], Any]


def _index(u: Any, n: int, xp: ModuleType) -> Any:
    """floor(u * n) as an int32 in [0, n) (clipped: float32 u * n can round up to n)."""
    return xp.minimum(xp.floor(u * n).astype(xp.int32), n - 1)


def compromised_hosts(obs: Any, xp: ModuleType) -> Any:
    """(13,) bool: hosts whose Compromised bits are not No (00)."""
    return (obs.reshape(NUM_HOSTS, 4)[:, 2:] != 0).any(axis=1)


def _pick_flagged(flags: Any, u: Any, xp: ModuleType) -> Any:
    """A uniformly chosen index among ``flags`` (0 when none is set)."""
    k = xp.floor(u * flags.sum()).astype(xp.int32)
    return xp.argmax(xp.cumsum(flags.astype(xp.int32)) > k).astype(xp.int32)


def sleep_policy(obs: Any, u: Any, xp: ModuleType) -> Any:
    """Always Sleep (the evaluation's do-nothing baseline)."""
    del obs, u
    return xp.zeros((), dtype=xp.int32)


def random_policy(obs: Any, u: Any, xp: ModuleType) -> Any:
    """Uniform over all 145 actions."""
    del obs
    return _index(u[0], NUM_BLUE_ACTIONS, xp)


def react_restore_policy(obs: Any, u: Any, xp: ModuleType) -> Any:
    """Restore the first host (observation order) whose Compromised field is not No; else Sleep."""
    del u
    flags = compromised_hosts(obs, xp)
    first = xp.argmax(flags).astype(xp.int32)
    return xp.where(flags.any(), RESTORE_BASE + first, SLEEP).astype(xp.int32)


def decoy_heavy_policy(obs: Any, u: Any, xp: ModuleType) -> Any:
    """75%: a uniformly random decoy (kind, host), compatible or not; else ``react_restore``.

    Exercises decoy placement rules, Vsftpd stacking, decoys catching exploits, and their removal
    by Restore.
    """
    decoy = DECOY_BASE + NUM_HOSTS * _index(u[1], NUM_DECOYS, xp) + _index(u[2], NUM_HOSTS, xp)
    return xp.where(u[0] < 0.75, decoy, react_restore_policy(obs, u, xp)).astype(xp.int32)


def analyse_remove_restore_policy(obs: Any, u: Any, xp: ModuleType) -> Any:
    """Mix of Analyse / Remove / Restore.

    If some host is flagged: pick one uniformly, then Remove (40%), Analyse (30%) or Restore (30%).
    Otherwise: Analyse (50%) or Remove (25%) a uniformly random host, or Monitor (25%).
    """
    flags = compromised_hosts(obs, xp)
    flagged = _pick_flagged(flags, u[1], xp)
    on_flagged = xp.where(
        u[0] < 0.4,
        REMOVE_BASE + flagged,
        xp.where(u[0] < 0.7, ANALYSE_BASE + flagged, RESTORE_BASE + flagged),
    )
    anyhost = _index(u[2], NUM_HOSTS, xp)
    idle = xp.where(
        u[0] < 0.5, ANALYSE_BASE + anyhost, xp.where(u[0] < 0.75, REMOVE_BASE + anyhost, MONITOR)
    )
    return xp.where(flags.any(), on_flagged, idle).astype(xp.int32)


@dataclass(frozen=True)
class BluePolicy:
    """A named policy with numpy and JAX entry points."""

    name: str
    fn: PolicyFn

    def act_numpy(self, obs: np.ndarray, rng: np.random.Generator) -> int:
        """Action for a numpy observation; draws ``NUM_UNIFORMS`` uniforms from ``rng``."""
        u = rng.random(NUM_UNIFORMS)
        return int(self.fn(np.asarray(obs), u, np))

    def act_jax(self, obs: jax.Array, key: jax.Array) -> jax.Array:
        """Action for a (traceable) JAX observation; ``key`` supplies the uniforms."""
        u = jax.random.uniform(key, (NUM_UNIFORMS,), dtype=jnp.float32)
        return self.fn(obs, u, jnp)


POLICIES: dict[str, BluePolicy] = {
    p.name: p
    for p in (
        BluePolicy("sleep", sleep_policy),
        BluePolicy("random", random_policy),
        BluePolicy("react_restore", react_restore_policy),
        BluePolicy("decoy_heavy", decoy_heavy_policy),
        BluePolicy("analyse_remove_restore", analyse_remove_restore_policy),
    )
}

# The policies of the statistical test (issue 3) and the lockstep rotation.
STATS_POLICIES: tuple[str, ...] = ("sleep", "random", "react_restore")
LOCKSTEP_POLICIES: tuple[str, ...] = (
    "random",
    "react_restore",
    "decoy_heavy",
    "analyse_remove_restore",
    "sleep",
)


def get_policy(name: str) -> BluePolicy:
    """Look a policy up by name (``ValueError`` listing the names if unknown)."""
    if name not in POLICIES:
        raise ValueError(f"unknown blue policy {name!r}; expected one of {list(POLICIES)}")
    return POLICIES[name]
