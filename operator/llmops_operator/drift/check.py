"""One drift check as pure functions: which windows, which queries, which samples, and what the
results mean. The handler only fetches and writes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from numpy.typing import NDArray

from .. import names, timestamps
from ..api.driftmonitor import DriftMonitorSpec, DriftPolicy, FeatureCheck, FeatureResult, FeatureSpec
from ..durations import parse_duration
from ..metrics import MetricsProvider
from ..metrics.templates import render_query
from ..statistics.drift import DEFAULT_FLOORS, FeatureVerdict, TestName, judge_feature
from ..statistics.drift_types import PastCheck
from ..statistics.drift_types import pattern as drift_pattern
from ..statistics.histogram import Histogram
from ..timestamps import format_time, parse_rfc3339, seconds_since
from .datasets import Columns, column

P_VALUE_TESTS = ("ks", "chiSquare")  # whose threshold is a significance level, not a distance
HISTORY_LENGTH = 10  # checks kept per feature in status

Observation = Histogram | NDArray[np.float64]


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    @property
    def seconds(self) -> int:
        return max(1, round((self.end - self.start).total_seconds()))

    def text(self) -> str:
        return f"{_stamp(self.start)}/{_stamp(self.end)}"


def _stamp(moment: datetime) -> str:
    return format_time(moment)


def windows(spec: DriftMonitorSpec, now: datetime) -> tuple[Window | None, Window]:
    """(baseline, current). A reference-dataset baseline has no window."""
    current = Window(now - timedelta(seconds=parse_duration(spec.current_window)), now)
    baseline_spec = spec.baseline
    if baseline_spec.relative is not None:
        end = now - timedelta(seconds=parse_duration(baseline_spec.relative.offset))
        return Window(end - timedelta(seconds=parse_duration(baseline_spec.relative.duration)), end), current
    if baseline_spec.fixed is not None:
        fixed = baseline_spec.fixed
        return Window(parse_rfc3339(fixed.start), parse_rfc3339(fixed.end)), current
    return None, current


def feature_query(feature: FeatureSpec, namespace: str, target: str, window: Window) -> str:
    """A histogram source: the window's bucket counts of the target's pods (the ServiceMonitor's
    pod labels). A query source: the user's PromQL with ``{{namespace}}`` and ``{{target}}``."""
    if feature.source.histogram is not None:
        metric = feature.source.histogram.metric
        selector = f'namespace="{namespace}",{names.OWNER_SERIES_LABEL}="{target}"'
        return f"sum by (le) (increase({metric}_bucket{{{selector}}}[{window.seconds}s]))"
    assert feature.source.query is not None  # the CRD requires exactly one source
    return render_query(feature.source.query.promql, {"namespace": namespace, "target": target})


def _histogram(counts: dict[float, float]) -> Histogram:
    """A window's own bucket layout: a bound it lacks is absent, never a count of zero."""
    bounds = sorted(counts)
    return Histogram.from_cumulative(bounds, [counts[bound] for bound in bounds])


def collect(
    spec: DriftMonitorSpec,
    provider: MetricsProvider,
    namespace: str,
    now: datetime,
    dataset: Columns | None = None,
) -> dict[str, tuple[Observation, Observation]]:
    """(baseline, current) per feature. Each window's histogram keeps its own bucket layout (the
    tests compare them on the bounds both have); a dataset column is binned into the live
    histogram's buckets, so every test sees like with like."""
    baseline_window, current_window = windows(spec, now)
    target = spec.target_ref.name
    observed: dict[str, tuple[Observation, Observation]] = {}
    for feature in spec.features:
        query = feature.source.query
        raw: list[dict[float, float] | NDArray[np.float64]] = []
        for window in (baseline_window, current_window):
            if window is None:
                continue
            text = feature_query(feature, namespace, target, window)
            if query is None:
                raw.append(provider.buckets(text, window.end))
            else:
                step = parse_duration(query.step)
                raw.append(
                    np.asarray(provider.range(text, window.seconds, step, end=window.end), dtype=float)
                )
        if dataset is not None:
            samples = column(dataset, feature.baseline_column or feature.name)
            current = raw[0]
            if isinstance(current, dict):
                live = _histogram(current)
                observed[feature.name] = (Histogram.from_samples(samples, live.upper_bounds), live)
            else:
                observed[feature.name] = (samples, current)
            continue
        baseline, current = raw
        if isinstance(baseline, dict) and isinstance(current, dict):
            observed[feature.name] = (_histogram(baseline), _histogram(current))
        else:
            observed[feature.name] = (np.asarray(baseline), np.asarray(current))
    return observed


def default_test(feature: FeatureSpec) -> TestName:
    return feature.test or ("psi" if feature.source.histogram is not None else "ks")


def alpha_of(feature: FeatureSpec, policy: DriftPolicy) -> float:
    """A p-value test's ``threshold`` is its significance level; every other test uses the policy's."""
    if feature.threshold is not None and default_test(feature) in P_VALUE_TESTS:
        return float(feature.threshold)
    return float(policy.alpha)


def floor_of(feature: FeatureSpec, policy: DriftPolicy) -> float:
    """A distance test's ``threshold`` is its floor; ``minEffectSize`` is the p-value tests' floor."""
    test = default_test(feature)
    chosen = policy.min_effect_size if test in P_VALUE_TESTS else feature.threshold
    return DEFAULT_FLOORS[test] if chosen is None else float(chosen)


