"""Workflows as data: the 120 priority orders over the 5 host types, their encodings and distances.

Mirrors ``workflow_rl/order_based_workflow.py`` of the workflow-search project
(``Guangyu-Jiang/cage2-workflow-search-rl``, spec ``../shared/workflows/SPEC.md`` §1-2): the
canonical type list, the host -> type map, the 120 orders in ``itertools.permutations`` order (which
is also the argmax tie-break order of the search), the 25-dim position x type one-hot that the
policy reads after the 52-dim observation, Kendall / Spearman-footrule distances, and the map from a
fix action (Remove 15-27, Restore 132-144) to the host and type it targets.

Everything here is a numpy constant (closed over by jitted code) or a host-side parser that raises
``ValueError`` on bad input before anything is compiled.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence

import numpy as np

from jaxcage.constants import (
    HOST_NAMES,
    NUM_BLUE_ACTIONS,
    NUM_HOSTS,
    REMOVE_BASE,
    RESTORE_BASE,
    Host,
)

TYPES: tuple[str, ...] = ("defender", "enterprise", "op_server", "op_host", "user")
NUM_TYPES = len(TYPES)
# One letter per type (S = op_Server, H = op_Host), as the spec writes orders ("DESHU").
TYPE_LETTERS: tuple[str, ...] = ("D", "E", "S", "H", "U")
DEFENDER, ENTERPRISE, OP_SERVER, OP_HOST, USER = range(NUM_TYPES)

NUM_ORDERS = 120
# ORDERS[i, p] = type index at priority p (0 = highest), in itertools.permutations order.
ORDERS: np.ndarray = np.array(list(itertools.permutations(range(NUM_TYPES))), dtype=np.int32)
# POSITIONS[i, t] = priority position of type t in order i (the inverse permutation).
POSITIONS: np.ndarray = np.argsort(ORDERS, axis=1).astype(np.int32)

# ONEHOT[i, 5 * p + t] = 1 iff type t sits at position p (row = position, column = type).
ONEHOT: np.ndarray = np.zeros((NUM_ORDERS, NUM_TYPES * NUM_TYPES), dtype=np.float32)
ONEHOT[
    np.repeat(np.arange(NUM_ORDERS), NUM_TYPES),
    (NUM_TYPES * np.arange(NUM_TYPES)[None, :] + ORDERS).reshape(-1),
] = 1.0
ONEHOT_SIZE = NUM_TYPES * NUM_TYPES


def _kendall_matrix(positions: np.ndarray) -> np.ndarray:
    # A type pair (a, b) is discordant when the two orders rank a and b the other way round.
    sign = np.sign(positions[:, :, None] - positions[:, None, :])  # (n, 5, 5)
    discordant = (sign[:, None] * sign[None, :] < 0).sum(axis=(2, 3)) // 2
    return (discordant / 10.0).astype(np.float32)  # 10 = C(5, 2), the maximum


def _footrule_matrix(positions: np.ndarray) -> np.ndarray:
    diff = np.abs(positions[:, None, :] - positions[None, :, :]).sum(axis=2)
    return (diff / 12.0).astype(np.float32)  # 12 = the maximum footrule for n = 5


KENDALL: np.ndarray = _kendall_matrix(POSITIONS)
SPEARMAN: np.ndarray = _footrule_matrix(POSITIONS)


def _host_type(name: str) -> int:
    # order_based_workflow.py matches host names by substring; Op_Server must be tested before
    # the generic prefixes, and "Op_Host" before "User".
    for prefix, t in (
        ("Defender", DEFENDER),
        ("Enterprise", ENTERPRISE),
        ("Op_Server", OP_SERVER),
        ("Op_Host", OP_HOST),
        ("User", USER),
    ):
        if name.startswith(prefix):
            return t
    raise ValueError(f"host {name!r} has no workflow type")


HOST_TYPE: np.ndarray = np.array([_host_type(n) for n in HOST_NAMES], dtype=np.int32)
# TYPE_HOSTS[t, h] = host h has type t.
TYPE_HOSTS: np.ndarray = HOST_TYPE[None, :] == np.arange(NUM_TYPES)[:, None]
TYPE_COUNTS: np.ndarray = TYPE_HOSTS.sum(axis=1).astype(np.int32)  # 1 / 3 / 1 / 3 / 5
FOOTHOLD_HOST = int(Host.USER0)  # Red's starting session 0 lives here

# Fix actions: Remove(host) = 15 + host, Restore(host) = 132 + host. Nothing else is a fix.
FIX_HOST: np.ndarray = np.full(NUM_BLUE_ACTIONS, -1, dtype=np.int32)
FIX_HOST[REMOVE_BASE : REMOVE_BASE + NUM_HOSTS] = np.arange(NUM_HOSTS)
FIX_HOST[RESTORE_BASE : RESTORE_BASE + NUM_HOSTS] = np.arange(NUM_HOSTS)
FIX_TYPE: np.ndarray = np.where(FIX_HOST >= 0, HOST_TYPE[np.maximum(FIX_HOST, 0)], -1).astype(
    np.int32
)
IS_FIX: np.ndarray = FIX_HOST >= 0

_NAME_ALIASES = {
    **{t: i for i, t in enumerate(TYPES)},
    **{letter.lower(): i for i, letter in enumerate(TYPE_LETTERS)},
    "opserver": OP_SERVER,
    "op-server": OP_SERVER,
    "ophost": OP_HOST,
    "op-host": OP_HOST,
}


def _type_id(item: object) -> int:
    if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
        if 0 <= int(item) < NUM_TYPES:
            return int(item)
        raise ValueError(f"type id {item!r} out of range 0..{NUM_TYPES - 1}")
    key = str(item).strip().lower()
    if key not in _NAME_ALIASES:
        raise ValueError(
            f"unknown host type {item!r}; expected one of {list(TYPES)} or letters "
            f"{''.join(TYPE_LETTERS)}"
        )
    return _NAME_ALIASES[key]


def parse_order(order: str | Sequence[object]) -> tuple[int, ...]:
    """The 5 type indices of an order, highest priority first.

    Accepts a sequence of type names, letters (D, E, S, H, U) or type ids, a 5-letter string
    (``"DESHU"``), or a string of names separated by commas, spaces or arrows
    (``"defender -> enterprise -> ..."``, the repo's log format).

    Raises:
        ValueError: not a permutation of the 5 types.
    """
    items: Sequence[object]
    if isinstance(order, str):
        text = order.strip()
        if re.fullmatch(r"[A-Za-z]{5}", text):
            items = list(text)
        else:
            items = [p for p in re.split(r"\s*(?:->|→|,|;|\s)\s*", text) if p]
    else:
        items = list(order)
    if len(items) != NUM_TYPES:
        raise ValueError(
            f"a workflow must list the {NUM_TYPES} types {list(TYPES)} once each, got {order!r}"
        )
    ids = tuple(_type_id(x) for x in items)
    if sorted(ids) != list(range(NUM_TYPES)):
        raise ValueError(
            f"a workflow must be a permutation of the 5 types {list(TYPES)}, got {order!r}"
        )
    return ids


_INDEX = {tuple(int(t) for t in row): i for i, row in enumerate(ORDERS)}


def order_index(order: str | Sequence[object]) -> int:
    """Index 0..119 of an order (see ``parse_order`` for the accepted forms)."""
    return _INDEX[parse_order(order)]


def check_index(i: object) -> int:
    """``i`` as an order index, or ``ValueError``."""
    if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= int(i) < NUM_ORDERS:
        raise ValueError(f"order index must be an integer in 0..{NUM_ORDERS - 1}, got {i!r}")
    return int(i)


def order_names(i: int) -> list[str]:
    """The 5 type names of order ``i``, highest priority first."""
    return [TYPES[t] for t in ORDERS[check_index(i)]]


def order_letters(i: int) -> str:
    """Order ``i`` as letters, e.g. ``"DESHU"``."""
    return "".join(TYPE_LETTERS[t] for t in ORDERS[check_index(i)])


# The 6 canonical orders of baselines/fixed_priority_workflows.py (spec §5).
CANONICAL_ORDERS: dict[str, str] = {
    "critical_first": "DSEHU",
    "enterprise_focus": "EDSHU",
    "user_priority": "UDESH",
    "operational_focus": "SHDEU",
    "balanced": "DESUH",
    "reverse": "UHESD",
}
