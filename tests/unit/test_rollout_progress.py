"""The rollout's step machine, counters and replica arithmetic, without a cluster."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmops_operator.api.canaryrollout import AnalysisSpec, CanaryRolloutSpec, CanaryRolloutStatus
from llmops_operator.rollout.analysis import Measurement
from llmops_operator.rollout.canary import merged
from llmops_operator.rollout.gates import request_of
from llmops_operator.rollout.progress import (
    DEFAULT_STEPS,
    Step,
    advance,
    canary_replicas,
    conditions_for,
    measurement_due,
    plan,
    record,
    stable_replicas,
    start_step,
)
from llmops_operator.routing.base import RouteNotUsable
from llmops_operator.routing.gateway_api import route_weight, weighted_rules

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def spec(**fields: object) -> CanaryRolloutSpec:
    base: dict[str, object] = {"targetRef": {"name": "llama"}, "canary": {"model": {"uri": "models:/m/2"}}}
    base.update(fields)
    return CanaryRolloutSpec.model_validate(base)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_default_steps_and_a_final_analysis_always() -> None:
    assert plan(spec()) == list(DEFAULT_STEPS)
    steps = plan(spec(steps=[{"setWeight": 20}, {"pause": {"duration": "1m"}}, {"setWeight": 100}]))
    assert steps == [
        Step("setWeight", weight=20),
        Step("pause", duration_seconds=60),
        Step("setWeight", weight=100),
        Step("analysis"),
    ]
    assert plan(spec(steps=[{"pause": {}}]))[0].duration_seconds is None


DEFAULT_NAMES = ("error-rate", "latency-p95", "client-error-share", "truncation-share")


def successes(n: int, *names: str) -> list[Measurement]:
    return [Measurement(name, "Successful", "1", "<= 2") for name in names for _ in range(n)]


def test_failures_beyond_the_limit_roll_back_naming_the_metric() -> None:
    status, analysis = CanaryRolloutStatus(), AnalysisSpec(failure_limit=1)
    bad = Measurement("latency", "Failed", "912", "<= 400", "912 is outside <= 400")
    assert record(status, [bad], analysis, T0).rollback is None
    verdict = record(status, [bad], analysis, T0)
    assert verdict.rollback is not None
    assert "latency" in verdict.rollback and "912" in verdict.rollback and "<= 400" in verdict.rollback


def test_no_data_pauses_and_never_rolls_back() -> None:
    status, analysis = CanaryRolloutStatus(), AnalysisSpec(inconclusive_limit=2, failure_limit=0)
    empty = Measurement("error-rate", "Inconclusive", "", "<= 1", "the query returned no data")
    verdicts = [record(status, [empty], analysis, T0) for _ in range(10)]
    assert all(v.rollback is None for v in verdicts)
    assert [v.pause for v in verdicts[:3]] == ["", "", "NoData"]
    assert "no data" in verdicts[-1].pause_message
    # Data comes back: the pause lifts by itself.
    assert record(status, successes(1, "error-rate"), analysis, T0).pause == ""


def test_errors_pause_as_metrics_unavailable_and_resume() -> None:
    status, analysis = CanaryRolloutStatus(), AnalysisSpec(consecutive_error_limit=1)
    down = Measurement("latency", "Error", "", "<= 400", "Prometheus at http://p is unreachable")
    assert record(status, [down], analysis, T0).pause == ""
    verdict = record(status, [down], analysis, T0)
    assert verdict.pause == "MetricsUnavailable" and "unreachable" in verdict.pause_message
    assert record(status, successes(1, "latency"), analysis, T0).pause == ""
    (tally,) = status.tallies
    assert (tally.errors, tally.consecutive_errors, tally.successful) == (2, 0, 1)


def test_latest_measurements_are_kept_per_metric() -> None:
    status = CanaryRolloutStatus()
    record(status, successes(1, "a", "b"), AnalysisSpec(), T0)
    record(status, [Measurement("a", "Failed", "9", "<= 2")], AnalysisSpec(), T0 + timedelta(seconds=5))
    latest = {m.metric: (m.phase, m.value, m.measured_at) for m in status.measurements}
    assert latest == {
        "a": ("Failed", "9", "2026-01-01T12:00:05Z"),
        "b": ("Successful", "1", "2026-01-01T12:00:00Z"),
    }


def test_steps_advance_only_when_their_work_is_done() -> None:
    rollout = spec(
        steps=[{"setWeight": 30}, {"pause": {"duration": "10s"}}, {"analysis": {}}],
        analysis={"minSuccessfulMeasurements": 2},
    )
    steps, status = plan(rollout), CanaryRolloutStatus()
    start_step(status, 0, T0)
    assert advance(status, steps, rollout, T0) is False
    assert (status.canary_weight, status.stable_weight, status.current_step_index) == (30, 70, 0)
    assert advance(status, steps, rollout, T0) is False  # not verified yet
    status.weight_verified_at = stamp(T0)
    assert advance(status, steps, rollout, T0) is False
    assert status.current_step_index == 1  # the pause started
    assert advance(status, steps, rollout, T0 + timedelta(seconds=9)) is False
    assert advance(status, steps, rollout, T0 + timedelta(seconds=10)) is False
    assert status.current_step_index == 2
    record(status, successes(1, *DEFAULT_NAMES), rollout.analysis, T0)
    assert advance(status, steps, rollout, T0 + timedelta(seconds=20)) is False
    record(status, successes(1, *DEFAULT_NAMES), rollout.analysis, T0)
    assert advance(status, steps, rollout, T0 + timedelta(seconds=30)) is True


def test_successes_count_per_step_and_pauses_hold_everything() -> None:
    rollout = spec(steps=[{"setWeight": 10}, {"analysis": {}}, {"setWeight": 50}, {"analysis": {}}])
    steps, status = plan(rollout), CanaryRolloutStatus(canary_weight=10, weight_verified_at=stamp(T0))
    start_step(status, 1, T0)
    record(status, successes(1, *DEFAULT_NAMES), rollout.analysis, T0)
    status.paused_reason = "Manual"
    assert advance(status, steps, rollout, T0) is False and status.current_step_index == 1
    status.paused_reason = ""
    advance(status, steps, rollout, T0)
    assert (status.current_step_index, status.canary_weight) == (2, 50)
    assert all(t.successful == 0 for t in status.tallies)  # the new weight must earn its own
    assert status.weight_verified_at is None


def test_indefinite_pause_waits_for_a_promote() -> None:
    rollout = spec(steps=[{"setWeight": 10}, {"pause": {}}])
    steps, status = plan(rollout), CanaryRolloutStatus(canary_weight=10, weight_verified_at=stamp(T0))
    start_step(status, 1, T0)
    assert advance(status, steps, rollout, T0 + timedelta(days=3)) is False
    assert status.current_step_index == 1
    status.phase = "Progressing"
    conditions = {c["type"]: c for c in conditions_for(status, steps, 1, "", stamp(T0))}
    assert conditions["Paused"]["reason"] == "WaitingForPromote"
    assert "promote" in conditions["Paused"]["message"]


def test_measurements_wait_a_whole_interval_at_the_new_weight() -> None:
    analysis = AnalysisSpec(interval="30s")
    status = CanaryRolloutStatus(canary_weight=20)
    assert not measurement_due(status, analysis, T0)  # weight not verified
    status.weight_verified_at = stamp(T0)
    assert not measurement_due(status, analysis, T0 + timedelta(seconds=29))
    assert measurement_due(status, analysis, T0 + timedelta(seconds=30))
    status.last_measured_at = stamp(T0 + timedelta(seconds=30))
    assert not measurement_due(status, analysis, T0 + timedelta(seconds=45))
    assert not measurement_due(
        CanaryRolloutStatus(canary_weight=0, weight_verified_at=stamp(T0)), analysis, T0
    )


def test_conditions_tell_each_outcome() -> None:
    steps = plan(spec())
    for phase, paused, expected in [
        ("Progressing", "", {"Progressing": "True", "Paused": "False", "Ready": "False"}),
        ("Paused", "NoData", {"Progressing": "False", "Paused": "True", "RolledBack": "False"}),
        ("Promoted", "", {"Promoted": "True", "Ready": "True", "Progressing": "False"}),
        ("RolledBack", "", {"RolledBack": "True", "Promoted": "False", "Ready": "False"}),
    ]:
        status = CanaryRolloutStatus(phase=phase, paused_reason=paused)
        conditions = {c["type"]: c for c in conditions_for(status, steps, 3, "detail", stamp(T0))}
        assert set(conditions) == {"Progressing", "Paused", "Promoted", "RolledBack", "Ready"}
        assert {k: conditions[k]["status"] for k in expected} == expected
        assert all(c["observedGeneration"] == 3 for c in conditions.values())
    aborted = CanaryRolloutStatus(phase="RolledBack")
    conditions = {c["type"]: c for c in conditions_for(aborted, steps, 1, "aborted by request", stamp(T0))}
    assert conditions["RolledBack"]["reason"] == "Aborted"


@given(full=st.integers(1, 16), weight=st.integers(0, 100), data=st.data())
def test_replica_ratio_never_drops_below_capacity(full: int, weight: int, data: st.DataObject) -> None:
    """Whatever the canary's progress, stable plus Ready canary pods cover the full size, and the
    pair never runs more pods than the full size plus the canary's share."""
    canary = canary_replicas(full, weight)
    ready = data.draw(st.integers(0, canary))
    stable = stable_replicas(full, weight, ready)
    assert stable + ready >= full
    assert stable <= full
    assert stable + canary <= full + canary
    if ready == canary:
        assert stable == full - full * weight // 100  # the weight decides once the canary is up


