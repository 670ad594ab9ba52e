"""Boundaries of the drift statistics and the rank judge a user would notice: where a verdict
flips, the thresholds and p-values shown (against scipy's distributions), how buckets are read,
aligned and pooled, what a drift is called and how it arrived."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from llmops_operator.statistics.drift import (
    DEFAULT_ALPHA,
    DEFAULT_FLOORS,
    TESTS,
    SamplePair,
    chi_square,
    histogram_spread,
    jensen_shannon,
    judge_feature,
    ks_histogram,
    ks_samples,
    psi,
    quantile_bounds,
    run_test,
    sorted_quantiles,
    wasserstein_histogram,
    wasserstein_samples,
)
from llmops_operator.statistics.drift_types import (
    NORMAL_DECILE_RANGE,
    ChangeMeasure,
    PastCheck,
    measure,
    pattern,
)
from llmops_operator.statistics.histogram import Histogram, LayoutMismatch, align, pool_sparse
from llmops_operator.statistics.mann_whitney import mann_whitney

INF = math.inf
NORMAL_QUANTILES = stats.norm.ppf([0.1, 0.25, 0.5, 0.75, 0.9])


def normal(seed: int, n: int, mean: float = 0.0, std: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(mean, std, n)


def noiseless_normal(n: int) -> np.ndarray:
    return np.asarray(stats.norm.ppf((np.arange(n) + 0.5) / n))


def hist(bounds: list[float], counts: list[float]) -> Histogram:
    return Histogram(np.asarray(bounds, dtype=float), np.asarray(counts, dtype=float))


# --- buckets: reading, aligning, pooling ---------------------------------------------------------


def test_a_counter_reset_inside_a_window_never_gives_negative_counts() -> None:
    reset = Histogram.from_cumulative([1, 2, INF], [5, 3, 10])
    assert reset.counts.tolist() == [5, 0, 7]


def test_samples_beyond_the_last_bound_without_inf_are_not_counted() -> None:
    assert Histogram.from_samples([0.5, 3.0, 50.0], [1, 10]).counts.tolist() == [1, 1]


def test_layouts_in_messages() -> None:
    assert hist([], []).layout() == "no buckets"
    assert hist([1, 10], [3, 1]).layout() == "le 1..10 (2 buckets)"
    assert hist([0.5, 2, 1000, INF], [1, 1, 1, 1]).layout() == "le 0.5..1000,+Inf (4 buckets)"
    assert hist([INF], [3]).layout() == "le ,+Inf (1 buckets)"  # no finite bound to show


def test_quantiles_follow_histogram_quantile_at_the_edges() -> None:
    # A first bound at or below 0 is a bucket of width 0; above it buckets interpolate linearly.
    negative = Histogram.from_cumulative([-1, 0, 1, INF], [10, 20, 30, 30])
    assert negative.quantiles([0.25, 0.5, 0.9, 1.0]).tolist() == pytest.approx([-1.0, -0.5, 0.7, 1.0])
    positive = Histogram.from_cumulative([2, 4, INF], [10, 20, 20])
    assert positive.quantiles([0.25, 0.75]).tolist() == pytest.approx([1.0, 3.0])  # 0 below 2
    # A rank exactly at a bucket's cumulative count is that bucket's upper bound.
    assert positive.quantiles([0.5]).tolist() == [2.0]
    assert np.isnan(Histogram.from_cumulative([1, 2, INF], [0, 0, 0]).quantiles([0.5])).all()
    assert hist([INF], [4]).quantiles([0.5]).tolist() == [0.0]  # no finite bound at all


def test_le_labels_equal_to_twelve_digits_are_one_bound() -> None:
    base = hist([0.1, 0.2, 0.3, INF], [1, 2, 3, 4])
    noisy = hist([0.1, 0.2 + 3e-13, 0.30000000000000004, INF], [4, 3, 2, 1])
    a, b = align(base, noisy)
    assert a.upper_bounds.size == b.upper_bounds.size == 4
    assert b.counts.tolist() == [4, 3, 2, 1]
    apart = hist([0.1, 0.2 + 1e-9, 0.3, INF], [4, 3, 2, 1])
    assert align(base, apart)[0].counts.tolist() == [1, 5, 4]  # 0.2 and 0.200000001 differ


def test_three_common_bounds_are_enough_and_two_are_not() -> None:
    base = hist([1, 2, 5, INF], [10, 10, 10, 10])
    three = hist([1, 3, 5, INF], [5, 5, 5, 5])
    a, b = align(base, three)
    assert a.upper_bounds.tolist() == [1, 5, INF] and a.counts.tolist() == [10, 20, 10]
    assert b.counts.tolist() == [5, 10, 5]
    two = hist([1, 3, 4, INF], [5, 5, 5, 5])
    with pytest.raises(LayoutMismatch) as error:
        align(base, two)
    assert str(error.value) == (
        "only 2 bucket bounds in common between the baseline (le 1..5,+Inf (4 buckets)) "
        "and the current window (le 1..4,+Inf (4 buckets))"
    )


def test_buckets_are_pooled_until_each_expects_five_in_the_smaller_window() -> None:
    # 20 per window: need 5 x 40 / 20 = 10 pooled counts per bucket; exactly 10 is enough.
    exact = np.array([5.0, 5.0, 5.0, 5.0])
    assert [x.tolist() for x in pool_sparse(exact, exact)] == [[5, 5, 5, 5]] * 2
    assert [x.tolist() for x in pool_sparse(exact, exact, 6.0)] == [[10, 10]] * 2
    # a short last group joins the one before it
    short = np.array([10.0, 10.0, 2.0])
    assert [x.tolist() for x in pool_sparse(short, short)] == [[10, 12]] * 2
    # the smaller window sets the need: 100 against 10 needs 5 x 110 / 10 = 55 per bucket
    big, small = np.array([25.0, 25.0, 25.0, 25.0]), np.array([2.0, 3.0, 2.0, 3.0])
    merged_big, merged_small = pool_sparse(big, small)
    assert merged_big.tolist() == [50, 50] and merged_small.tolist() == [5, 5]


def test_pooling_keeps_every_count_and_cochrans_rule_on_sparse_buckets() -> None:
    rng = np.random.default_rng(1)
    for _ in range(50):
        a = rng.poisson(rng.uniform(0, 6, 30)).astype(float)
        b = rng.poisson(rng.uniform(0, 6, 30)).astype(float) * 3
        merged_a, merged_b = pool_sparse(a, b)
        assert merged_a.sum() == a.sum() and merged_b.sum() == b.sum()
        expected_small = (merged_a + merged_b) * min(a.sum(), b.sum()) / (a.sum() + b.sum())
        assert merged_a.size == 1 or (expected_small >= 5 - 1e-9).all()


# --- each test's statistic, p-value and critical value -------------------------------------------


def test_ks_histogram_p_value_and_critical_are_kolmogorovs_at_the_effective_size() -> None:
    bounds = [1, 2, 3, 4, INF]
    base, cur = hist(bounds, [30, 30, 20, 10, 10]), hist(bounds, [20, 40, 60, 50, 30])
    n, m = 100, 200
    d = max(abs(np.cumsum(base.counts) / n - np.cumsum(cur.counts) / m))
    result = ks_histogram(base, cur, alpha=0.05)
    effective = n * m / (n + m)
    assert result.statistic == pytest.approx(d)
    assert result.p_value == pytest.approx(stats.kstwobign.sf(d * math.sqrt(effective)))
    assert result.critical == pytest.approx(stats.kstwobign.isf(0.05) / math.sqrt(effective))


def test_ks_samples_critical_is_kolmogorovs_at_the_effective_size() -> None:
    result = ks_samples(normal(1, 300), normal(2, 600), alpha=0.05)
    assert result.critical == pytest.approx(stats.kstwobign.isf(0.05) / math.sqrt(200))


def test_psi_gives_an_empty_bucket_a_share_of_one_in_ten_thousand() -> None:
    bounds = [1, 2, INF]
    base, cur = hist(bounds, [500, 500, 0]), hist(bounds, [300, 300, 400])
    p, q = np.array([0.5, 0.5, 1e-4]), np.array([0.3, 0.3, 0.4])
    result = psi(base, cur, alpha=0.05)
    assert result.statistic == pytest.approx(float(np.sum((q - p) * np.log(q / p))))
    reference = stats.chi2_contingency(np.array([[500, 500, 0], [300, 300, 400]]), correction=False)
    assert result.p_value == pytest.approx(reference.pvalue)
    assert result.critical == pytest.approx(stats.chi2.isf(0.05, 2) / 500)  # n_eff 1000 x 1000 / 2000


def test_psi_critical_uses_the_effective_size_of_unequal_windows() -> None:
    bounds = [1, 2, 3, INF]
    base, cur = hist(bounds, [100, 100, 100, 100]), hist(bounds, [25, 25, 25, 25])
    assert psi(base, cur).critical == pytest.approx(stats.chi2.isf(0.01, 3) / (400 * 100 / 500))


def test_chi_square_critical_is_cramers_v_at_alpha() -> None:
    bounds = [1, 2, 3, INF]
    base, cur = hist(bounds, [100, 50, 30, 20]), hist(bounds, [60, 60, 50, 30])
    result = chi_square(base, cur, alpha=0.05)
    assert result.critical == pytest.approx(math.sqrt(stats.chi2.isf(0.05, 3) / 400))
    reference = stats.chi2_contingency(np.array([[100, 50, 30, 20], [60, 60, 50, 30]]), correction=False)
    assert result.p_value == pytest.approx(reference.pvalue)


def test_a_single_pooled_bucket_is_never_drift() -> None:
    tiny = chi_square(hist([1, INF], [3, 2]), hist([1, INF], [2, 3]))
    assert (tiny.statistic, tiny.p_value, tiny.critical) == (0.0, 1.0, INF)


def test_jensen_shannon_with_a_bucket_empty_in_one_window_and_its_critical_value() -> None:
    bounds = [1, 2, INF]
    base, cur = hist(bounds, [600, 400, 0]), hist(bounds, [100, 100, 100])
    result = jensen_shannon(base, cur, alpha=0.05)
    assert result.statistic == pytest.approx(jensenshannon([0.6, 0.4, 0.0], [1 / 3, 1 / 3, 1 / 3]))
    effective = 1000 * 300 / 1300
    assert result.critical == pytest.approx(math.sqrt(stats.chi2.isf(0.05, 2) / (8 * effective)))
    reference = stats.chi2_contingency(np.array([[600, 400, 0], [100, 100, 100]]), correction=False)
    assert result.p_value == pytest.approx(reference.pvalue)


def test_the_spread_of_a_histogram_is_that_of_uniform_buckets() -> None:
    assert histogram_spread(hist([1, 2, INF], [10, 10, 0])) == pytest.approx(2 / math.sqrt(12))
    assert histogram_spread(hist([2, 4], [5, 0])) == pytest.approx(2 / math.sqrt(12))
    # a +Inf bucket sits at the highest finite bound, with no width
    assert histogram_spread(hist([2, INF], [1, 1])) == pytest.approx(math.sqrt((4 / 3 + 4) / 2 - 1.5**2))


def _piecewise_uniform_w1(a: Histogram, b: Histogram) -> float:
    """Reference: the area between the two CDFs, each linear inside a bucket, on a fine grid."""
    edges = np.concatenate([[0.0], a.upper_bounds])
    grid = np.linspace(0.0, edges[-1], 200_001)
    cdf_a = np.interp(grid, edges, np.concatenate([[0.0], np.cumsum(a.counts) / a.total]))
    cdf_b = np.interp(grid, edges, np.concatenate([[0.0], np.cumsum(b.counts) / b.total]))
    return float(np.trapezoid(np.abs(cdf_a - cdf_b), grid))


@pytest.mark.parametrize(
    ("base_counts", "current_counts"),
    [
        ([10, 0, 10], [0, 20, 0]),  # the CDF gap changes sign inside buckets
        ([30, 10, 10], [10, 10, 30]),
        ([5, 15, 20], [20, 15, 5]),
    ],
)
def test_wasserstein_histogram_is_the_area_between_linear_cdfs(
    base_counts: list[float], current_counts: list[float]
) -> None:
    bounds = [1.0, 3.0, 4.0]
    base, cur = hist(bounds, base_counts), hist(bounds, current_counts)
    expected = _piecewise_uniform_w1(base, cur) / histogram_spread(base)
    assert wasserstein_histogram(base, cur).statistic == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize(
    ("test", "binned"),
    [("ks", True), ("wasserstein", False), ("wasserstein", True), ("chiSquare", False), ("chiSquare", True)],
)
def test_the_critical_value_is_where_the_p_value_crosses_alpha(test: str, binned: bool) -> None:
    """One rule for both: at an alpha a little above the p-value the statistic is past the
    critical value, a little below it short of it. (KS on samples has scipy's finite-sample
    p-value, PSI and Jensen-Shannon Pearson's: those meet their critical values in the limit.)"""
    base, cur = normal(82, 600, std=3.0), normal(83, 700, mean=0.6, std=3.0)  # sds: 3, not 1
    if binned:
        bounds = [*np.linspace(-9, 9, 13).tolist(), INF]
        base, cur = Histogram.from_samples(base, bounds), Histogram.from_samples(cur, bounds)
    result = run_test(test, base, cur)  # type: ignore[arg-type]
    assert 1e-6 < result.p_value < 0.5
    looser = run_test(test, base, cur, alpha=result.p_value * 1.05)  # type: ignore[arg-type]
    stricter = run_test(test, base, cur, alpha=result.p_value / 1.05)  # type: ignore[arg-type]
    assert looser.critical < result.statistic < stricter.critical


def test_wasserstein_false_alarms_are_at_most_alpha_and_not_far_below() -> None:
    """Seeded null trials at 300 against 500 samples: the alarm rate at 5%, 20% and 50% is at most
    alpha (with three binomial sds of slack), and at 20% and 50% at least a third of it: the
    null's tail is corrected to be conservative at small alphas, never blind."""
    rng = np.random.default_rng(2026)
    trials = 400
    bounds = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, INF]
    samples, binned = [], []
    for _ in range(trials):
        a, b = rng.lognormal(np.log(200), 1.0, 300), rng.lognormal(np.log(200), 1.0, 500)
        samples.append(wasserstein_samples(a, b).p_value)
        binned.append(
            wasserstein_histogram(
                Histogram.from_samples(a, bounds), Histogram.from_samples(b, bounds)
            ).p_value
        )
    for p_values in (np.array(samples), np.array(binned)):
        for alpha in (0.05, 0.2, 0.5):
            rate = float((p_values < alpha).mean())
            assert rate <= alpha + 3 * math.sqrt(alpha * (1 - alpha) / trials)
            assert alpha == 0.05 or rate >= alpha / 3


