"""One drift check as pure functions: which windows, which queries, which samples, and what the
results mean. The handler only fetches and writes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from numpy.typing import NDArray

from ..api.driftmonitor import DriftMonitorSpec, FeatureResult, FeatureSpec
from ..durations import parse_duration
from ..metrics import MetricsProvider
from ..metrics.templates import render_query
from ..statistics.drift import DEFAULT_THRESHOLDS, Histogram, judge_feature
from .datasets import Columns, column

P_VALUE_TESTS = ("ks", "chiSquare")

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
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def windows(spec: DriftMonitorSpec, now: datetime) -> tuple[Window | None, Window]:
    """(baseline, current). A reference-dataset baseline has no window."""
    current = Window(now - timedelta(seconds=parse_duration(spec.current_window)), now)
    baseline_spec = spec.baseline
    if baseline_spec.relative is not None:
        end = now - timedelta(seconds=parse_duration(baseline_spec.relative.offset))
        return Window(end - timedelta(seconds=parse_duration(baseline_spec.relative.duration)), end), current
    if baseline_spec.fixed is not None:
        start = datetime.fromisoformat(baseline_spec.fixed.start.replace("Z", "+00:00"))
        end = datetime.fromisoformat(baseline_spec.fixed.end.replace("Z", "+00:00"))
        return Window(start, end), current
    return None, current


def feature_query(feature: FeatureSpec, namespace: str, target: str, window: Window) -> str:
    """A histogram source: the window's bucket counts of the target's pods (the ServiceMonitor's
    pod labels). A query source: the user's PromQL with ``{{namespace}}`` and ``{{target}}``."""
    if feature.source.histogram is not None:
        metric = feature.source.histogram.metric
        selector = f'namespace="{namespace}",llmops_dev_llmdeployment="{target}"'
        return f"sum by (le) (increase({metric}_bucket{{{selector}}}[{window.seconds}s]))"
    assert feature.source.query is not None  # the CRD requires exactly one source
    return render_query(feature.source.query.promql, {"namespace": namespace, "target": target})


def _histogram(counts: dict[float, float], bounds: list[float]) -> Histogram:
    return Histogram.from_cumulative(bounds, [counts.get(bound, 0.0) for bound in bounds])


def collect(
    spec: DriftMonitorSpec,
    provider: MetricsProvider,
    namespace: str,
    now: datetime,
    dataset: Columns | None = None,
) -> dict[str, tuple[Observation, Observation]]:
    """(baseline, current) per feature. Histograms of two windows share their buckets; a dataset
    column is binned into the live histogram's buckets, so every test sees like with like."""
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
                bounds = sorted(current)
                live = _histogram(current, bounds)
                binned = Histogram.from_samples(samples, bounds) if bounds else live
                observed[feature.name] = (binned, live)
            else:
                observed[feature.name] = (samples, current)
            continue
        baseline, current = raw
        if isinstance(baseline, dict) and isinstance(current, dict):
            bounds = sorted(set(baseline) | set(current))
            observed[feature.name] = (_histogram(baseline, bounds), _histogram(current, bounds))
        else:
            observed[feature.name] = (np.asarray(baseline), np.asarray(current))
    return observed


def default_test(feature: FeatureSpec) -> str:
    return feature.test or ("psi" if feature.source.histogram is not None else "ks")


def threshold_of(feature: FeatureSpec) -> float:
    return (
        float(feature.threshold)
        if feature.threshold is not None
        else DEFAULT_THRESHOLDS[default_test(feature)]
    )


@dataclass(frozen=True)
class Verdict:
    features: list[FeatureResult]
    drifted: list[str]
    no_data: list[str]

    def summary(self) -> str:
        if self.drifted:
            shown = ", ".join(
                f"{f.name} ({f.test} {f.statistic:.3g}, {f.drift_type})"
                for f in self.features
                if f.drifted and f.statistic is not None
            )
            return f"drift in {shown}"
        if self.no_data:
            return f"too few samples in {', '.join(self.no_data)}"
        return "no feature drifted"


def _size(observation: Observation) -> int:
    return int(observation.total if isinstance(observation, Histogram) else observation.size)


def judge(spec: DriftMonitorSpec, observed: dict[str, tuple[Observation, Observation]]) -> Verdict:
    """Per feature: baseline against current, with the policy's floors and Bonferroni."""
    policy = spec.policy
    comparisons = (
        sum(1 for f in spec.features if default_test(f) in P_VALUE_TESTS) if policy.bonferroni else 1
    )
    results, drifted, no_data = [], [], []
    for feature in spec.features:
        baseline, current = observed[feature.name]
        test, threshold = default_test(feature), threshold_of(feature)
        verdict = judge_feature(
            test,  # type: ignore[arg-type]
            baseline,
            current,
            threshold=threshold,
            comparisons=max(comparisons, 1),
            min_samples=policy.min_samples,
            min_effect=float(policy.min_effect_size),
        )
        results.append(
            FeatureResult(
                name=feature.name,
                test=test,
                threshold=f"{threshold:g}",
                statistic=None if verdict.statistic is None else round(verdict.statistic, 6),
                p_value=None if verdict.p_value is None else round(verdict.p_value, 6),
                drifted=verdict.drifted,
                drift_type=verdict.drift_type,
                baseline_samples=_size(baseline),
                current_samples=_size(current),
            )
        )
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