def test_replica_split_examples() -> None:
    assert [canary_replicas(4, w) for w in (0, 10, 25, 50, 100)] == [0, 1, 1, 2, 4]
    assert stable_replicas(4, 50, canary_ready=0) == 4
    assert stable_replicas(4, 50, canary_ready=2) == 2
    assert stable_replicas(4, 100, canary_ready=4) == 0
    assert stable_replicas(1, 10, canary_ready=1) == 1  # one replica: never trade it for a 10% canary


ROUTE = {
    "metadata": {"name": "chat"},
    "spec": {
        "rules": [{"backendRefs": [{"name": "llama", "port": 8000}]}, {"backendRefs": [{"name": "other"}]}]
    },
}


def test_gateway_weights_touch_only_the_stable_rules() -> None:
    updated = weighted_rules(ROUTE, "llama", "llama-canary", 30)
    assert updated["spec"]["rules"][0]["backendRefs"] == [
        {"name": "llama", "port": 8000, "weight": 70},
        {"name": "llama-canary", "port": 8000, "weight": 30},
    ]
    assert updated["spec"]["rules"][1] == ROUTE["spec"]["rules"][1]
    assert ROUTE["spec"]["rules"][0]["backendRefs"] == [{"name": "llama", "port": 8000}]  # not mutated
    assert route_weight(updated, "llama-canary") == 30
    assert route_weight(ROUTE, "llama-canary") is None
    with pytest.raises(RouteNotUsable, match="llama"):
        weighted_rules(
            {"metadata": {"name": "r"}, "spec": {"rules": [{"backendRefs": [{"name": "x"}]}]}},
            "llama",
            "c",
            5,
        )


