"""The fast-fail watch between measurements, as pure functions over the typed status.

Each applicable metric has one watched side: its thresholds when it has any, else its baseline
comparison. A *look* is that side over one short window: windows of ``failFast.interval`` laid end
to end from the later of the weight's verification and the last full measurement, so no two looks
count the same requests (the rate window reaches back one scrape interval further, to the last
sample the previous look ended on). Each look is one query, and each metric gets at most
``QUERY_BUDGET`` queries per interval, full measurement included. The samples feed the restarted
mSPRTs of ``statistics.sequential``; their evidence lives in ``status.failFast`` with the last
window consumed, so a restart neither loses nor repeats a window. A fired test rolls back; nothing
here promotes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from ..api.canaryrollout import AnalysisSpec, CanaryRolloutStatus, FailFastEvidence, MetricCheck
from ..durations import parse_duration
from ..statistics import sequential
from ..timestamps import format_micro_time, parse_time
from .analysis import applicable, bounds_of, metrics_of

QUERY_BUDGET = 6  # queries per metric per interval, the full measurement's included
CADENCE_FRACTION = 6  # default failFast.interval: interval / 6
BASELINE_MARGIN = 1.5  # a baseline look fails fast only past this canary/stable ratio (or meanRatio)
RARE_EVENT_PRESETS = ("errorRate",)  # rates of rare events: compared with an offset of the bound itself
# With that offset a window without an error samples exactly -log 2 whatever its traffic: log 2 is
# such a rate's own scale per look, the least sigma its test assumes (sigma 0.25 let three small
# windows with one error each fire a test at the bound).
RARE_EVENT_FLOOR = math.log(2) ** 2

Side = Literal["threshold", "baseline"]


@dataclass(frozen=True)
class Look:
    metric: MetricCheck
    side: Side
    at: datetime  # the window's end; the query is evaluated there
    window: str  # the rate window, as the {{interval}} the query is rendered with
    after_measurement: bool = False  # the first look after a full measurement: a restart point


def cadence(analysis: AnalysisSpec) -> float | None:
    """Seconds between looks; None when fast fail is off or could not look before the interval."""
    if not analysis.fail_fast.enabled:
        return None
    interval = parse_duration(analysis.interval)
    scrape = parse_duration(analysis.scrape_interval)
    chosen = analysis.fail_fast.interval
    delta = parse_duration(chosen) if chosen else max(interval / CADENCE_FRACTION, scrape)
    return delta if delta < interval else None


def side_of(metric: MetricCheck) -> Side:
    low, high = bounds_of(metric)
    return "threshold" if low is not None or high is not None else "baseline"


def full_queries(metric: MetricCheck) -> int:
    """Queries of one full measurement: the instant threshold query, two range queries for a baseline."""
    low, high = bounds_of(metric)
    return (1 if low is not None or high is not None else 0) + (2 if metric.baseline is not None else 0)


def looks_per_interval(metric: MetricCheck, analysis: AnalysisSpec) -> int:
    delta = cadence(analysis)
    if delta is None:
        return 0
    fits = math.floor(parse_duration(analysis.interval) / delta + 1e-9) - 1  # the last is the full one
    return max(0, min(fits, QUERY_BUDGET - full_queries(metric)))


def window_text(analysis: AnalysisSpec, delta: float) -> str:
    """The look's rate window: its own span plus one scrape interval, in milliseconds."""
    return f"{round((delta + parse_duration(analysis.scrape_interval)) * 1000)}ms"


def evidence_of(status: CanaryRolloutStatus, metric: MetricCheck) -> FailFastEvidence:
    """The metric's evidence at the current weight: a fresh one when the weight moved (each step's
    traffic is its own experiment), kept in ``status.failFast``."""
    side = side_of(metric)
    for index, evidence in enumerate(status.fail_fast):
        if evidence.metric == metric.name:
            if evidence.weight == status.canary_weight and evidence.side == side:
                return evidence
            status.fail_fast[index] = FailFastEvidence(
                metric=metric.name, side=side, weight=status.canary_weight
            )
            return status.fail_fast[index]
    fresh = FailFastEvidence(metric=metric.name, side=side, weight=status.canary_weight)
    status.fail_fast = sorted([*status.fail_fast, fresh], key=lambda e: e.metric)
    return next(e for e in status.fail_fast if e.metric == metric.name)


