"""``batch/v1`` Job: the retraining template is a JobTemplateSpec."""

from __future__ import annotations

from typing import Any

from ..api.driftmonitor import RetrainingSpec, RetrainingTemplate
from ..rendering.llmdeployment import GPU_RESOURCE, restricted_security_context
from .base import Progress


def short_form_job_spec(short: RetrainingTemplate, retraining: RetrainingSpec) -> dict[str, Any]:
    """The JobSpec of today's short form: one restricted trainer container, GPUs as requests and
    limits with their taint tolerated."""
    requests: dict[str, Any] = {}
    if short.resources.cpu:
        requests["cpu"] = short.resources.cpu
    if short.resources.memory:
        requests["memory"] = short.resources.memory
    resources: dict[str, Any] = {}
    if requests:
        resources["requests"] = dict(requests)
    if short.resources.gpus:
        resources.setdefault("requests", {})[GPU_RESOURCE] = short.resources.gpus
        resources["limits"] = {GPU_RESOURCE: short.resources.gpus}
    container: dict[str, Any] = {
        "name": "trainer",
        "image": short.image,
        "env": [item.model_dump(mode="json", by_alias=True, exclude_none=True) for item in short.env],
        "securityContext": restricted_security_context(),
    }
    if short.command:
        container["command"] = list(short.command)
    if short.args:
        container["args"] = list(short.args)
    if resources:
        container["resources"] = resources
    pod_spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [container]}
    if short.service_account_name:
        pod_spec["serviceAccountName"] = short.service_account_name
    if short.resources.gpus:
        pod_spec["tolerations"] = [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]
    return {
        "backoffLimit": retraining.backoff_limit,
        "ttlSecondsAfterFinished": retraining.ttl_seconds_after_finished,
        "template": {"spec": pod_spec},
    }


def job_progress(job: dict[str, Any] | None) -> Progress:
    """From the Job's conditions; a suspended Job is Pending (Kueue has not admitted it)."""
    if job is None:
        return Progress("Missing")
    status = job.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") in ("Complete", "SuccessCriteriaMet"):
            return Progress("Succeeded", condition.get("message", ""), status.get("completionTime"))
        if condition.get("type") == "Failed":
            return Progress("Failed", condition.get("message", ""), condition.get("lastTransitionTime"))
    if (job.get("spec") or {}).get("suspend"):
        return Progress("Pending")
    return Progress("Running")


class JobEngine:
    kind = "Job"
    api_version = "batch/v1"
    plural = "jobs"

    def default_template(self, short: RetrainingTemplate, retraining: RetrainingSpec) -> dict[str, Any]:
        return {"spec": short_form_job_spec(short, retraining)}

    def pod_templates(self, spec: dict[str, Any]) -> list[dict[str, Any]]:
        return [spec.setdefault("template", {})]

    def progress(self, workload: dict[str, Any] | None) -> Progress:
        return job_progress(workload)
