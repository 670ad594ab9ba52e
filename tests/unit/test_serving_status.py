"""The LLMDeployment status a human reads: each reason from realistic Deployment and Pod objects."""

from __future__ import annotations

from typing import Any

from llmops_operator import names
from llmops_operator.conditions import find_condition
from llmops_operator.serving_status import (
    SERVICE_MONITOR_CRD,
    ConditionState,
    desired_status,
    optional_children,
    pod_problem,
)

RESOLVED = ConditionState("True", "Resolved", "models:/llama@champion is version 7")


def deployment(
    replicas: int, ready: int, updated: int | None = None, total: int | None = None
) -> dict[str, Any]:
    return {
        "metadata": {"name": "llama", "generation": 3},
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": 3,
            "replicas": replicas if total is None else total,
            "readyReplicas": ready,
            "updatedReplicas": replicas if updated is None else updated,
        },
    }


def pod(name: str, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "status": status}


UNSCHEDULABLE_GPU = pod(
    "llama-1",
    phase="Pending",
    conditions=[
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": "0/3 nodes are available: 2 Insufficient nvidia.com/gpu, "
            "1 node(s) had untolerated taint.",
        }
    ],
)
CRASHING = pod(
    "llama-2",
    phase="Running",
    containerStatuses=[
        {
            "name": "vllm",
            "restartCount": 5,
            "started": False,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"reason": "OOMKilled"}},
        }
    ],
)
LOADING = pod(
    "llama-3",
    phase="Running",
    containerStatuses=[{"name": "vllm", "started": False, "ready": False, "state": {"running": {}}}],
)


def status_for(dep: dict[str, Any] | None, pods: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "generation": 3,
        "current": {},
        "model_resolved": RESOLVED,
        "model": {"uri": "models:/llama@champion", "version": "7", "source": "s3://m/7"},
        "deployment": dep,
        "pods": pods,
        "desired_replicas": 2,
        "selector": "llmops.dev/llmdeployment=llama",
        "endpoint": "http://llama.ns.svc.cluster.local:8000/v1",
        "now": "2026-01-01T00:00:00Z",
    }
    args.update(kwargs)
    return desired_status(**args)


def condition(status: dict[str, Any], type_: str) -> tuple[str, str]:
    found = find_condition(status["conditions"], type_)
    assert found is not None, type_
    return found["status"], found["reason"]


def test_all_replicas_ready_is_ready_and_complete() -> None:
    status = status_for(deployment(2, 2), [])
    assert condition(status, "Ready") == ("True", "Available")
    assert condition(status, "Progressing") == ("False", "RolloutComplete")
    assert condition(status, "Degraded") == ("False", "AsExpected")
    assert condition(status, "ModelResolved") == ("True", "Resolved")
    assert (status["replicas"], status["readyReplicas"]) == (2, 2)
    assert status["endpoint"].endswith(":8000/v1")
    assert status["observedGeneration"] == 3


def test_gpu_shortage_is_insufficient_gpu() -> None:
    status = status_for(deployment(2, 1), [UNSCHEDULABLE_GPU])
    assert condition(status, "Ready") == ("False", "InsufficientGPU")
    assert condition(status, "Degraded") == ("True", "InsufficientGPU")
    message = find_condition(status["conditions"], "Ready")["message"]  # type: ignore[index]
    assert "1/2 replicas ready" in message and "Insufficient nvidia.com/gpu" in message


def test_crash_loop_names_the_container_and_cause() -> None:
    status = status_for(deployment(2, 1), [CRASHING])
    assert condition(status, "Ready") == ("False", "CrashLooping")
    message = find_condition(status["conditions"], "Degraded")["message"]  # type: ignore[index]
    assert "vllm" in message and "OOMKilled" in message and "5 restarts" in message


def test_loading_model_is_progressing_not_degraded() -> None:
    status = status_for(deployment(2, 1, updated=2), [LOADING])
    assert condition(status, "Ready") == ("False", "ModelLoading")
    assert condition(status, "Progressing") == ("True", "ModelLoading")
    assert condition(status, "Degraded") == ("False", "AsExpected")


def test_gpu_shortage_outranks_loading() -> None:
    assert pod_problem([LOADING, UNSCHEDULABLE_GPU]) == ConditionState(
        "True",
        "InsufficientGPU",
        pod_problem([UNSCHEDULABLE_GPU]).message,  # type: ignore[union-attr]
    )


def test_terminating_pods_are_ignored() -> None:
    leaving = {**CRASHING, "metadata": {"name": "old", "deletionTimestamp": "2026-01-01T00:00:00Z"}}
    assert pod_problem([leaving]) is None


def test_old_replicas_still_running_means_rollout_in_progress() -> None:
    status = status_for(deployment(2, 2, updated=1, total=3), [])
    assert condition(status, "Progressing") == ("True", "RollingOut")


def test_registry_down_while_serving_is_degraded_but_ready() -> None:
    down = ConditionState(
        "False", "RegistryUnavailable", "MLflow at http://m is unreachable: connection refused"
    )
    status = status_for(deployment(2, 2), [], model_resolved=down)
    assert condition(status, "Ready") == ("True", "Available")
    assert condition(status, "ModelResolved") == ("False", "RegistryUnavailable")
    assert condition(status, "Degraded") == ("True", "RegistryUnavailable")


def test_unknown_model_before_any_deployment() -> None:
    missing = ConditionState("False", "ModelNotFound", "registered model 'llama' has no alias 'champion'")
    status = status_for(None, [], model_resolved=missing, model=None)
    assert condition(status, "Ready") == ("False", "ModelNotFound")
    assert "model" not in status
    assert condition(status, "Degraded") == ("False", "AsExpected")


def test_hpa_replica_count_wins_over_spec() -> None:
    status = status_for(deployment(5, 5), [], desired_replicas=2)
    assert condition(status, "Ready") == ("True", "Available")


def test_scaled_to_zero() -> None:
    assert condition(status_for(deployment(0, 0), []), "Ready") == ("False", "ScaledToZero")


def test_recomputing_from_its_own_output_changes_nothing() -> None:
    first = status_for(deployment(2, 1), [UNSCHEDULABLE_GPU])
    again = status_for(deployment(2, 1), [UNSCHEDULABLE_GPU], current=first, now="2026-02-01T00:00:00Z")
    assert again == first


def test_optional_children_say_whether_their_crd_is_installed() -> None:
    children = [
        {"kind": "Deployment", "metadata": {"name": "llama"}},
        {"kind": "ServiceMonitor", "metadata": {"name": "llama"}},
        {"kind": "InferencePool", "metadata": {"name": "llama"}},
    ]
    installed = {SERVICE_MONITOR_CRD: True, "inferencepools.inference.networking.k8s.io": False}
    states, absent = optional_children(children, installed)
    assert states[names.SERVICE_MONITOR_READY] == ConditionState(
        "True", names.CREATED, "ServiceMonitor llama scrapes /metrics"
    )
    pool = states[names.INFERENCE_POOL_READY]
    assert (pool.status, pool.reason) == ("False", names.CRD_NOT_INSTALLED)
    assert pool.message == "inferencepools.inference.networking.k8s.io is not installed; no InferencePool"
    assert absent == {"InferencePool"}
    assert optional_children(children[:1], {}) == ({}, set())
