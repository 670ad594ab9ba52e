"""Two-sample drift tests on raw samples and, natively, on histogram buckets.

Prometheus histograms give cumulative counts per upper bound (``le``); the difference between two
windows' counters is a histogram of that window. Every test here works on those bucket counts
without inventing samples, and the sample-based variants exist so the two paths can be compared.

A verdict needs more than a small p-value: with a million samples per window a 2% shift is
"significant" yet harmless, so p-value tests also need an effect size above a floor (the KS
statistic itself, or Cramér's V for chi-square), and windows with too few samples give NoData.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from types import ModuleType
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .. import lazy


def _stats() -> ModuleType:
    """scipy.stats, loaded on first use (``lazy``): an operator without DriftMonitors never needs it."""
    return lazy.load("scipy.stats")


TestName = Literal["ks", "psi", "wasserstein", "jensenShannon", "chiSquare"]
DriftType = Literal["sudden", "gradual", "varianceChange", "none"]
DEFAULT_THRESHOLDS: dict[str, float] = {
    "ks": 0.05,  # alpha, before the Bonferroni correction
    "chiSquare": 0.05,
    "psi": 0.2,
    "jensenShannon": 0.1,
    "wasserstein": 0.1,  # in baseline standard deviations
}
PSI_EPSILON = 1e-4

Floats = NDArray[np.float64]


@dataclass(frozen=True)
class Histogram:
    """Counts per bucket; ``upper_bounds`` are the ``le`` labels, the last one may be +Inf."""

    upper_bounds: Floats
    counts: Floats

    @classmethod
    def from_cumulative(cls, upper_bounds: ArrayLike, cumulative: ArrayLike) -> Histogram:
        bounds = np.asarray(upper_bounds, dtype=float)
        order = np.argsort(bounds)
        totals = np.asarray(cumulative, dtype=float)[order]
        counts = np.diff(totals, prepend=0.0)
        return cls(bounds[order], np.clip(counts, 0.0, None))  # counter resets can go negative

    @classmethod
    def from_samples(cls, samples: ArrayLike, upper_bounds: ArrayLike) -> Histogram:
        bounds = np.asarray(upper_bounds, dtype=float)
        index = np.searchsorted(bounds, np.asarray(samples, dtype=float), side="left")
        counts = np.bincount(index, minlength=len(bounds))[: len(bounds)].astype(float)
        return cls(bounds, counts)

    @property
    def total(self) -> float:
        return float(self.counts.sum())

    def midpoints(self) -> Floats:
        """Bucket centres; the first bucket and the +Inf bucket get the width of their neighbour."""
        finite = self.upper_bounds[np.isfinite(self.upper_bounds)]
        first_width = float(finite[1] - finite[0]) if len(finite) > 1 else 1.0
        last_width = float(finite[-1] - finite[-2]) if len(finite) > 1 else 1.0
        lower = np.concatenate([[finite[0] - first_width], self.upper_bounds[:-1]])
        upper = np.where(np.isfinite(self.upper_bounds), self.upper_bounds, lower + last_width)
        return (lower + upper) / 2.0

    def moments(self) -> tuple[float, float]:
        mids = self.midpoints()
        weights = self.counts / max(self.total, 1.0)
        mean = float(np.sum(weights * mids))
        return mean, float(np.sqrt(np.sum(weights * (mids - mean) ** 2)))


@dataclass(frozen=True)
class TestResult:
    statistic: float
    p_value: float | None
    effect: float  # what the effect-size floor is compared with


def _aligned(baseline: Histogram, current: Histogram) -> tuple[Floats, Floats]:
    if baseline.upper_bounds.shape != current.upper_bounds.shape or not np.allclose(
        baseline.upper_bounds, current.upper_bounds
    ):
        raise ValueError("histograms have different buckets")
    return baseline.counts, current.counts


EXACT_KS_LIMIT = 10_000  # scipy's own switch from the exact to the asymptotic KS distribution


class SamplePair:
    """Two raw samples prepared once for every test: each is sorted once, and both the CDFs on the
    merged values (KS, Wasserstein) and the decile buckets (PSI, chi-square, Jensen-Shannon) are
    read off the sorted copies. Sorting is the whole cost on a million samples, so five tests cost
    little more than one."""

    def __init__(self, baseline: ArrayLike, current: ArrayLike) -> None:
        self.baseline = np.sort(np.asarray(baseline, dtype=float))
        self.current = np.sort(np.asarray(current, dtype=float))

    @cached_property
    def _cdfs(self) -> tuple[Floats, Floats, Floats]:
        """Both CDFs at every value of either sample."""
        values = np.sort(np.concatenate([self.baseline, self.current]), kind="stable")  # merges two runs
        return (
            values,
            np.searchsorted(self.baseline, values, side="right") / self.baseline.size,
            np.searchsorted(self.current, values, side="right") / self.current.size,
        )

    @cached_property
    def deciles(self) -> tuple[Histogram, Histogram]:
        """Both samples in buckets bounded by the baseline's deciles (the usual PSI binning)."""
        bounds = quantile_bounds(self.baseline)
        return tuple(  # type: ignore[return-value]
            Histogram.from_cumulative(bounds, np.searchsorted(sample, bounds, side="right"))
            for sample in (self.baseline, self.current)
        )

    def ks(self) -> TestResult:
        """scipy's two-sample KS; above its exact-method limit the same asymptotic p-value from the
        shared CDFs. Where the limiting Kolmogorov distribution already puts the p-value below
        1e-10 that value is kept: no threshold is near it, and the finite-n distribution takes
        half a second per call out there."""
        n, m = self.baseline.size, self.current.size
        if max(n, m) <= EXACT_KS_LIMIT:
            result = _stats().ks_2samp(self.baseline, self.current)
            return TestResult(float(result.statistic), float(result.pvalue), float(result.statistic))
        _, cdf_a, cdf_b = self._cdfs
        d = float(np.max(np.abs(cdf_a - cdf_b)))
        effective = np.round(n * m / (n + m))
        p_value = float(_stats().kstwobign.sf(d * np.sqrt(effective)))
        if p_value >= 1e-10:
            p_value = float(np.clip(_stats().kstwo.sf(d, effective), 0.0, 1.0))
        return TestResult(d, p_value, d)

    def wasserstein(self) -> TestResult:
        """Earth mover's distance (the area between the CDFs), in baseline standard deviations."""
        values, cdf_a, cdf_b = self._cdfs
        distance = float(np.sum(np.abs(cdf_a - cdf_b)[:-1] * np.diff(values)))
        spread = float(np.std(self.baseline)) or 1.0
        return TestResult(distance / spread, None, distance / spread)

    def run(self, test: TestName) -> TestResult:
        if test == "ks":
            return self.ks()
        if test == "wasserstein":
            return self.wasserstein()
        return HISTOGRAM_TESTS[test](*self.deciles)


