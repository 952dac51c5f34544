"""Workflow selectors for the outer loop: a Gaussian-process UCB over the 120 orders, and the repo's
heuristic (``workflow_rl/gp_ucb_order_search.py`` of the workflow project, spec §5 and §8.7).

Both are host-side NumPy: the posterior over 120 candidates is a 120 x n solve (microseconds), so
putting it in the compiled program would buy nothing and cost a recompile per observation count.

``GPSelector`` (default) is a real GP on the permutations: the Mallows kernel
``k(x, x') = s2 * exp(-d_K(x, x') / l)`` (positive definite for the Kendall distance), Gaussian
observation noise, repeated observations of a workflow averaged (their mean has noise ``noise/n``),
returns standardised by the observed mean and spread, and ``UCB = mu + beta * sigma``.

``RepoHeuristicSelector`` reproduces what the repo actually runs (its sklearn GP is fitted on
observation indices and never queried): random with fewer than 2 observations; then, per candidate,
the first observed reward and ``1 / (1 + n)`` for observed ones, and a ``exp(-2 d_K)``-weighted mean
with ``1 + 10 min d_K`` for unobserved ones; ``UCB = mu + beta / (1 + 0.5 n) * sigma``; argmax in
itertools order (``np.argmax`` keeps the first maximum).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from jaxcage.workflows.orders import KENDALL, NUM_ORDERS

if TYPE_CHECKING:
    from jaxcage.workflows.config import WorkflowConfig


@dataclasses.dataclass
class Observation:
    order: int
    value: float


@dataclasses.dataclass
class Choice:
    """One selection: the pick and the scores it was picked on (NaN when picked at random)."""

    order: int
    ucb: float
    mean: float
    std: float
    method: str


def gp_posterior(
    obs_orders: np.ndarray,
    obs_values: np.ndarray,
    *,
    lengthscale: float,
    signal_var: float,
    noise_var: float,
    distances: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and standard deviation of the (standardised) return at all 120 orders.

    ``obs_orders``/``obs_values`` are raw observations (repeats allowed): repeats are averaged and
    their noise divided by the count. Means are returned on the original scale.
    """
    d = KENDALL if distances is None else distances
    d = np.asarray(d, dtype=np.float64)
    n_all = d.shape[0]
    obs_orders = np.asarray(obs_orders, dtype=np.int64)
    obs_values = np.asarray(obs_values, dtype=np.float64)
    if obs_orders.size == 0:
        return np.zeros(n_all), np.full(n_all, np.sqrt(signal_var))
    uniq, inv, counts = np.unique(obs_orders, return_inverse=True, return_counts=True)
    means = np.bincount(inv, weights=obs_values) / counts
    centre = float(np.mean(means))
    scale = float(np.std(means)) if means.size > 1 and np.std(means) > 0 else 1.0
    y = (means - centre) / scale
    k_ss = signal_var * np.exp(-d[np.ix_(uniq, uniq)] / lengthscale)
    k_ss = k_ss + np.diag(noise_var / counts + 1e-9)
    k_as = signal_var * np.exp(-d[:, uniq] / lengthscale)
    chol = np.linalg.cholesky(k_ss)
    alpha = np.linalg.solve(chol.T, np.linalg.solve(chol, y))
    mu = k_as @ alpha
    v = np.linalg.solve(chol, k_as.T)
    var = np.maximum(signal_var - np.sum(v * v, axis=0), 1e-12)
    return centre + scale * mu, scale * np.sqrt(var)


