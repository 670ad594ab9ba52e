"""The operator's own metrics, served on ``--metrics-port`` for Prometheus: what it reconciled and
how long it took, where every rollout stands, what analysis measured, what drift it saw, and the
retraining Jobs it started. Labels are bounded by the objects in the cluster; a deleted object's
series are removed."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from .api.driftmonitor import FeatureResult

RECONCILES = Counter("llmops_reconciles_total", "Reconciles by kind and result.", ["kind", "result"])
RECONCILE_SECONDS = Histogram(
    "llmops_reconcile_duration_seconds",
    "Time of one reconcile (one rollout or drift tick).",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
ROLLOUT_PHASE = Gauge(
    "llmops_canaryrollout_phase", "1 for the phase each CanaryRollout is in.", ["namespace", "name", "phase"]
)
CANARY_WEIGHT = Gauge(
    "llmops_canaryrollout_canary_weight_percent", "Traffic share of the canary.", ["namespace", "name"]
)
ROLLBACKS = Counter(
    "llmops_canaryrollout_rollbacks_total", "Rollbacks the operator made.", ["namespace", "name"]
)
MEASUREMENTS = Counter(
    "llmops_analysis_measurements_total",
    "Analysis measurements by outcome: Successful, Failed, Inconclusive, Error.",
    ["namespace", "rollout", "metric", "phase"],
)
DRIFT_STATISTIC = Gauge(
    "llmops_drift_statistic",
    "The latest drift statistic per DriftMonitor feature.",
    ["namespace", "monitor", "feature", "test"],
)
DRIFT_DETECTED = Gauge(
    "llmops_drift_detected", "1 while a DriftMonitor sees drift.", ["namespace", "monitor"]
)
RETRAINING_JOBS = Counter(
    "llmops_retraining_jobs_total",
    "Retraining Jobs by what happened to them: started, succeeded, failed.",
    ["namespace", "monitor", "event"],
)
PHASES = ("Waiting", "Progressing", "Paused", "Promoting", "Promoted", "RolledBack")


def serve(port: int, host: str) -> None:
    start_http_server(port, addr=host)


@contextmanager
def reconciling(kind: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    except Exception:
        RECONCILES.labels(kind, "error").inc()
        raise
    else:
        RECONCILES.labels(kind, "success").inc()
    finally:
        RECONCILE_SECONDS.labels(kind).observe(time.perf_counter() - started)


def rollout_observed(namespace: str, name: str, phase: str, canary_weight: int) -> None:
    for known in PHASES:
        ROLLOUT_PHASE.labels(namespace, name, known).set(1.0 if known == phase else 0.0)
    CANARY_WEIGHT.labels(namespace, name).set(canary_weight)


def rolled_back(namespace: str, name: str) -> None:
    ROLLBACKS.labels(namespace, name).inc()


def measured(namespace: str, rollout: str, metric: str, phase: str) -> None:
    MEASUREMENTS.labels(namespace, rollout, metric, phase).inc()


def rollout_forgotten(namespace: str, name: str) -> None:
    for known in PHASES:
        _remove(ROLLOUT_PHASE, namespace, name, known)
    _remove(CANARY_WEIGHT, namespace, name)


def drift_checked(namespace: str, monitor: str, features: Iterable[FeatureResult], drifting: bool) -> None:
    for feature in features:
        if feature.statistic is not None:
            DRIFT_STATISTIC.labels(namespace, monitor, feature.name, feature.test).set(feature.statistic)
    DRIFT_DETECTED.labels(namespace, monitor).set(1.0 if drifting else 0.0)


def retraining(namespace: str, monitor: str, event: str) -> None:
    RETRAINING_JOBS.labels(namespace, monitor, event).inc()


def monitor_forgotten(namespace: str, monitor: str) -> None:
    _remove(DRIFT_DETECTED, namespace, monitor)
    for labels in [s.labels for m in DRIFT_STATISTIC.collect() for s in m.samples]:
        if labels.get("namespace") == namespace and labels.get("monitor") == monitor:
            _remove(DRIFT_STATISTIC, namespace, monitor, labels["feature"], labels["test"])


def _remove(metric: Gauge, *labels: str) -> None:
    with contextlib.suppress(KeyError):  # never set
        metric.remove(*labels)
