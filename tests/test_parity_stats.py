"""Level 2 parity: the statistics (on synthetic data), the shared Blue policies, the committed
CybORG samples, and the statistical comparison of jaxcage against them (no CybORG needed)."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from envtools import assert_samples_cover_cells
from scipy import stats as sps

from jaxcage.constants import NUM_BLUE_ACTIONS, RESTORE_BASE
from jaxcage.parity import generate as gen
from jaxcage.parity import stats
from jaxcage.parity.__main__ import main as parity_main
from jaxcage.parity.policies import NUM_UNIFORMS, POLICIES, STATS_POLICIES, get_policy

DATA = os.path.join(os.path.dirname(__file__), "data", "cyborg_returns.npz")


# --- TOST ----------------------------------------------------------------------------------------


def test_tost_matches_scipy_one_sided_welch_tests():
    rng = np.random.default_rng(0)
    x = rng.normal(-100.0, 20.0, 800)
    y = rng.normal(-101.0, 25.0, 1500)
    margin = 3.0
    res = stats.welch_tost(x, y, margin=margin)
    # H0a: mean(y) - mean(x) <= -margin  <=>  mean(y + margin) <= mean(x)
    p_low = sps.ttest_ind(y + margin, x, equal_var=False, alternative="greater").pvalue
    p_high = sps.ttest_ind(y - margin, x, equal_var=False, alternative="less").pvalue
    assert res.p == pytest.approx(max(p_low, p_high), rel=1e-9)
    assert res.p_difference == pytest.approx(sps.ttest_ind(y, x, equal_var=False).pvalue, rel=1e-9)
    assert res.diff == pytest.approx(y.mean() - x.mean())


def test_tost_accepts_equal_and_rejects_shifted_samples():
    rng = np.random.default_rng(1)
    x = rng.normal(-200.0, 10.0, 2000)
    same = stats.welch_tost(x, rng.normal(-200.0, 10.0, 2000))
    assert same.margin == pytest.approx(0.02 * 200, rel=0.05)
    assert same.equivalent and same.verdict == "EQUIVALENT" and same.power > 0.99
    shifted = stats.welch_tost(x, rng.normal(-200.0 + 3 * same.margin, 10.0, 2000))
    assert not shifted.equivalent and shifted.verdict == "DIFFERENT"


def test_tost_underpowered_sample_is_inconclusive_not_equivalent():
    rng = np.random.default_rng(2)
    x = rng.normal(-50.0, 300.0, 1000)  # margin 1.0 against se ~ 13: cannot be resolved
    res = stats.welch_tost(x, rng.normal(-50.0, 300.0, 1000))
    assert res.power < 0.05
    assert res.verdict == "INCONCLUSIVE"


@pytest.mark.parametrize(
    ("x_value", "y_value", "equivalent", "verdict"),
    [
        (0.0, 0.0, True, "EQUIVALENT"),  # e.g. a sleeping Blue against a sleeping Red
        (-10.0, -10.3, True, "EQUIVALENT"),  # constant, within the 0.5 minimum margin
        (-10.0, -11.0, False, "DIFFERENT"),  # constant, outside the margin
    ],
)
def test_tost_zero_variance(x_value, y_value, equivalent, verdict):
    res = stats.welch_tost(np.full(1000, x_value), np.full(1000, y_value))
    assert res.margin == pytest.approx(0.5)
    assert res.equivalent is equivalent
    assert res.verdict == verdict


def test_margin_rule():
    assert stats.equivalence_margin(-1135.0) == pytest.approx(22.7)
    assert stats.equivalence_margin(-10.0) == pytest.approx(0.5)
    assert stats.equivalence_margin(0.0) == pytest.approx(0.5)


# --- per-step curves -----------------------------------------------------------------------------


def test_step_difference_p_matches_scipy_per_column():
    rng = np.random.default_rng(3)
    x = rng.normal(0.0, 1.0, (500, 6))
    y = rng.normal(0.1, 1.5, (700, 6))
    expected = sps.ttest_ind(y, x, equal_var=True, axis=0).pvalue
    np.testing.assert_allclose(stats.step_difference_p(x, y), expected, rtol=1e-9)


def test_step_difference_tolerates_rare_values_missing_from_one_sample():
    # CybORG's 1000 episodes all at -13.1 on a step where 8 of 10000 jaxcage episodes are not
    # yet there: no evidence of a difference (Welch's test would reject at p ~ 0).
    x = np.full((1000, 1), -13.1)
    y = np.full((10000, 1), -13.1)
    y[:8, 0] = -2.1
    assert stats.step_difference_p(x, y)[0] > 0.1
    y[:400, 0] = -2.1  # 4% of episodes: a real difference, even after Bonferroni over 100 steps
    assert stats.step_difference_p(x, y)[0] < stats.CURVE_ALPHA / 100


def test_curve_check_catches_a_timing_difference_that_totals_hide():
    # Same per-episode totals, but one engine collects the penalty 5 steps later.
    rng = np.random.default_rng(4)
    n, length = 1000, 40
    x = np.zeros((n, length))
    y = np.zeros((n, length))
    onset = rng.integers(10, 20, n)
    for i, t in enumerate(onset):
        x[i, t] = -10.0
        y[i, t + 5] = -10.0
    totals = stats.welch_tost(x.sum(axis=1), y.sum(axis=1))
    assert totals.equivalent
    curve = stats.compare_curves(x, y)
    assert not curve.consistent
    assert 10 <= curve.worst_step <= 25


def test_constant_columns_are_decided_exactly():
    # -13.1 is not a binary fraction: means of constant columns carry rounding noise that a
    # variance-based test would read as a (tiny but "significant") difference.
    x = np.full((1000, 3), -13.1)
    y = np.full((10000, 3), -13.1)
    y[:, 2] = -3.1
    np.testing.assert_array_equal(stats.step_difference_p(x, y), [1.0, 1.0, 0.0])
    assert stats.compare_curves(x[:, :2], y[:, :2]).consistent
    tost = stats.welch_tost(np.full(1000, -1310.0 / 7), np.full(5000, -1310.0 / 7))
    assert tost.equivalent and tost.p_difference == 1.0


def test_curve_check_accepts_same_distribution():
    rng = np.random.default_rng(5)
    x = rng.choice([0.0, -0.1, -1.0], size=(1000, 30))
    y = rng.choice([0.0, -0.1, -1.0], size=(3000, 30))
    x[:, 0] = y[:, 0] = 0.0  # a constant column (zero variance in both)
    assert stats.compare_curves(x, y).consistent


# --- shared policies -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(POLICIES))
def test_policy_numpy_and_jax_agree(name):
    policy = get_policy(name)
    rng = np.random.default_rng(6)
    obs = (rng.random((200, 52)) < 0.15).astype(np.int32)
    u = rng.random((200, NUM_UNIFORMS)).astype(np.float32)
    expected = np.array([int(policy.fn(o, v, np)) for o, v in zip(obs, u, strict=True)])
    got = np.asarray(jax.jit(jax.vmap(lambda o, v: policy.fn(o, v, jnp)))(obs, u))
    np.testing.assert_array_equal(got, expected)
    assert ((expected >= 0) & (expected < NUM_BLUE_ACTIONS)).all()


def test_react_restore_restores_first_flagged_host_in_observation_order():
    policy = get_policy("react_restore")
    obs = np.zeros(52, np.int32)
    assert policy.fn(obs, np.zeros(NUM_UNIFORMS), np) == 0
    obs[4 * 11 + 2] = 1  # User3 Unknown (10)
    obs[4 * 5 + 3] = 1  # Op_Host1 User (01)
    obs[4 * 2 + 0] = 1  # Enterprise1 activity only: not a compromise
    assert policy.fn(obs, np.zeros(NUM_UNIFORMS), np) == RESTORE_BASE + 5


def test_random_policy_is_uniform():
    policy = get_policy("random")
    rng = np.random.default_rng(7)
    counts = np.bincount(
        [policy.act_numpy(np.zeros(52, np.int32), rng) for _ in range(29_000)],
        minlength=NUM_BLUE_ACTIONS,
    )
    assert counts.size == NUM_BLUE_ACTIONS
    chi2 = sps.chisquare(counts)
    assert chi2.pvalue > 1e-4


# --- the committed CybORG samples ----------------------------------------------------------------


@pytest.fixture(scope="module")
def dataset() -> gen.Dataset:
    if not os.path.exists(DATA):
        pytest.fail(f"committed CybORG samples missing: {DATA} (python -m jaxcage.parity generate)")
    return gen.load_dataset(DATA)


def test_dataset_covers_every_cell(dataset):
    assert_samples_cover_cells(dataset, gen.ALL_CELLS)
    assert min(r.shape[0] for r in dataset.rewards.values()) >= 1000


def test_dataset_matches_known_cyborg_values(dataset):
    # SPEC §9 (CybORG run, sleeping Blue, 200 episodes): B_line -218 / -480 / -1135 and
    # Meander -41.7 / -272.8 / -978.1 for 30 / 50 / 100 steps; sleeping Red costs nothing.
    expected = {"b_line": (-218.0, -480.0, -1135.0), "meander": (-41.7, -272.8, -978.1)}
    for red, means in expected.items():
        for length, mean in zip(gen.EPISODE_LENGTHS, means, strict=True):
            returns = dataset.returns[f"sleep/{red}/{length}"] / 10.0
            tolerance = 4 * 70.0 / np.sqrt(200) + 4 * returns.std() / np.sqrt(returns.size)
            assert abs(returns.mean() - mean) < tolerance, (red, length, returns.mean())
    for blue in STATS_POLICIES:
        for length in gen.EPISODE_LENGTHS:
            if blue != "random":
                assert not dataset.rewards[f"{blue}/sleep/{length}"].any()


@pytest.mark.parity
def test_generate_reproduces_committed_samples_bit_for_bit(dataset, cyborg):
    # Two episodes of every cell, plus a late episode of one: each episode depends only on its
    # (base seed, cell, index), so any slice regenerates exactly.
    for cell in gen.ALL_CELLS:
        again = gen.generate_cell(cell, episodes=2, base_seed=dataset.base_seed)
        np.testing.assert_array_equal(again, dataset.rewards[cell.key][:2], err_msg=cell.key)
    cell = gen.Cell("random", "meander", 50)
    again = gen.generate_cell(cell, episodes=1, base_seed=dataset.base_seed, start=777)
    np.testing.assert_array_equal(again, dataset.rewards[cell.key][777:778])


# --- jaxcage against the samples -----------------------------------------------------------------


@pytest.mark.slow
def test_statistical_parity_with_cyborg(dataset, capsys):
    results = stats.run_stats(dataset.rewards, episodes=stats.DEFAULT_JAX_EPISODES)
    with capsys.disabled():
        print("\n" + stats.TABLE_HEADER)
        for r in results:
            print(stats.format_row(r))
        print(stats.summary(results))
    bad = [stats.format_row(r) for r in results if not r.consistent]
    assert not bad, "\n".join(bad)
    # Equivalence is demanded where TOST is powerful; make sure that is most cells.
    assert sum(r.tost.equivalent for r in results) >= 15


def test_stats_cli_on_deterministic_cells(dataset, capsys):
    rc = parity_main(["stats", "--cells", "sleep/sleep/30", "react_restore/sleep/50"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "EQUIVALENT" in out and "2 cells: 2 equivalent" in out
