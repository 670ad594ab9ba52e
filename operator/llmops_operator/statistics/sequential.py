"""A mixture sequential probability ratio test (mSPRT) whose false-alarm rate holds however often
it is looked at, for the fast-fail watch of a CanaryRollout.

Each look gives one sample ``y``: the log of a metric over a short window against its bound (a
threshold metric) or the canary's value over the stable's in the same window (a baseline metric),
so ``y > margin`` is the failure side. The test is Robbins' normal mixture over the mean, as used
for always-valid p-values by Johari, Pekelis and Walsh (2017):

    Lambda_n = sqrt(s2 / (s2 + n t2)) * exp(n^2 t2 (mean - margin)^2 / (2 s2 (s2 + n t2)))

a nonnegative martingale under ``mean == margin`` (and a supermartingale's event for any mean
below it when only the upper side can fire), so by Ville's inequality ``P(ever Lambda_n >= 1/alpha)
<= alpha`` over an unbounded number of looks. The variance ``s2`` is the running sample variance,
never below ``VARIANCE_FLOOR`` (so the bound is exact for noise up to that floor and is measured
for more in benchmarks/fail_fast_calibration.py). Samples are clipped to ``+-CLIP`` so one window
without traffic or with a zero value cannot dominate. Only the sufficient statistics (count, sum,
sum of squares) are kept: they are what status persists across operator restarts.

One test over a whole step carries its healthy looks: a canary that turns bad after them must first
outweigh them. So the watch is a sequence of tests (:class:`Watch`): at each full measurement, a
test that leans healthy (its mean at or below the margin) is dropped and the next starts. The
``j``-th test runs at ``alpha * 6 / (pi^2 (j + 1)^2)``; these sum to ``alpha``, and each start is a
stopping time after which the new test is again a test supermartingale, so by the union bound the
whole sequence still false-alarms with probability at most ``alpha`` (restarted sequential tests as
in Lorden 1971). Restarts happen only at measurements, not after any healthy look: restarting at
every look would turn the watch into a scan for short runs of bad windows, which a lumpy metric
(windows with and without one error) has by chance (measured: 5.7% false alarms for errors at
their bound, against 0.5% for one test per step). For such a metric a fresh test's first few
samples can also look far steadier than the metric is, so its caller may raise the variance floor
(``floor``) to the metric's own scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

ALPHA = 0.005  # false-alarm probability per metric per rollout step
MIXTURE_SD = 0.5  # tau: the mixture's spread, in log units (an effect of about 1.65x weighs most)
VARIANCE_FLOOR = 0.25**2  # sigma never below 0.25 log units (about +-28% a window)
CLIP = 3.0  # |y| <= 3: a window cannot weigh more than a 20-fold ratio
EPSILON = 0.01  # a value of zero counts as 1% of the bound (a log needs a positive value)
MIN_SAMPLES = 3  # the plug-in variance needs a few samples before a verdict can lean on it


@dataclass(frozen=True)
class Evidence:
    """The sufficient statistics of the samples seen so far."""

    samples: int = 0
    total: float = 0.0
    total_squares: float = 0.0

    def add(self, y: float) -> Evidence:
        return Evidence(self.samples + 1, self.total + y, self.total_squares + y * y)

    @property
    def mean(self) -> float:
        return self.total / self.samples if self.samples else 0.0

    @property
    def variance(self) -> float:
        """The plug-in sigma^2 of the mixture: the sample variance, widened by (n + 1) / (n - 1)
        while few samples make it uncertain, never below the floor."""
        n = self.samples
        if n < 2:
            return VARIANCE_FLOOR
        spread = (self.total_squares - self.total * self.total / n) / (n - 1)
        return max(VARIANCE_FLOOR, spread * (n + 1) / (n - 1))


@dataclass(frozen=True)
class Verdict:
    statistic: float  # log Lambda_n
    boundary: float  # log(1/alpha)
    fired: bool


def boundary(alpha: float = ALPHA) -> float:
    return math.log(1.0 / alpha)


def alpha_of(restarts: int, alpha: float = ALPHA) -> float:
    """The share of ``alpha`` of the test started after ``restarts`` restarts."""
    return alpha * 6.0 / (math.pi**2 * (restarts + 1) ** 2)


def log_ratio(value: float, reference: float, offset: float = EPSILON) -> float | None:
    """The sample of one look: log((value + e) / (reference + e)) with ``e = offset * reference``,
    clipped to ``+-CLIP``; None when the reference is not positive or a value is not finite (no
    sample, rather than a made-up one). By Jensen's inequality the mean of this sample is at most
    0 whenever the value's mean is at most the reference, for any offset: a larger offset (1 for a
    rate of rare events such as errors) only tempers single windows with few requests."""
    if not (math.isfinite(value) and math.isfinite(reference)) or reference <= 0:
        return None
    floor = offset * reference
    y = math.log(max(value, 0.0) + floor) - math.log(reference + floor)
    return max(-CLIP, min(CLIP, y))


def msprt(
    evidence: Evidence,
    margin: float = 0.0,
    alpha: float = ALPHA,
    mixture_sd: float = MIXTURE_SD,
    floor: float = VARIANCE_FLOOR,
) -> Verdict:
    """One-sided: fires only when the mean is above ``margin`` and Lambda_n reaches 1/alpha, after
    at least ``MIN_SAMPLES`` samples; sigma^2 is never below ``floor``."""
    limit = boundary(alpha)
    n = evidence.samples
    if n == 0:
        return Verdict(0.0, limit, False)
    s2, t2 = max(evidence.variance, floor), mixture_sd * mixture_sd
    shift = evidence.mean - margin
    statistic = 0.5 * math.log(s2 / (s2 + n * t2)) + (n * n * t2 * shift * shift) / (2 * s2 * (s2 + n * t2))
    return Verdict(statistic, limit, n >= MIN_SAMPLES and shift > 0 and statistic >= limit)


@dataclass(frozen=True)
class Watch:
    """The current test's statistics and how many tests came before it in this step."""

    evidence: Evidence = Evidence()
    restarts: int = 0

    def observe(self, y: float) -> Watch:
        return Watch(self.evidence.add(y), self.restarts)

    def restarted(self, margin: float = 0.0) -> Watch:
        """At a restart point: a fresh test when the current one has samples and leans healthy."""
        if self.evidence.samples and self.evidence.mean <= margin:
            return Watch(Evidence(), self.restarts + 1)
        return self

    def verdict(self, margin: float = 0.0, alpha: float = ALPHA, floor: float = VARIANCE_FLOOR) -> Verdict:
        """The current test at its share of ``alpha``."""
        return msprt(self.evidence, margin, alpha_of(self.restarts, alpha), floor=floor)