def test_wasserstein_of_two_equal_constant_windows_is_no_change() -> None:
    result = wasserstein_samples(np.full(200, 3.0), np.full(200, 3.0))
    assert (result.statistic, result.p_value, result.critical) == (0.0, 1.0, INF)
    apart = wasserstein_samples(np.full(200, 3.0), np.full(200, 4.0))
    assert apart.statistic == pytest.approx(1.0) and apart.p_value < 1e-6  # spread 0 counts as 1


def test_each_default_floor_is_a_shift_of_five_hundredths_of_an_sd() -> None:
    """README: every floor is its test's value for a 0.05 sd shift of a normal feature (ten
    equally filled buckets for the binned tests), rounded up a little."""
    base = noiseless_normal(200_000)
    pair = SamplePair(base, base + 0.05)
    for test in TESTS:
        value = pair.run(test).statistic
        assert 0.999 * value <= DEFAULT_FLOORS[test] <= 1.05 * value, test


def test_large_tied_samples_get_scipys_ks_and_wasserstein() -> None:
    """Past the exact-KS limit both CDFs come from one merge of the sorted samples; inside a run
    of tied values the running counts are partial (all of one window's copies first), and only
    the run's end may count."""
    a, b = np.round(normal(89, 30_000), 1), np.round(normal(90, 20_000, mean=0.03), 1)
    pair = SamplePair(a, b)
    assert pair.ks().statistic == stats.ks_2samp(a, b).statistic
    assert pair.ks().p_value == pytest.approx(stats.ks_2samp(a, b).pvalue, rel=1e-6)
    assert pair.wasserstein().statistic == pytest.approx(stats.wasserstein_distance(a, b) / np.std(a))
    same = SamplePair(a, a[::-1].copy())  # every value tied across the windows
    assert (same.ks().statistic, same.wasserstein().statistic) == (0.0, 0.0)