def ks_samples(baseline: ArrayLike, current: ArrayLike) -> TestResult:
    return SamplePair(baseline, current).ks()


def ks_histogram(baseline: Histogram, current: Histogram) -> TestResult:
    """KS on the binned CDFs: D is the largest CDF gap at a bucket bound; asymptotic p-value."""
    a, b = _aligned(baseline, current)
    n, m = a.sum(), b.sum()
    d = float(np.max(np.abs(np.cumsum(a) / n - np.cumsum(b) / m)))
    effective = n * m / (n + m)
    return TestResult(d, float(_stats().kstwobign.sf(d * np.sqrt(effective))), d)


def psi(baseline: Histogram, current: Histogram, epsilon: float = PSI_EPSILON) -> TestResult:
    """Population stability index; empty buckets get a small epsilon instead of a log of zero."""
    a, b = _aligned(baseline, current)
    p = np.clip(a / a.sum(), epsilon, None)
    q = np.clip(b / b.sum(), epsilon, None)
    value = float(np.sum((q - p) * np.log(q / p)))
    return TestResult(value, None, value)


def chi_square(baseline: Histogram, current: Histogram) -> TestResult:
    """Chi-square test of homogeneity on counts, with Cramér's V as the effect size."""
    a, b = _aligned(baseline, current)
    keep = (a + b) > 0
    table = np.vstack([a[keep], b[keep]])
    if table.shape[1] < 2:
        return TestResult(0.0, 1.0, 0.0)
    result = _stats().chi2_contingency(table, correction=False)
    cramers_v = float(np.sqrt(result.statistic / table.sum()))
    return TestResult(float(result.statistic), float(result.pvalue), cramers_v)


