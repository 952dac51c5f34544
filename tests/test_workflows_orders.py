"""jaxcage.workflows.orders against brute-force itertools code (no JAX compilation)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from jaxcage.constants import BLUE_ACTION_NAMES, HOST_NAMES, NUM_BLUE_ACTIONS
from jaxcage.workflows import orders

CANON = ["defender", "enterprise", "op_server", "op_host", "user"]


def test_orders_are_itertools_permutations_of_the_canonical_types():
    perms = list(itertools.permutations(CANON))
    assert list(orders.TYPES) == CANON
    assert orders.NUM_ORDERS == len(perms) == orders.ORDERS.shape[0] == 120
    for i, perm in enumerate(perms):
        assert orders.order_names(i) == list(perm)
        assert orders.order_index(list(perm)) == i
        assert orders.order_index(orders.order_letters(i)) == i
    assert orders.order_letters(0) == "DESHU"
    assert orders.order_letters(119) == "UHSED"


@pytest.mark.parametrize(
    "text",
    [
        "DESHU",
        "deshu",
        ["D", "E", "S", "H", "U"],
        "defender -> enterprise -> op_server -> op_host -> user",
        "defender → enterprise → op_server → op_host → user",
        "defender, enterprise, op_server, op_host, user",
        [0, 1, 2, 3, 4],
    ],
)
def test_parse_accepts_names_letters_and_log_format(text):
    assert orders.order_index(text) == 0


@pytest.mark.parametrize(
    "bad", ["DESHH", "DESH", "DESHUX", ["defender"] * 5, ["a", "b", "c", "d", "e"], [0, 1, 2, 3, 5]]
)
def test_parse_rejects_non_permutations(bad):
    with pytest.raises(ValueError, match="workflow|type"):
        orders.order_index(bad)


@pytest.mark.parametrize("bad", [-1, 120, 1.5, True, "3"])
def test_order_index_range_is_checked(bad):
    with pytest.raises(ValueError, match="order index"):
        orders.order_names(bad)


def test_onehot_is_position_times_type():
    for i, perm in enumerate(itertools.permutations(range(5))):
        expected = np.zeros(25, dtype=np.float32)
        for p, t in enumerate(perm):
            expected[5 * p + t] = 1.0
        np.testing.assert_array_equal(orders.ONEHOT[i], expected)
    assert orders.ONEHOT.shape == (120, 25) and orders.ONEHOT.dtype == np.float32


def test_distances_match_brute_force():
    perms = list(itertools.permutations(range(5)))
    for i, a in enumerate(perms):
        pos_a = {t: p for p, t in enumerate(a)}
        for j, b in enumerate(perms):
            pos_b = {t: p for p, t in enumerate(b)}
            discordant = sum(
                (pos_a[x] - pos_a[y]) * (pos_b[x] - pos_b[y]) < 0
                for x, y in itertools.combinations(range(5), 2)
            )
            footrule = sum(abs(pos_a[t] - pos_b[t]) for t in range(5))
            assert orders.KENDALL[i, j] == pytest.approx(discordant / 10)
            assert orders.SPEARMAN[i, j] == pytest.approx(footrule / 12)
    assert orders.KENDALL[0, 119] == 1.0 and orders.SPEARMAN[0, 119] == 1.0
    assert set(np.round(orders.KENDALL.ravel() * 10).astype(int)) == set(range(11))


def test_host_types_follow_host_names():
    by_prefix = {"Defender": 0, "Enterprise": 1, "Op_Server": 2, "Op_Host": 3, "User": 4}
    for h, name in enumerate(HOST_NAMES):
        (t,) = [t for p, t in by_prefix.items() if name.startswith(p)]
        assert orders.HOST_TYPE[h] == t
    assert orders.TYPE_COUNTS.tolist() == [1, 3, 1, 3, 5]


def test_fix_actions_are_remove_and_restore_only():
    for a in range(NUM_BLUE_ACTIONS):
        verb, _, target = BLUE_ACTION_NAMES[a].partition(" ")
        if verb in ("Remove", "Restore"):
            h = HOST_NAMES.index(target)
            assert orders.FIX_HOST[a] == h
            assert orders.FIX_TYPE[a] == orders.HOST_TYPE[h]
            assert orders.IS_FIX[a]
        else:
            assert orders.FIX_HOST[a] == -1 and orders.FIX_TYPE[a] == -1 and not orders.IS_FIX[a]
    assert orders.IS_FIX.sum() == 26
    assert orders.FIX_TYPE[22] == orders.FIX_TYPE[139] == orders.OP_SERVER  # Op_Server0
    assert orders.FIX_TYPE[19] == orders.FIX_TYPE[136] == orders.OP_HOST  # Op_Host0


def test_canonical_orders():
    assert orders.CANONICAL_ORDERS == {
        "critical_first": "DSEHU",
        "enterprise_focus": "EDSHU",
        "user_priority": "UDESH",
        "operational_focus": "SHDEU",
        "balanced": "DESUH",
        "reverse": "UHESD",
    }
    for letters in orders.CANONICAL_ORDERS.values():
        assert orders.order_letters(orders.order_index(letters)) == letters