def test_quantiles_of_sorted_samples_are_numpys() -> None:
    values = np.sort(normal(84, 137))
    probabilities = [0.0, 0.1, 0.25, 0.333, 0.5, 0.9, 0.999, 1.0]
    assert sorted_quantiles(values, probabilities) == pytest.approx(np.quantile(values, probabilities))


def test_pooled_decile_buckets_do_not_depend_on_which_test_ran_first() -> None:
    base, cur = normal(85, 2000), normal(86, 2500, std=1.3)
    fresh = SamplePair(base, cur).run("psi")
    after_ks = SamplePair(base, cur)
    after_ks.run("ks")
    assert after_ks.run("psi") == fresh
    bounds = quantile_bounds(np.concatenate([base, cur]))
    assert bounds.size == 10
    assert quantile_bounds(np.concatenate([base, cur]), bins=4).size == 4


MIXED = r"^compare two histograms or two samples; bin the samples first$"


def test_samples_and_histograms_do_not_mix() -> None:
    samples, buckets = normal(87, 200), Histogram.from_samples(normal(88, 200), [0, INF])
    for pair in ((buckets, samples), (samples, buckets)):
        with pytest.raises(TypeError, match=MIXED):
            run_test("psi", *pair)
        with pytest.raises(TypeError, match=MIXED):
            judge_feature("psi", *pair)


