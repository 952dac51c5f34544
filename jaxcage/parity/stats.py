"""Level 2 parity: are jaxcage's episode returns statistically equivalent to CybORG's?

For every cell (Blue policy x red agent x episode length) the committed CybORG sample
(``jaxcage.parity.generate``) is compared with a fresh jaxcage sample of independent episodes:

* **TOST** (two one-sided Welch t-tests): equivalence is declared when the difference of mean
  returns is shown to lie within ``±margin``, ``margin = max(2% of |CybORG mean|, 0.5)``, at level
  ``alpha = 0.05``. Cells where both samples are constant (e.g. any Blue vs a sleeping Red with no
  Restore) have zero standard error: they pass iff the constants differ by less than the margin.
* **Per-step curves**: a two-sample t-test of the reward at every step (``step_difference_p``),
  Bonferroni-corrected over the steps, so a difference in *when* rewards arrive cannot hide behind
  equal totals. This is a difference test (a low p-value flags a discrepancy); it is reported next
  to the TOST verdict.

The jaxcage side runs the same Blue decision rules (``jaxcage.parity.policies``) vmapped over
episodes with ``lax.scan``; it never needs CybORG.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial

import jax
import numpy as np
from matplotlib.figure import Figure
from scipy import stats as sps

from jaxcage.env import CageEnv, make_params
from jaxcage.parity.generate import Cell
from jaxcage.parity.policies import get_policy
from jaxcage.rules import DEFAULT_RULES
from jaxcage.state import EnvParams

ALPHA = 0.05
CURVE_ALPHA = 0.001  # Bonferroni-corrected level of the per-step difference test
# Level of the two-sided difference test of mean returns: alpha Bonferroni-corrected over the 27
# cells, so that a correct jaxcage is flagged DIFFERENT somewhere with probability <= 5%.
DIFFERENCE_ALPHA = ALPHA / 27
# TOST's power when the true means are equal is about 2 * Phi(margin / se - z_0.95) - 1. Below
# 80% a cell is labelled underpowered; the acceptance rule (``CellResult.consistent``) demands
# equivalence only where the power is >= 98%, so that a correct jaxcage fails it rarely (a cell at
# 80% power would fail one run in five) while a biased one is still caught by the difference test.
UNDERPOWERED = 0.80
REQUIRED_POWER = 0.98
MARGIN_FRACTION = 0.02
MIN_MARGIN = 0.5
DEFAULT_JAX_EPISODES = 10_000
JAX_PER_CYBORG = 10  # jaxcage episodes per CybORG episode, at least (see run_stats)
DEFAULT_JAX_SEED = 0


@dataclass(frozen=True)
class TostResult:
    """Welch TOST of ``mean(y) - mean(x)`` against ``±margin`` (x = CybORG, y = jaxcage)."""

    mean_x: float
    se_x: float
    mean_y: float
    se_y: float
    diff: float  # mean_y - mean_x
    margin: float
    df: float
    p: float  # max of the two one-sided p-values
    equivalent: bool
    p_difference: float  # two-sided Welch test of equal means

    @property
    def se(self) -> float:
        """Standard error of the difference."""
        return float(np.hypot(self.se_x, self.se_y))

    @property
    def power(self) -> float:
        """Approximate probability that TOST shows equivalence if the true means are equal."""
        if self.se == 0.0:
            return 1.0
        z = float(sps.norm.ppf(1.0 - ALPHA))
        return max(0.0, 2.0 * float(sps.norm.cdf(self.margin / self.se - z)) - 1.0)

    @property
    def verdict(self) -> str:
        """EQUIVALENT, DIFFERENT (at ``DIFFERENCE_ALPHA``) or INCONCLUSIVE."""
        if self.equivalent:
            return "EQUIVALENT"
        if self.p_difference < DIFFERENCE_ALPHA:
            return "DIFFERENT"
        return "INCONCLUSIVE"


def equivalence_margin(reference_mean: float) -> float:
    """``max(2% of |reference mean|, 0.5)`` reward points."""
    return max(MARGIN_FRACTION * abs(reference_mean), MIN_MARGIN)


def welch_tost(
    x: np.ndarray, y: np.ndarray, margin: float | None = None, alpha: float = ALPHA
) -> TostResult:
    """Two one-sided Welch t-tests for ``|mean(y) - mean(x)| < margin``.

    H0: diff <= -margin or diff >= margin. The p-value is the larger of the two one-sided ones;
    equivalence is declared when it is below ``alpha``. With zero standard error (both samples
    constant) the p-value is 0 if ``|diff| < margin`` and 1 otherwise.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    if x.size < 2 or y.size < 2:
        raise ValueError("each sample needs at least 2 episodes")
    # Constant samples are detected exactly (np.ptp), not through a variance that float rounding
    # of the mean can make 1e-30 instead of 0; their means are their values, not a rounded sum.
    constant = np.ptp(x) == 0 and np.ptp(y) == 0
    mx, my = (float(x[0]), float(y[0])) if constant else (float(x.mean()), float(y.mean()))
    vx, vy = float(x.var(ddof=1)) / x.size, float(y.var(ddof=1)) / y.size
    if margin is None:
        margin = equivalence_margin(mx)
    diff = my - mx
    se = 0.0 if constant else float(np.sqrt(vx + vy))
    if constant:
        p = 0.0 if abs(diff) < margin else 1.0
        p_diff = 1.0 if diff == 0.0 else 0.0
        df = float("inf")
    else:
        df = (vx + vy) ** 2 / (vx**2 / (x.size - 1) + vy**2 / (y.size - 1))
        p_low = float(sps.t.sf((diff + margin) / se, df))  # H0: diff <= -margin
        p_high = float(sps.t.cdf((diff - margin) / se, df))  # H0: diff >= +margin
        p = max(p_low, p_high)
        p_diff = float(2.0 * sps.t.sf(abs(diff) / se, df))
    return TostResult(
        mean_x=mx,
        se_x=float(np.sqrt(vx)),
        mean_y=my,
        se_y=float(np.sqrt(vy)),
        diff=diff,
        margin=float(margin),
        df=float(df),
        p=p,
        equivalent=p < alpha,
        p_difference=p_diff,
    )


