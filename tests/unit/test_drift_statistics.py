"""The drift statistics against scipy references, known distributions, vLLM's bucket layouts and
their stated false-alarm rate."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from llmops_operator.statistics.drift import (
    DEFAULT_FLOORS,
    TESTS,
    chi_square,
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
from llmops_operator.statistics.drift_types import PROBABILITIES, PastCheck, measure, pattern
from llmops_operator.statistics.histogram import Histogram, LayoutMismatch, align

BOUNDS = np.concatenate([np.linspace(-5, 5, 201), [np.inf]])  # fine buckets, as a test fixture


def one_two_five(max_model_len: int) -> list[float]:
    """vLLM's token-count bounds (request_prompt_tokens, request_generation_tokens): 1, 2, 5,
    10, ... up to max_model_len, then +Inf."""
    bounds = [m * 10.0**e for e in range(8) for m in (1, 2, 5) if m * 10**e <= max_model_len]
    return [*bounds, math.inf]


# vLLM's time_to_first_token_seconds bounds, and those of releases that stopped at 10 s.
TTFT = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0]
TTFT_NEW = [*TTFT, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0, math.inf]
TTFT_OLD = [*TTFT, math.inf]


def normal(seed: int, n: int, mean: float = 0.0, std: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(mean, std, n)


def prompts(seed: int, n: int, scale: float = 1.0) -> np.ndarray:
    """Prompt lengths in tokens: log-normal around 200, up to a 4k-8k context."""
    return np.random.default_rng(seed).lognormal(np.log(200.0), 1.0, n) * scale


def test_from_cumulative_decumulates_prometheus_buckets() -> None:
    hist = Histogram.from_cumulative([1, 5, 10, float("inf")], [3, 10, 12, 15])
    assert hist.counts.tolist() == [3, 7, 2, 3]
    assert hist.total == 15
    unordered = Histogram.from_cumulative([float("inf"), 5, 1, 10], [15, 10, 3, 12])
    assert unordered.counts.tolist() == [3, 7, 2, 3]


def test_from_samples_counts_le_buckets() -> None:
    hist = Histogram.from_samples([0.5, 1.0, 1.5, 7, 100], [1, 5, 10, float("inf")])
    assert hist.counts.tolist() == [2, 1, 1, 1]  # le is inclusive: 1.0 falls in the first bucket


def test_two_layouts_meet_on_their_common_bounds_without_invented_zeros() -> None:
    # max_model_len 4096 publishes bounds up to 2000; 8192 adds 5000.
    short = Histogram.from_cumulative(one_two_five(4096), np.arange(1, 13) * 10)
    long_ = Histogram.from_cumulative(one_two_five(8192), np.arange(1, 14) * 10)
    a, b = align(short, long_)
    assert a.upper_bounds.tolist() == b.upper_bounds.tolist() == one_two_five(4096)
    assert b.counts[-1] == 20  # (2000, 5000] and (5000, +Inf] summed, not 5000 read as zero
    assert a.total == 120 and b.total == 130
    # A stale le series missing from one window is not a count of zero there either.
    missing = Histogram.from_cumulative([1, 2, 10, 20, math.inf], [1, 2, 10, 20, 30])
    full = Histogram.from_cumulative([1, 2, 5, 10, 20, math.inf], [1, 2, 5, 10, 20, 30])
    a, b = align(missing, full)
    assert a.counts.tolist() == b.counts.tolist() == [1, 1, 8, 10, 10]


def test_too_few_common_bounds_is_no_data_naming_both_layouts() -> None:
    seconds = Histogram.from_samples(prompts(1, 500) / 1000, TTFT_NEW)
    tokens = Histogram.from_samples(prompts(2, 500), [2e4, 5e4, math.inf])
    with pytest.raises(LayoutMismatch):
        align(seconds, tokens)
    verdict = judge_feature("psi", seconds, tokens)
    assert verdict.no_data and not verdict.drifted
    assert (
        "le 0.001..2560,+Inf (23 buckets)" in verdict.message
        and "le 20000..50000,+Inf (3 buckets)" in verdict.message
    )


@pytest.mark.parametrize("test", TESTS)
def test_identical_traffic_under_two_layouts_never_drifts(test: str) -> None:
    for seed in range(20):
        tokens = prompts(seed, 3000)
        short = Histogram.from_samples(tokens, one_two_five(4096))
        long_ = Histogram.from_samples(tokens, one_two_five(8192))
        assert not judge_feature(test, short, long_).drifted  # type: ignore[arg-type]
        latency = tokens / 400
        old = Histogram.from_samples(latency, TTFT_OLD)
        new = Histogram.from_samples(latency, TTFT_NEW)
        assert not judge_feature(test, old, new).drifted  # type: ignore[arg-type]


@pytest.mark.parametrize("test", TESTS)
@pytest.mark.parametrize("n", [100, 200, 1000])
def test_false_alarms_stay_at_alpha_from_min_samples_up(test: str, n: int) -> None:
    """Windows of one distribution, samples and vLLM token histograms (one in the second layout):
    at most 1% alarms, with three binomial standard deviations of slack over 300 trials."""
    rng = np.random.default_rng([n, TESTS.index(test)])  # type: ignore[arg-type]
    trials, samples, histograms = 300, 0, 0
    for _ in range(trials):
        a, b = rng.lognormal(np.log(200), 1.0, n), rng.lognormal(np.log(200), 1.0, n)
        samples += judge_feature(test, a, b).drifted  # type: ignore[arg-type]
        histograms += judge_feature(
            test,  # type: ignore[arg-type]
            Histogram.from_samples(a, one_two_five(4096)),
            Histogram.from_samples(b, one_two_five(8192)),
        ).drifted
    slack = 0.01 + 3 * np.sqrt(0.01 * 0.99 / trials)
    assert samples / trials <= slack and histograms / trials <= slack


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
    assert far.p_value < 1e-10


def test_wasserstein_samples_is_scipys_in_baseline_sds() -> None:
    a, b = normal(34, 3000, std=2.0), normal(35, 2000, mean=0.5)
    expected = stats.wasserstein_distance(a, b) / np.std(a)
    assert wasserstein_samples(a, b).statistic == pytest.approx(expected)


def test_ks_histogram_agrees_with_raw_samples() -> None:
    a, b = normal(3, 5000), normal(4, 5000, mean=0.2)
    raw = ks_samples(a, b)
    binned = ks_histogram(Histogram.from_samples(a, BOUNDS), Histogram.from_samples(b, BOUNDS))
    assert binned.statistic == pytest.approx(raw.statistic, abs=0.01)
    assert (binned.p_value < 0.01) == (raw.p_value < 0.01)


def test_psi_matches_its_definition_with_pearsons_p_value() -> None:
    base = Histogram(np.array([1.0, np.inf]), np.array([50.0, 50.0]))
    cur = Histogram(np.array([1.0, np.inf]), np.array([90.0, 10.0]))
    expected = (0.9 - 0.5) * np.log(0.9 / 0.5) + (0.1 - 0.5) * np.log(0.1 / 0.5)
    result = psi(base, cur)
    assert result.statistic == pytest.approx(expected)
    reference = stats.chi2_contingency(np.array([[50, 50], [90, 10]]), correction=False)
    assert result.p_value == pytest.approx(reference.pvalue)
    assert result.critical == pytest.approx(stats.chi2.isf(0.01, 1) / 50)  # n_eff = 100*100/200


def test_chi_square_is_scipys_and_shows_cramers_v() -> None:
    bounds = np.array([1.0, 2.0, 3.0, np.inf])
    base = Histogram(bounds, np.array([30.0, 0.0, 50.0, 20.0]))
    cur = Histogram(bounds, np.array([45.0, 0.0, 30.0, 25.0]))
    reference = stats.chi2_contingency(np.array([[30, 50, 20], [45, 30, 25]]), correction=False)
    result = chi_square(base, cur)
    assert result.statistic == pytest.approx(np.sqrt(reference.statistic / 200))
    assert result.p_value == pytest.approx(reference.pvalue)


def test_jensen_shannon_is_a_distance_in_nats() -> None:
    a = Histogram.from_samples(normal(5, 2000), BOUNDS[::10])
    b = Histogram.from_samples(normal(6, 2000, mean=1), BOUNDS[::10])
    result = jensen_shannon(a, b)
    assert result.statistic == pytest.approx(jensenshannon(a.counts / a.total, b.counts / b.total))
    assert result.statistic <= np.sqrt(np.log(2))
    assert jensen_shannon(a, a).statistic == pytest.approx(0.0, abs=1e-9)


def test_wasserstein_histogram_agrees_with_samples_in_baseline_sds() -> None:
    a, b = normal(7, 20000), normal(8, 20000, mean=0.5)
    raw = wasserstein_samples(a, b)
    binned = wasserstein_histogram(Histogram.from_samples(a, BOUNDS), Histogram.from_samples(b, BOUNDS))
    assert raw.statistic == pytest.approx(0.5, abs=0.05)
    assert binned.statistic == pytest.approx(raw.statistic, abs=0.03)


def bimodal(seed: int, n: int) -> np.ndarray:
    """Mean 0 and sd 1, as a standard normal, but two humps."""
    rng = np.random.default_rng(seed)
    return np.asarray(rng.choice([-0.8, 0.8], n) + 0.6 * rng.normal(size=n))


def test_a_change_of_shape_at_equal_mean_and_variance_drifts_on_the_default_test() -> None:
    detected = sum(
        judge_feature("ks", normal(seed, 5000), bimodal(seed + 100, 5000)).drifted for seed in range(20)
    )
    assert detected >= 19
    verdict = judge_feature("ks", normal(1, 5000), bimodal(2, 5000))
    assert verdict.change == "shape"


def test_a_trivial_shift_on_a_million_samples_is_not_drift() -> None:
    base, shifted = normal(9, 1_000_000), normal(10, 1_000_000, mean=0.01)
    verdict = judge_feature("ks", base, shifted)
    assert verdict.p_value < 0.01  # "significant"...
    assert not verdict.drifted  # ...but below the floor
    tokens = prompts(11, 1_000_000)
    for test in TESTS:
        one_percent = judge_feature(
            test,
            Histogram.from_samples(tokens, one_two_five(4096)),
            Histogram.from_samples(prompts(12, 1_000_000, scale=1.01), one_two_five(4096)),
        )
        assert not one_percent.drifted, test
        assert one_percent.threshold == DEFAULT_FLOORS[test]  # the floor decides at this size


def test_a_real_shift_drifts_on_every_test_and_path() -> None:
    base, same, shifted = normal(21, 4000), normal(22, 4000), normal(23, 4000, mean=0.5)
    for test in TESTS:
        on_samples = judge_feature(test, base, shifted)
        on_buckets = judge_feature(
            test, Histogram.from_samples(base, BOUNDS), Histogram.from_samples(shifted, BOUNDS)
        )
        assert on_samples.drifted and on_buckets.drifted, test
        assert on_samples.change == on_buckets.change == "location", test
        assert not judge_feature(test, base, same).drifted, test


def test_the_threshold_shown_knows_the_window_size() -> None:
    small = judge_feature("psi", normal(40, 200), normal(41, 200))
    large = judge_feature("psi", normal(42, 200_000), normal(43, 200_000))
    assert small.threshold is not None and large.threshold is not None
    assert small.threshold > 10 * DEFAULT_FLOORS["psi"]  # the null's critical value at n = 200
    assert large.threshold == DEFAULT_FLOORS["psi"]


def test_too_few_samples_is_no_data_never_drift() -> None:
    a = Histogram.from_samples(normal(13, 50), BOUNDS)
    b = Histogram.from_samples(normal(14, 50, mean=3.0), BOUNDS)
    verdict = judge_feature("psi", a, b, min_samples=100)
    assert verdict.no_data and not verdict.drifted and "need 100" in verdict.message


def test_a_smaller_alpha_needs_a_smaller_p_value() -> None:
    a, b = normal(15, 1000), normal(16, 1000, mean=0.17)
    alone = judge_feature("ks", a, b, alpha=0.05, floor=0.0)
    assert alone.p_value is not None and 0.05 / 20 < alone.p_value < 0.05
    assert alone.drifted
    assert not judge_feature("ks", a, b, alpha=0.05 / 20, floor=0.0).drifted


def test_binned_tests_on_samples_use_the_pooled_deciles() -> None:
    base, current = normal(24, 3000), normal(25, 3000, std=2.0)
    bounds = quantile_bounds(np.concatenate([base, current]))
    assert len(bounds) == 10 and np.isinf(bounds[-1])
    pooled = Histogram.from_samples(base, bounds).counts + Histogram.from_samples(current, bounds).counts
    assert np.allclose(pooled, 600, atol=1)
    expected = psi(Histogram.from_samples(base, bounds), Histogram.from_samples(current, bounds))
    assert run_test("psi", base, current).statistic == pytest.approx(expected.statistic)
    assert judge_feature("psi", base, current).change == "scaleUp"
    with pytest.raises(TypeError):
        run_test("psi", Histogram.from_samples(base, bounds), current)


def test_histogram_quantiles_interpolate_within_buckets_like_histogram_quantile() -> None:
    hist = Histogram.from_cumulative([1, 2, 5, 10, math.inf], [0, 10, 30, 40, 40])
    # rank 20 of 40 is halfway through the (2, 5] bucket; histogram_quantile gives 3.5
    assert hist.quantiles([0.5]).tolist() == [3.5]
    assert hist.quantiles([0.25]).tolist() == [2.0]
    tail = Histogram.from_cumulative([1, 2, math.inf], [0, 10, 40])
    assert tail.quantiles([0.9]).tolist() == [2.0]  # in +Inf: the highest finite bound


def test_a_one_sd_shift_inside_wide_buckets_reads_as_about_one_sd() -> None:
    """A latency around vLLM's 1 s TTFT bound, in the wide (1, 2.5] bucket and its neighbours,
    moves by one sd: medians interpolated within the buckets see about that."""
    base = normal(50, 20000, mean=0.9, std=0.2)
    moved = normal(51, 20000, mean=1.1, std=0.2)
    quantiles = [Histogram.from_samples(x, TTFT_NEW).quantiles(PROBABILITIES) for x in (base, moved)]
    shift = measure(*quantiles).location_shift
    assert 0.6 < shift < 1.4


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        (lambda: normal(61, 5000, mean=0.3), "location"),
        (lambda: normal(62, 5000, std=1.3), "scaleUp"),
        (lambda: normal(63, 5000, std=0.75), "scaleDown"),
        (lambda: bimodal(64, 5000), "shape"),
        (lambda: np.random.default_rng(65).uniform(-np.sqrt(3), np.sqrt(3), 5000), "shape"),
    ],
)
def test_what_changed_on_samples_and_histograms(current: object, expected: str) -> None:
    base, moved = normal(60, 5000), current()  # type: ignore[operator]
    on_samples = judge_feature("psi", base, moved)
    assert on_samples.drifted and on_samples.change == expected
    on_buckets = judge_feature(
        "ks", Histogram.from_samples(base, BOUNDS), Histogram.from_samples(moved, BOUNDS)
    )
    assert on_buckets.drifted and on_buckets.change == expected


def test_an_undrifted_feature_has_no_change_and_a_drifted_one_always_has_one() -> None:
    assert judge_feature("ks", normal(70, 3000), normal(71, 3000)).change is None
    # All mass of both windows in one bucket each: quantiles see little, the type still says shape.
    a = Histogram.from_cumulative([1, 2, math.inf], [0, 500, 500])
    b = Histogram.from_cumulative([1, 2, math.inf], [0, 0, 500])
    verdict = judge_feature("chiSquare", a, b)
    assert verdict.drifted and verdict.change in ("location", "scaleUp", "scaleDown", "shape")


def checks(*ratios: float, every: float = 60.0, drifted: tuple[bool, ...] = ()) -> list[PastCheck]:
    flags = drifted or (False,) * len(ratios)
    count = len(ratios)
    return [
        PastCheck((count - i) * every, ratio, flag, "location" if flag else "", 1)
        for i, (ratio, flag) in enumerate(zip(ratios, flags, strict=True))
    ]


def test_how_the_drift_arrived() -> None:
    window = 300.0
    # first check, or quiet checks before a jump: sudden
    assert pattern([], 3.0, "location", 1, window, None) == "sudden"
    assert pattern(checks(0.2, 0.4, 0.3), 3.0, "location", 1, window, None) == "sudden"
    # a rise over one window is the window filling with a sudden change
    assert pattern(checks(0.2, 0.6, 0.8, every=100), 1.2, "location", 1, window, None) == "sudden"
    # rising at every check for longer than a window: gradual
    assert pattern(checks(0.55, 0.65, 0.75, 0.85, 0.95, 0.98), 1.1, "location", 1, window, None) == "gradual"
    # the same change in the same direction drifted before, with quiet checks since: recurring
    earlier = checks(1.5, 0.2, 0.3, drifted=(True, False, False))
    assert pattern(earlier, 2.0, "location", 1, window, None) == "recurring"
    assert pattern(earlier, 2.0, "location", -1, window, None) == "sudden"
    # a continuing episode keeps its pattern
    assert pattern(checks(1.5, drifted=(True,)), 1.6, "location", 1, window, "gradual") == "gradual"