# --- verdicts ------------------------------------------------------------------------------------


@pytest.mark.parametrize("binned", [False, True])
def test_a_statistic_at_the_floor_drifts_and_a_p_value_at_alpha_does_not(binned: bool) -> None:
    base, cur = normal(90, 2000), normal(91, 2000, mean=0.3)
    if binned:
        bounds = [*np.linspace(-3, 3, 25).tolist(), INF]
        base, cur = Histogram.from_samples(base, bounds), Histogram.from_samples(cur, bounds)
    first = judge_feature("ks", base, cur)
    assert first.drifted and first.statistic is not None and first.p_value is not None
    at_floor = judge_feature("ks", base, cur, floor=first.statistic)
    assert at_floor.drifted and at_floor.threshold == first.statistic
    above_floor = judge_feature("ks", base, cur, floor=math.nextafter(first.statistic, INF))
    assert not above_floor.drifted and above_floor.change is None
    assert not judge_feature("ks", base, cur, alpha=first.p_value, floor=0.0).drifted
    assert judge_feature("ks", base, cur, alpha=math.nextafter(first.p_value, 1), floor=0.0).drifted


def test_the_threshold_is_the_larger_of_floor_and_critical_value() -> None:
    base, cur = normal(92, 300), normal(93, 300)
    loose = judge_feature("ks", base, cur, floor=0.0)
    critical = stats.kstwobign.isf(DEFAULT_ALPHA) / math.sqrt(150)
    assert loose.threshold == pytest.approx(critical)
    assert judge_feature("ks", base, cur, floor=0.5).threshold == 0.5


