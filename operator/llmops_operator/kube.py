"""A small typed layer over the Kubernetes REST API: get, server-side apply, delete, status patch.

The generated clients have one method per kind; the operator handles a handful of kinds uniformly,
so it speaks REST paths directly through the official client's ``ApiClient``.
"""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client

from . import FIELD_MANAGER, GROUP, VERSION
from .conditions import status_changes
from .timestamps import format_micro_time, format_time, now

# Connections kept open to the API server: one for each thread that may call it at once (the
# LLMDeployment passes' 64 + 16, kopf's 16). With the client's default, five per core, a burst
# threw connections away, and opened new TLS ones, whenever more than ten threads called at once.
API_CONNECTIONS = 96
# kind -> (API path prefix, plural)
RESOURCES: dict[str, tuple[str, str]] = {
    "Deployment": ("/apis/apps/v1", "deployments"),
    "Service": ("/api/v1", "services"),
    "PersistentVolumeClaim": ("/api/v1", "persistentvolumeclaims"),
    "PodDisruptionBudget": ("/apis/policy/v1", "poddisruptionbudgets"),
    "HorizontalPodAutoscaler": ("/apis/autoscaling/v2", "horizontalpodautoscalers"),
    "ServiceMonitor": ("/apis/monitoring.coreos.com/v1", "servicemonitors"),
    "Job": ("/apis/batch/v1", "jobs"),
    "JobSet": ("/apis/jobset.x-k8s.io/v1alpha2", "jobsets"),
    "Workload": ("/apis/kueue.x-k8s.io/v1beta2", "workloads"),  # Kueue's
    "ConfigMap": ("/api/v1", "configmaps"),
    "Event": ("/api/v1", "events"),
    "HTTPRoute": ("/apis/gateway.networking.k8s.io/v1", "httproutes"),
    "InferencePool": ("/apis/inference.networking.k8s.io/v1", "inferencepools"),
    "LLMDeployment": (f"/apis/{GROUP}/{VERSION}", "llmdeployments"),
    "CanaryRollout": (f"/apis/{GROUP}/{VERSION}", "canaryrollouts"),
    "DriftMonitor": (f"/apis/{GROUP}/{VERSION}", "driftmonitors"),
    "LLMGateway": (f"/apis/{GROUP}/{VERSION}", "llmgateways"),
    "Secret": ("/api/v1", "secrets"),
}