def step_difference_p(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Two-sided p-values of "same per-step reward distribution", per column (step).

    Student's two-sample t-test with pooled variance: under this null the two variances are equal,
    so pooling is valid, and unlike Welch's test it stays sensible when one engine's column is
    constant in its sample (e.g. CybORG's 1000 episodes all at -13.1 at step 26 while 8 of
    jaxcage's 10000 have a late Impact: Welch would put all the variance on one side and reject).
    Columns where both samples are constant get p = 1 if the constants agree, else 0.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    nx, ny = x.shape[0], y.shape[0]
    diff = y.mean(axis=0) - x.mean(axis=0)
    pooled = ((nx - 1) * x.var(axis=0, ddof=1) + (ny - 1) * y.var(axis=0, ddof=1)) / (nx + ny - 2)
    se = np.sqrt(pooled * (1.0 / nx + 1.0 / ny))
    # Columns constant in both samples are decided exactly: rounding in the means would otherwise
    # turn a 1e-15 "difference" over a 1e-16 "standard error" into a rejection.
    constant = (np.ptp(x, axis=0) == 0) & (np.ptp(y, axis=0) == 0)
    p = np.where(x[0] == y[0], 1.0, 0.0)
    varying = ~constant
    p[varying] = 2.0 * sps.t.sf(np.abs(diff[varying] / se[varying]), nx + ny - 2)
    return p


@dataclass(frozen=True)
class CurveResult:
    """Per-step comparison of mean rewards (in reward points)."""

    mean_x: np.ndarray  # (L,) CybORG per-step mean
    mean_y: np.ndarray  # (L,) jaxcage per-step mean
    se_x: np.ndarray
    se_y: np.ndarray
    p_bonferroni: float  # min over steps of the per-step p, times L (capped at 1)
    worst_step: int  # 1-based step with the smallest p
    consistent: bool  # p_bonferroni >= CURVE_ALPHA


def compare_curves(x: np.ndarray, y: np.ndarray, alpha: float = CURVE_ALPHA) -> CurveResult:
    """Compare per-step rewards ``x`` (n, L) and ``y`` (m, L)."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    p = step_difference_p(x, y)
    worst = int(np.argmin(p))
    p_bonf = float(min(1.0, p[worst] * p.size))
    return CurveResult(
        mean_x=x.mean(axis=0),
        mean_y=y.mean(axis=0),
        se_x=x.std(axis=0, ddof=1) / np.sqrt(x.shape[0]),
        se_y=y.std(axis=0, ddof=1) / np.sqrt(y.shape[0]),
        p_bonferroni=p_bonf,
        worst_step=worst + 1,
        consistent=p_bonf >= alpha,
    )


@partial(jax.jit, static_argnames=("policy_name", "length"))
def _rollout_tenths(keys: jax.Array, params: EnvParams, policy_name: str, length: int) -> jax.Array:
    """Per-step rewards in tenths, (n, length) int32, one independent episode per key."""
    env = CageEnv()
    policy = get_policy(policy_name)

    def episode(key: jax.Array) -> jax.Array:
        key_reset, key_steps = jax.random.split(key)
        obs, state = env.reset(key_reset, params)

        def step(carry, key_t):
            obs, state = carry
            key_policy, key_env = jax.random.split(key_t)
            action = policy.act_jax(obs, key_policy)
            obs, state, _, _, info = env.step_env(key_env, state, action, params)
            return (obs, state), info["reward_tenths"]

        _, rewards = jax.lax.scan(step, (obs, state), jax.random.split(key_steps, length))
        return rewards

    return jax.vmap(episode)(keys)


def cell_key(seed: int, cell: Cell) -> jax.Array:
    """The JAX key of a cell: independent across cells, fixed for a given seed."""
    return jax.random.fold_in(jax.random.key(seed), zlib.crc32(cell.key.encode()))


def sample_jaxcage(
    cell: Cell, episodes: int, seed: int = DEFAULT_JAX_SEED, rules: str = DEFAULT_RULES
) -> np.ndarray:
    """(episodes, length) int32 per-step rewards (tenths) of jaxcage for ``cell``."""
    params = make_params(cell.red, max_steps=cell.length, rules=rules)
    keys = jax.random.split(cell_key(seed, cell), episodes)
    out = _rollout_tenths(keys, params, cell.blue, cell.length)
    return np.asarray(jax.device_get(out))


@dataclass(frozen=True)
class CellResult:
    """TOST and curve comparison of one cell (rewards in reward points)."""

    cell: Cell
    n_cyborg: int
    n_jaxcage: int
    tost: TostResult
    curve: CurveResult

    @property
    def consistent(self) -> bool:
        """The acceptance rule: no difference shown (returns or per-step curve), and equivalence
        shown wherever TOST has >= ``REQUIRED_POWER`` power."""
        t = self.tost
        return (
            t.verdict != "DIFFERENT"
            and self.curve.consistent
            and (t.equivalent or t.power < REQUIRED_POWER)
        )


def compare_cell(cell: Cell, cyborg_tenths: np.ndarray, jax_tenths: np.ndarray) -> CellResult:
    """Compare per-step reward samples (tenths) of the two engines for one cell."""
    x = np.asarray(cyborg_tenths, np.float64) / 10.0
    y = np.asarray(jax_tenths, np.float64) / 10.0
    return CellResult(
        cell=cell,
        n_cyborg=x.shape[0],
        n_jaxcage=y.shape[0],
        tost=welch_tost(x.sum(axis=1), y.sum(axis=1)),
        curve=compare_curves(x, y),
    )


def run_stats(
    cyborg_rewards: dict[str, np.ndarray],
    cells: Iterable[Cell] | None = None,
    episodes: int = DEFAULT_JAX_EPISODES,
    seed: int = DEFAULT_JAX_SEED,
    log: Callable[[str], None] | None = None,
    rules: str = DEFAULT_RULES,
) -> list[CellResult]:
    """Compare every cell of the CybORG dataset (or ``cells``) with a fresh jaxcage sample.

    ``rules``: the jaxcage rule set sampled (that of the CybORG which made the dataset).

    jaxcage runs ``max(episodes, JAX_PER_CYBORG x CybORG's n)`` episodes per cell: they are cheap,
    and a large jaxcage sample leaves almost all of the standard error to CybORG's side.
    """
    chosen = list(cells) if cells is not None else [Cell.parse(k) for k in cyborg_rewards]
    results = []
    for cell in chosen:
        cyborg = cyborg_rewards[cell.key]
        n = max(episodes, JAX_PER_CYBORG * cyborg.shape[0])
        res = compare_cell(cell, cyborg, sample_jaxcage(cell, n, seed, rules))
        if log is not None:
            log(format_row(res))
        results.append(res)
    return results


TABLE_HEADER = (
    f"{'cell (blue/red/steps)':<28s} {'n cy/jax':>11s} {'CybORG mean ± se':>19s} "
    f"{'jaxcage mean ± se':>19s} {'diff':>7s} {'margin':>6s} {'power':>5s} {'TOST p':>8s} "
    f"{'curve p':>7s}  verdict"
)


def format_row(r: CellResult) -> str:
    """One line of the parity table."""
    t = r.tost
    verdict = t.verdict
    if verdict == "INCONCLUSIVE" and t.power < UNDERPOWERED:
        verdict += " (underpowered)"
    if not r.curve.consistent:
        verdict += f"; CURVE DIFFERS at step {r.curve.worst_step}"
    return (
        f"{r.cell.key:<28s} {r.n_cyborg:>5d}/{r.n_jaxcage:<5d} "
        f"{t.mean_x:>9.2f} ± {t.se_x:<6.2f} {t.mean_y:>9.2f} ± {t.se_y:<6.2f} "
        f"{t.diff:>7.2f} {t.margin:>6.2f} {t.power:>5.2f} {t.p:>8.2g} "
        f"{r.curve.p_bonferroni:>7.2g}  {verdict}"
    )


def summary(results: list[CellResult]) -> str:
    """One-line tally of the verdicts."""
    verdicts = [r.tost.verdict for r in results]
    curves = sum(not r.curve.consistent for r in results)
    return (
        f"{len(results)} cells: {verdicts.count('EQUIVALENT')} equivalent, "
        f"{verdicts.count('INCONCLUSIVE')} inconclusive, {verdicts.count('DIFFERENT')} different; "
        f"{curves} per-step curves differ"
    )


def all_consistent(results: list[CellResult]) -> bool:
    """The acceptance rule of the parity test (see ``CellResult.consistent``)."""
    return all(r.consistent for r in results)


def plot_curves(results: list[CellResult], path: str) -> None:
    """A grid of per-step mean reward curves (CybORG vs jaxcage, ±1.96 se bands) to ``path``."""
    blues = sorted({r.cell.blue for r in results}, key=[r.cell.blue for r in results].index)
    rows = sorted({(r.cell.red, r.cell.length) for r in results})
    # The object-oriented Figure needs no pyplot backend (no global state, works headless).
    fig = Figure(figsize=(4 * len(blues), 2.2 * len(rows)))
    axes = fig.subplots(len(rows), len(blues), squeeze=False)
    for r in results:
        ax = axes[rows.index((r.cell.red, r.cell.length)), blues.index(r.cell.blue)]
        steps = np.arange(1, r.curve.mean_x.size + 1)
        for mean, se, label, color in (
            (r.curve.mean_x, r.curve.se_x, "CybORG", "tab:blue"),
            (r.curve.mean_y, r.curve.se_y, "jaxcage", "tab:orange"),
        ):
            ax.plot(steps, mean, label=label, color=color, lw=1)
            ax.fill_between(steps, mean - 1.96 * se, mean + 1.96 * se, color=color, alpha=0.25)
        ax.set_title(f"{r.cell.key}  (curve p={r.curve.p_bonferroni:.2g})", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=7)
    fig.supxlabel("step")
    fig.supylabel("mean reward per step")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
