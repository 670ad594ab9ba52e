"""An LLMDeployment's status at the edges: which pod problem wins, what each message says, and
the conditions before the Deployment exists, at zero replicas and mid-rollout."""

from __future__ import annotations

from typing import Any

import pytest

from llmops_operator.serving_status import ConditionState, desired_status, pod_problem

RESOLVED = ConditionState("True", "Resolved", "models:/llama@champion is version 7")
NOW = "2026-01-01T12:00:00Z"


def pod(name: str, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "status": status}


def unschedulable(name: str, message: str) -> dict[str, Any]:
    scheduled = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}
    return pod(name, conditions=[scheduled])


def waiting(name: str, reason: str, **container: Any) -> dict[str, Any]:
    return pod(
        name, containerStatuses=[{"name": "vllm", "state": {"waiting": {"reason": reason}}, **container}]
    )


def test_an_unschedulable_pod_without_a_gpu_shortage_is_unschedulable() -> None:
    assert pod_problem([unschedulable("a", "0/3 nodes match the node selector")]) == ConditionState(
        "True", "Unschedulable", "pod a cannot be scheduled: 0/3 nodes match the node selector"
    )


def test_a_pod_still_being_scheduled_is_no_problem() -> None:
    scheduling = {"type": "PodScheduled", "status": "False", "reason": "SchedulerError", "message": "x"}
    assert pod_problem([pod("a", conditions=[scheduling])]) is None
    scheduled = {"type": "PodScheduled", "status": "True", "reason": "Unschedulable"}
    assert pod_problem([pod("a", conditions=[scheduled])]) is None


def test_every_pod_is_examined_and_the_most_serious_problem_wins() -> None:
    pods = [unschedulable("a", "no nodes"), waiting("b", "CrashLoopBackOff", restartCount=4)]
    assert pod_problem(pods) == ConditionState(
        "True", "CrashLooping", "container vllm of pod b keeps exiting (an error); 4 restarts"
    )


def test_a_crash_looping_init_container_is_named_with_its_last_exit_reason() -> None:
    init = {
        "name": "fetch-model",
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"reason": "OOMKilled"}},
    }
    assert pod_problem([pod("a", initContainerStatuses=[init])]) == ConditionState(
        "True", "CrashLooping", "container fetch-model of pod a keeps exiting (OOMKilled); 0 restarts"
    )


# What the kubelet writes with terminationMessagePolicy FallbackToLogsOnError when vLLM 0.32 is
# given a flag it does not know: the tail of its log, argparse's usage and error (exit code 2).
ARGPARSE_EXIT = {
    "exitCode": 2,
    "reason": "Error",
    "message": "usage: vllm serve [model_tag] [options]\n"
    "vllm serve: error: unrecognized arguments: --no-such-flag\n\n",
}


def test_a_server_that_exits_at_start_is_quoted_from_its_termination_message() -> None:
    looping = {
        "name": "vllm",
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": ARGPARSE_EXIT},
        "restartCount": 3,
    }
    assert pod_problem([pod("a", containerStatuses=[looping])]) == ConditionState(
        "True",
        "CrashLooping",
        "container vllm of pod a keeps exiting (Error, exit code 2); 3 restarts: "
        "vllm serve: error: unrecognized arguments: --no-such-flag",
    )
    exited = {"name": "vllm", "state": {"terminated": ARGPARSE_EXIT}, "restartCount": 0}
    assert pod_problem([pod("a", containerStatuses=[exited])]) == ConditionState(
        "True",
        "CrashLooping",
        "container vllm of pod a exited (Error, exit code 2): "
        "vllm serve: error: unrecognized arguments: --no-such-flag",
    )


