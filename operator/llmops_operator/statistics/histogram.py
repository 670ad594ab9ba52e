"""Prometheus-style histograms: counts per upper bound (``le``), and how two windows are compared.

Two windows of one metric need not share a bucket layout: a canary or a new engine version with
another ``max_model_len`` publishes other token bounds, a new vLLM release other latency bounds,
and a stale ``le`` series can drop out of one window. A bound missing from a window is not a
count of zero there, so two windows are compared on the bounds both have (the coarsest common
partition), each window's counts summed into those buckets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

Floats = NDArray[np.float64]

MIN_COMMON_BUCKETS = 3  # fewer than this on the common partition (+Inf included): no comparison
BOUND_DIGITS = 12  # le labels are text; "0.1" and "0.10000000000000002" are the same bound


@dataclass(frozen=True)
class Histogram:
    """Counts per bucket; ``upper_bounds`` are the ``le`` labels, ascending, the last may be +Inf."""

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

    def layout(self) -> str:
        """The bucket layout in a few words, for messages: ``le 1..2000,+Inf (12 buckets)``."""
        if self.upper_bounds.size == 0:
            return "no buckets"
        finite = self.upper_bounds[np.isfinite(self.upper_bounds)]
        shown = f"{finite[0]:g}..{finite[-1]:g}" if finite.size else ""
        tail = ",+Inf" if np.isinf(self.upper_bounds[-1]) else ""
        return f"le {shown}{tail} ({self.upper_bounds.size} buckets)"

    def lower_edges(self) -> Floats:
        """Each bucket's lower edge as ``histogram_quantile`` assumes it: 0 below a positive first
        bound (a first bound at or below 0 is a bucket of width 0), else the previous bound."""
        first = 0.0 if self.upper_bounds[0] > 0 else float(self.upper_bounds[0])
        return np.concatenate([[first], self.upper_bounds[:-1]])

    def quantiles(self, probabilities: ArrayLike) -> Floats:
        """Quantiles interpolated linearly within the bucket that holds them, as PromQL's
        ``histogram_quantile`` does; one in the +Inf bucket is the highest finite bound."""
        probabilities = np.asarray(probabilities, dtype=float)
        if self.total <= 0:
            return np.full(probabilities.shape, np.nan)
        upper = self.upper_bounds.copy()
        lower = self.lower_edges()
        infinite = ~np.isfinite(upper)
        if infinite.any():
            finite = upper[~infinite]
            top = float(finite[-1]) if finite.size else 0.0
            upper[infinite], lower[infinite] = top, top
        cumulative = np.cumsum(self.counts)
        rank = probabilities * cumulative[-1]
        bucket = np.minimum(np.searchsorted(cumulative, rank, side="left"), len(cumulative) - 1)
        below = np.where(bucket > 0, cumulative[np.maximum(bucket - 1, 0)], 0.0)
        inside = self.counts[bucket]
        share = np.where(inside > 0, (rank - below) / np.where(inside > 0, inside, 1.0), 0.0)
        return np.asarray(lower[bucket] + share * (upper[bucket] - lower[bucket]), dtype=float)

    def cumulative_at(self, bounds: Floats) -> Floats:
        """Cumulative counts at some of this histogram's own bounds."""
        index = np.searchsorted(_keys(self.upper_bounds), _keys(bounds))
        return np.asarray(np.cumsum(self.counts)[index], dtype=float)


def _keys(bounds: Floats) -> Floats:
    return np.asarray(np.round(bounds, BOUND_DIGITS), dtype=float)


class LayoutMismatch(ValueError):
    """Two windows share too few bucket bounds to be compared."""


def align(baseline: Histogram, current: Histogram) -> tuple[Histogram, Histogram]:
    """Both windows on the coarsest common partition: the bounds both have, each window's counts
    summed between them. No count is invented for a bound a window lacks."""
    if np.array_equal(baseline.upper_bounds, current.upper_bounds):
        return baseline, current
    common = np.intersect1d(_keys(baseline.upper_bounds), _keys(current.upper_bounds))
    if common.size < MIN_COMMON_BUCKETS:
        raise LayoutMismatch(
            f"only {common.size} bucket bounds in common between the baseline "
            f"({baseline.layout()}) and the current window ({current.layout()})"
        )
    return tuple(  # type: ignore[return-value]
        Histogram.from_cumulative(common, histogram.cumulative_at(common))
        for histogram in (baseline, current)
    )


def pool_sparse(a: Floats, b: Floats, min_expected: float = 5.0) -> tuple[Floats, Floats]:
    """Adjacent buckets merged until each expects ``min_expected`` counts in the smaller window
    under no change (Cochran's rule for chi-square approximations). The merge reads only the
    pooled counts, which do not depend on which window a sample came from, so the tests' null
    distributions still hold on the merged buckets."""
    pooled = a + b
    total = pooled.sum()
    if total <= 0:
        return a, b
    need = min_expected * total / max(min(a.sum(), b.sum()), 1e-12)
    groups = np.zeros(pooled.size, dtype=int)
    group, filled = 0, 0.0
    for index, count in enumerate(pooled):
        groups[index] = group
        filled += count
        if filled >= need:
            group, filled = group + 1, 0.0
    if filled < need and group > 0:  # the last group is short: it joins the one before
        groups[groups == group] = group - 1
    size = int(groups.max()) + 1
    merged_a = np.bincount(groups, weights=a, minlength=size).astype(float)
    merged_b = np.bincount(groups, weights=b, minlength=size).astype(float)
    return merged_a, merged_b
