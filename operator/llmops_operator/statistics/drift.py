"""Two-sample drift tests on raw samples and, natively, on histogram buckets.

Prometheus histograms give cumulative counts per upper bound (``le``); the difference between two
windows' counters is a histogram of that window. Every test here works on those bucket counts
without inventing samples, and the sample-based variants exist so the two paths can be compared.

Every test has a null distribution that knows the window sizes, so its false-alarm rate is the
significance level at any size: Kolmogorov's for KS, Pearson's chi-square on the same buckets
for chi-square, PSI and Jensen-Shannon (their critical values from each statistic's own
chi-square limit), and a log-normal law fitted to the mean and variance of the Gaussian limit
for Wasserstein. A verdict also needs
the statistic above an effect-size floor in the test's own units, so a trivial shift on a million
samples is not drift; the floors are small (a 0.05 sd shift of a normal feature) so they never
hide a change the test can see.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, cached_property
from types import ModuleType
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from .. import lazy
from .drift_types import PROBABILITIES, Change, ChangeMeasure, measure
from .histogram import Floats, Histogram, LayoutMismatch, align, pool_sparse


def _stats() -> ModuleType:
    """scipy.stats, loaded on first use (``lazy``): an operator without DriftMonitors never needs it."""
    return lazy.load("scipy.stats")


@cache
def _special() -> ModuleType:
    """scipy.special's distribution functions: the same tails as scipy.stats' chi2, gamma and
    kstwobign, without their per-call argument checks (a hundred times faster per call)."""
    return lazy.load("scipy.special")


def _chi2_sf(x: float, df: int) -> float:
    return float(_special().chdtrc(df, x))


def _chi2_isf(alpha: float, df: int) -> float:
    return float(_special().chdtri(df, alpha))


TestName = Literal["ks", "psi", "wasserstein", "jensenShannon", "chiSquare"]
TESTS: tuple[TestName, ...] = ("ks", "psi", "chiSquare", "jensenShannon", "wasserstein")
DEFAULT_ALPHA = 0.01  # per feature and check, before Bonferroni
# Each floor is the test's value for a 0.05 sd shift of a normal feature (ten equally filled
# buckets for the binned tests): five times the trivial 0.01 sd, a quarter of a "small" effect.
DEFAULT_FLOORS: dict[str, float] = {
    "ks": 0.02,  # KS statistic D
    "psi": 0.0025,  # population stability index
    "chiSquare": 0.025,  # Cramér's V
    "jensenShannon": 0.018,  # Jensen-Shannon distance, natural logarithm
    "wasserstein": 0.05,  # in baseline standard deviations
}
PSI_EPSILON = 1e-4
EXACT_KS_LIMIT = 10_000  # scipy's own switch from the exact to the asymptotic KS distribution
WASSERSTEIN_GRID = 128  # rank cells for the null variance of the sample Wasserstein distance
WASSERSTEIN_TAIL = 0.6  # the log-normal null's tail probabilities over this (measured, see below)


@dataclass(frozen=True)
class TestResult:
    """``statistic`` in the test's own units (what the floor applies to); ``p_value`` and
    ``critical`` (the statistic's ``1 - alpha`` quantile under no change) from the same null."""

    statistic: float
    p_value: float
    critical: float


def _effective(n: float, m: float) -> float:
    return n * m / (n + m) if n > 0 and m > 0 else 0.0


def _kolmogorov(d: float, effective: float, alpha: float) -> TestResult:
    root = math.sqrt(max(effective, 1e-12))
    special = _special()
    return TestResult(d, float(special.kolmogorov(d * root)), float(special.kolmogi(alpha)) / root)


def _lognormal_fit(observed: float, mean: float, variance: float, alpha: float) -> tuple[float, float]:
    """(p-value, critical value) of a log-normal law with this mean and variance (Fenton 1960).
    Against permutation nulls of the Wasserstein distance at n = 200 a gamma law with the same
    two moments put 1.4-1.7% of draws above its 99% quantile; the log-normal's heavier right tail
    put 0.8-1.3% there, and fewer above its 99.9% quantile than 0.1%. Seeded null trials still
    alarmed 1.25% (n = 200) and 1.55% (n = 2,000) of 2,000 at alpha 1%, so its tail
    probabilities are divided by ``WASSERSTEIN_TAIL``: p-value and critical value stay one rule."""
    if mean <= 0 or variance <= 0:
        return (1.0 if observed <= 0 else 0.0), float("inf") if mean <= 0 else mean
    special = _special()
    sigma = math.sqrt(math.log1p(variance / (mean * mean)))
    mu = math.log(mean) - sigma * sigma / 2
    z = (math.log(observed) - mu) / sigma if observed > 0 else -math.inf
    p_value = min(1.0, float(special.ndtr(-z)) / WASSERSTEIN_TAIL)
    return p_value, math.exp(mu + sigma * float(special.ndtri(1 - alpha * WASSERSTEIN_TAIL)))


def _bridge_moments(weights: Floats, cdf: Floats, n: float, m: float) -> tuple[float, float]:
    """Mean and variance of sum_j weights_j |D_j| when D is (1/n + 1/m) times a Brownian bridge's
    variance at the pooled CDF values ``cdf`` (ascending, inside (0, 1)): the two-sample CDF gap
    under no change, in the large-sample limit."""
    keep = (cdf > 0) & (cdf < 1) & (weights > 0)
    w, f = weights[keep], cdf[keep]
    if w.size == 0:
        return 0.0, 0.0
    sigma = np.sqrt((1.0 / n + 1.0 / m) * f * (1 - f))
    mean = float(np.sqrt(2 / np.pi) * np.sum(w * sigma))
    low, high = np.minimum.outer(f, f), np.maximum.outer(f, f)
    rho = np.clip(np.sqrt(low * (1 - high) / (high * (1 - low))), -1.0, 1.0)
    # E|X||Y| for standard normals with correlation rho, minus E|X| E|Y|
    covariance = (2 / np.pi) * (np.sqrt(1 - rho * rho) + rho * np.arcsin(rho) - 1)
    ws = w * sigma
    return mean, float(ws @ covariance @ ws)


def _linear_gap_area(gaps: Floats, widths: Floats) -> float:
    """Area under |D| when D runs linearly from each gap to the next across a bucket (both CDFs
    are linear inside a bucket, the assumption of ``histogram_quantile``)."""
    start, end = np.concatenate([[0.0], gaps[:-1]]), gaps
    same_sign = start * end >= 0
    spans = np.abs(start) + np.abs(end)
    crossing = np.where(spans > 0, (start * start + end * end) / np.where(spans > 0, 2 * spans, 1.0), 0.0)
    return float(np.sum(widths * np.where(same_sign, spans / 2, crossing)))


def _bucket_geometry(histogram: Histogram) -> tuple[Floats, Floats]:
    """Lower and upper edge of each bucket; the +Inf bucket is the highest finite bound, width 0."""
    lower, upper = histogram.lower_edges(), histogram.upper_bounds.copy()
    finite = upper[np.isfinite(upper)]
    top = float(finite[-1]) if finite.size else 0.0
    infinite = ~np.isfinite(upper)
    upper[infinite], lower[infinite] = top, top
    return lower, upper


def histogram_spread(histogram: Histogram) -> float:
    """Standard deviation with each bucket's counts spread evenly over the bucket."""
    lower, upper = _bucket_geometry(histogram)
    weights = histogram.counts / max(histogram.total, 1e-12)
    mean = float(np.sum(weights * (lower + upper) / 2))
    second = float(np.sum(weights * (lower * lower + lower * upper + upper * upper) / 3))
    return math.sqrt(max(second - mean * mean, 0.0))


def ks_histogram(baseline: Histogram, current: Histogram, alpha: float = DEFAULT_ALPHA) -> TestResult:
    """KS on the binned CDFs: D is the largest CDF gap at a common bound. Kolmogorov's limit is
    conservative for binned data: a gap can only be seen at a bound."""
    a, b = align(baseline, current)
    n, m = a.total, b.total
    d = float(np.max(np.abs(np.cumsum(a.counts) / n - np.cumsum(b.counts) / m)))
    return _kolmogorov(d, _effective(n, m), alpha)


def _pooled(baseline: Histogram, current: Histogram) -> tuple[Floats, Floats]:
    a, b = align(baseline, current)
    return pool_sparse(a.counts, b.counts)


def _pearson(a: Floats, b: Floats) -> tuple[float, float]:
    """Pearson's chi-square of homogeneity of two count vectors, and its p-value (k - 1 df)."""
    total = a.sum() + b.sum()
    share = (a + b) / total
    expected_a, expected_b = a.sum() * share, b.sum() * share
    keep = share > 0
    x2 = float(
        np.sum((a[keep] - expected_a[keep]) ** 2 / expected_a[keep])
        + np.sum((b[keep] - expected_b[keep]) ** 2 / expected_b[keep])
    )
    return x2, _chi2_sf(x2, max(int(keep.sum()) - 1, 1))


def psi(baseline: Histogram, current: Histogram, alpha: float = DEFAULT_ALPHA) -> TestResult:
    """Population stability index on the pooled buckets; n_eff * PSI is chi-square(k - 1) under
    no change in the limit (Yurdakul 2018). Empty buckets get a small epsilon instead of a log
    of zero."""
    a, b = _pooled(baseline, current)
    p = np.maximum(a / a.sum(), PSI_EPSILON)
    q = np.maximum(b / b.sum(), PSI_EPSILON)
    value = float(np.sum((q - p) * np.log(q / p)))
    _, p_value = _pearson(a, b)
    critical = _chi2_isf(alpha, max(a.size - 1, 1)) / _effective(a.sum(), b.sum())
    return TestResult(value, p_value, critical)


def chi_square(baseline: Histogram, current: Histogram, alpha: float = DEFAULT_ALPHA) -> TestResult:
    """Pearson's chi-square test of homogeneity; the statistic shown is Cramér's V = sqrt(X²/N)."""
    a, b = _pooled(baseline, current)
    total = a.sum() + b.sum()
    if a.size < 2 or total <= 0:
        return TestResult(0.0, 1.0, float("inf"))
    x2, p_value = _pearson(a, b)
    critical = math.sqrt(_chi2_isf(alpha, a.size - 1) / total)
    return TestResult(math.sqrt(x2 / total), p_value, critical)


def jensen_shannon(baseline: Histogram, current: Histogram, alpha: float = DEFAULT_ALPHA) -> TestResult:
    """Jensen-Shannon distance in nats (0 to sqrt(ln 2)), the square root of the divergence;
    8 n_eff times the divergence is chi-square(k - 1) under no change in the limit (its relation
    to the G-test, Grosse et al. 2002)."""
    a, b = _pooled(baseline, current)
    p, q = a / a.sum(), b / b.sum()
    middle = (p + q) / 2
    safe_middle = np.where(middle > 0, middle, 1.0)
    divergence = 0.5 * float(
        np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0) / safe_middle), 0.0))
        + np.sum(np.where(q > 0, q * np.log(np.where(q > 0, q, 1.0) / safe_middle), 0.0))
    )
    _, p_value = _pearson(a, b)
    effective = _effective(a.sum(), b.sum())
    critical = math.sqrt(_chi2_isf(alpha, max(a.size - 1, 1)) / (8 * effective))
    return TestResult(math.sqrt(max(divergence, 0.0)), p_value, critical)