def test_a_clean_exit_is_no_problem_and_a_long_message_is_cut() -> None:
    done = {"name": "vllm", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
    assert pod_problem([pod("a", containerStatuses=[done])]) is None
    long = {"exitCode": 1, "reason": "Error", "message": "x" * 1000}
    problem = pod_problem([pod("a", containerStatuses=[{"name": "vllm", "state": {"terminated": long}}])])
    assert problem is not None and problem.message.endswith(": " + "x" * 300 + "...")


@pytest.mark.parametrize("reason", ["ImagePullBackOff", "ErrImagePull", "InvalidImageName"])
def test_each_image_pull_failure_names_the_image(reason: str) -> None:
    assert pod_problem([waiting("a", reason, image="vllm/vllm-openai:nope")]) == ConditionState(
        "True", "ImagePullFailed", "pod a cannot pull vllm/vllm-openai:nope"
    )
    assert pod_problem([waiting("a", reason)]) == ConditionState(
        "True", "ImagePullFailed", "pod a cannot pull "
    )


def loading(name: str, container: str = "vllm", started: bool | None = False) -> dict[str, Any]:
    status: dict[str, Any] = {"name": container, "state": {"running": {}}}
    if started is not None:
        status["started"] = started
    return pod(name, containerStatuses=[status])


def test_model_loading_counts_only_running_servers_not_yet_started() -> None:
    pods = [loading("a"), loading("b"), loading("c", started=True), loading("d", container="sidecar")]
    assert pod_problem(pods) == ConditionState("True", "ModelLoading", "2 of 4 pods are loading the model")
    assert pod_problem([loading("a", started=None)]) is None  # no startup probe state reported yet
    assert (
        pod_problem([pod("a", containerStatuses=[{"name": "vllm", "state": {}, "started": False}])]) is None
    )


def test_pods_being_deleted_are_not_counted() -> None:
    leaving = loading("old")
    leaving["metadata"]["deletionTimestamp"] = NOW
    assert pod_problem([leaving, loading("new")]) == ConditionState(
        "True", "ModelLoading", "1 of 1 pods are loading the model"
    )


def status_of(**overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "generation": 2,
        "current": {},
        "model_resolved": RESOLVED,
        "model": {"uri": "models:/llama/7"},
        "deployment": None,
        "pods": [],
        "desired_replicas": 2,
        "selector": "app=llama",
        "endpoint": "http://llama.ns:8000",
        "now": NOW,
    }
    arguments.update(overrides)
    return desired_status(**arguments)


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    return {c["type"]: (c["status"], c["reason"], c["message"]) for c in status["conditions"]}


def test_before_the_deployment_exists_it_is_being_created() -> None:
    status = status_of()
    assert conditions(status) == {
        "ModelResolved": ("True", "Resolved", "models:/llama@champion is version 7"),
        "Ready": ("False", "Creating", "the Deployment does not exist yet"),
        "Progressing": ("True", "Creating", "waiting for the model before creating the Deployment"),
        "Degraded": ("False", "AsExpected", ""),
    }
    assert {key: value for key, value in status.items() if key != "conditions"} == {
        "observedGeneration": 2,
        "replicas": 0,
        "readyReplicas": 0,
        "selector": "app=llama",
        "endpoint": "http://llama.ns:8000",
        "model": {"uri": "models:/llama/7"},
    }
    assert {(c["observedGeneration"], c["lastTransitionTime"]) for c in status["conditions"]} == {(2, NOW)}


def test_an_unresolved_model_before_the_deployment_is_why_it_waits_not_a_degradation() -> None:
    unresolved = ConditionState("False", "ModelNotFound", "no version of models:/llama@champion")
    status = status_of(model_resolved=unresolved, model=None)
    assert conditions(status) == {
        "ModelResolved": ("False", "ModelNotFound", "no version of models:/llama@champion"),
        "Ready": ("False", "ModelNotFound", "no version of models:/llama@champion"),
        "Progressing": ("True", "ModelNotFound", "waiting for the model before creating the Deployment"),
        "Degraded": ("False", "AsExpected", ""),
    }
    assert "model" not in status


def deployment(**status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "llama", "generation": 3}, "spec": {"replicas": 2}, "status": status}


def test_a_deployment_scaled_to_zero_is_not_ready_and_says_why() -> None:
    scaled = {"metadata": {"name": "llama"}, "spec": {"replicas": 0}, "status": {}}
    assert conditions(status_of(deployment=scaled))["Ready"] == ("False", "ScaledToZero", "replicas is 0")


def test_a_deployment_without_a_status_yet_is_starting() -> None:
    assert conditions(status_of(deployment=deployment())) == {
        "ModelResolved": ("True", "Resolved", "models:/llama@champion is version 7"),
        "Ready": ("False", "Pending", "0/2 replicas ready; replicas are starting"),
        "Progressing": ("True", "RollingOut", "0/2 replicas updated"),
        "Degraded": ("False", "AsExpected", ""),
    }


def complete(**changes: int) -> dict[str, Any]:
    fields = {"observedGeneration": 3, "replicas": 2, "readyReplicas": 2, "updatedReplicas": 2}
    return deployment(**{**fields, **changes})


@pytest.mark.parametrize(
    ("changes", "progressing"),
    [
        ({}, ("False", "RolloutComplete", "2 replicas up to date")),
        ({"observedGeneration": 4}, ("False", "RolloutComplete", "2 replicas up to date")),
        ({"observedGeneration": 2}, ("True", "RollingOut", "2/2 replicas updated")),
        ({"updatedReplicas": 1}, ("True", "RollingOut", "1/2 replicas updated")),
        ({"replicas": 3}, ("True", "RollingOut", "2/2 replicas updated")),  # an old pod still runs
        ({"readyReplicas": 1}, ("True", "RollingOut", "2/2 replicas updated")),
    ],
)
def test_a_rollout_is_complete_only_when_every_replica_is_current_and_ready(
    changes: dict[str, int], progressing: tuple[str, str, str]
) -> None:
    assert conditions(status_of(deployment=complete(**changes)))["Progressing"] == progressing


def test_a_deployment_without_a_generation_is_judged_by_its_replicas() -> None:
    unnumbered = complete()
    del unnumbered["metadata"]["generation"]
    del unnumbered["status"]["observedGeneration"]
    assert conditions(status_of(deployment=unnumbered))["Progressing"][1] == "RolloutComplete"


def test_ready_replicas_are_counted_from_the_deployment() -> None:
    status = status_of(deployment=complete(readyReplicas=1, replicas=3))
    assert (status["replicas"], status["readyReplicas"]) == (3, 1)
    assert conditions(status)["Ready"] == ("False", "Pending", "1/2 replicas ready; replicas are starting")