class Kube:
    def __init__(self, api: client.ApiClient | None = None) -> None:
        self.api = api or client.ApiClient()

    def _path(self, kind: str, namespace: str, name: str | None = None, sub: str | None = None) -> str:
        prefix, plural = RESOURCES[kind]
        path = f"{prefix}/namespaces/{namespace}/{plural}"
        if name is not None:
            path += f"/{name}"
        if sub is not None:
            path += f"/{sub}"
        return path

    def request(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Any:
        request = self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or [],
            header_params={"Accept": "application/json", "Content-Type": content_type},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(*request, _request_timeout=30)
        data = response.read()
        if not 200 <= response.status < 300:
            raise client.ApiException(http_resp=response, body=data.decode(errors="replace"))
        return json.loads(data) if data else None

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return dict(self.request("GET", self._path(kind, namespace, name)))
        except client.ApiException as error:
            if error.status == 404:
                return None
            raise

    def select(self, kind: str, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        """The objects of ``kind`` in ``namespace`` that carry the labels of ``label_selector``."""
        found = self.request("GET", self._path(kind, namespace), query=[("labelSelector", label_selector)])
        return [dict(item) for item in (found or {}).get("items") or []]

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply under the operator's field manager, taking fields back from hand edits."""
        meta = obj["metadata"]
        path = self._path(obj["kind"], meta["namespace"], meta["name"])
        query = [("fieldManager", FIELD_MANAGER), ("force", "true")]
        return dict(
            self.request("PATCH", path, query=query, body=obj, content_type="application/apply-patch+yaml")
        )

    def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        """PUT the whole object (for one the operator does not own, where apply would take fields)."""
        meta = obj["metadata"]
        return dict(self.request("PUT", self._path(obj["kind"], meta["namespace"], meta["name"]), body=obj))

    def merge_patch(
        self, kind: str, namespace: str, name: str, changes: dict[str, Any], sub: str | None = None
    ) -> dict[str, Any]:
        """A JSON merge patch of the object (or of its ``sub`` resource: ``scale``, ``status``)."""
        path = self._path(kind, namespace, name, sub)
        return dict(self.request("PATCH", path, body=changes, content_type="application/merge-patch+json"))

    def scale(self, kind: str, namespace: str, name: str, replicas: int) -> None:
        self.merge_patch(kind, namespace, name, {"spec": {"replicas": replicas}}, sub="scale")

    def create(self, obj: dict[str, Any]) -> bool:
        """POST; False when an object of that name exists already (nothing is overwritten)."""
        meta = obj["metadata"]
        try:
            self.request("POST", self._path(obj["kind"], meta["namespace"]), body=obj)
        except client.ApiException as error:
            if error.status == 409:
                return False
            raise
        return True

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        try:
            self.request(
                "DELETE", self._path(kind, namespace, name), query=[("propagationPolicy", "Background")]
            )
        except client.ApiException as error:
            if error.status == 404:
                return False
            raise
        return True

    def patch_status(self, kind: str, namespace: str, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Merge ``changes`` into the status; returns the object as written."""
        return self.merge_patch(kind, namespace, name, {"status": changes}, sub="status")

    def write_status(
        self, obj: dict[str, Any], current: dict[str, Any], desired: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Write the top-level status fields of ``desired`` that differ from ``current``; nothing
        when none does. Returns the object as written, or None when nothing was."""
        changes = status_changes(current, desired)
        if not changes:
            return None
        meta = obj["metadata"]
        return self.patch_status(obj["kind"], meta["namespace"], meta["name"], changes)

    def post_event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        """A core/v1 Event about ``obj``, for ``kubectl describe`` and ``kubectl get events``."""
        meta = obj["metadata"]
        moment = now()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion", ""),
                "kind": obj.get("kind", ""),
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid", ""),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": FIELD_MANAGER},
            "reportingComponent": FIELD_MANAGER,
            "reportingInstance": FIELD_MANAGER,
            "firstTimestamp": format_time(moment),
            "lastTimestamp": format_time(moment),
            "eventTime": format_micro_time(moment),
            "action": reason,
            "count": 1,
        }
        self.request("POST", self._path("Event", meta["namespace"]), body=event)

    def server_version(self) -> dict[str, Any]:
        return dict(self.request("GET", "/version"))

    def read_crd(self, name: str) -> dict[str, Any]:
        """A CustomResourceDefinition by name; raises ApiException (404: not installed)."""
        return dict(self.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"))

    def crd_exists(self, name: str) -> bool:
        """Whether a CRD is installed; one the operator may not read counts as absent."""
        try:
            self.read_crd(name)
        except client.ApiException as error:
            if error.status in (403, 404):
                return False
            raise
        return True


def contains(live: Any, desired: Any) -> bool:
    """True when every field of ``desired`` has the same value in ``live``.

    Fields the API server adds (defaults, status, managedFields) are ignored, so comparing a live
    object with what would be applied tells whether an apply would change anything.
    """
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(k in live and contains(live[k], v) for k, v in desired.items())
    if isinstance(desired, list):
        return isinstance(live, list) and len(live) == len(desired) and all(map(contains, live, desired))
    return bool(live == desired)


def api_error_text(error: client.ApiException) -> str:
    """The API server's own message (it names the offending field), not just the status code."""
    try:
        message = json.loads(error.body or "{}").get("message", "")
    except (ValueError, AttributeError):
        message = ""
    return f"{error.status} {error.reason}: {message}"[:500] if message else f"{error.status} {error.reason}"
