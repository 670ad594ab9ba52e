"""What an LLMDeployment's status should say, from its Deployment and pods: pure, so every reason
(InsufficientGPU, ModelLoading, CrashLooping, ...) is tested on object fixtures without a cluster.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .conditions import ConditionStatus, set_condition
from .names import (
    AS_EXPECTED,
    AVAILABLE,
    CRASH_LOOPING,
    CRD_NOT_INSTALLED,
    CREATED,
    CREATING,
    DEGRADED,
    IMAGE_PULL_FAILED,
    INFERENCE_POOL_READY,
    INSUFFICIENT_GPU,
    MODEL_LOADING,
    MODEL_RESOLVED,
    PENDING,
    PROGRESSING,
    READY,
    ROLLING_OUT,
    ROLLOUT_COMPLETE,
    SCALED_TO_ZERO,
    SERVICE_MONITOR_READY,
    UNSCHEDULABLE,
)
from .rendering.llmdeployment import GPU_RESOURCE

SERVER_CONTAINER = "vllm"
FAILURE_REASONS = (INSUFFICIENT_GPU, CRASH_LOOPING, IMAGE_PULL_FAILED, UNSCHEDULABLE)
MAX_QUOTED = 300  # characters of a termination message quoted in a condition
SERVICE_MONITOR_CRD = "servicemonitors.monitoring.coreos.com"
# Children whose kind another project defines: kind -> (its CRD, the condition telling whether it is there).
OPTIONAL_KINDS: dict[str, tuple[str, str]] = {
    "ServiceMonitor": (SERVICE_MONITOR_CRD, SERVICE_MONITOR_READY),
    "InferencePool": ("inferencepools.inference.networking.k8s.io", INFERENCE_POOL_READY),
}


@dataclass(frozen=True)
class ConditionState:
    """What one condition says: its status, reason and message."""

    status: ConditionStatus
    reason: str
    message: str


def _condition(pod: dict[str, Any], type_: str) -> dict[str, Any]:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == type_:
            return dict(condition)
    return {}


def exit_of(terminated: dict[str, Any]) -> str:
    """How a container ended: the kubelet's reason and, when known, the exit code."""
    reason = terminated.get("reason") or "an error"
    code = terminated.get("exitCode")
    return f"{reason}, exit code {code}" if code is not None else str(reason)


def quoted(terminated: dict[str, Any]) -> str:
    """The last line of the container's termination message: with FallbackToLogsOnError, what
    vLLM printed last before exiting (``vllm serve: error: unrecognized arguments: ...``)."""
    lines = [line.strip() for line in str(terminated.get("message") or "").splitlines() if line.strip()]
    if not lines:
        return ""
    last = lines[-1]
    return f": {last[:MAX_QUOTED] + '...' if len(last) > MAX_QUOTED else last}"


def pod_problem(pods: list[dict[str, Any]]) -> ConditionState | None:
    """The most serious reason, across pods, why replicas are not serving."""
    found: dict[str, str] = {}
    loading = 0
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    for pod in live:
        name = pod["metadata"]["name"]
        scheduled = _condition(pod, "PodScheduled")
        if (
            scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable"
        ):  # the scheduler's
            message = scheduled.get("message", "")
            reason = INSUFFICIENT_GPU if GPU_RESOURCE in message else UNSCHEDULABLE
            found.setdefault(reason, f"pod {name} cannot be scheduled: {message}")
            continue
        status = pod.get("status") or {}
        for container in [
            *(status.get("initContainerStatuses") or []),
            *(status.get("containerStatuses") or []),
        ]:
            state = container.get("state") or {}
            waiting = state.get("waiting") or {}
            failed = state.get("terminated") or {}
            if waiting.get("reason") == "CrashLoopBackOff":
                last = (container.get("lastState") or {}).get("terminated") or {}
                found.setdefault(
                    CRASH_LOOPING,
                    f"container {container['name']} of pod {name} keeps exiting ({exit_of(last)}); "
                    f"{container.get('restartCount', 0)} restarts{quoted(last)}",
                )
            elif int(failed.get("exitCode") or 0) != 0:
                found.setdefault(
                    CRASH_LOOPING,
                    f"container {container['name']} of pod {name} exited ({exit_of(failed)}){quoted(failed)}",
                )
            elif waiting.get("reason") in ("ImagePullBackOff", "ErrImagePull", "InvalidImageName"):
                found.setdefault(IMAGE_PULL_FAILED, f"pod {name} cannot pull {container.get('image', '')}")
            elif (
                container["name"] == SERVER_CONTAINER
                and "running" in (container.get("state") or {})
                and container.get("started") is False
            ):
                loading += 1
    for reason in FAILURE_REASONS:
        if reason in found:
            return ConditionState("True", reason, found[reason])
    if loading:
        return ConditionState("True", MODEL_LOADING, f"{loading} of {len(live)} pods are loading the model")
    return None