def test_canary_spec_is_the_target_with_the_overlay() -> None:
    target = {"model": {"uri": "models:/m@champion", "followAlias": True}, "engine": {"extraArgs": ["--a"]}}
    overlay = {"model": {"uri": "models:/m/2"}, "engine": {"extraArgs": ["--b"]}}
    assert merged(target, overlay) == {
        "model": {"uri": "models:/m/2", "followAlias": True},
        "engine": {"extraArgs": ["--b"]},
    }
    assert target["model"]["uri"] == "models:/m@champion"


def test_manual_requests_are_read_from_the_annotation() -> None:
    assert request_of({"annotations": {"llmops.dev/request": "promote:1700000000"}}) == (
        "promote:1700000000",
        "promote",
    )
    assert request_of({"annotations": {"llmops.dev/request": "explode"}})[1] is None
    assert request_of({}) == ("", None)


def test_ended_rollouts_stop_costing_api_reads() -> None:
    from llmops_operator.rollout.gates import settled

    promoted = {"status": {"phase": "Promoted"}, "metadata": {}}
    assert settled(promoted, T0)
    retry = {"status": {"phase": "Promoted"}, "metadata": {"annotations": {"llmops.dev/request": "retry:1"}}}
    assert not settled(retry, T0)
    rolled_back = {
        "status": {"phase": "RolledBack", "finishedAt": stamp(T0)},
        "spec": {"scaleDownDelay": "30s"},
    }
    assert not settled(rolled_back, T0 + timedelta(seconds=60))  # the delayed scale-down may be pending
    assert settled(rolled_back, T0 + timedelta(seconds=91))
    assert not settled({"status": {"phase": "Progressing"}}, T0)


def test_a_pinned_canary_version_stops_following_the_alias() -> None:
    from llmops_operator.rollout.canary import canary_overlay

    rollout = spec()  # canary models:/m/2
    following = {"model": {"uri": "models:/m@champion", "followAlias": True}}
    assert canary_overlay(rollout, following) == {"model": {"uri": "models:/m/2", "followAlias": False}}
    assert canary_overlay(rollout, {"model": {"uri": "models:/m@champion"}}) == {
        "model": {"uri": "models:/m/2"}
    }
    engine_only = spec(canary={"engine": {"extraArgs": ["--enable-prefix-caching"]}})
    assert canary_overlay(engine_only, following) == {"engine": {"extraArgs": ["--enable-prefix-caching"]}}


def test_final_analysis_does_not_wait_for_a_baseline_that_cannot_exist() -> None:
    rollout = spec(
        steps=[{"setWeight": 100}, {"analysis": {}}],
        analysis={
            "metrics": [
                {"name": "errors", "preset": "errorRate"},
                {"name": "vs-stable", "preset": "e2eLatencyP95", "baseline": {}},
            ]
        },
    )
    steps = plan(rollout)
    status = CanaryRolloutStatus(canary_weight=100, weight_verified_at=stamp(T0))
    start_step(status, 1, T0)
    record(status, successes(1, "errors"), rollout.analysis, T0)
    assert advance(status, steps, rollout, T0) is True
