"""One drift check as pure functions: which windows, which queries, and what the results mean."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..api.driftmonitor import DriftMonitorSpec, FeatureResult, FeatureSpec
from ..durations import parse_duration
from ..statistics.drift import Histogram, judge_histograms

P_VALUE_TESTS = ("ks", "chiSquare")


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


def windows(spec: DriftMonitorSpec, now: datetime) -> tuple[Window, Window]:
    """(baseline, current). Only Prometheus-backed baselines have a window."""
    current = Window(now - timedelta(seconds=parse_duration(spec.current_window)), now)
    baseline_spec = spec.baseline
    if baseline_spec.relative is not None:
        end = now - timedelta(seconds=parse_duration(baseline_spec.relative.offset))
        return Window(end - timedelta(seconds=parse_duration(baseline_spec.relative.duration)), end), current
    assert baseline_spec.fixed is not None
    start = datetime.fromisoformat(baseline_spec.fixed.start.replace("Z", "+00:00"))
    end = datetime.fromisoformat(baseline_spec.fixed.end.replace("Z", "+00:00"))
    return Window(start, end), current


def unsupported(spec: DriftMonitorSpec) -> str | None:
    """What this operator version cannot judge yet, as a message for a condition."""
    if spec.baseline.dataset is not None:
        return "reference-dataset baselines are not supported yet; use a fixed or relative window"
    for feature in spec.features:
        if feature.source.histogram is None:
            return f"features[{feature.name}]: only histogram sources are supported yet"
    return None


def histogram_query(feature: FeatureSpec, namespace: str, target: str, window: Window) -> str:
    """The window's bucket counts of the target's pods (the ServiceMonitor's pod labels)."""
    assert feature.source.histogram is not None
    metric = feature.source.histogram.metric
    selector = f'namespace="{namespace}",llmops_dev_llmdeployment="{target}"'
    return f"sum by (le) (increase({metric}_bucket{{{selector}}}[{window.seconds}s]))"


def default_test(feature: FeatureSpec) -> str:
    return feature.test or ("psi" if feature.source.histogram is not None else "ks")


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


def judge(
    spec: DriftMonitorSpec, histograms: dict[str, tuple[dict[float, float], dict[float, float]]]
) -> Verdict:
    """Per feature: baseline against current bucket counts, with the policy's floors."""
    policy = spec.policy
    comparisons = (
        sum(1 for f in spec.features if default_test(f) in P_VALUE_TESTS) if policy.bonferroni else 1
    )
    results, drifted, no_data = [], [], []
    for feature in spec.features:
        baseline_counts, current_counts = histograms[feature.name]
        bounds = sorted(set(baseline_counts) | set(current_counts))
        baseline = Histogram.from_cumulative(bounds, [baseline_counts.get(b, 0.0) for b in bounds])
        current = Histogram.from_cumulative(bounds, [current_counts.get(b, 0.0) for b in bounds])
        test = default_test(feature)
        verdict = judge_histograms(
            test,  # type: ignore[arg-type]
            baseline,
            current,
            threshold=float(feature.threshold) if feature.threshold is not None else None,
            comparisons=max(comparisons, 1),
            min_samples=policy.min_samples,
            min_effect=float(policy.min_effect_size),
        )
        results.append(
            FeatureResult(
                name=feature.name,
                test=test,
                statistic=None if verdict.statistic is None else round(verdict.statistic, 6),
                p_value=None if verdict.p_value is None else round(verdict.p_value, 6),
                drifted=verdict.drifted,
                drift_type=verdict.drift_type,
                baseline_samples=int(baseline.total),
                current_samples=int(current.total),
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
