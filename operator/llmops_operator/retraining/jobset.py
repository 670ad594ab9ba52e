"""JobSet (``jobset.x-k8s.io/v1alpha2``): several Jobs run as one, e.g. ``torchrun`` across
nodes. The retraining template is a JobSet's ``{metadata, spec}``."""

from __future__ import annotations

from typing import Any

from ..api.driftmonitor import RetrainingSpec, RetrainingTemplate
from .base import Progress
from .job import short_form_job_spec


class JobSetEngine:
    kind = "JobSet"
    api_version = "jobset.x-k8s.io/v1alpha2"
    plural = "jobsets"

    def default_template(self, short: RetrainingTemplate, retraining: RetrainingSpec) -> dict[str, Any]:
        job_spec = short_form_job_spec(short, retraining)
        ttl = job_spec.pop("ttlSecondsAfterFinished")
        return {
            "spec": {
                "ttlSecondsAfterFinished": ttl,
                "replicatedJobs": [{"name": "trainer", "replicas": 1, "template": {"spec": job_spec}}],
            }
        }

    def pod_templates(self, spec: dict[str, Any]) -> list[dict[str, Any]]:
        pods = []
        for replicated in spec.get("replicatedJobs") or []:
            job_spec = replicated.setdefault("template", {}).setdefault("spec", {})
            pods.append(job_spec.setdefault("template", {}))
        return pods

    def progress(self, workload: dict[str, Any] | None) -> Progress:
        """JobSet's Completed / Failed conditions; suspended means Kueue has not admitted it."""
        if workload is None:
            return Progress("Missing")
        status = workload.get("status") or {}
        for condition in status.get("conditions") or []:
            if condition.get("status") != "True":
                continue
            when = condition.get("lastTransitionTime")
            if condition.get("type") == "Completed":
                return Progress("Succeeded", condition.get("message", ""), when)
            if condition.get("type") == "Failed":
                return Progress("Failed", condition.get("message", ""), when)
        if (workload.get("spec") or {}).get("suspend"):
            return Progress("Pending")
        return Progress("Running")
