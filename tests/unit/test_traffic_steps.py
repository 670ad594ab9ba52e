"""setMirror, setHeaderRoute and experiment steps in the step machine, and the shadow analysis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from llmops_operator.api.canaryrollout import CanaryRolloutSpec, CanaryRolloutStatus, ExperimentResult
from llmops_operator.rollout.analysis import applicable, metrics_of
from llmops_operator.rollout.progress import advance, canary_share, measurement_due, plan, start_step

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
RATE = {"successes": "sum(a)", "trials": "sum(b)"}


def spec(steps: list[dict[str, object]]) -> CanaryRolloutSpec:
    return CanaryRolloutSpec.model_validate(
        {
            "targetRef": {"name": "llama"},
            "canary": {"model": {"uri": "models:/m/2"}},
            "steps": steps,
            "trafficRouting": {"gatewayAPI": {"httpRoute": "chat"}},
        }
    )


def verify(status: CanaryRolloutStatus, moment: datetime) -> None:
    status.weight_verified_at = moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_mirror_step_waits_for_its_route_and_lets_the_analysis_judge_shadow_traffic() -> None:
    rollout = spec([{"setMirror": {"percent": 30}}, {"analysis": {}}])
    steps, status = plan(rollout), CanaryRolloutStatus()
    start_step(status, 0, T0)
    assert advance(status, steps, rollout, T0) is False
    assert (status.mirror_percent, status.canary_weight, status.weight_verified_at) == (30, 0, None)
    assert canary_share(status) == 30  # canary pods sized for the mirrored share
    verify(status, T0)
    assert advance(status, steps, rollout, T0) is False and status.current_step_index == 1
    assert measurement_due(status, rollout.analysis, T0 + timedelta(minutes=2))


def test_shadow_analysis_compares_every_metric_with_the_stable_and_adds_response_length() -> None:
    metrics = metrics_of(spec([]).analysis)
    shadow = applicable(metrics, canary_weight=0, mirror_percent=50)
    defaults = ["error-rate", "latency-p95", "client-error-share", "truncation-share"]
    assert [m.name for m in shadow] == [*defaults, "response-length"]
    assert all(m.baseline is not None for m in shadow)
    assert shadow[-1].baseline is not None and shadow[-1].baseline.direction == "higherIsBetter"
    assert applicable(metrics, canary_weight=10, mirror_percent=50) == metrics  # users' traffic: as before


def test_a_header_route_step_needs_one_canary_pod_and_its_route_verified() -> None:
    rollout = spec([{"setHeaderRoute": {"name": "X-Experiment-ID", "value": "b"}}, {"pause": {}}])
    steps, status = plan(rollout), CanaryRolloutStatus()
    start_step(status, 0, T0)
    advance(status, steps, rollout, T0)
    assert status.header_route is not None and status.header_route.name == "X-Experiment-ID"
    assert canary_share(status) == 1 and status.current_step_index == 0
    verify(status, T0)
    advance(status, steps, rollout, T0)
    assert status.current_step_index == 1


def test_an_experiment_sets_its_split_starts_once_verified_and_ends_when_decided() -> None:
    experiment = {"duration": "10m", "weight": 30, "metrics": [{"name": "feedback", "rate": RATE}]}
    rollout = spec([{"experiment": experiment}, {"setWeight": 100}])
    steps, status = plan(rollout), CanaryRolloutStatus()
    start_step(status, 0, T0)
    advance(status, steps, rollout, T0)
    assert (status.canary_weight, status.experiment_started_at) == (30, None)
    verify(status, T0)
    advance(status, steps, rollout, T0)
    assert status.experiment_started_at is not None and status.current_step_index == 0
    status.canary_weight = 55  # a bandit moved it: the step does not put it back
    status.weight_verified_at = None
    advance(status, steps, rollout, T0)
    assert status.canary_weight == 55
    status.experiments = [ExperimentResult(step=0, metric="feedback", decision="NoDifference")]
    verify(status, T0)
    advance(status, steps, rollout, T0)
    assert status.current_step_index == 1 and status.experiment_started_at is None
