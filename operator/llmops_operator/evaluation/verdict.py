"""Scores to verdict: each scorer's mean against its thresholds and, with ``compareWithStable``,
a paired one-sided test on the per-prompt differences against the stable's answers.

A scorer fails its comparison only when the canary is worse with significance (p < alpha) *and*
its mean is below the stable's by more than ``maxRegression``, so "no worse than the champion" is
a statistical statement: an equal model fails about alpha of the time at most, whatever the
margin (benchmarks/evaluation_gate.py computes it). Wilcoxon's signed-rank test (scipy, zeros
dropped as Wilcoxon did; on binary scores it is the sign test's normal approximation, within 0.2
points of the most powerful test's power) or a paired bootstrap (scipy's
``bootstrap`` on the differences) gives the p-value; the interval shown is always the paired
bootstrap's percentile interval of the mean difference at confidence 1 - 2 alpha (its ends are the
one-sided 1 - alpha bounds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import fmean

from ..api.evaluation import PairedComparison, ScorerResult, ScorerSpec
from .scorers import LOWER_IS_BETTER

MIN_ANSWERED_SHARE = 0.5  # fewer scored prompts than this share: the scorer cannot judge
BOOTSTRAP_RESAMPLES = 2000


@dataclass(frozen=True)
class Paired:
    difference: float  # canary minus stable, signed so that positive is better
    low: float
    high: float
    p_value: float


def paired_test(differences: list[float], comparison: PairedComparison, seed: int = 0) -> Paired:
    """One-sided: small p means the canary is worse (differences below zero)."""
    import numpy as np  # with scipy, loaded by the first evaluation verdict, not at start
    from scipy import stats

    d = np.asarray(differences, dtype=float)
    alpha = float(comparison.alpha)
    mean = float(d.mean())
    if np.ptp(d) == 0:  # every prompt moved alike (often: not at all): nothing to resample
        p_value = 1.0 if mean >= 0 else 0.0
        return Paired(mean, mean, mean, p_value)
    result = stats.bootstrap(
        (d,),
        np.mean,
        confidence_level=1 - 2 * alpha,
        n_resamples=BOOTSTRAP_RESAMPLES,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    if comparison.test == "wilcoxon":
        p_value = (
            float(stats.wilcoxon(d, alternative="less", zero_method="wilcox").pvalue) if d.any() else 1.0
        )
    else:
        shifted = np.asarray(result.bootstrap_distribution) - mean  # the null: no difference
        p_value = float((np.count_nonzero(shifted <= mean) + 1) / (shifted.size + 1))
    return Paired(mean, low, high, p_value)


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _threshold(spec: ScorerSpec) -> str:
    parts = []
    if spec.min is not None:
        parts.append(f">= {spec.min}")
    if spec.max is not None:
        parts.append(f"<= {spec.max}")
    if spec.compare_with_stable is not None:
        parts.append(f"no worse than stable by {spec.compare_with_stable.max_regression}")
    return " and ".join(parts)


def judge_scorer(
    spec: ScorerSpec, canary: list[float | None], stable: list[float | None] | None, seed: int = 0
) -> ScorerResult:
    """``canary`` (and ``stable``) hold one score per prompt, None where there was none (the
    request failed, or the judge's reply had no grade)."""
    threshold = _threshold(spec)
    scored = [value for value in canary if value is not None and math.isfinite(value)]
    if len(scored) < MIN_ANSWERED_SHARE * len(canary) or not scored:
        message = f"only {len(scored)} of {len(canary)} prompts were scored"
        return ScorerResult(name=spec.name, phase="Inconclusive", threshold=threshold, message=message)
    mean = fmean(scored)
    result = ScorerResult(name=spec.name, phase="Passed", value=_fmt(mean), threshold=threshold)
    if spec.min is not None and mean < float(spec.min):
        result.phase, result.message = "Failed", f"{_fmt(mean)} is below {spec.min}"
    elif spec.max is not None and mean > float(spec.max):
        result.phase, result.message = "Failed", f"{_fmt(mean)} is above {spec.max}"
    comparison = spec.compare_with_stable
    if comparison is None or stable is None:
        return result
    pairs = [
        (c, s)
        for c, s in zip(canary, stable, strict=True)
        if c is not None and s is not None and math.isfinite(c) and math.isfinite(s)
    ]
    if len(pairs) < MIN_ANSWERED_SHARE * len(canary) or len(pairs) < 2:
        result.phase = "Inconclusive" if result.phase == "Passed" else result.phase
        result.message = result.message or f"only {len(pairs)} of {len(canary)} prompts scored on both sides"
        return result
    sign = -1.0 if spec.type in LOWER_IS_BETTER else 1.0
    paired = paired_test([sign * (c - s) for c, s in pairs], comparison, seed)
    result.stable_value = _fmt(fmean([s for _, s in pairs]))
    result.difference = _fmt(paired.difference)
    result.interval = f"[{_fmt(paired.low)}, {_fmt(paired.high)}]"
    result.p_value = f"{paired.p_value:.3g}"
    margin = float(comparison.max_regression)
    if paired.p_value < float(comparison.alpha) and paired.difference < -margin and result.phase == "Passed":
        result.phase = "Failed"
        result.message = (
            f"{paired.difference:+.4g} against the stable (interval {result.interval}, "
            f"p={result.p_value} < {comparison.alpha}) is a regression beyond {comparison.max_regression}"
        )
    return result


def overall(results: list[ScorerResult]) -> str:
    """passed, failed or inconclusive: any failure fails, else any inconclusive scorer."""
    phases = {result.phase for result in results}
    if "Failed" in phases:
        return "failed"
    return "inconclusive" if "Inconclusive" in phases else "passed"


def failure_summary(results: list[ScorerResult]) -> str:
    """The Event's words: each failing scorer with its value and threshold."""
    return "; ".join(
        f"scorer {r.name} = {r.value or 'n/a'} against {r.threshold}: {r.message}"
        for r in results
        if r.phase != "Passed"
    )