def desired_status(
    *,
    generation: int,
    current: dict[str, Any],
    model_resolved: ConditionState,
    model: dict[str, Any] | None,
    deployment: dict[str, Any] | None,
    pods: list[dict[str, Any]],
    desired_replicas: int,
    selector: str,
    endpoint: str,
    now: str | None = None,
) -> dict[str, Any]:
    conditions = list(current.get("conditions") or [])
    dep_status = (deployment or {}).get("status") or {}
    ready = int(dep_status.get("readyReplicas") or 0)
    if deployment is not None and (deployment.get("spec") or {}).get("replicas") is not None:
        desired_replicas = int(deployment["spec"]["replicas"])  # the HPA's choice when it has one
    rolled_out = (
        deployment is not None
        and int(dep_status.get("observedGeneration") or 0)
        >= int(deployment["metadata"].get("generation") or 0)
        and int(dep_status.get("updatedReplicas") or 0) == desired_replicas
        and int(dep_status.get("replicas") or 0) == desired_replicas
        and ready == desired_replicas
    )
    problem = pod_problem(pods)

    def put(type_: str, verdict: ConditionState) -> None:
        nonlocal conditions
        conditions = set_condition(
            conditions, type_, verdict.status, verdict.reason, verdict.message, generation, now
        )

    put(MODEL_RESOLVED, model_resolved)
    if deployment is None:
        waiting = model_resolved if model_resolved.status != "True" else ConditionState("False", CREATING, "")
        reason = waiting.reason if waiting.status != "True" else CREATING
        put(READY, ConditionState("False", reason, waiting.message or "the Deployment does not exist yet"))
        put(
            PROGRESSING,
            ConditionState("True", reason, "waiting for the model before creating the Deployment"),
        )
    else:
        if desired_replicas == 0:
            put(READY, ConditionState("False", SCALED_TO_ZERO, "replicas is 0"))
        elif ready >= desired_replicas:
            put(
                READY,
                ConditionState("True", AVAILABLE, f"{ready}/{desired_replicas} replicas ready at {endpoint}"),
            )
        else:
            verdict = problem or ConditionState("True", PENDING, "")
            message = verdict.message or "replicas are starting"
            put(
                READY,
                ConditionState(
                    "False", verdict.reason, f"{ready}/{desired_replicas} replicas ready; {message}"
                ),
            )
        if rolled_out:
            put(
                PROGRESSING,
                ConditionState("False", ROLLOUT_COMPLETE, f"{desired_replicas} replicas up to date"),
            )
        else:
            reason = problem.reason if problem is not None else ROLLING_OUT
            updated = int(dep_status.get("updatedReplicas") or 0)
            put(
                PROGRESSING,
                ConditionState("True", reason, f"{updated}/{desired_replicas} replicas updated"),
            )
    if problem is not None and problem.reason in FAILURE_REASONS:
        put(DEGRADED, problem)
    elif model_resolved.status == "False" and deployment is not None:
        put(
            DEGRADED,
            ConditionState(
                "True", model_resolved.reason, f"serving the last resolved model; {model_resolved.message}"
            ),
        )
    else:
        put(DEGRADED, ConditionState("False", AS_EXPECTED, ""))
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "conditions": conditions,
        "replicas": int(dep_status.get("replicas") or 0),
        "readyReplicas": ready,
        "selector": selector,
        "endpoint": endpoint,
    }
    if model is not None:
        status["model"] = model
    return status


def optional_children(
    children: list[dict[str, Any]], installed: Mapping[str, bool]
) -> tuple[dict[str, ConditionState], set[str]]:
    """For each rendered child of an optional kind, its condition (condition type -> state), and
    the kinds left out because ``installed`` (CRD name -> whether it is there) says their CRD is not."""
    states: dict[str, ConditionState] = {}
    absent: set[str] = set()
    for child in children:
        kind, name = child["kind"], child["metadata"]["name"]
        if kind not in OPTIONAL_KINDS:
            continue
        crd, condition = OPTIONAL_KINDS[kind]
        if not installed[crd]:
            states[condition] = ConditionState(
                "False", CRD_NOT_INSTALLED, f"{crd} is not installed; no {kind}"
            )
            absent.add(kind)
            continue
        said = "scrapes /metrics" if kind == "ServiceMonitor" else "selects the pods"
        states[condition] = ConditionState("True", CREATED, f"{kind} {name} {said}")
    return states, absent