def due(status: CanaryRolloutStatus, analysis: AnalysisSpec, now: datetime) -> list[Look]:
    """The looks whose windows have ended and were not consumed yet, oldest first."""
    delta = cadence(analysis)
    if delta is None or status.canary_weight <= 0 or status.weight_verified_at is None:
        return []
    origin = parse_time(status.weight_verified_at)
    measured = status.last_measured_at is not None and parse_time(status.last_measured_at) > origin
    if status.last_measured_at is not None:
        origin = max(origin, parse_time(status.last_measured_at))
    window = window_text(analysis, delta)
    looks: list[Look] = []
    for metric in applicable(metrics_of(analysis), status.canary_weight):
        evidence = evidence_of(status, metric)
        consumed = parse_time(evidence.last_sample_at) if evidence.last_sample_at else None
        for k in range(1, looks_per_interval(metric, analysis) + 1):
            end = origin + timedelta(seconds=k * delta)
            if end > now:
                break
            if consumed is None or end - timedelta(seconds=delta) >= consumed - timedelta(milliseconds=1):
                looks.append(Look(metric, side_of(metric), end, window, measured and k == 1))
    return sorted(looks, key=lambda look: look.at)


def sample_of(metric: MetricCheck, side: Side, values: list[float]) -> float | None:
    """A look's values as the test's sample: the worst series' log excess over its bound, or
    log(canary / stable) turned so that positive is worse; None when there is nothing to judge."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return None
    if side == "baseline":
        assert metric.baseline is not None
        ratio = finite[0]  # the look's query is canary/stable itself
        y = sequential.log_ratio(ratio, 1.0)
        if y is None:
            return None
        return y if metric.baseline.direction == "lowerIsBetter" else -y
    low, high = bounds_of(metric)
    offset = 1.0 if metric.preset in RARE_EVENT_PRESETS else sequential.EPSILON
    samples = []
    if high is not None:
        samples += [sequential.log_ratio(max(finite), high, offset)]
    if low is not None:
        above = sequential.log_ratio(min(finite), low, offset)
        samples += [None if above is None else -above]
    present = [y for y in samples if y is not None]
    return max(present) if present else None


def margin_of(metric: MetricCheck, side: Side) -> float:
    """The sample mean past which the metric is failing: its bound itself for a threshold; for a
    baseline, ``meanRatio`` when set, else ``BASELINE_MARGIN``."""
    if side == "threshold" or metric.baseline is None:
        return 0.0
    limit = float(metric.baseline.mean_ratio) if metric.baseline.mean_ratio is not None else None
    if metric.baseline.direction == "lowerIsBetter":
        return math.log(limit if limit and limit > 0 else BASELINE_MARGIN)
    return -math.log(limit) if limit and 0 < limit < 1 else math.log(BASELINE_MARGIN)


def floor_of(metric: MetricCheck, side: Side) -> float:
    """The least sigma^2 the metric's test assumes per look."""
    rare = side == "threshold" and metric.preset in RARE_EVENT_PRESETS
    return RARE_EVENT_FLOOR if rare else sequential.VARIANCE_FLOOR


def record(status: CanaryRolloutStatus, look: Look, values: list[float]) -> str | None:
    """One look consumed into the metric's evidence; the rollback reason when its test fired."""
    evidence = evidence_of(status, look.metric)
    evidence.last_sample_at = format_micro_time(look.at)
    y = sample_of(look.metric, look.side, values)
    evidence.last_value = ", ".join(f"{v:.4g}" for v in values) if values else "no data"
    margin = margin_of(look.metric, look.side)
    watch = sequential.Watch(
        sequential.Evidence(evidence.samples, evidence.sum, evidence.sum_squares), evidence.restarts
    )
    if look.after_measurement:
        watch = watch.restarted(margin)
    if y is not None:
        watch = watch.observe(y)
    stats = watch.evidence
    evidence.restarts = watch.restarts
    evidence.samples, evidence.sum, evidence.sum_squares = stats.samples, stats.total, stats.total_squares
    verdict = watch.verdict(margin, floor=floor_of(look.metric, look.side))
    evidence.statistic, evidence.boundary = round(verdict.statistic, 4), round(verdict.boundary, 4)
    evidence.fired = verdict.fired
    if not verdict.fired:
        return None
    restarted = f", test {evidence.restarts + 1} of the step" if evidence.restarts else ""
    return (
        f"fail fast: metric {evidence.metric} ({evidence.side}) {evidence.test} log-likelihood ratio "
        f"{verdict.statistic:.2f} >= boundary {verdict.boundary:.2f} after {evidence.samples} looks"
        f"{restarted} (mean log ratio {stats.mean:+.2f}, last value {evidence.last_value})"
    )
