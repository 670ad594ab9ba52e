"""LLMDeployment controller: resolve the model, apply the children, tell the truth in status.

Triggers: the object's own create/update/resume, a periodic timer (registry polling for
``followAlias``, retries), and events of the Deployments and Pods it owns (status, drift repair).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import kopf
from pydantic import ValidationError

from .. import FIELD_MANAGER, GROUP, VERSION, telemetry
from ..api.common import validation_message
from ..api.llmdeployment import LLMDeploymentSpec, ResolvedModel
from ..conditions import find_condition, now_rfc3339, set_condition, status_changes
from ..config import Settings
from ..durations import parse_duration
from ..kube import Kube, contains
from ..models import parse_registry_uri
from ..registry.mlflow import ModelNotFound, RegistryUnavailable, resolve
from ..rendering import llmdeployment as rendering
from ..serving_status import FAILURE_REASONS, Verdict, desired_status

PRUNABLE_KINDS = ("PodDisruptionBudget", "HorizontalPodAutoscaler", "ServiceMonitor")
SERVICE_MONITOR_CRD = "servicemonitors.monitoring.coreos.com"
MANAGED = {"app.kubernetes.io/managed-by": FIELD_MANAGER}
CRD_CHECK_SECONDS = 60.0


class RetryLater(Exception):
    """The registry could not be asked; the caller decides how to retry."""


class LLMDeploymentController:
    def __init__(self, settings: Settings, kube: Kube) -> None:
        self.settings = settings
        self.kube = kube
        self._last_resolution: dict[str, float] = {}  # uid -> monotonic time of the last registry answer
        self._announced: dict[tuple[str, str], str] = {}  # (uid, topic) -> what the last Event said
        self._crd_installed = False
        self._crd_checked_at = -CRD_CHECK_SECONDS

    # -- model resolution -------------------------------------------------------------------------

    def _resolution(
        self, spec: LLMDeploymentSpec, uid: str, status: dict[str, Any], ask_registry: bool
    ) -> tuple[Verdict, dict[str, Any] | None]:
        uri = spec.model.uri
        ref = parse_registry_uri(uri)
        if ref is None:
            model = ResolvedModel(uri=uri, version=spec.model.revision or "", source=uri)
            return Verdict("True", "DirectSource", f"serving {uri}"), model.model_dump(exclude_none=True)
        previous = status.get("model") if (status.get("model") or {}).get("uri") == uri else None
        condition = find_condition(status.get("conditions") or [], "ModelResolved") or {}
        last = self._last_resolution.get(uid)
        due = (
            previous is None
            or condition.get("status") != "True"
            or last is None
            or (
                spec.model.follow_alias
                and time.monotonic() - last >= parse_duration(spec.model.alias_poll_interval)
            )
        )
        if not (ask_registry and due):  # keep what the last registry answer said
            if not condition:
                return Verdict("Unknown", "Resolving", f"asking the registry for {uri}"), previous
            kept = Verdict(
                condition.get("status", "Unknown"),
                condition.get("reason", "Resolving"),
                condition.get("message", ""),
            )
            return kept, previous
        tracking_uri = spec.model.tracking_uri or self.settings.mlflow_tracking_uri
        try:
            found = resolve(ref, tracking_uri)
        except RegistryUnavailable as error:
            return Verdict("False", "RegistryUnavailable", str(error)), previous
        except ModelNotFound as error:
            return Verdict("False", "ModelNotFound", str(error)), previous
        self._last_resolution[uid] = time.monotonic()
        message = f"{uri} is version {found.version} at {found.source}"
        if previous is not None and previous.get("version") == found.version:
            return Verdict("True", "Resolved", message), previous  # unchanged: keep resolvedAt
        model = ResolvedModel(uri=uri, version=found.version, source=found.source, resolved_at=now_rfc3339())
        return Verdict("True", "Resolved", message), model.model_dump(exclude_none=True)

    # -- children ---------------------------------------------------------------------------------

    def _service_monitor_crd_installed(self) -> bool:
        now = time.monotonic()
        if now - self._crd_checked_at > CRD_CHECK_SECONDS:
            self._crd_installed = self.kube.crd_exists(SERVICE_MONITOR_CRD)
            self._crd_checked_at = now
        return self._crd_installed

    def _apply_children(
        self,
        spec: LLMDeploymentSpec,
        owner: rendering.Owner,
        model: dict[str, Any],
        body: dict[str, Any],
        deployment: dict[str, Any] | None,
        full: bool,
        fresh: bool,
        replicas_override: int | None,
    ) -> tuple[Verdict | None, dict[str, Any] | None]:
        """Apply what differs from the live objects.

        ``full`` checks every child (reading those no index holds) and removes children the spec no
        longer asks for; otherwise only the Deployment is compared, with the copy the index holds.
        A ``fresh`` object (never reconciled) has no children to read or remove: they are applied.
        Returns the ServiceMonitor verdict (when one is asked for) and the Deployment as it now is.
        """
        tracking_uri = spec.model.tracking_uri or self.settings.mlflow_tracking_uri
        children = rendering.render(
            spec,
            ResolvedModel.model_validate(model),
            owner,
            self.settings.model_fetcher_image,
            tracking_uri,
            replicas_override,
        )
        monitor: Verdict | None = None
        applied = []
        for child in children:
            kind, name = child["kind"], child["metadata"]["name"]
            if kind != "Deployment" and not full:
                continue
            if kind == "ServiceMonitor":
                if not self._service_monitor_crd_installed():
                    message = f"{SERVICE_MONITOR_CRD} is not installed; no ServiceMonitor"
                    monitor = Verdict("False", "CRDNotInstalled", message)
                    continue
                monitor = Verdict("True", "Created", f"ServiceMonitor {name} scrapes /metrics")
            if kind == "Deployment":
                live = deployment
            else:
                live = None if fresh else self.kube.get(kind, owner.namespace, name)
            if live is None or not contains(live, child):
                result = self.kube.apply(child)
                applied.append(f"{kind}/{name}" + (" (created)" if live is None else ""))
                if kind == "Deployment":
                    deployment = result
        if full and not fresh:
            applied.extend(self._prune(owner, {child["kind"] for child in children}))
        if applied:  # only real changes get here, so each is worth an Event
            self.kube.post_event(body, "Normal", "Applied", ", ".join(applied))
        return monitor, deployment

    def _prune(self, owner: rendering.Owner, rendered_kinds: set[str]) -> list[str]:
        removed = []
        for kind in PRUNABLE_KINDS:
            if kind in rendered_kinds or (
                kind == "ServiceMonitor" and not self._service_monitor_crd_installed()
            ):
                continue
            live = self.kube.get(kind, owner.namespace, owner.name)
            if (
                live is not None
                and (live["metadata"].get("labels") or {}).get(rendering.OWNER_LABEL) == owner.name
            ):
                self.kube.delete(kind, owner.namespace, owner.name)
                removed.append(f"{kind}/{owner.name} (deleted)")
        return removed

    # -- the whole reconcile ----------------------------------------------------------------------

    def reconcile(
        self,
        body: dict[str, Any],
        *,
        ask_registry: bool,
        full: bool,
        deployment: dict[str, Any] | None,
        pods: list[dict[str, Any]],
        replicas_override: int | None = None,
    ) -> None:
        """One pass over an LLMDeployment; ``deployment`` and ``pods`` come from the watch indexes,
        ``replicas_override`` from a CanaryRollout that splits traffic by replica ratio."""
        meta = body["metadata"]
        namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
        generation = int(meta.get("generation") or 0)
        status = dict(body.get("status") or {})
        try:
            spec = LLMDeploymentSpec.model_validate(body.get("spec") or {})
        except ValidationError as error:
            message = validation_message(error)
            conditions = set_condition(
                status.get("conditions") or [], "Ready", "False", "InvalidSpec", message, generation
            )
            self._write_status(
                namespace, name, status, {"observedGeneration": generation, "conditions": conditions}
            )
            return
        serves = (meta.get("annotations") or {}).get(rendering.SERVES_FOR_ANNOTATION, "")
        owner = rendering.Owner(name=name, namespace=namespace, uid=uid, serves=serves)
        verdict, model = self._resolution(spec, uid, status, ask_registry)
        self._announce_model(body, status, verdict, model)
        monitor = None
        if model is not None:
            fresh = "observedGeneration" not in status
            monitor, deployment = self._apply_children(
                spec, owner, model, body, deployment, full, fresh, replicas_override
            )
        selector = ",".join(f"{k}={v}" for k, v in rendering.selector_labels(owner).items())
        desired = desired_status(
            generation=generation,
            current=status,
            model_resolved=verdict,
            model=model,
            deployment=deployment,
            pods=pods if deployment is not None else [],
            desired_replicas=spec.replicas if replicas_override is None else replicas_override,
            selector=selector,
            endpoint=rendering.endpoint_url(owner),
        )
        if monitor is not None:
            desired["conditions"] = set_condition(
                desired["conditions"],
                "ServiceMonitorReady",
                monitor.status,
                monitor.reason,
                monitor.message,
                generation,
            )
        self._announce_readiness(body, desired)
        self._write_status(namespace, name, status, desired)
        if verdict.reason == "RegistryUnavailable" and ask_registry:
            raise RetryLater(verdict.message)

    def forget(self, uid: str) -> None:
        self._last_resolution.pop(uid, None)
        for key in [key for key in self._announced if key[0] == uid]:
            del self._announced[key]

    def _write_status(
        self, namespace: str, name: str, current: dict[str, Any], desired: dict[str, Any]
    ) -> None:
        changes = status_changes(current, desired)
        if changes:
            self.kube.patch_status("LLMDeployment", namespace, name, changes)

    def _announce(self, body: dict[str, Any], topic: str, warning: bool, reason: str, message: str) -> None:
        """Post an Event once per change: concurrent triggers see the same transition."""
        key = (body["metadata"]["uid"], topic)
        if self._announced.get(key) == reason + message:
            return
        self._announced[key] = reason + message
        self.kube.post_event(body, "Warning" if warning else "Normal", reason, message)

    def _announce_model(
        self, body: dict[str, Any], status: dict[str, Any], verdict: Verdict, model: dict[str, Any] | None
    ) -> None:
        if verdict.status == "False":
            self._announce(body, "model", True, verdict.reason, verdict.message)
        previous = status.get("model") or {}
        if (
            model is not None
            and previous.get("version") != model.get("version")
            and verdict.reason == "Resolved"
        ):
            change = f"from version {previous['version']} " if previous.get("version") else ""
            self._announce(body, "model", False, "ModelVersionChanged", f"{change}to {verdict.message}")

    def _announce_readiness(self, body: dict[str, Any], desired: dict[str, Any]) -> None:
        ready = find_condition(desired["conditions"], "Ready") or {}
        if ready.get("status") == "True":
            self._announce(body, "ready", False, "Ready", ready.get("message", ""))
        elif ready.get("reason") in FAILURE_REASONS:
            self._announce(body, "ready", True, ready["reason"], ready.get("message", ""))


def _first(store: Any) -> dict[str, Any] | None:
    return next(iter(store), None) if store is not None else None


def stable_replicas_of(rollouts: Any) -> int | None:
    """Replicas a running CanaryRollout asks of its target under replica-ratio routing."""
    for rollout in rollouts or []:
        state = rollout.get("status") or {}
        if rollout["metadata"].get("deletionTimestamp"):
            continue
        if state.get("stableReplicas") is not None and state.get("phase") not in ("Promoted", "RolledBack"):
            return int(state["stableReplicas"])
    return None


def register(settings: Settings) -> None:
    """Handlers and the in-memory indexes they read, so child events cost no API reads."""
    controller = LLMDeploymentController(settings, Kube())

    @kopf.index(GROUP, VERSION, "llmdeployments", id="llmdeployment_index")
    def llmdeployment_index(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
        return {(namespace, name): dict(body)}

    @kopf.index("apps", "v1", "deployments", labels=MANAGED, id="deployment_index")
    def deployment_index(
        namespace: str | None, labels: kopf.Labels, body: kopf.Body, **_: Any
    ) -> dict[Any, Any] | None:
        owner = labels.get(rendering.OWNER_LABEL)
        return {(namespace, owner): dict(body)} if owner else None

    @kopf.index("v1", "pods", labels=MANAGED, id="pod_index")
    def pod_index(
        namespace: str | None, labels: kopf.Labels, meta: kopf.Meta, status: kopf.Status, **_: Any
    ) -> dict[Any, Any] | None:
        owner = labels.get(rendering.OWNER_LABEL)
        if not owner:
            return None
        summary = {"name": meta["name"], "deletionTimestamp": meta.get("deletionTimestamp")}
        return {(namespace, owner): {"metadata": summary, "status": dict(status)}}

    def run(body: dict[str, Any], ask_registry: bool, full: bool, indexes: dict[str, Any]) -> None:
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        with telemetry.reconciling("LLMDeployment"):
            controller.reconcile(
                body,
                ask_registry=ask_registry,
                full=full,
                deployment=_first(indexes["deployment_index"].get(key)),
                pods=list(indexes["pod_index"].get(key, [])),
                replicas_override=stable_replicas_of(indexes["rollout_index"].get(key)),
            )

    def reconcile(body: kopf.Body, retry: int, **kwargs: Any) -> None:
        try:
            run(dict(body), ask_registry=True, full=True, indexes=kwargs)
        except RetryLater as error:
            raise kopf.TemporaryError(str(error), delay=min(300, 5 * 2**retry)) from error

    for decorator in (kopf.on.resume, kopf.on.create):
        decorator(GROUP, VERSION, "llmdeployments", id="reconcile")(reconcile)
    kopf.on.update(GROUP, VERSION, "llmdeployments", id="reconcile", field="spec")(reconcile)

    @kopf.on.timer(
        GROUP,
        VERSION,
        "llmdeployments",
        id="resync",
        interval=settings.resync_seconds,
        initial_delay=settings.resync_seconds,
    )
    def resync(body: kopf.Body, **kwargs: Any) -> None:
        with contextlib.suppress(RetryLater):  # already in status; the next tick asks again
            run(dict(body), ask_registry=True, full=True, indexes=kwargs)

    @kopf.on.delete(GROUP, VERSION, "llmdeployments", id="forget", optional=True)
    def forget(uid: str, **_: Any) -> None:
        controller.forget(uid)  # children go by garbage collection through their owner references

    def child_changed(namespace: str | None, labels: kopf.Labels, **kwargs: Any) -> None:
        owner = labels.get(rendering.OWNER_LABEL)
        body = _first(kwargs["llmdeployment_index"].get((namespace, owner))) if owner else None
        if body is not None and not body["metadata"].get("deletionTimestamp"):
            run(body, ask_registry=False, full=False, indexes=kwargs)

    kopf.on.event("apps", "v1", "deployments", labels=MANAGED, id="child-deployment")(child_changed)
    kopf.on.event("v1", "pods", labels=MANAGED, id="child-pod")(child_changed)

    @kopf.on.event(GROUP, VERSION, "canaryrollouts", id="rollout-replicas")
    def rollout_changed(namespace: str | None, spec: kopf.Spec, **kwargs: Any) -> None:
        """A rollout resizing its target under replica-ratio routing: apply the new count now."""
        target = (spec.get("targetRef") or {}).get("name")
        body = _first(kwargs["llmdeployment_index"].get((namespace, target))) if target else None
        if body is not None and not body["metadata"].get("deletionTimestamp"):
            run(body, ask_registry=False, full=False, indexes=kwargs)
