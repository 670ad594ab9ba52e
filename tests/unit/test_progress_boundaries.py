"""The rollout's counters, timing and conditions at their edges, as a user reads them in status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from llmops_operator.api.canaryrollout import AnalysisSpec, CanaryRolloutSpec, CanaryRolloutStatus
from llmops_operator.rollout.analysis import Measurement
from llmops_operator.rollout.progress import (
    Step,
    advance,
    at_indefinite_pause,
    conditions_for,
    measurement_due,
    plan,
    record,
)

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
NOW = "2026-01-01T12:00:00Z"
STEPS = [Step("setWeight", weight=10), Step("pause"), Step("analysis")]


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def spec(**fields: object) -> CanaryRolloutSpec:
    base: dict[str, object] = {"targetRef": {"name": "llama"}, "canary": {"model": {"uri": "models:/m/2"}}}
    base.update(fields)
    return CanaryRolloutSpec.model_validate(base)


def test_an_analysis_step_keeps_the_metrics_it_names() -> None:
    steps = plan(spec(steps=[{"setWeight": 10}, {"analysis": {"metrics": ["latency"]}}]))
    assert steps == [Step("setWeight", weight=10), Step("analysis", metrics=("latency",))]


def verified(seconds_ago: float, measured_ago: float | None = None, weight: int = 10) -> CanaryRolloutStatus:
    return CanaryRolloutStatus(
        canary_weight=weight,
        weight_verified_at=stamp(T0 - timedelta(seconds=seconds_ago)),
        last_measured_at=None if measured_ago is None else stamp(T0 - timedelta(seconds=measured_ago)),
    )


def test_a_measurement_is_due_after_exactly_one_interval_at_the_weight_and_since_the_last() -> None:
    analysis = AnalysisSpec(interval="1m")
    assert measurement_due(verified(60), analysis, T0)
    assert not measurement_due(verified(59), analysis, T0)
    assert measurement_due(verified(600, measured_ago=60), analysis, T0)
    assert not measurement_due(verified(600, measured_ago=59), analysis, T0)
    assert measurement_due(verified(600, weight=1), analysis, T0)
    assert not measurement_due(verified(600, weight=0), analysis, T0)  # nothing reaches the canary
    assert not measurement_due(CanaryRolloutStatus(canary_weight=10), analysis, T0)


def test_each_outcome_is_counted_once_and_a_verdict_resets_the_inconclusive_streak() -> None:
    status, analysis = CanaryRolloutStatus(), AnalysisSpec(inconclusive_limit=5)
    record(status, [Measurement("m", "Inconclusive", message="no data")], analysis, T0)
    record(status, [Measurement("m", "Inconclusive", message="no data")], analysis, T0)
    assert (status.tallies[0].inconclusive, status.tallies[0].consecutive_inconclusive) == (2, 2)
    record(status, [Measurement("m", "Successful", "1", "<= 2")], analysis, T0 + timedelta(minutes=1))
    tally = status.tallies[0]
    assert (tally.inconclusive, tally.consecutive_inconclusive, tally.successful) == (2, 0, 1)
    assert status.last_measured_at == "2026-01-01T12:01:00Z"
    assert status.measurements[0].measured_at == "2026-01-01T12:01:00Z"


def test_a_rollback_without_a_value_or_threshold_says_so() -> None:
    status = CanaryRolloutStatus()
    verdict = record(status, [Measurement("m", "Failed")], AnalysisSpec(failure_limit=0), T0)
    assert verdict.rollback == "metric m failed 1 times (limit 0): no value against the baseline"


def at(index: int, weight: int = 10, verified_at: str | None = NOW, **fields: object) -> CanaryRolloutStatus:
    return CanaryRolloutStatus(
        current_step_index=index, canary_weight=weight, weight_verified_at=verified_at, **fields
    )


def test_a_weight_step_waits_for_the_weight_to_be_verified() -> None:
    steps = [Step("setWeight", weight=10), Step("pause")]
    status = at(0, verified_at=None)
    assert advance(status, steps, spec(), T0) is False
    assert status.current_step_index == 0
    status.weight_verified_at = NOW
    assert advance(status, steps, spec(), T0) is False
    assert status.current_step_index == 1  # moved on, and now waits at the indefinite pause


def test_an_analysis_step_waits_for_a_verified_weight_and_enough_successes() -> None:
    steps = [Step("analysis")]
    analysis = {"minSuccessfulMeasurements": 1, "metrics": [{"name": "m", "query": "up", "max": "1"}]}
    done = [{"name": "m", "successful": 1}]
    assert advance(at(0, verified_at=None, tallies=done), steps, spec(analysis=analysis), T0) is False
    assert advance(at(0, weight=0, tallies=done), steps, spec(analysis=analysis), T0) is False
    assert advance(at(0, tallies=[]), steps, spec(analysis=analysis), T0) is False
    assert advance(at(0, tallies=done), steps, spec(analysis=analysis), T0) is True


def test_an_indefinite_pause_is_only_one_the_rollout_is_at() -> None:
    assert at_indefinite_pause(at(1), STEPS)
    assert not at_indefinite_pause(at(0), STEPS)
    assert not at_indefinite_pause(at(3), STEPS)  # past the last step
    assert not at_indefinite_pause(at(0), [Step("pause", duration_seconds=30)])


def conditions(status: CanaryRolloutStatus, detail: str = "", **kw: str) -> dict[str, tuple[str, str, str]]:
    return {
        c["type"]: (c["status"], c["reason"], c["message"])
        for c in conditions_for(status, STEPS, 3, detail, NOW, **kw)
    }


WHERE = "step 1/3, canary weight 10%"


@pytest.mark.parametrize(
    ("status", "detail", "expected"),
    [
        (
            at(0, phase="Progressing"),
            "",
            {
                "Progressing": ("True", "StepInProgress", WHERE),
                "Paused": ("False", "NotPaused", ""),
                "Promoted": ("False", "NotPromoted", ""),
                "RolledBack": ("False", "NotRolledBack", ""),
                "Ready": ("False", "Progressing", WHERE),
            },
        ),
        (
            at(1, phase="Progressing"),
            "",
            {
                "Progressing": ("True", "WaitingForPromote", "step 2/3, canary weight 10%"),
                "Paused": (
                    "True",
                    "WaitingForPromote",
                    "step 2/3, canary weight 10%: `kubectl llmops rollout promote` continues",
                ),
                "Promoted": ("False", "NotPromoted", ""),
                "RolledBack": ("False", "NotRolledBack", ""),
                "Ready": ("False", "Progressing", "step 2/3, canary weight 10%"),
            },
        ),
        (
            at(2, phase="Progressing", paused_reason="NoData"),
            "",
            {
                "Progressing": ("False", "NoData", "step 3/3, canary weight 10%"),
                "Paused": ("True", "NoData", "step 3/3, canary weight 10%"),
                "Promoted": ("False", "NotPromoted", ""),
                "RolledBack": ("False", "NotRolledBack", ""),
                "Ready": ("False", "Progressing", "step 3/3, canary weight 10%"),
            },
        ),
        (
            at(2, phase="Progressing", paused_reason="NoData"),
            "latency had no data",
            {
                "Progressing": ("False", "NoData", "latency had no data"),
                "Paused": ("True", "NoData", "latency had no data"),
                "Promoted": ("False", "NotPromoted", ""),
                "RolledBack": ("False", "NotRolledBack", ""),
                "Ready": ("False", "Progressing", "latency had no data"),
            },
        ),
        (
            at(3, weight=100, phase="Promoting"),
            "",
            {
                "Progressing": ("True", "Promoting", "all steps passed"),
                "Paused": ("False", "NotPaused", ""),
                "Promoted": ("False", "NotPromoted", ""),
                "RolledBack": ("False", "NotRolledBack", ""),
                "Ready": ("False", "Promoting", "step 3/3, canary weight 100%"),
            },
        ),
        (
            at(3, weight=100, phase="Promoting"),
            "registering models:/m/2",
            {
                "Progressing": ("True", "Promoting", "registering models:/m/2"),
                "Paused": ("False", "NotPaused", ""),
                "Promoted": ("False", "NotPromoted", ""),
                "RolledBack": ("False", "NotRolledBack", ""),
                "Ready": ("False", "Promoting", "registering models:/m/2"),
            },
        ),
        (
            at(3, weight=0, phase="Promoted"),
            "",
            {
                "Progressing": ("False", "Promoted", "the canary is the new stable"),
                "Paused": ("False", "NotPaused", ""),
                "Promoted": ("True", "Promoted", ""),
                "RolledBack": ("False", "NotRolledBack", ""),
                "Ready": ("True", "Promoted", "the canary is the new stable"),
            },
        ),
        (
            at(3, weight=0, phase="Promoted"),
            "models:/m/2 is stable",
            {
                "Progressing": ("False", "Promoted", "models:/m/2 is stable"),
                "Paused": ("False", "NotPaused", ""),
                "Promoted": ("True", "Promoted", ""),
                "RolledBack": ("False", "NotRolledBack", ""),
                "Ready": ("True", "Promoted", "models:/m/2 is stable"),
            },
        ),
        (
            at(2, weight=0, phase="RolledBack"),
            "metric m failed 3 times",
            {
                "Progressing": ("False", "RolledBack", "metric m failed 3 times"),
                "Paused": ("False", "NotPaused", ""),
                "Promoted": ("False", "NotPromoted", ""),
                "RolledBack": ("True", "AnalysisFailed", "metric m failed 3 times"),
                "Ready": ("False", "RolledBack", "metric m failed 3 times"),
            },
        ),
        (
            at(2, weight=0, phase="RolledBack"),
            "aborted by request",
            {
                "Progressing": ("False", "RolledBack", "aborted by request"),
                "Paused": ("False", "NotPaused", ""),
                "Promoted": ("False", "NotPromoted", ""),
                "RolledBack": ("True", "Aborted", "aborted by request"),
                "Ready": ("False", "RolledBack", "aborted by request"),
            },
        ),
        (
            CanaryRolloutStatus(),
            "",
            {
                "Progressing": ("True", "StepInProgress", "step 1/3, canary weight 0%"),
                "Paused": ("False", "NotPaused", ""),
                "Promoted": ("False", "NotPromoted", ""),
                "RolledBack": ("False", "NotRolledBack", ""),
                "Ready": ("False", "Pending", "step 1/3, canary weight 0%"),
            },
        ),
    ],
)
def test_the_five_conditions_say_where_the_rollout_is(
    status: CanaryRolloutStatus, detail: str, expected: dict[str, tuple[str, str, str]]
) -> None:
    assert conditions(status, detail) == expected


def test_a_waiting_rollout_says_what_it_waits_for() -> None:
    waiting = conditions(CanaryRolloutStatus(phase="Waiting"), "target llama not found")
    assert waiting["Progressing"] == ("False", "Waiting", "target llama not found")
    held = conditions(CanaryRolloutStatus(phase="Waiting"), "another rollout", waiting_reason="Superseded")
    assert held["Progressing"] == ("False", "Superseded", "another rollout")


def test_conditions_carry_the_generation_and_time_and_keep_earlier_transitions() -> None:
    first = conditions_for(at(0, phase="Progressing"), STEPS, 3, "", NOW)
    assert {(c["observedGeneration"], c["lastTransitionTime"]) for c in first} == {(3, NOW)}
    status = at(0, phase="Progressing", conditions=first)
    later = conditions_for(status, STEPS, 4, "", "2026-01-01T12:05:00Z")
    progressing = next(c for c in later if c["type"] == "Progressing")
    assert (progressing["observedGeneration"], progressing["lastTransitionTime"]) == (4, NOW)
