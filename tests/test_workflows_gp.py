"""GP posterior against a plain NumPy reference; the repo's heuristic selector on a hand case."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from jaxcage.workflows.gp import (
    GPSelector,
    RepoHeuristicSelector,
    gp_posterior,
    repo_heuristic_scores,
)
from jaxcage.workflows.orders import KENDALL, NUM_ORDERS, order_index


def _reference_posterior(orders, values, l, s2, noise):  # noqa: ANN001, ANN202, E741
    """Textbook GP regression with explicit inverses, on the averaged observations."""
    groups: dict[int, list[float]] = {}
    for o, v in zip(orders, values, strict=True):
        groups.setdefault(int(o), []).append(float(v))
    xs = sorted(groups)
    ybar = np.array([np.mean(groups[x]) for x in xs])
    n = np.array([len(groups[x]) for x in xs], dtype=float)
    m, s = ybar.mean(), (ybar.std() if len(xs) > 1 and ybar.std() > 0 else 1.0)
    y = (ybar - m) / s
    mu, sd = np.zeros(NUM_ORDERS), np.zeros(NUM_ORDERS)
    kinv = np.linalg.inv(
        np.array([[s2 * math.exp(-KENDALL[a, b] / l) for b in xs] for a in xs])
        + np.diag(noise / n + 1e-9)
    )
    for i in range(NUM_ORDERS):
        k = np.array([s2 * math.exp(-KENDALL[i, b] / l) for b in xs])
        mu[i] = m + s * (k @ kinv @ y)
        sd[i] = s * math.sqrt(max(s2 - k @ kinv @ k, 1e-12))
    return mu, sd


def test_gp_posterior_matches_numpy_reference() -> None:
    rng = np.random.default_rng(1)
    orders = np.array([3, 17, 17, 64, 100, 3, 119])
    values = rng.normal(-50, 20, size=orders.size)
    mu, sd = gp_posterior(orders, values, lengthscale=0.3, signal_var=1.0, noise_var=0.1)
    mu_ref, sd_ref = _reference_posterior(orders, values, 0.3, 1.0, 0.1)
    np.testing.assert_allclose(mu, mu_ref, rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(sd, sd_ref, rtol=1e-6, atol=1e-8)
    # Observed points are pulled towards their averages, far ones towards the prior mean.
    assert abs(mu[17] - values[1:3].mean()) < abs(mu[17] - values.mean())


def test_repeats_reduce_uncertainty() -> None:
    kw: dict[str, Any] = {"lengthscale": 0.3, "signal_var": 1.0, "noise_var": 0.5}
    _, sd1 = gp_posterior(np.array([5, 40]), np.array([1.0, 2.0]), **kw)
    _, sd3 = gp_posterior(np.array([5, 5, 5, 40]), np.array([1.0, 1.0, 1.0, 2.0]), **kw)
    assert sd3[5] < sd1[5]


def test_gp_selector_random_first_then_ucb() -> None:
    sel = GPSelector(
        beta=2.0,
        lengthscale=0.3,
        signal_var=1.0,
        noise_var=0.1,
        rng=np.random.default_rng(0),
        first=order_index("UHSED"),
    )
    assert sel.select().order == order_index("UHSED")
    sel.observe(order_index("UHSED"), -100.0)
    sel.observe(order_index("DESHU"), -20.0)
    c = sel.select()
    assert c.method == "gp_ucb" and np.isfinite(c.ucb)
    # The bound is high near the good observation, and the pick is the argmax of the bound.
    mu, sd = gp_posterior(
        np.array([order_index("UHSED"), order_index("DESHU")]),
        np.array([-100.0, -20.0]),
        lengthscale=0.3,
        signal_var=1.0,
        noise_var=0.1,
    )
    assert c.order == int(np.argmax(mu + 2.0 * sd))
    assert KENDALL[c.order, order_index("DESHU")] < KENDALL[c.order, order_index("UHSED")]


def test_repo_heuristic_hand_case() -> None:
    a, b = order_index("DESHU"), order_index("UHSED")  # Kendall distance 1 (reversed)
    obs_o = np.array([a, b, a])
    obs_v = np.array([-10.0, -30.0, -99.0])  # the repeat of a is ignored for a's own mean
    ucb, mu, sigma = repo_heuristic_scores(obs_o, obs_v, beta=2.0)
    # Observed: first value, sigma = 1/(1+visits), beta/(1+0.5 visits).
    assert mu[a] == -10.0 and sigma[a] == pytest.approx(1 / 3)
    assert ucb[a] == pytest.approx(-10.0 + 2.0 / 2.0 * (1 / 3))
    assert mu[b] == -30.0 and ucb[b] == pytest.approx(-30.0 + 2.0 / 1.5 * 0.5)
    # Unobserved: exp(-2 d)-weighted mean over all observations (repeats included).
    c = order_index("EDSHU")  # one swap away from a
    da, db = KENDALL[c, a], KENDALL[c, b]
    w = np.exp(-2 * np.array([da, db, da]))
    w /= w.sum()
    assert mu[c] == pytest.approx(float(w @ obs_v))
    assert sigma[c] == pytest.approx(1 + 10 * min(da, db))
    assert ucb[c] == pytest.approx(mu[c] + 2.0 * sigma[c])


def test_repo_heuristic_random_until_two_observations_and_first_argmax() -> None:
    sel = RepoHeuristicSelector(beta=2.0, rng=np.random.default_rng(42))
    picks = [sel.select().order]
    sel.observe(picks[0], -5.0)
    second = sel.select()
    assert second.method == "random"
    sel.observe(second.order, -5.0)
    third = sel.select()
    ucb, _, _ = repo_heuristic_scores(np.array([picks[0], second.order]), np.array([-5.0, -5.0]), 2)
    assert third.method == "repo_heuristic"
    assert third.order == int(np.flatnonzero(ucb == ucb.max())[0])  # itertools-order tie-break