def jensen_shannon(baseline: Histogram, current: Histogram) -> TestResult:
    """Jensen-Shannon distance (base 2, so 0..1)."""
    a, b = _aligned(baseline, current)
    value = float(lazy.load("scipy.spatial.distance").jensenshannon(a / a.sum(), b / b.sum(), base=2))
    return TestResult(value, None, value)


def wasserstein_histogram(baseline: Histogram, current: Histogram) -> TestResult:
    """Earth mover's distance between bucket midpoints, in baseline standard deviations."""
    a, b = _aligned(baseline, current)
    mids = baseline.midpoints()
    distance = _stats().wasserstein_distance(mids, mids, a, b)
    spread = baseline.moments()[1] or 1.0
    value = float(distance / spread)
    return TestResult(value, None, value)


def wasserstein_samples(baseline: ArrayLike, current: ArrayLike) -> TestResult:
    return SamplePair(baseline, current).wasserstein()


def drift_type(baseline: tuple[float, float], current: tuple[float, float]) -> DriftType:
    """From (mean, std) of each window: a mean shift in baseline standard deviations, or spread."""
    (base_mean, base_std), (cur_mean, cur_std) = baseline, current
    if base_std <= 0:
        return "none" if cur_mean == base_mean else "sudden"
    shift = abs(cur_mean - base_mean) / base_std
    if shift > 2:
        return "sudden"
    if shift >= 0.5:
        return "gradual"
    ratio = cur_std / base_std
    if ratio > 1.5 or ratio < 1 / 1.5:
        return "varianceChange"
    return "none"


@dataclass(frozen=True)
class FeatureVerdict:
    test: str
    statistic: float | None
    p_value: float | None
    drifted: bool
    no_data: bool
    drift_type: DriftType


def quantile_bounds(baseline: ArrayLike, bins: int = 10) -> Floats:
    """Bucket bounds for raw samples: the baseline's deciles and +Inf, so every bucket of the
    baseline holds about the same share (the usual binning for PSI on continuous data)."""
    inner = np.unique(np.quantile(np.asarray(baseline, dtype=float), np.linspace(0, 1, bins + 1)[1:-1]))
    return np.concatenate([inner, [np.inf]])


HISTOGRAM_TESTS = {
    "ks": ks_histogram,
    "psi": psi,
    "chiSquare": chi_square,
    "jensenShannon": jensen_shannon,
    "wasserstein": wasserstein_histogram,
}


def run_test(test: TestName, baseline: Histogram | ArrayLike, current: Histogram | ArrayLike) -> TestResult:
    """One test on two histograms (same buckets) or two raw samples. On samples, KS and Wasserstein
    use every value; the binned tests bin both samples on the baseline's deciles."""
    if isinstance(baseline, Histogram) and isinstance(current, Histogram):
        return HISTOGRAM_TESTS[test](baseline, current)
    if isinstance(baseline, Histogram) or isinstance(current, Histogram):
        raise TypeError("compare two histograms or two samples; bin the samples first")
    return SamplePair(baseline, current).run(test)


def _size(data: Histogram | ArrayLike) -> float:
    return data.total if isinstance(data, Histogram) else float(np.asarray(data).size)


def _moments(data: Histogram | ArrayLike) -> tuple[float, float]:
    if isinstance(data, Histogram):
        return data.moments()
    values = np.asarray(data, dtype=float)
    return float(values.mean()), float(values.std())


def judge_feature(
    test: TestName,
    baseline: Histogram | ArrayLike,
    current: Histogram | ArrayLike,
    *,
    threshold: float | None = None,
    comparisons: int = 1,
    min_samples: int = 100,
    min_effect: float = 0.1,
) -> FeatureVerdict:
    """One feature's verdict, from two histograms or two raw samples. ``comparisons`` is the
    number of p-value tests among the features (Bonferroni)."""
    if _size(baseline) < min_samples or _size(current) < min_samples:
        return FeatureVerdict(test, None, None, False, True, "none")
    limit = DEFAULT_THRESHOLDS[test] if threshold is None else threshold
    result = run_test(test, baseline, current)
    if result.p_value is not None:
        drifted = result.p_value < limit / max(comparisons, 1) and result.effect >= min_effect
    else:
        drifted = result.statistic >= limit
    kind = drift_type(_moments(baseline), _moments(current)) if drifted else "none"
    return FeatureVerdict(test, result.statistic, result.p_value, drifted, False, kind)