def test_a_verdict_echoes_its_test_alpha_and_floor() -> None:
    verdict = judge_feature("jensenShannon", normal(94, 500), normal(95, 500))
    assert (verdict.test, verdict.alpha, verdict.floor) == ("jensenShannon", 0.01, 0.018)
    assert not verdict.no_data and verdict.message == ""
    custom = judge_feature("psi", normal(94, 500), normal(95, 500), alpha=0.002, floor=0.3)
    assert (custom.alpha, custom.floor, custom.threshold) == (0.002, 0.3, 0.3)


@pytest.mark.parametrize("binned", [False, True])
def test_min_samples_in_each_window_are_judged_one_fewer_is_no_data(binned: bool) -> None:
    def pair(n: int, m: int) -> tuple[object, object]:
        a, b = normal(96, n), normal(97, m, mean=2.0)
        if binned:
            bounds = [-1.0, 0.0, 1.0, 2.0, INF]
            return Histogram.from_samples(a, bounds), Histogram.from_samples(b, bounds)
        return a, b

    judged = judge_feature("psi", *pair(120, 120), min_samples=120)  # type: ignore[arg-type]
    assert judged.drifted and not judged.no_data
    short = judge_feature("psi", *pair(120, 119), min_samples=120)  # type: ignore[arg-type]
    assert short.no_data and not short.drifted
    assert short.message == "120 baseline and 119 current samples; need 120 each"
    assert (short.statistic, short.p_value, short.threshold, short.change) == (None, None, None, None)
    assert (short.alpha, short.floor) == (0.01, 0.0025)
    other = judge_feature("psi", *pair(119, 120), min_samples=120)  # type: ignore[arg-type]
    assert other.no_data and other.message.startswith("119 baseline and 120 current")


