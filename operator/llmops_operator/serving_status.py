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
IMAGE_PULL_WAITS = ("ImagePullBackOff", "ErrImagePull", "InvalidImageName")  # the kubelet's
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


def unschedulable(pod: dict[str, Any]) -> tuple[str, str] | None:
    """Why the scheduler cannot place ``pod``, as (reason, message): a GPU shortage or other."""
    scheduled = _condition(pod, "PodScheduled")
    if scheduled.get("status") != "False" or scheduled.get("reason") != "Unschedulable":  # the scheduler's
        return None
    message = scheduled.get("message", "")
    reason = INSUFFICIENT_GPU if GPU_RESOURCE in message else UNSCHEDULABLE
    return reason, f"pod {pod['metadata']['name']} cannot be scheduled: {message}"


def container_problem(container: dict[str, Any], pod_name: str) -> tuple[str, str] | None:
    """One container's trouble, as (reason, message), the worst first; ModelLoading, with no
    message, for a server that runs but has not passed its startup probe."""
    state = container.get("state") or {}
    waiting = state.get("waiting") or {}
    failed = state.get("terminated") or {}
    named = f"container {container['name']} of pod {pod_name}"
    if waiting.get("reason") == "CrashLoopBackOff":
        last = (container.get("lastState") or {}).get("terminated") or {}
        restarts = container.get("restartCount", 0)
        return CRASH_LOOPING, f"{named} keeps exiting ({exit_of(last)}); {restarts} restarts{quoted(last)}"
    if int(failed.get("exitCode") or 0) != 0:
        return CRASH_LOOPING, f"{named} exited ({exit_of(failed)}){quoted(failed)}"
    if waiting.get("reason") in IMAGE_PULL_WAITS:
        return IMAGE_PULL_FAILED, f"pod {pod_name} cannot pull {container.get('image', '')}"
    if container["name"] == SERVER_CONTAINER and "running" in state and container.get("started") is False:
        return MODEL_LOADING, ""
    return None


def pod_findings(pod: dict[str, Any]) -> list[tuple[str, str]]:
    """Every (reason, message) ``pod`` gives: its scheduling alone when it is not placed, else
    one per troubled container, init containers first."""
    placement = unschedulable(pod)
    if placement is not None:
        return [placement]
    status = pod.get("status") or {}
    containers = [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]
    found = (container_problem(container, pod["metadata"]["name"]) for container in containers)
    return [finding for finding in found if finding is not None]


def pod_problem(pods: list[dict[str, Any]]) -> ConditionState | None:
    """The most serious reason, across pods, why replicas are not serving: the first pod's message
    of the worst failure, else how many are still loading the model."""
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    findings = [finding for pod in live for finding in pod_findings(pod)]
    for reason in FAILURE_REASONS:
        message = next((said for found, said in findings if found == reason), None)
        if message is not None:
            return ConditionState("True", reason, message)
    loading = sum(1 for found, _ in findings if found == MODEL_LOADING)
    if loading:
        return ConditionState("True", MODEL_LOADING, f"{loading} of {len(live)} pods are loading the model")
    return None


@dataclass(frozen=True)
class Replicas:
    """What the Deployment reports of its replicas, against how many it should have."""

    desired: int
    ready: int
    updated: int
    total: int
    seen_latest: bool  # the Deployment controller has acted on the latest spec

    @property
    def rolled_out(self) -> bool:
        """Every replica runs the latest spec and is ready, and no old one is left."""
        return self.seen_latest and self.updated == self.total == self.ready == self.desired


def replicas_of(deployment: dict[str, Any] | None, desired_replicas: int) -> Replicas:
    """The replica counts of ``deployment`` (none yet when it is absent); its own spec.replicas,
    when set, is the desired count, since that is the HPA's choice when it has one."""
    if deployment is None:
        return Replicas(desired_replicas, 0, 0, 0, seen_latest=False)
    status = deployment.get("status") or {}
    wanted = (deployment.get("spec") or {}).get("replicas")
    observed = int(status.get("observedGeneration") or 0)
    return Replicas(
        desired=desired_replicas if wanted is None else int(wanted),
        ready=int(status.get("readyReplicas") or 0),
        updated=int(status.get("updatedReplicas") or 0),
        total=int(status.get("replicas") or 0),
        seen_latest=observed >= int(deployment["metadata"].get("generation") or 0),
    )


def waiting_for_model(model_resolved: ConditionState) -> tuple[ConditionState, ConditionState]:
    """Ready and Progressing before the Deployment exists: an unresolved model is the reason."""
    if model_resolved.status != "True":
        reason, message = model_resolved.reason, model_resolved.message
    else:
        reason, message = CREATING, ""
    return (
        ConditionState("False", reason, message or "the Deployment does not exist yet"),
        ConditionState("True", reason, "waiting for the model before creating the Deployment"),
    )


def ready_state(replicas: Replicas, problem: ConditionState | None, endpoint: str) -> ConditionState:
    """Ready once the Deployment exists: available, scaled to zero, or why replicas are missing."""
    counted = f"{replicas.ready}/{replicas.desired} replicas ready"
    if replicas.desired == 0:
        return ConditionState("False", SCALED_TO_ZERO, "replicas is 0")
    if replicas.ready >= replicas.desired:
        return ConditionState("True", AVAILABLE, f"{counted} at {endpoint}")
    if problem is None:
        return ConditionState("False", PENDING, f"{counted}; replicas are starting")
    return ConditionState("False", problem.reason, f"{counted}; {problem.message or 'replicas are starting'}")


def progressing_state(replicas: Replicas, problem: ConditionState | None) -> ConditionState:
    """Progressing once the Deployment exists: complete, or rolling out (named by a pod problem)."""
    if replicas.rolled_out:
        return ConditionState("False", ROLLOUT_COMPLETE, f"{replicas.desired} replicas up to date")
    reason = problem.reason if problem is not None else ROLLING_OUT
    return ConditionState("True", reason, f"{replicas.updated}/{replicas.desired} replicas updated")


def degraded_state(
    problem: ConditionState | None, model_resolved: ConditionState, deployed: bool
) -> ConditionState:
    """Degraded: a failing pod first; then a registry that no longer answers for a model being
    served; a model not yet resolved before any Deployment is a wait, not a degradation."""
    if problem is not None and problem.reason in FAILURE_REASONS:
        return problem
    if model_resolved.status == "False" and deployed:
        message = f"serving the last resolved model; {model_resolved.message}"
        return ConditionState("True", model_resolved.reason, message)
    return ConditionState("False", AS_EXPECTED, "")


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
    """The whole status: each condition decided by one function above, then the counts."""
    replicas = replicas_of(deployment, desired_replicas)
    problem = pod_problem(pods)
    if deployment is None:
        ready, progressing = waiting_for_model(model_resolved)
    else:
        ready, progressing = ready_state(replicas, problem, endpoint), progressing_state(replicas, problem)
    states = {
        MODEL_RESOLVED: model_resolved,
        READY: ready,
        PROGRESSING: progressing,
        DEGRADED: degraded_state(problem, model_resolved, deployed=deployment is not None),
    }
    conditions = list(current.get("conditions") or [])
    for type_, state in states.items():
        conditions = set_condition(
            conditions, type_, state.status, state.reason, state.message, generation, now
        )
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "conditions": conditions,
        "replicas": replicas.total,
        "readyReplicas": replicas.ready,
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
