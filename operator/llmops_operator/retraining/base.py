"""What every retraining engine shares: the trainer's environment, the operator's labels and
ownerReference, Kueue's queue label, and reading Kueue's verdict on a queued workload. Pure: the
DriftMonitor controller reads and writes the workloads through kube.py.

An engine only says where its pod templates sit inside its spec, how the short form becomes its
long one, and how its status reads; everything the user wrote in a template is kept verbatim.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from .. import API_VERSION, FIELD_MANAGER, names
from ..api.driftmonitor import RetrainingSpec, RetrainingTemplate

Result = Literal["Missing", "Pending", "Running", "Succeeded", "Failed"]


@dataclass(frozen=True)
class TrainerContext:
    """Why this retraining runs: what reaches every trainer container as env."""

    name: str
    event_id: str
    drifted: list[str]
    windows: tuple[str, str]
    report_uri: str
    tracking_uri: str
    model_name: str


@dataclass(frozen=True)
class Progress:
    """A workload's state as the monitor reports it."""

    result: Result
    message: str = ""
    completion_time: str | None = None


class Engine(Protocol):
    """One workload kind the operator hands retraining to."""

    kind: str
    api_version: str
    plural: str

    def default_template(self, short: RetrainingTemplate, retraining: RetrainingSpec) -> dict[str, Any]:
        """The long-form template (``{metadata, spec}``) today's short form stands for."""

    def pod_templates(self, spec: dict[str, Any]) -> list[dict[str, Any]]:
        """The pod templates inside a workload spec, where trainer containers live."""

    def progress(self, workload: dict[str, Any] | None) -> Progress:
        """Missing, Pending (suspended), Running, Succeeded or Failed, from the engine's status."""


def trainer_env(monitor: dict[str, Any], context: TrainerContext) -> list[dict[str, Any]]:
    meta = monitor["metadata"]
    return [
        {"name": "MLFLOW_TRACKING_URI", "value": context.tracking_uri},
        {"name": "MODEL_NAME", "value": context.model_name},
        {"name": "DRIFT_EVENT_ID", "value": context.event_id},
        {"name": "DRIFTED_FEATURES", "value": ",".join(context.drifted)},
        {"name": "BASELINE_WINDOW", "value": context.windows[0]},
        {"name": "CURRENT_WINDOW", "value": context.windows[1]},
        {"name": "DRIFT_REPORT_URI", "value": context.report_uri},
        {"name": "DRIFT_MONITOR", "value": f"{meta['namespace']}/{meta['name']}"},
    ]


def operator_labels(monitor: dict[str, Any], event_id: str) -> dict[str, str]:
    return {
        names.NAME_LABEL: names.RETRAINING_NAME,
        names.MANAGED_BY_LABEL: FIELD_MANAGER,
        names.DRIFT_MONITOR_KEY: monitor["metadata"]["name"],
        names.DRIFT_EVENT_KEY: event_id,
    }


def render(
    engine: Engine, monitor: dict[str, Any], retraining: RetrainingSpec, context: TrainerContext
) -> dict[str, Any]:
    """The workload to create: the user's template (or the short form's long one) with the
    trainer env in every container (replacing same-named entries: the operator's values are
    what the trainer must see), the operator's labels and ownerReference, and, with a queue,
    Kueue's label on a suspended workload so Kueue alone decides when it starts."""
    meta = monitor["metadata"]
    if retraining.workload_template is not None:
        template = copy.deepcopy(retraining.workload_template)
    else:
        assert retraining.template is not None
        template = engine.default_template(retraining.template, retraining)
    user_meta = dict(template.get("metadata") or {})
    labels = {**(user_meta.get("labels") or {}), **operator_labels(monitor, context.event_id)}
    if retraining.queue_name:
        labels[names.QUEUE_LABEL] = retraining.queue_name
    metadata: dict[str, Any] = {
        "name": context.name,
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
    }
    if user_meta.get("annotations"):
        metadata["annotations"] = dict(user_meta["annotations"])
    spec = dict(template.get("spec") or {})
    env = trainer_env(monitor, context)
    ours = {item["name"] for item in env}
    for pod in engine.pod_templates(spec):
        pod_meta = pod.setdefault("metadata", {})
        pod_meta["labels"] = {**(pod_meta.get("labels") or {}), **operator_labels(monitor, context.event_id)}
        for container in (pod.get("spec") or {}).get("containers") or []:
            kept = [item for item in container.get("env") or [] if item.get("name") not in ours]
            container["env"] = [*env, *kept]
    if retraining.queue_name:
        spec["suspend"] = True
    return {"apiVersion": engine.api_version, "kind": engine.kind, "metadata": metadata, "spec": spec}


def kueue_selector(workload: dict[str, Any]) -> str:
    """The label selector of Kueue's Workload for a queued workload (Kueue labels it with the uid)."""
    return f"{names.KUEUE_JOB_UID_LABEL}={workload['metadata'].get('uid', '')}"


def queued_message(kueue: dict[str, Any] | None) -> str:
    """Why Kueue has not admitted a workload yet, in Kueue's words (its QuotaReserved condition)."""
    if kueue is None:
        return "waiting for Kueue to create its Workload"
    for condition in (kueue.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "QuotaReserved" and condition.get("status") == "False":
            return f"{condition.get('reason', 'Pending')}: {condition.get('message', '')}".strip()
    return "waiting for Kueue's admission"