def test_a_layout_mismatch_keeps_alpha_and_floor_and_shows_no_threshold() -> None:
    base = Histogram.from_samples(normal(98, 500), [0.5, 1.0, INF])
    cur = Histogram.from_samples(normal(99, 500), [2.0, 3.0, INF])
    verdict = judge_feature("ks", base, cur, alpha=0.02, floor=0.1)
    assert verdict.no_data and not verdict.drifted and verdict.threshold is None
    assert (verdict.test, verdict.alpha, verdict.floor) == ("ks", 0.02, 0.1)
    assert verdict.message.startswith("only 1 bucket bounds in common")


# --- what changed --------------------------------------------------------------------------------


def test_the_change_measured_in_baseline_sds() -> None:
    base = NORMAL_QUANTILES
    shifted = measure(base, base + 0.5)
    sd = (base[-1] - base[0]) / NORMAL_DECILE_RANGE  # 1, up to the constants' rounding
    assert shifted.location_shift == pytest.approx(0.5 / sd)
    assert shifted.scale_ratio == pytest.approx(1.0) and shifted.shape_gap == pytest.approx(0.0, abs=1e-12)
    assert shifted.change == "location"
    wider = measure(base, base * 1.5 + 0.1)
    assert wider.scale_ratio == pytest.approx(1.5) and wider.change == "scaleUp"
    assert wider.location_shift == pytest.approx(0.1 / sd)
    narrower = measure(base, base * 0.7)
    assert narrower.scale_ratio == pytest.approx(0.7) and narrower.change == "scaleDown"
    # the same deciles, the quartiles pulled in: shape, measured on the standardised quantiles
    skewed = base.copy()
    skewed[1], skewed[3] = -0.2, 0.9
    shape = measure(base, skewed)
    assert shape.change == "shape" and shape.scale_ratio == pytest.approx(1.0)
    expected_gap = max(abs(-0.2 - base[1]), abs(0.9 - base[3])) / (base[-1] - base[0]) * NORMAL_DECILE_RANGE
    assert shape.shape_gap == pytest.approx(expected_gap)


def test_a_shape_gap_is_standardised_by_each_windows_own_range() -> None:
    base = NORMAL_QUANTILES
    # twice as wide and moved: standardised, the same shape
    assert measure(base, 2 * base + 3).shape_gap == pytest.approx(0.0, abs=1e-12)


def test_a_window_without_spread_in_its_deciles() -> None:
    point = np.full(5, 4.0)
    spread = measure(point, NORMAL_QUANTILES + 4.0)
    assert spread.scale_ratio == INF and spread.change == "scaleUp"
    assert spread.location_shift == pytest.approx(0.0, abs=1e-12)
    collapsed = measure(NORMAL_QUANTILES, np.full(5, 1.0))
    assert collapsed.scale_ratio == 0.0 and collapsed.change == "scaleDown"
    moved = measure(point, np.full(5, 5.0))  # neither has a range: one unit is one decile range
    assert moved.scale_ratio == 1.0 and moved.location_shift == pytest.approx(NORMAL_DECILE_RANGE)
    assert moved.change == "location"
    assert measure(point, point).change == "shape"  # nothing moved: the quantiles are too coarse


def test_the_largest_move_names_the_change() -> None:
    # 0.3 sd of location against a scale ratio of 1.2 (0.256 sd at the outer deciles)
    assert ChangeMeasure(0.3, 1.2, 0.1).change == "location"
    assert ChangeMeasure(-0.3, 1.25, 0.1).change == "scaleUp"  # 0.32 sd; a negative shift is as large
    assert ChangeMeasure(0.2, 0.8, 0.1).change == "scaleDown"
    assert ChangeMeasure(0.2, 1.1, 0.3).change == "shape"
    assert ChangeMeasure(0.0, 1.0, 0.0).change == "shape"


def checks(*ratios: float, every: float = 60.0, drifted: tuple[bool, ...] = ()) -> list[PastCheck]:
    flags = drifted or (False,) * len(ratios)
    return [
        PastCheck((len(ratios) - i) * every, ratio, flag, "location" if flag else "", 1)
        for i, (ratio, flag) in enumerate(zip(ratios, flags, strict=True))
    ]