@dataclass(frozen=True)
class Verdict:
    features: list[FeatureResult]
    drifted: list[str]
    no_data: list[str]

    def summary(self) -> str:
        if self.drifted:
            shown = ", ".join(
                f"{f.name} ({f.test} {f.statistic:.3g} >= {f.threshold}, {f.drift_type})"
                for f in self.features
                if f.drifted and f.statistic is not None
            )
            return f"drift in {shown}"
        if self.no_data:
            reasons = "; ".join(f"{f.name}: {f.message}" for f in self.features if f.name in self.no_data)
            return f"no verdict for {', '.join(self.no_data)} ({reasons})"
        return "no feature drifted"


def _size(observation: Observation) -> int:
    return int(observation.total if isinstance(observation, Histogram) else observation.size)


def _past_checks(previous: FeatureResult | None, now: datetime) -> list[PastCheck]:
    if previous is None:
        return []
    checks = []
    for entry in previous.history:
        ratio = (entry.statistic or 0.0) / entry.threshold if entry.threshold else 0.0
        seconds = seconds_since(entry.time, now)
        direction = int(np.sign(entry.location_shift))
        checks.append(PastCheck(seconds, ratio, entry.drifted, entry.drift_change, direction))
    return checks


def _result(
    feature: FeatureSpec,
    verdict: FeatureVerdict,
    sizes: tuple[int, int],
    previous: FeatureResult | None,
    now: datetime,
    window_seconds: float,
) -> FeatureResult:
    """The status entry of one feature, with its history one check longer."""
    change, pattern = verdict.change, None
    measure = verdict.measure
    if verdict.drifted and change is not None and measure is not None and verdict.threshold:
        ongoing = previous.drift_pattern if previous is not None and previous.drifted else None
        pattern = drift_pattern(
            _past_checks(previous, now),
            (verdict.statistic or 0.0) / verdict.threshold,
            change,
            int(np.sign(measure.location_shift)),
            window_seconds,
            ongoing if ongoing in ("sudden", "gradual", "recurring") else None,  # type: ignore[arg-type]
        )
    history = list(previous.history) if previous is not None else []
    if not verdict.no_data:
        history.append(
            FeatureCheck(
                time=format_time(now),
                statistic=_rounded(verdict.statistic),
                threshold=_rounded(verdict.threshold),
                drifted=verdict.drifted,
                drift_change=change or "",
                location_shift=round(measure.location_shift, 4) if measure is not None else 0.0,
            )
        )
    return FeatureResult(
        name=feature.name,
        test=verdict.test,
        threshold="" if verdict.threshold is None else f"{verdict.threshold:.3g}",
        floor=f"{verdict.floor:g}",
        alpha=f"{verdict.alpha:.3g}",
        statistic=_rounded(verdict.statistic),
        p_value=_rounded(verdict.p_value),
        drifted=verdict.drifted,
        drift_type=f"{change}/{pattern}" if change and pattern else "none",
        drift_change=change or "",
        drift_pattern=pattern or "",
        location_shift=None if measure is None else round(measure.location_shift, 4),
        scale_ratio=None if measure is None else _rounded(measure.scale_ratio, 4),
        baseline_samples=sizes[0],
        current_samples=sizes[1],
        message=verdict.message,
        history=history[-HISTORY_LENGTH:],
    )


def _rounded(value: float | None, digits: int = 6) -> float | None:
    if value is None or not np.isfinite(value):
        return None
    return float(f"{value:.{digits}g}") if abs(value) < 1e-3 else round(float(value), digits)


def judge(
    spec: DriftMonitorSpec,
    observed: dict[str, tuple[Observation, Observation]],
    previous: list[FeatureResult] | None = None,
    now: datetime | None = None,
) -> Verdict:
    """Per feature: baseline against current at the policy's alpha (Bonferroni over the
    features) and floors; ``previous`` (last status) gives each feature its check history."""
    policy = spec.policy
    comparisons = len(spec.features) if policy.bonferroni else 1
    earlier = {result.name: result for result in previous or []}
    moment = now or timestamps.now()
    window_seconds = float(parse_duration(spec.current_window))
    results, drifted, no_data = [], [], []
    for feature in spec.features:
        baseline, current = observed[feature.name]
        verdict = judge_feature(
            default_test(feature),
            baseline,
            current,
            alpha=alpha_of(feature, policy) / comparisons,
            floor=floor_of(feature, policy),
            min_samples=policy.min_samples,
        )
        sizes = (_size(baseline), _size(current))
        results.append(_result(feature, verdict, sizes, earlier.get(feature.name), moment, window_seconds))
        if verdict.no_data:
            no_data.append(feature.name)
        elif verdict.drifted:
            drifted.append(feature.name)
    return Verdict(results, drifted, no_data)


def is_drift(spec: DriftMonitorSpec, verdict: Verdict) -> bool:
    return len(verdict.drifted) >= spec.policy.min_drifted_features


def drift_event_id(uid: str, started: datetime) -> str:
    """Names one drift episode: the monitor and the check that first saw it."""
    return hashlib.sha256(f"{uid}/{_stamp(started)}".encode()).hexdigest()[:10]


def job_name(monitor: str, event_id: str) -> str:
    """Deterministic, so a restarted operator re-creating it gets AlreadyExists, never a twin."""
    return f"{monitor[:40].rstrip('-')}-retrain-{event_id}"
