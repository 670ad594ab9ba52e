"""The fast-fail watch's pure parts: its cadence and query budget, which windows are due, the
samples, the evidence kept in status (and so across restarts), and the rollback order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from llmops_operator.api.canaryrollout import (
    AnalysisSpec,
    CanaryRolloutSpec,
    CanaryRolloutStatus,
    MetricCheck,
)
from llmops_operator.rollout import failfast, gates
from llmops_operator.timestamps import format_time

T0 = datetime(2026, 1, 1, 10, 0, 0, tzinfo=UTC)
ERRORS = MetricCheck(name="errors", preset="errorRate", max="1")
LATENCY = MetricCheck(name="latency", preset="e2eLatencyP95", max="400")
VS_STABLE = MetricCheck(name="vs-stable", preset="e2eLatencyP95", baseline={})
BOTH = MetricCheck(name="both", preset="e2eLatencyP95", max="400", baseline={})


def spec(**analysis: Any) -> AnalysisSpec:
    return AnalysisSpec.model_validate({"interval": "10s", "scrapeInterval": "1s", **analysis})


@pytest.mark.parametrize(
    ("analysis", "seconds"),
    [
        ({}, 10 / 6),
        ({"interval": "1m", "scrapeInterval": "15s"}, 15.0),  # never below the scrape interval
        ({"interval": "1m"}, 10.0),
        ({"failFast": {"interval": "2s"}}, 2.0),
        ({"failFast": {"enabled": False}}, None),
        ({"interval": "4s", "scrapeInterval": "15s"}, None),  # could not look before the interval
    ],
)
def test_the_cadence_defaults_to_a_sixth_of_the_interval(
    analysis: dict[str, Any], seconds: float | None
) -> None:
    assert failfast.cadence(spec(**analysis)) == (pytest.approx(seconds) if seconds else None)


def test_queries_per_metric_per_interval_stay_within_the_budget() -> None:
    analysis = spec()
    for metric, looks in ((ERRORS, 5), (VS_STABLE, 4), (BOTH, 3)):
        assert failfast.looks_per_interval(metric, analysis) == looks
        assert looks + failfast.full_queries(metric) <= failfast.QUERY_BUDGET
    assert failfast.looks_per_interval(ERRORS, spec(interval="1m", scrapeInterval="15s")) == 3
    assert failfast.window_text(analysis, 10 / 6) == "2667ms"  # one scrape further back


def watched(**analysis: Any) -> tuple[CanaryRolloutStatus, AnalysisSpec]:
    status = CanaryRolloutStatus(canary_weight=50, weight_verified_at=format_time(T0))
    return status, spec(metrics=[ERRORS.model_dump(by_alias=True, exclude_none=True)], **analysis)


def test_windows_are_due_end_to_end_from_the_verification_and_each_only_once() -> None:
    status, analysis = watched()
    assert failfast.due(status, analysis, T0 + timedelta(seconds=1)) == []
    looks = failfast.due(status, analysis, T0 + timedelta(seconds=3.5))
    assert [look.at - T0 for look in looks] == [timedelta(seconds=10 / 6), timedelta(seconds=20 / 6)]
    for look in looks:
        assert gates.judge_looks(status, [(look, [0.0])]) == gates.PROCEED
    assert failfast.due(status, analysis, T0 + timedelta(seconds=3.5)) == []  # consumed
    later = failfast.due(status, analysis, T0 + timedelta(seconds=30))
    assert len(later) == 3  # the 3rd to 5th; the 6th window is the full measurement's
    assert (status.fail_fast[0].samples, status.fail_fast[0].restarts) == (2, 0)  # both consumed


def test_a_restart_resumes_from_the_persisted_evidence_without_losing_or_repeating_a_window() -> None:
    status, analysis = watched()
    for look in failfast.due(status, analysis, T0 + timedelta(seconds=4)):
        gates.judge_looks(status, [(look, [0.0])])
    stored = status.model_dump(mode="json", by_alias=True)  # what status holds across the restart
    assert stored["failFast"][0]["samples"] == 2 and stored["failFast"][0]["lastSampleAt"].endswith("Z")
    restarted = CanaryRolloutStatus.model_validate(stored)
    looks = failfast.due(restarted, analysis, T0 + timedelta(seconds=9))
    assert [round((look.at - T0).total_seconds(), 2) for look in looks] == [5.0, 6.67, 8.33]


def test_a_full_measurement_and_a_weight_change_start_new_windows_and_new_evidence() -> None:
    status, analysis = watched()
    for look in failfast.due(status, analysis, T0 + timedelta(seconds=4)):
        gates.judge_looks(status, [(look, [0.0])])
    status.last_measured_at = format_time(T0 + timedelta(seconds=11))
    looks = failfast.due(status, analysis, T0 + timedelta(seconds=13))
    assert [round((look.at - T0).total_seconds(), 2) for look in looks] == [12.67]
    assert [look.after_measurement for look in looks] == [True]
    gates.judge_looks(status, [(looks[0], [0.0])])  # the healthy interval's test gave way
    assert (status.fail_fast[0].samples, status.fail_fast[0].restarts) == (1, 1)
    status.canary_weight = 100
    failfast.due(status, analysis, T0 + timedelta(seconds=13))
    assert status.fail_fast[0].weight == 100 and status.fail_fast[0].samples == 0


def test_no_looks_without_verified_traffic() -> None:
    status, analysis = watched()
    status.weight_verified_at = None
    assert failfast.due(status, analysis, T0 + timedelta(minutes=1)) == []
    status.weight_verified_at, status.canary_weight = format_time(T0), 0
    assert failfast.due(status, analysis, T0 + timedelta(minutes=1)) == []


def test_severe_errors_fire_on_the_third_look_with_the_evidence_in_status() -> None:
    status, analysis = watched()
    looks = failfast.due(status, analysis, T0 + timedelta(seconds=9))
    outcome = gates.judge_looks(status, [(look, [20.0]) for look in looks])
    assert isinstance(outcome, gates.Fail) and outcome.metric == "errors"
    evidence = status.fail_fast[0]
    assert (evidence.samples, evidence.fired, evidence.test) == (3, True, "mSPRT")
    assert evidence.statistic >= evidence.boundary > 0
    assert "mSPRT" in outcome.reason and "after 3 looks" in outcome.reason and "20" in outcome.reason


def test_one_error_in_each_of_three_small_windows_is_left_to_the_full_measurement() -> None:
    """At 1% errors a window of ~16 requests holds one error 15% of the time: three such windows
    in a row happen by chance, so they must not roll a canary at its bound back (20% do, above)."""
    status, analysis = watched()
    looks = failfast.due(status, analysis, T0 + timedelta(seconds=5.1))
    assert gates.judge_looks(status, [(look, [6.25]) for look in looks]) == gates.PROCEED
    evidence = status.fail_fast[0]
    assert evidence.samples == 3 and 0 < evidence.statistic < evidence.boundary


def test_a_regression_after_a_healthy_interval_fires_three_looks_into_the_next() -> None:
    status, analysis = watched()
    healthy = failfast.due(status, analysis, T0 + timedelta(seconds=9))
    assert gates.judge_looks(status, [(look, [0.0]) for look in healthy]) == gates.PROCEED
    status.last_measured_at = format_time(T0 + timedelta(seconds=10))  # the interval passed
    looks = failfast.due(status, analysis, T0 + timedelta(seconds=15.1))
    outcome = gates.judge_looks(status, [(look, [20.0]) for look in looks])
    assert isinstance(outcome, gates.Fail) and len(looks) == 3
    assert "after 3 looks, test 2 of the step" in outcome.reason
    assert (status.fail_fast[0].samples, status.fail_fast[0].restarts) == (3, 1)


def test_looks_without_data_are_consumed_but_are_no_samples() -> None:
    status, analysis = watched()
    looks = failfast.due(status, analysis, T0 + timedelta(seconds=9))
    assert gates.judge_looks(status, [(look, []) for look in looks]) == gates.PROCEED
    assert status.fail_fast[0].samples == 0 and status.fail_fast[0].last_value == "no data"
    assert failfast.due(status, analysis, T0 + timedelta(seconds=9)) == []


@pytest.mark.parametrize(
    ("metric", "values", "sample"),
    [
        (LATENCY, [800.0, 200.0], 0.69),  # the worst series against the bound
        (MetricCheck(name="tps", query="x", min="10"), [5.0], 0.68),  # below a minimum is worse
        (ERRORS, [0.0], -0.69),  # errors: offset by the bound itself, so zero is log(1/2)
        (VS_STABLE, [2.0], 0.69),  # canary over stable
        (MetricCheck(name="q", query="x", baseline={"direction": "higherIsBetter"}), [0.5], 0.68),
        (LATENCY, [float("nan")], None),
        (VS_STABLE, [float("inf")], None),  # a stable side at zero: no sample
    ],
)
def test_samples(metric: MetricCheck, values: list[float], sample: float | None) -> None:
    found = failfast.sample_of(metric, failfast.side_of(metric), values)
    assert (found if found is None else round(found, 2)) == sample


def test_a_baseline_fails_fast_only_past_its_mean_ratio_or_one_and_a_half() -> None:
    assert failfast.margin_of(VS_STABLE, "baseline") == pytest.approx(0.405, abs=1e-3)
    ratio = MetricCheck(name="q", preset="e2eLatencyP95", baseline={"meanRatio": "1.2"})
    assert failfast.margin_of(ratio, "baseline") == pytest.approx(0.182, abs=1e-3)
    assert failfast.margin_of(LATENCY, "threshold") == 0.0


def rollout_spec(policy: str) -> CanaryRolloutSpec:
    return CanaryRolloutSpec.model_validate(
        {
            "targetRef": {"name": "llama"},
            "canary": {"engine": {"image": "x"}},
            "analysis": {
                "metrics": [
                    ERRORS.model_dump(by_alias=True, exclude_none=True),
                    LATENCY.model_dump(by_alias=True, exclude_none=True),
                    {"name": "custom", "query": "x", "max": "1"},
                ]
            },
            "rollback": {"canaryTraffic": policy},
        }
    )


@pytest.mark.parametrize(
    ("policy", "metric", "order"),
    [
        ("Auto", "latency", "KeptUntilStableReady"),  # slow but correct: keeps serving meanwhile
        ("Auto", "errors", "RemovedAtOnce"),
        ("Auto", "custom", "RemovedAtOnce"),
        ("Auto", "", "RemovedAtOnce"),  # an abort
        ("RemoveAtOnce", "latency", "RemovedAtOnce"),
        ("KeepUntilStableReady", "errors", "KeptUntilStableReady"),
    ],
)
def test_the_rollback_order(policy: str, metric: str, order: str) -> None:
    assert gates.rollback_order(rollout_spec(policy), metric) == order


def test_kubectl_llmops_rollout_get_shows_the_evidence_as_it_accumulates() -> None:
    from llmops_operator.cli import render_rollout

    status, analysis = watched()
    looks = failfast.due(status, analysis, T0 + timedelta(seconds=4))
    gates.judge_looks(status, [(look, [1.5]) for look in looks])  # above the bound, not yet firing
    rollout = {
        "metadata": {"name": "r", "namespace": "ns"},
        "spec": rollout_spec("Auto").model_dump(mode="json", by_alias=True, exclude_none=True),
        "status": status.model_dump(mode="json", by_alias=True),
    }
    view = render_rollout(rollout)
    assert "Fail fast:" in view
    assert "errors  watch mSPRT threshold: log LR" in view and "looks 2  mean" in view and "last 1.5" in view
    calm, _ = watched()  # a healthy interval, a full measurement, then the next test's first look
    gates.judge_looks(
        calm, [(look, [0.0]) for look in failfast.due(calm, analysis, T0 + timedelta(seconds=4))]
    )
    calm.last_measured_at = format_time(T0 + timedelta(seconds=11))
    after = failfast.due(calm, analysis, T0 + timedelta(seconds=13))
    gates.judge_looks(calm, [(look, [0.0]) for look in after])
    rollout["status"] = calm.model_dump(mode="json", by_alias=True)
    assert "looks 1 (test 2)  mean log ratio -0.69  last 0" in render_rollout(rollout)
    rollout["status"]["rollback"] = {
        "order": "RemovedAtOnce",
        "canaryRemovedAt": "t",
        "capacityShortSeconds": 1.5,
    }
    assert "Rollback:  RemovedAtOnce  canary removed t  capacity short 1.5 s" in render_rollout(rollout)