def test_gradual_needs_three_rising_checks_over_more_than_a_window() -> None:
    window = 100.0
    # two earlier checks rising, the first 120 s ago: gradual
    assert pattern(checks(0.6, 0.8), 1.2, "location", 1, window, None) == "gradual"
    # one earlier check is not a run of three
    assert pattern(checks(0.8, every=120), 1.2, "location", 1, window, None) == "sudden"
    # the run must last longer than one window: exactly one window is a window filling
    assert pattern(checks(0.6, 0.8, every=50), 1.2, "location", 1, window, None) == "sudden"
    assert pattern(checks(0.6, 0.8, every=50.5), 1.2, "location", 1, window, None) == "gradual"
    # each earlier check at half its threshold or more; exactly half counts
    assert pattern(checks(0.5, 0.8), 1.2, "location", 1, window, None) == "gradual"
    assert pattern(checks(0.49, 0.8), 1.2, "location", 1, window, None) == "sudden"
    # a drifted check ends the run
    after_drift = [PastCheck(300, 0.7, True, "scaleUp", 1), PastCheck(200, 0.8, False, "", 0)]
    assert pattern(after_drift, 1.2, "location", 1, window, None) == "sudden"
    # rising strictly: a flat step ends the run
    assert pattern(checks(0.8, 0.8), 1.2, "location", 1, window, None) == "sudden"
    assert pattern(checks(0.6, 1.2), 1.2, "location", 1, window, None) == "sudden"


def test_recurring_needs_the_same_change_and_direction_with_quiet_checks_since() -> None:
    window = 100.0
    earlier = [PastCheck(300, 1.5, True, "scaleUp", 1), PastCheck(200, 0.1, False, "", 0)]
    assert pattern(earlier, 2.0, "scaleUp", 1, window, None) == "recurring"
    assert pattern(earlier, 2.0, "scaleDown", 1, window, None) == "sudden"
    assert pattern(earlier, 2.0, "scaleUp", -1, window, None) == "sudden"
    # a drift right before this check without a known pattern is not a recurrence
    adjacent = [PastCheck(300, 1.5, True, "scaleUp", 1)]
    assert pattern(adjacent, 2.0, "scaleUp", 1, window, None) == "sudden"
    # a continuing episode keeps its pattern only after a drifted check
    assert pattern(adjacent, 2.0, "scaleUp", 1, window, "recurring") == "recurring"
    assert pattern(earlier, 2.0, "scaleDown", 1, window, "gradual") == "sudden"


# --- the rank judge ------------------------------------------------------------------------------


def test_u_and_the_rank_biserial_effect_are_scipys() -> None:
    first, second = [3.0, 5.0, 8.0, 9.0], [1.0, 4.0, 6.0, 7.0, 2.0]
    result = mann_whitney(first, second, "greater")
    reference = stats.mannwhitneyu(first, second, alternative="greater", method="exact")
    assert result.u_statistic == pytest.approx(reference.statistic) == 15  # 15 of 20 pairs
    assert result.effect == pytest.approx(2 * 15 / 20 - 1)
    assert result.p_value == pytest.approx(reference.pvalue)
    less = mann_whitney(first, second, "less")
    assert less.p_value == pytest.approx(stats.mannwhitneyu(first, second, alternative="less").pvalue)


def test_fifty_untied_values_each_use_the_normal_approximation_and_forty_nine_do_not() -> None:
    rng = np.random.default_rng(4)
    first, second = list(rng.normal(0.3, 1, 50)), list(rng.normal(0, 1, 50))
    large = mann_whitney(first, second, "greater")
    assert large.method == "asymptotic"
    reference = stats.mannwhitneyu(first, second, alternative="greater", method="asymptotic")
    assert large.p_value == pytest.approx(reference.pvalue)
    assert mann_whitney(first[:49], second, "greater").method == "permutation"
    assert mann_whitney(first, second[:49], "greater").method == "permutation"


def test_tied_samples_use_permutations_up_to_two_thousand_values() -> None:
    rng = np.random.default_rng(5)
    first, second = list(rng.integers(0, 20, 1000) * 1.0), list(rng.integers(0, 20, 1001) * 1.0)
    assert mann_whitney(first, second, "greater").method == "asymptotic"
    assert mann_whitney(first, second[:1000], "greater").method == "permutation"
