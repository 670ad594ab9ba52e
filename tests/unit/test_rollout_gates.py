"""Each gate of a CanaryRollout tick, on its own: what it lets through and what it stops, and why."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from llmops_operator.api.canaryrollout import CanaryRolloutSpec, CanaryRolloutStatus
from llmops_operator.rollout import gates, progress
from llmops_operator.rollout.gates import Fail, Pause, Proceed, Snapshot, Wait

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def rollout(
    name: str = "r", uid: str = "u-r", phase: str = "", created: str = "2026-01-01T10:00:00Z"
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ns", "uid": uid, "creationTimestamp": created},
        "spec": {"targetRef": {"name": "llama"}, "canary": {"engine": {"image": "vllm:new"}}},
        "status": {"phase": phase} if phase else {},
    }


def target(ready: bool = True, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "llama", "namespace": "ns", "generation": 1},
        "spec": {"model": {"uri": "hf://org/llama"}, "replicas": 2, **spec},
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def snapshot(
    *,
    body: dict[str, Any] | None = None,
    siblings: list[dict[str, Any]] | None = None,
    target_object: dict[str, Any] | None = None,
    shares_service: bool = True,
    phase: str = "",
    **spec: Any,
) -> Snapshot:
    body = body or rollout(phase=phase)
    rollout_spec = CanaryRolloutSpec.model_validate({**body["spec"], **spec})
    return Snapshot(
        rollout=body,
        spec=rollout_spec,
        status=CanaryRolloutStatus(phase=phase),
        siblings=siblings if siblings is not None else [body],
        target=target_object,
        shares_service=shares_service,
        now=T0,
        steps=progress.plan(rollout_spec),
    )


def test_the_running_rollout_of_a_target_goes_first_and_the_others_wait_naming_it() -> None:
    mine = rollout("late", "u-late", created="2026-01-01T11:00:00Z")
    running = rollout("early", "u-early", phase="Progressing", created="2026-01-01T11:30:00Z")
    assert gates.no_rival(snapshot(body=mine, siblings=[mine, running])) == Wait(
        "WaitingForRollout", "CanaryRollout early is already rolling out llama"
    )
    assert gates.no_rival(snapshot(body=running, siblings=[mine, running])) == Proceed()


def test_of_rollouts_not_yet_running_the_oldest_goes_first_and_ended_ones_do_not_count() -> None:
    old, new = rollout("old", "u-old", created="2026-01-01T09:00:00Z"), rollout("new", "u-new")
    ended = rollout("ended", "u-ended", phase="RolledBack", created="2026-01-01T08:00:00Z")
    assert isinstance(gates.no_rival(snapshot(body=new, siblings=[old, new, ended])), Wait)
    assert gates.no_rival(snapshot(body=old, siblings=[old, new, ended])) == Proceed()


def test_a_missing_target_waits_with_target_not_found() -> None:
    assert gates.target_found(snapshot(target_object=None)) == Wait(
        "TargetNotFound", "LLMDeployment llama not found"
    )
    assert gates.target_found(snapshot(target_object=target())) == Proceed()


def test_an_invalid_target_waits_with_its_own_reason_and_a_rollout_under_way_keeps_its_phase() -> None:
    broken = target(replicas=-1)
    before_start = gates.target_valid(snapshot(target_object=broken))
    assert isinstance(before_start, Wait) and before_start.reason == "InvalidTarget"
    assert before_start.message.startswith("LLMDeployment llama is invalid: ") and not before_start.keep_phase
    under_way = gates.target_valid(snapshot(target_object=broken, phase="Progressing"))
    assert isinstance(under_way, Wait) and under_way.keep_phase
    assert gates.target_valid(snapshot(target_object=target())) == Proceed()


def test_an_autoscaling_target_waits_only_under_replica_ratio_routing() -> None:
    autoscaled = target(autoscaling={"minReplicas": 1, "maxReplicas": 4, "target": "5"})
    stopped = gates.fixed_replicas(snapshot(target_object=autoscaled, shares_service=True))
    assert isinstance(stopped, Wait) and stopped.reason == "TargetAutoscales"
    assert "trafficRouting.gatewayAPI" in stopped.message
    assert gates.fixed_replicas(snapshot(target_object=autoscaled, shares_service=False)) == Proceed()
    assert gates.fixed_replicas(snapshot(target_object=target(), shares_service=True)) == Proceed()


def test_a_query_naming_an_unknown_variable_waits_with_invalid_analysis_naming_the_metric() -> None:
    bad = {"metrics": [{"name": "tokens", "query": "sum(x{pod=~'{{canary}}', zone='{{zone}}'})", "max": "1"}]}
    stopped = gates.analysis_valid(snapshot(target_object=target(), analysis=bad))
    assert isinstance(stopped, Wait) and stopped.reason == "InvalidAnalysis"
    assert "tokens" in stopped.message and "zone" in stopped.message
    assert gates.analysis_valid(snapshot(target_object=target())) == Proceed()


def test_a_rollout_starts_only_once_its_target_is_ready_and_one_under_way_does_not_ask_again() -> None:
    assert gates.target_ready(snapshot(target_object=target(ready=False))) == Wait(
        "WaitingForTarget", "waiting for LLMDeployment llama to be Ready"
    )
    assert gates.target_ready(snapshot(target_object=target(ready=True))) == Proceed()
    assert gates.target_ready(snapshot(target_object=target(ready=False), phase="Progressing")) == Proceed()


def test_first_stop_is_the_first_gate_in_order_that_stops() -> None:
    other = rollout("other", "u-other", phase="Progressing")
    mine = rollout()
    both = snapshot(body=mine, siblings=[mine, other], target_object=None)
    assert isinstance(gates.first_stop(both), Wait) and gates.first_stop(both).reason == "WaitingForRollout"
    assert gates.first_stop(snapshot(target_object=target())) == Proceed()


def with_request(verb: str, handled: str = "") -> tuple[CanaryRolloutStatus, dict[str, Any]]:
    body = rollout()
    body["metadata"]["annotations"] = {"llmops.dev/request": verb}
    return CanaryRolloutStatus(phase="Progressing", handled_request=handled), body


def test_a_request_is_carried_out_once() -> None:
    status, body = with_request("pause:1")
    steps = progress.plan(CanaryRolloutSpec.model_validate(body["spec"]))
    assert gates.apply_request(status, body, steps, T0) == (
        Proceed(),
        [("Normal", "Paused", "paused by request")],
    )
    assert status.paused_reason == "Manual" and status.handled_request == "pause:1"
    status.paused_reason = ""
    assert gates.apply_request(status, body, steps, T0) == (Proceed(), [])  # the same nonce again
    assert status.paused_reason == ""


def test_abort_fails_the_rollout_and_promote_skips_the_remaining_steps() -> None:
    status, body = with_request("abort:1")
    steps = progress.plan(CanaryRolloutSpec.model_validate(body["spec"]))
    assert gates.apply_request(status, body, steps, T0) == (Fail("aborted by request"), [])
    status, body = with_request("promote:2")
    outcome, said = gates.apply_request(status, body, steps, T0)
    assert outcome == Proceed() and status.phase == "Promoting" and said[0][1] == "Promote"


def test_retry_starts_a_rolled_back_rollout_over_and_means_nothing_to_a_running_one() -> None:
    status, body = with_request("retry:1")
    status.phase, status.canary_weight, status.current_step_index = "RolledBack", 0, 3
    steps = progress.plan(CanaryRolloutSpec.model_validate(body["spec"]))
    outcome, said = gates.apply_request(status, body, steps, T0)
    assert outcome == Proceed() and said[0][1] == "Retry"
    assert (status.phase, status.current_step_index, status.handled_request) == ("", 0, "retry:1")
    running, body = with_request("retry:2")
    assert gates.apply_request(running, body, steps, T0) == (Proceed(), [])
    assert running.phase == "Progressing"


@pytest.mark.parametrize(
    ("before", "result", "outcome", "events"),
    [
        ("", progress.RoundOutcome(rollback="metric x failed"), Fail("metric x failed"), []),
        (
            "",
            progress.RoundOutcome(pause="NoData", pause_message="x: no data"),
            Pause("NoData", "x: no data"),
            ["NoData"],
        ),
        (
            "NoData",
            progress.RoundOutcome(pause="NoData", pause_message="x: no data"),
            Pause("NoData", "x: no data"),
            [],
        ),
        ("Manual", progress.RoundOutcome(pause="NoData", pause_message="m"), Proceed(), []),
        ("MetricsUnavailable", progress.RoundOutcome(), Proceed(), ["Resumed"]),
        ("", progress.RoundOutcome(), Proceed(), []),
    ],
)
def test_a_measurement_round_rolls_back_pauses_once_or_lifts_an_automatic_pause(
    before: str, result: progress.RoundOutcome, outcome: gates.Outcome, events: list[str]
) -> None:
    decided, said = gates.judge_round(before, result)
    assert decided == outcome and [reason for _, reason, _ in said] == events


def test_a_manual_pause_outlives_a_round_and_an_automatic_one_lifts() -> None:
    assert gates.paused_after("Manual") == "Manual"
    assert gates.paused_after("NoData") == "" and gates.paused_after("MetricsUnavailable") == ""


def test_promotion_waits_until_the_stable_runs_the_canary_version_on_every_replica() -> None:
    stable = target()
    stable["status"].update({"observedGeneration": 1, "readyReplicas": 2, "model": {"version": "7"}})
    deployment = {"status": {"updatedReplicas": 2}}
    assert gates.stable_caught_up(stable, deployment, 2, "7") == Proceed()
    waiting = gates.stable_caught_up(stable, {"status": {"updatedReplicas": 1}}, 2, "7")
    assert isinstance(waiting, Wait) and waiting.keep_phase
    assert waiting.message == "waiting for llama to run the canary's version on 2 ready replicas"
    assert isinstance(gates.stable_caught_up(stable, deployment, 2, "8"), Wait)  # still the old version


def test_a_paused_measurement_holds_the_step_before_an_undecided_experiment() -> None:
    paused = gates.Pause("NoData", "no samples for ttft")
    undecided = gates.Wait("NoData", "experiment undecided: 3 of 20 samples", keep_phase=True)
    assert gates.holding(paused, undecided) == "no samples for ttft"
    assert gates.holding(gates.PROCEED, undecided) == "experiment undecided: 3 of 20 samples"
    assert gates.holding(gates.Pause("NoData", ""), undecided) == "experiment undecided: 3 of 20 samples"
    assert gates.holding(gates.PROCEED, gates.PROCEED) == ""
