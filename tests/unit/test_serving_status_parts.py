"""The pieces ``desired_status`` and ``pod_problem`` are made of, each alone: the replica counts and
pod findings they read, and the one decision per condition, at the edges the whole-status tests
do not reach."""

from __future__ import annotations

from typing import Any

import pytest

from llmops_operator import names
from llmops_operator.serving_status import (
    ConditionState,
    Replicas,
    degraded_state,
    pod_findings,
    progressing_state,
    ready_state,
    replicas_of,
    waiting_for_model,
)

RESOLVED = ConditionState("True", names.RESOLVED, "models:/llama@champion is version 7")
DOWN = ConditionState("False", names.REGISTRY_UNAVAILABLE, "MLflow at http://m is unreachable")
LOADING = ConditionState("True", names.MODEL_LOADING, "1 of 2 pods are loading the model")
CRASHING = ConditionState("True", names.CRASH_LOOPING, "container vllm of pod a exited (Error)")


def replicas(
    desired: int = 2, ready: int = 2, updated: int = 2, total: int = 2, *, latest: bool = True
) -> Replicas:
    return Replicas(desired, ready, updated, total, seen_latest=latest)


def test_no_deployment_has_no_replicas_and_is_not_rolled_out() -> None:
    counted = replicas_of(None, 3)
    assert counted == Replicas(3, 0, 0, 0, seen_latest=False)
    assert not counted.rolled_out


@pytest.mark.parametrize(("spec", "desired"), [({"replicas": 5}, 5), ({}, 2), ({"replicas": 0}, 0)])
def test_the_deployments_own_replicas_when_set_are_the_desired_count(
    spec: dict[str, Any], desired: int
) -> None:
    deployment = {"metadata": {"generation": 4}, "spec": spec, "status": {"observedGeneration": 3}}
    assert replicas_of(deployment, 2) == Replicas(desired, 0, 0, 0, seen_latest=False)


def test_rolled_out_needs_the_latest_spec_seen_as_well_as_the_counts() -> None:
    assert replicas().rolled_out
    assert not replicas(latest=False).rolled_out
    assert not replicas(desired=0).rolled_out  # two replicas still run where none are wanted


def test_an_unresolved_model_of_unknown_status_is_still_why_it_waits() -> None:
    unknown = ConditionState("Unknown", names.REGISTRY_UNAVAILABLE, "")
    assert waiting_for_model(unknown) == (
        ConditionState("False", names.REGISTRY_UNAVAILABLE, "the Deployment does not exist yet"),
        ConditionState(
            "True", names.REGISTRY_UNAVAILABLE, "waiting for the model before creating the Deployment"
        ),
    )


def test_more_ready_replicas_than_wanted_is_available() -> None:
    assert ready_state(replicas(ready=3), None, "http://e") == ConditionState(
        "True", names.AVAILABLE, "3/2 replicas ready at http://e"
    )


def test_a_pod_problem_without_a_message_still_says_replicas_are_starting() -> None:
    silent = ConditionState("True", names.UNSCHEDULABLE, "")
    assert ready_state(replicas(ready=1), silent, "http://e") == ConditionState(
        "False", names.UNSCHEDULABLE, "1/2 replicas ready; replicas are starting"
    )


def test_a_completed_rollout_is_complete_whatever_the_pods_say() -> None:
    assert progressing_state(replicas(), CRASHING) == ConditionState(
        "False", names.ROLLOUT_COMPLETE, "2 replicas up to date"
    )
    assert progressing_state(replicas(updated=1), CRASHING) == ConditionState(
        "True", names.CRASH_LOOPING, "1/2 replicas updated"
    )


@pytest.mark.parametrize(
    ("problem", "model_resolved", "deployed", "degraded"),
    [
        (CRASHING, DOWN, True, CRASHING),  # a failing pod before a registry outage
        (
            LOADING,
            DOWN,
            True,
            ConditionState(
                "True",
                names.REGISTRY_UNAVAILABLE,
                "serving the last resolved model; MLflow at http://m is unreachable",
            ),
        ),
        (LOADING, RESOLVED, True, ConditionState("False", names.AS_EXPECTED, "")),  # loading is no failure
        (None, DOWN, False, ConditionState("False", names.AS_EXPECTED, "")),  # nothing served yet
        (
            None,
            ConditionState("Unknown", names.REGISTRY_UNAVAILABLE, "?"),
            True,
            ConditionState("False", names.AS_EXPECTED, ""),
        ),
    ],
)
def test_degraded_is_a_failing_pod_first_then_a_registry_lost_while_serving(
    problem: ConditionState | None, model_resolved: ConditionState, deployed: bool, degraded: ConditionState
) -> None:
    assert degraded_state(problem, model_resolved, deployed) == degraded


def test_an_unplaced_pod_is_judged_by_its_scheduling_alone_and_init_containers_come_first() -> None:
    scheduled = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "no nodes"}
    failed = {"name": "vllm", "state": {"terminated": {"exitCode": 1}}}
    unplaced = {
        "metadata": {"name": "a"},
        "status": {"conditions": [scheduled], "containerStatuses": [failed]},
    }
    assert pod_findings(unplaced) == [(names.UNSCHEDULABLE, "pod a cannot be scheduled: no nodes")]
    pulling = {"name": "fetch", "image": "x:1", "state": {"waiting": {"reason": "ErrImagePull"}}}
    both = {
        "metadata": {"name": "b"},
        "status": {"containerStatuses": [failed], "initContainerStatuses": [pulling]},
    }
    assert pod_findings(both) == [
        (names.IMAGE_PULL_FAILED, "pod b cannot pull x:1"),
        (names.CRASH_LOOPING, "container vllm of pod b exited (an error, exit code 1)"),
    ]