def wasserstein_histogram(
    baseline: Histogram, current: Histogram, alpha: float = DEFAULT_ALPHA
) -> TestResult:
    """Earth mover's distance between the two piecewise-uniform distributions (counts spread
    evenly within each bucket), in baseline standard deviations."""
    a, b = align(baseline, current)
    n, m = a.total, b.total
    lower, upper = _bucket_geometry(a)
    widths = upper - lower
    gaps = np.cumsum(a.counts) / n - np.cumsum(b.counts) / m
    distance = _linear_gap_area(gaps, widths)
    spread = histogram_spread(a) or 1.0
    pooled_cdf = np.cumsum(a.counts + b.counts) / (n + m)
    weights = (widths + np.concatenate([widths[1:], [0.0]])) / 2  # |D_j| weighs half of each side
    p_value, critical = _lognormal_fit(distance, *_bridge_moments(weights, pooled_cdf, n, m), alpha)
    return TestResult(distance / spread, p_value, critical / spread)


def quantile_bounds(samples: ArrayLike, bins: int = 10) -> Floats:
    """Bucket bounds for raw samples: deciles and +Inf. Called on the pooled samples of both
    windows, so the buckets do not depend on which window a value came from."""
    values = np.asarray(samples, dtype=float)
    inner = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
    return np.concatenate([inner, [np.inf]])