class GPSelector:
    """GP-UCB over all 120 orders (see the module docstring)."""

    def __init__(
        self,
        *,
        beta: float,
        lengthscale: float,
        signal_var: float,
        noise_var: float,
        rng: np.random.Generator,
        first: int | None = None,
    ) -> None:
        self.beta, self.lengthscale = beta, lengthscale
        self.signal_var, self.noise_var = signal_var, noise_var
        self.rng, self.first = rng, first
        self.observations: list[Observation] = []
        self.picks = 0

    def observe(self, order: int, value: float) -> None:
        self.observations.append(Observation(int(order), float(value)))

    def select(self) -> Choice:
        self.picks += 1
        if not self.observations:
            if self.first is not None and self.picks == 1:
                return Choice(self.first, np.nan, np.nan, np.nan, "first_order")
            return Choice(int(self.rng.integers(NUM_ORDERS)), np.nan, np.nan, np.nan, "random")
        mu, sd = gp_posterior(
            np.array([o.order for o in self.observations]),
            np.array([o.value for o in self.observations]),
            lengthscale=self.lengthscale,
            signal_var=self.signal_var,
            noise_var=self.noise_var,
        )
        ucb = mu + self.beta * sd
        i = int(np.argmax(ucb))
        return Choice(i, float(ucb[i]), float(mu[i]), float(sd[i]), "gp_ucb")


def repo_heuristic_scores(
    obs_orders: np.ndarray, obs_values: np.ndarray, beta: float, distances: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(ucb, mu, sigma)`` of the repo's selector at all 120 orders (needs >= 1 observation)."""
    d = np.asarray(KENDALL if distances is None else distances, dtype=np.float64)
    obs_orders = np.asarray(obs_orders, dtype=np.int64)
    obs_values = np.asarray(obs_values, dtype=np.float64)
    n = d.shape[0]
    visits = np.bincount(obs_orders, minlength=n).astype(np.float64)
    first_value = np.full(n, np.nan)
    for o, v in zip(obs_orders[::-1], obs_values[::-1], strict=True):
        first_value[o] = v  # iterating backwards leaves each order's first observation
    dist = d[:, obs_orders]  # (120, n_obs)
    w = np.exp(-2.0 * dist)
    w = w / w.sum(axis=1, keepdims=True)
    mu_unobs = w @ obs_values
    sigma_unobs = 1.0 + 10.0 * dist.min(axis=1)
    observed = visits > 0
    mu = np.where(observed, first_value, mu_unobs)
    sigma = np.where(observed, 1.0 / (1.0 + visits), sigma_unobs)
    ucb = mu + beta / (1.0 + 0.5 * visits) * sigma
    return ucb, mu, sigma


class RepoHeuristicSelector:
    """The repo's selector, exactly (spec §5)."""

    def __init__(self, *, beta: float, rng: np.random.Generator, first: int | None = None) -> None:
        self.beta, self.rng, self.first = beta, rng, first
        self.observations: list[Observation] = []
        self.picks = 0

    def observe(self, order: int, value: float) -> None:
        self.observations.append(Observation(int(order), float(value)))

    def select(self) -> Choice:
        self.picks += 1
        if len(self.observations) < 2:
            if self.first is not None and self.picks == 1:
                return Choice(self.first, np.nan, np.nan, np.nan, "first_order")
            return Choice(int(self.rng.integers(NUM_ORDERS)), np.nan, np.nan, np.nan, "random")
        ucb, mu, sigma = repo_heuristic_scores(
            np.array([o.order for o in self.observations]),
            np.array([o.value for o in self.observations]),
            self.beta,
        )
        i = int(np.argmax(ucb))
        return Choice(i, float(ucb[i]), float(mu[i]), float(sigma[i]), "repo_heuristic")


def make_selector(
    cfg: WorkflowConfig, rng: np.random.Generator, first: int | None
) -> GPSelector | RepoHeuristicSelector:
    """The selector a ``WorkflowConfig`` asks for."""
    if cfg.selector == "repo_heuristic":
        return RepoHeuristicSelector(beta=cfg.beta, rng=rng, first=first)
    return GPSelector(
        beta=cfg.beta,
        lengthscale=cfg.gp_lengthscale,
        signal_var=cfg.gp_signal_var,
        noise_var=cfg.gp_noise_var,
        rng=rng,
        first=first,
    )
