"""The retraining Job a drift episode starts, rendered from the monitor's template."""

from __future__ import annotations

from typing import Any

from .. import API_VERSION, FIELD_MANAGER, GROUP
from ..api.driftmonitor import RetrainingSpec
from ..rendering.llmdeployment import GPU_RESOURCE, restricted_security_context

MONITOR_LABEL = f"{GROUP}/driftmonitor"
EVENT_LABEL = f"{GROUP}/drift-event"


def retraining_job(
    *,
    monitor: dict[str, Any],
    retraining: RetrainingSpec,
    name: str,
    event_id: str,
    drifted: list[str],
    windows: tuple[str, str],
    report_uri: str,
    tracking_uri: str,
    model_name: str,
) -> dict[str, Any]:
    """What the trainer needs arrives as env: where MLflow is, which model, why it runs (the
    drift event id it must tag the new version with, the drifted features, both windows (a
    baseline dataset is named instead of a window) and the drift report's MLflow URI)."""
    meta = monitor["metadata"]
    template = retraining.template
    env = [
        {"name": "MLFLOW_TRACKING_URI", "value": tracking_uri},
        {"name": "MODEL_NAME", "value": model_name},
        {"name": "DRIFT_EVENT_ID", "value": event_id},
        {"name": "DRIFTED_FEATURES", "value": ",".join(drifted)},
        {"name": "BASELINE_WINDOW", "value": windows[0]},
        {"name": "CURRENT_WINDOW", "value": windows[1]},
        {"name": "DRIFT_REPORT_URI", "value": report_uri},
        {"name": "DRIFT_MONITOR", "value": f"{meta['namespace']}/{meta['name']}"},
        *[item.model_dump(mode="json", by_alias=True, exclude_none=True) for item in template.env],
    ]
    requests: dict[str, Any] = {}
    if template.resources.cpu:
        requests["cpu"] = template.resources.cpu
    if template.resources.memory:
        requests["memory"] = template.resources.memory
    resources: dict[str, Any] = {}
    if requests:
        resources["requests"] = dict(requests)
    if template.resources.gpus:
        resources.setdefault("requests", {})[GPU_RESOURCE] = template.resources.gpus
        resources["limits"] = {GPU_RESOURCE: template.resources.gpus}
    container: dict[str, Any] = {
        "name": "trainer",
        "image": template.image,
        "env": env,
        "securityContext": restricted_security_context(),
    }
    if template.command:
        container["command"] = list(template.command)
    if template.args:
        container["args"] = list(template.args)
    if resources:
        container["resources"] = resources
    pod_spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [container]}
    if template.service_account_name:
        pod_spec["serviceAccountName"] = template.service_account_name
    if template.resources.gpus:
        pod_spec["tolerations"] = [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]
    labels = {
        "app.kubernetes.io/name": "retraining",
        "app.kubernetes.io/managed-by": FIELD_MANAGER,
        MONITOR_LABEL: meta["name"],
        EVENT_LABEL: event_id,
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": "DriftMonitor",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "backoffLimit": retraining.backoff_limit,
            "ttlSecondsAfterFinished": retraining.ttl_seconds_after_finished,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


def job_result(job: dict[str, Any] | None) -> str:
    """Running, Succeeded or Failed, from the Job's conditions."""
    if job is None:
        return "Missing"
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "SuccessCriteriaMet"):
            return "Succeeded"
        if condition.get("status") == "True" and condition.get("type") == "Failed":
            return "Failed"
    return "Running"