def sorted_quantiles(ordered: Floats, probabilities: ArrayLike) -> Floats:
    """Quantiles of an already sorted sample (linear interpolation, numpy's default)."""
    position = np.asarray(probabilities, dtype=float) * (ordered.size - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, ordered.size - 1)
    return np.asarray(ordered[low] + (position - low) * (ordered[high] - ordered[low]), dtype=float)


class SamplePair:
    """Two raw samples prepared once for every test: each is sorted once, one merge of the sorted
    copies gives the CDF gaps on the merged values (KS, Wasserstein), and the pooled decile
    buckets (PSI, chi-square, Jensen-Shannon) are read off it. Sorting and merging are most of
    the cost on a million samples, so five tests cost little more than one."""

    def __init__(self, baseline: ArrayLike, current: ArrayLike) -> None:
        self.baseline = np.sort(np.asarray(baseline, dtype=float))
        self.current = np.sort(np.asarray(current, dtype=float))

    @cached_property
    def _cdfs(self) -> tuple[Floats, Floats, Floats]:
        """The merged values, the gap |F_baseline - F_current| just after each, and the step to
        the next value. A stable argsort of the two sorted runs is one linear merge, and counting
        the baseline's members along it gives both CDFs without a binary search. Inside a run of
        ties the counts are partial, but the step there is 0, and a run's last member (where the
        step is not 0) has the CDFs at that value."""
        both = np.concatenate([self.baseline, self.current])
        order = np.argsort(both, kind="stable")
        values = both[order]
        from_baseline = np.cumsum(order < self.baseline.size)
        from_current = np.arange(1, values.size + 1) - from_baseline
        gaps = np.abs(from_baseline / self.baseline.size - from_current / self.current.size)
        return values, gaps, np.diff(values)

    @cached_property
    def deciles(self) -> tuple[Histogram, Histogram]:
        """Both samples in ten buckets bounded by the pooled samples' deciles."""
        if "_cdfs" in self.__dict__:  # the merged values are sorted already: read the deciles off
            values = self._cdfs[0]
            inner = np.unique(sorted_quantiles(values, np.linspace(0, 1, 11)[1:-1]))
            bounds = np.concatenate([inner, [np.inf]])
        else:
            bounds = quantile_bounds(np.concatenate([self.baseline, self.current]))
        return tuple(  # type: ignore[return-value]
            Histogram.from_cumulative(bounds, np.searchsorted(sample, bounds, side="right"))
            for sample in (self.baseline, self.current)
        )

    def ks(self, alpha: float = DEFAULT_ALPHA) -> TestResult:
        """scipy's two-sample KS (exact up to its limit); above it the asymptotic p-value from the
        shared CDFs. Where the limiting distribution already puts the p-value below 1e-10 that
        value is kept: no threshold is near it, and the finite-n distribution takes half a second
        per call out there."""
        n, m = self.baseline.size, self.current.size
        effective = _effective(n, m)
        critical = float(_special().kolmogi(alpha)) / math.sqrt(effective)
        if max(n, m) <= EXACT_KS_LIMIT:
            result = _stats().ks_2samp(self.baseline, self.current)
            return TestResult(float(result.statistic), float(result.pvalue), critical)
        _, gaps, steps = self._cdfs
        d = float(np.max(gaps[:-1], where=steps != 0, initial=0.0))  # the last gap is 0
        p_value = float(_special().kolmogorov(d * np.sqrt(np.round(effective))))
        if p_value >= 1e-10:
            p_value = float(np.clip(_stats().kstwo.sf(d, np.round(effective)), 0.0, 1.0))
        return TestResult(d, p_value, critical)

    def wasserstein(self, alpha: float = DEFAULT_ALPHA) -> TestResult:
        """Earth mover's distance (the area between the CDFs), in baseline standard deviations.
        Null: the mean of its Gaussian limit exactly, the variance on 128 rank cells."""
        values, gaps, steps = self._cdfs
        distance = float(np.sum(gaps[:-1] * steps))
        n, m = self.baseline.size, self.current.size
        pooled = np.arange(1, values.size) / values.size
        scale = np.sqrt(pooled * (1 - pooled))
        mean = float(np.sqrt(2 / np.pi) * np.sqrt(1 / n + 1 / m) * np.sum(steps * scale))
        starts = np.unique(np.linspace(0, steps.size, WASSERSTEIN_GRID + 1).astype(int)[:-1])
        weights = np.add.reduceat(steps, starts) if steps.size else steps
        centres = pooled[(starts + np.append(starts[1:], steps.size)) // 2]
        grid_mean, variance = _bridge_moments(weights, centres, n, m)
        if grid_mean > 0:
            variance *= (mean / grid_mean) ** 2  # the grid's shape, the exact scale
        p_value, critical = _lognormal_fit(distance, mean, variance, alpha)
        spread = float(np.std(self.baseline)) or 1.0
        return TestResult(distance / spread, p_value, critical / spread)

    def run(self, test: TestName, alpha: float = DEFAULT_ALPHA) -> TestResult:
        if test == "ks":
            return self.ks(alpha)
        if test == "wasserstein":
            return self.wasserstein(alpha)
        return HISTOGRAM_TESTS[test](*self.deciles, alpha)


def ks_samples(baseline: ArrayLike, current: ArrayLike, alpha: float = DEFAULT_ALPHA) -> TestResult:
    return SamplePair(baseline, current).ks(alpha)


def wasserstein_samples(baseline: ArrayLike, current: ArrayLike, alpha: float = DEFAULT_ALPHA) -> TestResult:
    return SamplePair(baseline, current).wasserstein(alpha)


HISTOGRAM_TESTS = {
    "ks": ks_histogram,
    "psi": psi,
    "chiSquare": chi_square,
    "jensenShannon": jensen_shannon,
    "wasserstein": wasserstein_histogram,
}


Observation = Histogram | ArrayLike


def run_test(
    test: TestName, baseline: Observation, current: Observation, alpha: float = DEFAULT_ALPHA
) -> TestResult:
    """One test on two histograms (any bucket layouts with enough bounds in common) or two raw
    samples. On samples, KS and Wasserstein use every value; the binned tests bin both samples on
    the pooled deciles."""
    if isinstance(baseline, Histogram) and isinstance(current, Histogram):
        return HISTOGRAM_TESTS[test](baseline, current, alpha)
    if isinstance(baseline, Histogram) or isinstance(current, Histogram):
        raise TypeError("compare two histograms or two samples; bin the samples first")
    return SamplePair(baseline, current).run(test, alpha)


@dataclass(frozen=True)
class FeatureVerdict:
    """``threshold`` is the smallest statistic that drifts at these window sizes: the larger of
    the floor and the null's critical value at ``alpha``."""

    test: str
    statistic: float | None
    p_value: float | None
    threshold: float | None
    alpha: float
    floor: float
    drifted: bool
    no_data: bool
    measure: ChangeMeasure | None = None
    message: str = ""

    @property
    def change(self) -> Change | None:
        return self.measure.change if self.drifted and self.measure is not None else None


def _no_data(
    test: str, sizes: tuple[float, float], alpha: float, floor: float, min_samples: int
) -> FeatureVerdict:
    message = f"{sizes[0]:.0f} baseline and {sizes[1]:.0f} current samples; need {min_samples} each"
    return FeatureVerdict(test, None, None, None, alpha, floor, False, True, message=message)


def _verdict(
    test: str,
    result: TestResult,
    quantiles: Callable[[], tuple[Floats, Floats]],
    alpha: float,
    floor: float,
) -> FeatureVerdict:
    """What changed is measured for a drifted feature only: it names a drift."""
    drifted = result.p_value < alpha and result.statistic >= floor
    threshold = float(max(floor, result.critical))
    change = measure(*quantiles()) if drifted else None
    return FeatureVerdict(
        test, result.statistic, result.p_value, threshold, alpha, floor, drifted, False, change
    )


def judge_pair(
    test: TestName,
    pair: SamplePair,
    *,
    alpha: float = DEFAULT_ALPHA,
    floor: float | None = None,
    min_samples: int = 100,
) -> FeatureVerdict:
    """``judge_feature`` on raw samples already sorted once, so several tests share the sort."""
    floor = DEFAULT_FLOORS[test] if floor is None else floor
    sizes = (float(pair.baseline.size), float(pair.current.size))
    if min(sizes) < min_samples:
        return _no_data(test, sizes, alpha, floor, min_samples)

    def quantiles() -> tuple[Floats, Floats]:
        return sorted_quantiles(pair.baseline, PROBABILITIES), sorted_quantiles(pair.current, PROBABILITIES)

    return _verdict(test, pair.run(test, alpha), quantiles, alpha, floor)


def judge_feature(
    test: TestName,
    baseline: Observation,
    current: Observation,
    *,
    alpha: float = DEFAULT_ALPHA,
    floor: float | None = None,
    min_samples: int = 100,
) -> FeatureVerdict:
    """One feature's verdict, from two histograms or two raw samples: drift when the p-value is
    below ``alpha`` (already divided among the features, Bonferroni) and the statistic reaches
    the floor (default: the test's own)."""
    if not isinstance(baseline, Histogram) and not isinstance(current, Histogram):
        pair = SamplePair(baseline, current)
        return judge_pair(test, pair, alpha=alpha, floor=floor, min_samples=min_samples)
    if not (isinstance(baseline, Histogram) and isinstance(current, Histogram)):
        raise TypeError("compare two histograms or two samples; bin the samples first")
    floor = DEFAULT_FLOORS[test] if floor is None else floor
    sizes = (baseline.total, current.total)
    if min(sizes) < min_samples:
        return _no_data(test, sizes, alpha, floor, min_samples)
    try:
        aligned = align(baseline, current)
    except LayoutMismatch as error:
        return FeatureVerdict(test, None, None, None, alpha, floor, False, True, message=str(error))

    def quantiles() -> tuple[Floats, Floats]:
        return aligned[0].quantiles(PROBABILITIES), aligned[1].quantiles(PROBABILITIES)

    return _verdict(test, HISTOGRAM_TESTS[test](*aligned, alpha), quantiles, alpha, floor)
