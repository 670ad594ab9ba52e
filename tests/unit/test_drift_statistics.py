"""The drift statistics against scipy references, known distributions and each other."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon

from llmops_operator.statistics.drift import (
    Histogram,
    chi_square,
    drift_type,
    jensen_shannon,
    judge_feature,
    ks_histogram,
    ks_samples,
    psi,
    quantile_bounds,
    run_test,
    wasserstein_histogram,
    wasserstein_samples,
)

BOUNDS = np.concatenate([np.linspace(-5, 5, 201), [np.inf]])  # fine buckets, as a test fixture


def normal(seed: int, n: int, mean: float = 0.0, std: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(mean, std, n)


def test_from_cumulative_decumulates_prometheus_buckets() -> None:
    hist = Histogram.from_cumulative([1, 5, 10, float("inf")], [3, 10, 12, 15])
    assert hist.counts.tolist() == [3, 7, 2, 3]
    assert hist.total == 15
    unordered = Histogram.from_cumulative([float("inf"), 5, 1, 10], [15, 10, 3, 12])
    assert unordered.counts.tolist() == [3, 7, 2, 3]


def test_from_samples_counts_le_buckets() -> None:
    hist = Histogram.from_samples([0.5, 1.0, 1.5, 7, 100], [1, 5, 10, float("inf")])
    assert hist.counts.tolist() == [2, 1, 1, 1]  # le is inclusive: 1.0 falls in the first bucket


def test_ks_samples_is_scipys() -> None:
    a, b = normal(1, 500), normal(2, 700, mean=0.3)
    reference = stats.ks_2samp(a, b)
    result = ks_samples(a, b)
    assert result.statistic == pytest.approx(reference.statistic)
    assert result.p_value == pytest.approx(reference.pvalue)


def test_ks_samples_is_scipys_on_large_samples_too() -> None:
    a, b = normal(31, 30_000), normal(32, 20_000, mean=0.02)  # past scipy's exact-method limit
    reference, result = stats.ks_2samp(a, b), ks_samples(a, b)
    assert result.statistic == pytest.approx(reference.statistic)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-6)
    far = ks_samples(a, normal(33, 20_000, mean=1.0))
    assert far.p_value is not None and far.p_value < 1e-10


def test_wasserstein_samples_is_scipys_in_baseline_sds() -> None:
    a, b = normal(34, 3000, std=2.0), normal(35, 2000, mean=0.5)
    expected = stats.wasserstein_distance(a, b) / np.std(a)
    assert wasserstein_samples(a, b).statistic == pytest.approx(expected)


def test_ks_histogram_agrees_with_raw_samples() -> None:
    a, b = normal(3, 5000), normal(4, 5000, mean=0.2)
    raw = ks_samples(a, b)
    binned = ks_histogram(Histogram.from_samples(a, BOUNDS), Histogram.from_samples(b, BOUNDS))
    assert binned.statistic == pytest.approx(raw.statistic, abs=0.01)
    assert binned.p_value is not None and raw.p_value is not None
    assert (binned.p_value < 0.05) == (raw.p_value < 0.05)


def test_psi_matches_its_definition() -> None:
    base = Histogram(np.array([1.0, np.inf]), np.array([50.0, 50.0]))
    cur = Histogram(np.array([1.0, np.inf]), np.array([90.0, 10.0]))
    expected = (0.9 - 0.5) * np.log(0.9 / 0.5) + (0.1 - 0.5) * np.log(0.1 / 0.5)
    assert psi(base, cur).statistic == pytest.approx(expected)
    empty = Histogram(np.array([1.0, np.inf]), np.array([100.0, 0.0]))
    assert np.isfinite(psi(base, empty).statistic)


def test_chi_square_is_scipys_and_drops_buckets_empty_in_both() -> None:
    bounds = np.array([1.0, 2.0, 3.0, np.inf])
    base = Histogram(bounds, np.array([30.0, 0.0, 50.0, 20.0]))
    cur = Histogram(bounds, np.array([45.0, 0.0, 30.0, 25.0]))
    reference = stats.chi2_contingency(np.array([[30, 50, 20], [45, 30, 25]]), correction=False)
    result = chi_square(base, cur)
    assert result.statistic == pytest.approx(reference.statistic)
    assert result.p_value == pytest.approx(reference.pvalue)


def test_jensen_shannon_is_scipys_and_zero_for_identical() -> None:
    a = Histogram.from_samples(normal(5, 2000), BOUNDS)
    b = Histogram.from_samples(normal(6, 2000, mean=1), BOUNDS)
    assert jensen_shannon(a, b).statistic == pytest.approx(
        jensenshannon(a.counts / a.total, b.counts / b.total, base=2)
    )
    assert jensen_shannon(a, a).statistic == pytest.approx(0.0, abs=1e-12)


def test_wasserstein_histogram_agrees_with_samples_in_baseline_sds() -> None:
    a, b = normal(7, 20000), normal(8, 20000, mean=0.5)
    raw = wasserstein_samples(a, b)
    binned = wasserstein_histogram(Histogram.from_samples(a, BOUNDS), Histogram.from_samples(b, BOUNDS))
    assert raw.statistic == pytest.approx(0.5, abs=0.05)
    assert binned.statistic == pytest.approx(raw.statistic, abs=0.03)


@pytest.mark.parametrize(
    ("current", "expected"),
    [((3.0, 1.0), "sudden"), ((1.0, 1.0), "gradual"), ((0.1, 2.0), "varianceChange"), ((0.1, 1.1), "none")],
)
def test_drift_type(current: tuple[float, float], expected: str) -> None:
    assert drift_type((0.0, 1.0), current) == expected


def test_trivial_shift_on_huge_samples_is_not_drift() -> None:
    a = Histogram.from_samples(normal(9, 1_000_000), BOUNDS)
    b = Histogram.from_samples(normal(10, 1_000_000, mean=0.02), BOUNDS)
    verdict = judge_feature("ks", a, b)
    assert verdict.p_value is not None and verdict.p_value < 1e-6  # "significant"...
    assert not verdict.drifted  # ...but below the effect-size floor


def test_real_shift_is_drift_with_its_type() -> None:
    a = Histogram.from_samples(normal(11, 5000), BOUNDS)
    b = Histogram.from_samples(normal(12, 5000, mean=1.0), BOUNDS)
    for test in ("ks", "psi", "chiSquare", "jensenShannon", "wasserstein"):
        verdict = judge_feature(test, a, b, min_effect=0.1)
        assert verdict.drifted, test
        assert verdict.drift_type == "gradual", test


def test_too_few_samples_is_no_data_never_drift() -> None:
    a = Histogram.from_samples(normal(13, 50), BOUNDS)
    b = Histogram.from_samples(normal(14, 50, mean=3.0), BOUNDS)
    verdict = judge_feature("psi", a, b, min_samples=100)
    assert verdict.no_data and not verdict.drifted


def test_bonferroni_divides_alpha() -> None:
    a = Histogram.from_samples(normal(15, 1000), BOUNDS)
    b = Histogram.from_samples(normal(16, 1000, mean=0.18), BOUNDS)  # p ~ 0.038 with these seeds
    alone = judge_feature("ks", a, b, threshold=0.05, min_effect=0.0)
    assert alone.p_value is not None and 0.05 / 20 < alone.p_value < 0.05
    assert alone.drifted
    assert not judge_feature("ks", a, b, threshold=0.05, comparisons=20, min_effect=0.0).drifted


@settings(max_examples=10, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(200, 2000), test=st.sampled_from(["ks", "chiSquare"]))
def test_identical_distributions_stay_below_the_false_positive_rate(seed: int, n: int, test: str) -> None:
    rng = np.random.default_rng(seed)
    draws = 200
    positives = 0
    for _ in range(draws):
        a = Histogram.from_samples(rng.normal(0, 1, n), BOUNDS[::10])
        b = Histogram.from_samples(rng.normal(0, 1, n), BOUNDS[::10])
        positives += judge_feature(test, a, b, threshold=0.05, min_effect=0.0).drifted  # type: ignore[arg-type]
    # 5% allowed; 3 binomial standard deviations of slack over 200 draws
    assert positives / draws <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / draws)


ALL_TESTS = ("ks", "psi", "chiSquare", "jensenShannon", "wasserstein")


def test_raw_samples_run_every_test_and_agree_with_the_histogram_path() -> None:
    base, same, shifted = normal(21, 4000), normal(22, 4000), normal(23, 4000, mean=1.0)
    for test in ALL_TESTS:
        on_samples = judge_feature(test, base, shifted)
        on_buckets = judge_feature(
            test, Histogram.from_samples(base, BOUNDS), Histogram.from_samples(shifted, BOUNDS)
        )
        assert on_samples.drifted and on_buckets.drifted, test
        assert on_samples.drift_type == on_buckets.drift_type == "gradual", test
        assert not judge_feature(test, base, same).drifted, test


def test_binned_tests_on_samples_use_the_baseline_deciles() -> None:
    base, current = normal(24, 3000), normal(25, 3000, std=2.0)
    bounds = quantile_bounds(base)
    assert len(bounds) == 10 and np.isinf(bounds[-1])
    assert np.allclose(Histogram.from_samples(base, bounds).counts, 300, atol=1)
    expected = psi(Histogram.from_samples(base, bounds), Histogram.from_samples(current, bounds))
    assert run_test("psi", base, current).statistic == pytest.approx(expected.statistic)
    assert judge_feature("psi", base, current).drift_type == "varianceChange"
    with pytest.raises(TypeError):
        run_test("psi", Histogram.from_samples(base, bounds), current)


@settings(max_examples=10, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(200, 2000))
def test_identical_samples_stay_below_the_false_positive_rate(seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    draws = 200
    positives = sum(
        judge_feature("ks", rng.lognormal(0, 1, n), rng.lognormal(0, 1, n), min_effect=0.0).drifted
        for _ in range(draws)
    )
    assert positives / draws <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / draws)
