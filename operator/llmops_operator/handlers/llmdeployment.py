"""LLMDeployment controller: resolve the model, apply the children, tell the truth in status.

Level-triggered, as controllers built on client-go are: every event of the object (and the
listing at start) marks it in a work queue, and a pass compares what the spec asks for with what
the watches hold; events of every child it owns and of its Pods mark it too (status, and a hand
edit or deletion of a child put back at once); failed passes are retried with backoff; and, for
registry models only, a periodic timer polls the alias. Children are compared with in-memory
copies from the watches, so a pass that changes nothing reads and writes nothing, and of the
object itself only status is written. Objects with a direct model URI carry no finalizer: kopf
puts one on every object a timer serves, and a finalizer nobody removes (operator uninstalled,
namespace deleted) keeps an object Terminating forever.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import kopf
from pydantic import ValidationError

from .. import GROUP, VERSION, telemetry
from ..api.llmdeployment import LLMDeploymentSpec, ResolvedModel
from ..conditions import find_condition, invalid_spec_status, set_condition
from ..config import Settings
from ..durations import parse_duration
from ..kube import Kube, contains
from ..model_uris import parse_registry_uri
from ..names import (
    APPLIED,
    DIRECT_SOURCE,
    KUBECTL_LAST_APPLIED_ANNOTATION,
    LAST_HANDLED_ANNOTATION,
    MANAGED,
    MODEL_NOT_FOUND,
    MODEL_RESOLVED,
    MODEL_VERSION_CHANGED,
    OWNER_LABEL,
    READY,
    REGISTRY_UNAVAILABLE,
    RESOLVED,
    RESOLVING,
    SERVES_FOR_ANNOTATION,
)
from ..registry.mlflow import ModelNotFound, RegistryUnavailable, ResolvedVersion, resolve
from ..rendering import llmdeployment as rendering
from ..serving_status import (
    FAILURE_REASONS,
    OPTIONAL_KINDS,
    ConditionState,
    desired_status,
    optional_children,
)
from ..timestamps import now_text
from ..workqueue import RETRY, CoalescingQueue, KeyedLocks, RetryLater

PRUNABLE_KINDS = ("PodDisruptionBudget", "HorizontalPodAutoscaler", "ServiceMonitor", "InferencePool")
# Every kind the controller applies: kind -> (group/version, plural, id of its watch's index).
CHILD_RESOURCES: dict[str, tuple[str, str, str]] = {
    "Deployment": ("apps/v1", "deployments", "deployment_index"),
    "Service": ("v1", "services", "service_index"),
    "PersistentVolumeClaim": ("v1", "persistentvolumeclaims", "claim_index"),
    "PodDisruptionBudget": ("policy/v1", "poddisruptionbudgets", "pdb_index"),
    "HorizontalPodAutoscaler": ("autoscaling/v2", "horizontalpodautoscalers", "hpa_index"),
    "ServiceMonitor": ("monitoring.coreos.com/v1", "servicemonitors", "servicemonitor_index"),
    "InferencePool": ("inference.networking.k8s.io/v1", "inferencepools", "inferencepool_index"),
}
# Large fields nothing here reads; left out of the in-memory copies.
UNREAD_ANNOTATIONS = (KUBECTL_LAST_APPLIED_ANNOTATION, LAST_HANDLED_ANNOTATION)
CRD_CHECK_SECONDS = 60.0
# Threads for passes: creates and spec changes have their own, so status work from children's
# events never queues ahead of them. Passes mostly wait on the API server (a Service create can
# take a second on a busy control plane): 16 threads capped a burst of 1000 creates at about
# 17 objects/s, 64 let the API server set the pace.
SPEC_WORKERS, STATUS_WORKERS = 64, 16
SPEC = "LLMDeployment"  # the topic of a pass for the object itself: first seen, or changed
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resolution:
    """What the registry last said about an object's URI, kept in memory: a copy of the object
    from a watch can be older than the status this process wrote, and must not undo it."""

    uri: str
    verdict: ConditionState
    model: dict[str, Any] | None
    answered_at: float | None  # monotonic time of the last answer (None: never answered)


@dataclass(frozen=True)
class StatusWrite:
    """The status this process last wrote for an object. A watch copy whose resourceVersion is
    in ``older`` predates that write: a pass must compare with what was written, or it writes the
    same status again (a burst of 1000 creates made about one such write per object)."""

    status: dict[str, Any]  # as the API server answered the write
    version: str  # its resourceVersion
    older: frozenset[str]


class LLMDeploymentController:
    def __init__(self, settings: Settings, kube: Kube) -> None:
        self.settings = settings
        self.kube = kube
        self._resolutions: dict[str, Resolution] = {}  # uid -> the last registry answer
        self._status_writes: dict[str, StatusWrite] = {}  # uid -> the last status written
        self._announced: dict[tuple[str, str], str] = {}  # (uid, topic) -> what the last Event said
        self._locks: KeyedLocks[tuple[str, str]] = KeyedLocks()  # held while an object is reconciled
        self._handled: dict[str, tuple[int, str]] = {}  # uid -> what its last whole pass saw
        self._crds: dict[str, tuple[bool, float]] = {}  # CRD name -> (installed, when checked)

    # -- model resolution -------------------------------------------------------------------------

    def _known(self, uri: str, uid: str, status: dict[str, Any]) -> Resolution | None:
        """The last answer for ``uri``: this process's memory first, else the object's status."""
        remembered = self._resolutions.get(uid)
        if remembered is not None and remembered.uri == uri:
            return remembered
        condition = find_condition(status.get("conditions") or [], MODEL_RESOLVED)
        if condition is None:
            return None
        previous = status.get("model") if (status.get("model") or {}).get("uri") == uri else None
        verdict = ConditionState(condition["status"], condition["reason"], condition.get("message", ""))
        return Resolution(uri, verdict, previous, None)

    def _resolution(
        self, spec: LLMDeploymentSpec, uid: str, status: dict[str, Any], ask_registry: bool
    ) -> tuple[ConditionState, dict[str, Any] | None]:
        uri = spec.model.uri
        ref = parse_registry_uri(uri)
        if ref is None:
            model = ResolvedModel(uri=uri, version=spec.model.revision or "", source=uri)
            return ConditionState("True", DIRECT_SOURCE, f"serving {uri}"), model.model_dump(
                exclude_none=True
            )
        known = self._known(uri, uid, status)
        previous = known.model if known is not None else None
        if not (ask_registry and registry_due(spec, known, time.monotonic())):
            if known is None:  # keep what the last registry answer said
                return ConditionState("Unknown", RESOLVING, f"asking the registry for {uri}"), previous
            return known.verdict, previous
        tracking_uri = spec.model.tracking_uri or self.settings.mlflow_tracking_uri
        answered_at = known.answered_at if known is not None else None
        try:
            found = resolve(ref, tracking_uri)
        except RegistryUnavailable as error:
            verdict = ConditionState("False", REGISTRY_UNAVAILABLE, str(error))
        except ModelNotFound as error:
            verdict = ConditionState("False", MODEL_NOT_FOUND, str(error))
        else:
            answered_at = time.monotonic()
            verdict = ConditionState("True", RESOLVED, f"{uri} is version {found.version} at {found.source}")
            previous = resolved_model(uri, found, previous)
        self._resolutions[uid] = Resolution(uri, verdict, previous, answered_at)
        return verdict, previous

    # -- children ---------------------------------------------------------------------------------

    def _crd_installed(self, crd: str) -> bool:
        now = time.monotonic()
        installed, checked_at = self._crds.get(crd, (False, -CRD_CHECK_SECONDS))
        if now - checked_at > CRD_CHECK_SECONDS:
            installed = self.kube.crd_exists(crd)
            self._crds[crd] = (installed, now)
        return installed

    def _apply_children(
        self,
        spec: LLMDeploymentSpec,
        owner: rendering.Owner,
        model: dict[str, Any],
        body: dict[str, Any],
        live: dict[str, dict[str, Any] | None],
        kinds: Collection[str] | None,
        replicas_override: int | None,
    ) -> tuple[dict[str, ConditionState], dict[str, Any] | None]:
        """Apply each child that differs from its live copy in ``live`` (kind -> object or None).

        ``kinds`` limits the comparison to those kinds (a child's own event); None compares every
        kind and removes children the spec no longer asks for.
        Returns the verdicts on optional kinds asked for (condition type -> state) and the Deployment
        as it now is.
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
        installed = {
            OPTIONAL_KINDS[c["kind"]][0]: self._crd_installed(OPTIONAL_KINDS[c["kind"]][0])
            for c in children
            if c["kind"] in OPTIONAL_KINDS
        }
        optional, absent = optional_children(children, installed)
        compared = [c for c in children if c["kind"] not in absent and (kinds is None or c["kind"] in kinds)]
        applied, deployment = self._apply_changed(compared, live)
        if kinds is None:
            rendered = {child["kind"] for child in children}
            applied.extend(self._prune(owner, live, rendered))
        if applied:  # only real changes get here, so each is worth an Event
            self.kube.post_event(body, "Normal", APPLIED, ", ".join(applied))
        return optional, deployment

    def _apply_changed(
        self, children: list[dict[str, Any]], live: dict[str, dict[str, Any] | None]
    ) -> tuple[list[str], dict[str, Any] | None]:
        """Apply each child that differs from its live copy; what was applied, and the Deployment
        as it now is."""
        applied = []
        deployment = live.get("Deployment")
        for child in children:
            kind, name = child["kind"], child["metadata"]["name"]
            current = live.get(kind)
            if current is None or not contains(current, child):
                result = self.kube.apply(child)
                applied.append(f"{kind}/{name}" + (" (created)" if current is None else ""))
                if kind == "Deployment":
                    deployment = result
        return applied, deployment

    def _prune(
        self, owner: rendering.Owner, live: dict[str, dict[str, Any] | None], rendered: set[str]
    ) -> list[str]:
        removed = []
        for kind in PRUNABLE_KINDS:
            current = live.get(kind)
            if kind in rendered or current is None:
                continue
            if (current["metadata"].get("labels") or {}).get(OWNER_LABEL) == owner.name:
                self.kube.delete(kind, owner.namespace, current["metadata"]["name"])
                removed.append(f"{kind}/{current['metadata']['name']} (deleted)")
        return removed

    # -- the whole reconcile ----------------------------------------------------------------------

    def reconcile(
        self,
        body: dict[str, Any],
        *,
        ask_registry: bool,
        live: dict[str, dict[str, Any] | None],
        pods: list[dict[str, Any]],
        kinds: Collection[str] | None = None,
        replicas_override: int | None = None,
    ) -> None:
        """One pass over an LLMDeployment; ``live`` (children by kind) and ``pods`` come from the
        watches, ``kinds`` limits which children are compared, ``replicas_override`` comes from a
        CanaryRollout that splits traffic by replica ratio. Callers hold ``lock(namespace, name)``."""
        meta = body["metadata"]
        generation = int(meta.get("generation") or 0)
        status = self._current_status(body)
        try:
            spec = LLMDeploymentSpec.model_validate(body.get("spec") or {})
        except ValidationError as error:
            self._write_status(body, status, invalid_spec_status(status, generation, error))
            self._handled[meta["uid"]] = _inputs(body)
            return
        owner = owner_of_object(body)
        verdict, model = self._resolution(spec, owner.uid, status, ask_registry)
        self._announce_model(body, status, verdict, model)
        optional: dict[str, ConditionState] = {}
        deployment = live.get("Deployment")
        if model is not None:
            optional, deployment = self._apply_children(
                spec, owner, model, body, live, kinds, replicas_override
            )
        desired = desired_status(
            generation=generation,
            current=status,
            model_resolved=verdict,
            model=model,
            deployment=deployment,
            pods=pods if deployment is not None else [],
            desired_replicas=spec.replicas if replicas_override is None else replicas_override,
            selector=",".join(f"{k}={v}" for k, v in rendering.selector_labels(owner).items()),
            endpoint=rendering.endpoint_url(owner),
        )
        for condition, state in optional.items():
            desired["conditions"] = set_condition(
                desired["conditions"], condition, state.status, state.reason, state.message, generation
            )
        self._announce_readiness(body, status, desired)
        self._write_status(body, status, desired)
        if kinds is None:
            self._handled[owner.uid] = _inputs(body)
        if verdict.reason == REGISTRY_UNAVAILABLE and ask_registry:
            raise RetryLater(verdict.message)

    def handled(self, body: dict[str, Any]) -> bool:
        """Whether a whole pass already saw this generation and annotations: an event that only
        carries the status this process wrote needs none."""
        return self._handled.get(body["metadata"]["uid"]) == _inputs(body)

    def lock(self, namespace: str, name: str) -> threading.Lock:
        """One pass at a time per object: a timer, a spec change and children's events come in on
        different threads, and each must see what the one before it wrote."""
        return self._locks((namespace, name))

    def forget(self, namespace: str, name: str, uid: str) -> None:
        self._resolutions.pop(uid, None)
        self._handled.pop(uid, None)
        self._status_writes.pop(uid, None)
        self._locks.forget((namespace, name))
        for key in [key for key in self._announced if key[0] == uid]:
            del self._announced[key]

    def _current_status(self, body: dict[str, Any]) -> dict[str, Any]:
        """The object's status: the watch's copy, unless that copy predates this process's write."""
        meta = body["metadata"]
        written = self._status_writes.get(meta["uid"])
        if written is not None:
            if meta.get("resourceVersion") in written.older:
                return dict(written.status)
            if meta.get("resourceVersion") == written.version:  # the watch has caught up
                self._status_writes.pop(meta["uid"], None)
        return dict(body.get("status") or {})

    def _write_status(self, body: dict[str, Any], current: dict[str, Any], desired: dict[str, Any]) -> None:
        updated = self.kube.write_status(body, current, desired)
        if updated is None:
            return
        meta = body["metadata"]
        before = self._status_writes.get(meta["uid"])
        older = {str(meta.get("resourceVersion"))}
        if before is not None:
            older |= before.older | {before.version}
        self._status_writes[meta["uid"]] = StatusWrite(
            dict(updated.get("status") or {}), str(updated["metadata"]["resourceVersion"]), frozenset(older)
        )

    def _announce(self, body: dict[str, Any], topic: str, warning: bool, reason: str, message: str) -> None:
        """Post an Event once per change: concurrent triggers see the same transition."""
        key = (body["metadata"]["uid"], topic)
        if self._announced.get(key) == reason + message:
            return
        self._announced[key] = reason + message
        self.kube.post_event(body, "Warning" if warning else "Normal", reason, message)

    def _announce_model(
        self,
        body: dict[str, Any],
        status: dict[str, Any],
        verdict: ConditionState,
        model: dict[str, Any] | None,
    ) -> None:
        said = {"type": MODEL_RESOLVED, **asdict(verdict)}
        if verdict.status == "False" and not _says(status, said):
            self._announce(body, "model", True, verdict.reason, verdict.message)
        previous = status.get("model") or {}
        if (
            model is not None
            and previous.get("version") != model.get("version")
            and verdict.reason == RESOLVED
        ):
            change = f"from version {previous['version']} " if previous.get("version") else ""
            self._announce(body, "model", False, MODEL_VERSION_CHANGED, f"{change}to {verdict.message}")

    def _announce_readiness(
        self, body: dict[str, Any], status: dict[str, Any], desired: dict[str, Any]
    ) -> None:
        ready = find_condition(desired["conditions"], READY) or {}
        if _says(status, ready):
            return  # announced when the status changed to this (by this process or one before it)
        if ready.get("status") == "True":
            self._announce(body, "ready", False, READY, ready.get("message", ""))
        elif ready.get("reason") in FAILURE_REASONS:
            self._announce(body, "ready", True, ready["reason"], ready.get("message", ""))


def registry_due(spec: LLMDeploymentSpec, known: Resolution | None, moment: float) -> bool:
    """Whether the registry must be asked again: never answered, or not with a model, or the
    alias is followed and its poll interval has passed (``moment``: monotonic time)."""
    if known is None or known.model is None or known.verdict.status != "True" or known.answered_at is None:
        return True
    poll = parse_duration(spec.model.alias_poll_interval)
    return spec.model.follow_alias and moment - known.answered_at >= poll


def resolved_model(uri: str, found: ResolvedVersion, previous: dict[str, Any] | None) -> dict[str, Any]:
    """status.model for a registry answer; the previous one (and so its resolvedAt) when the
    version did not change."""
    if previous is not None and previous.get("version") == found.version:
        return previous
    model = ResolvedModel(uri=uri, version=found.version, source=found.source, resolved_at=now_text())
    return model.model_dump(exclude_none=True)


def owner_of_object(body: dict[str, Any]) -> rendering.Owner:
    meta = body["metadata"]
    serves = (meta.get("annotations") or {}).get(SERVES_FOR_ANNOTATION, "")
    return rendering.Owner(name=meta["name"], namespace=meta["namespace"], uid=meta["uid"], serves=serves)


def _inputs(body: dict[str, Any]) -> tuple[int, str]:
    """What a pass reads from the object besides its children: the spec (by its generation) and
    the annotation a CanaryRollout sets on a canary."""
    meta = body["metadata"]
    serves = (meta.get("annotations") or {}).get(SERVES_FOR_ANNOTATION, "")
    return int(meta.get("generation") or 0), serves


def _says(status: dict[str, Any], condition: Mapping[str, Any]) -> bool:
    """Whether the object's status already carries ``condition`` (its type, status, reason and
    message): a restarted operator must not announce again what its predecessor announced."""
    current = find_condition(status.get("conditions") or [], condition.get("type", "")) or {}
    return all(current.get(key) == condition.get(key) for key in ("status", "reason", "message"))


def _first(store: Any) -> dict[str, Any] | None:
    return next(iter(store), None) if store is not None else None


def in_memory_copy(body: kopf.Body) -> dict[str, Any]:
    """What the controller keeps of a watched object: all but managedFields and the annotations
    that repeat the whole spec, which nothing here reads and which are often most of its bytes."""
    copy = dict(body)
    metadata = {k: v for k, v in body["metadata"].items() if k != "managedFields"}
    annotations = metadata.get("annotations")
    if annotations:
        metadata["annotations"] = {k: v for k, v in annotations.items() if k not in UNREAD_ANNOTATIONS}
    copy["metadata"] = metadata
    return copy


def uses_registry(spec: kopf.Spec, **_: Any) -> bool:
    """Only registry models need the periodic timer (alias polling, retries while it is down)."""
    return parse_registry_uri(str((spec.get("model") or {}).get("uri", ""))) is not None


def stable_replicas_of(rollouts: Any) -> int | None:
    """Replicas a running CanaryRollout asks of its target under replica-ratio routing."""
    for rollout in rollouts or []:
        state = rollout.get("status") or {}
        if rollout["metadata"].get("deletionTimestamp"):
            continue
        if state.get("stableReplicas") is not None and state.get("phase") not in ("Promoted", "RolledBack"):
            return int(state["stableReplicas"])
    return None


# Every kopf index a pass reads; register_indexes registers each of them.
ROLLOUT_REPLICAS_INDEX = "rollout_replicas_index"
NEEDED_INDEXES = (
    "llmdeployment_index",
    "pod_index",
    ROLLOUT_REPLICAS_INDEX,
    *(index_id for _, _, index_id in CHILD_RESOURCES.values()),
)


class MissingIndexes(kopf.PermanentError):
    """An index a pass reads was not registered: the operator must not start."""


def register_indexes() -> None:
    """The in-memory copies a pass reads, so child events cost no API reads."""

    @kopf.index(GROUP, VERSION, "llmdeployments", id="llmdeployment_index")
    def llmdeployment_index(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Any, Any]:
        return {(namespace, name): in_memory_copy(body)}

    def child_index(
        namespace: str | None, labels: kopf.Labels, body: kopf.Body, **_: Any
    ) -> dict[Any, Any] | None:
        owner = labels.get(OWNER_LABEL)
        return {(namespace, owner): in_memory_copy(body)} if owner else None

    for group_version, plural, index_id in CHILD_RESOURCES.values():
        kopf.index(group_version, plural, labels=MANAGED, id=index_id)(child_index)

    @kopf.index("v1", "pods", labels=MANAGED, id="pod_index")
    def pod_index(
        namespace: str | None, labels: kopf.Labels, meta: kopf.Meta, status: kopf.Status, **_: Any
    ) -> dict[Any, Any] | None:
        owner = labels.get(OWNER_LABEL)
        if not owner:
            return None
        summary = {"name": meta["name"], "deletionTimestamp": meta.get("deletionTimestamp")}
        return {(namespace, owner): {"metadata": summary, "status": dict(status)}}

    @kopf.index(GROUP, VERSION, "canaryrollouts", id=ROLLOUT_REPLICAS_INDEX)
    def rollout_replicas_index(
        namespace: str | None, spec: kopf.Spec, meta: kopf.Meta, status: kopf.Status, **_: Any
    ) -> dict[Any, Any]:
        """What stable_replicas_of reads of the rollouts of each target, and nothing more."""
        state = {"phase": status.get("phase"), "stableReplicas": status.get("stableReplicas")}
        summary = {"metadata": {"deletionTimestamp": meta.get("deletionTimestamp")}, "status": state}
        return {(namespace, (spec.get("targetRef") or {}).get("name")): summary}


class Passes:
    """The queues of passes over LLMDeployments and the kopf indexes the passes read."""

    def __init__(self, controller: LLMDeploymentController) -> None:
        self.controller = controller
        self.indexes: dict[str, Any] = {}  # kopf's: live mappings, handed over at startup
        self.spec_changed: CoalescingQueue[tuple[str, str]] = CoalescingQueue(
            self.queued, workers=SPEC_WORKERS, name="llmdeployment"
        )
        self.children_changed: CoalescingQueue[tuple[str, str]] = CoalescingQueue(
            self.queued, workers=STATUS_WORKERS, name="llmdeployment-children"
        )

    def take_indexes(self, given: Mapping[str, Any]) -> None:
        missing = [index_id for index_id in NEEDED_INDEXES if index_id not in given]
        if missing:
            raise MissingIndexes(
                f"LLMDeployment passes read the kopf indexes {', '.join(missing)}, which are not "
                "registered (handlers/llmdeployment.register_indexes registers them)"
            )
        self.indexes = {index_id: given[index_id] for index_id in NEEDED_INDEXES}

    def owner_of(self, key: tuple[str, str]) -> dict[str, Any] | None:
        """The LLMDeployment as the watch last saw it, unless it is going."""
        body = _first(self.indexes["llmdeployment_index"].get(key))
        return None if body is None or body["metadata"].get("deletionTimestamp") else body

    def run(
        self,
        key: tuple[str, str],
        *,
        kinds: Collection[str] | None,
        ask_registry: bool,
        body: dict[str, Any] | None = None,
        unless_handled: bool = False,
    ) -> None:
        """Reconcile ``body`` (None: the watch's copy, read under the object's lock so it is the
        newest) with the children the watches hold. With ``kinds``, only those are compared;
        ``unless_handled`` skips an object whose generation a whole pass has already seen."""
        with self.controller.lock(*key):
            body = body if body is not None else self.owner_of(key)
            if body is None or (unless_handled and self.controller.handled(body)):
                return
            indexes = self.indexes
            live = {child: _first(indexes[ids[2]].get(key)) for child, ids in CHILD_RESOURCES.items()}
            with telemetry.reconciling("LLMDeployment"):
                self.controller.reconcile(
                    body,
                    ask_registry=ask_registry,
                    live=live,
                    pods=list(indexes["pod_index"].get(key, [])),
                    kinds=kinds,
                    replicas_override=stable_replicas_of(indexes[ROLLOUT_REPLICAS_INDEX].get(key)),
                )
            if kinds is None:
                generation = body["metadata"].get("generation")
                logger.info("LLMDeployment %s/%s generation %s reconciled", *key, generation)

    def queued(self, key: tuple[str, str], topics: frozenset[str]) -> None:
        """The object's own events and retries get a whole pass (and may ask the registry);
        children's events compare only their kinds."""
        whole = SPEC in topics or RETRY in topics
        self.run(key, kinds=None if whole else topics, ask_registry=whole, unless_handled=topics == {SPEC})

    def mark(self, namespace: str | None, owner: str | None, kind: str) -> None:
        if namespace and owner:
            self.children_changed.mark((namespace, owner), kind)

    def forget(self, key: tuple[str, str], uid: str) -> None:
        self.controller.forget(*key, uid)
        self.spec_changed.forget(key)
        self.children_changed.forget(key)

    def shutdown(self) -> None:
        self.spec_changed.shutdown()
        self.children_changed.shutdown()


def register(settings: Settings) -> None:
    """Handlers, the indexes they read, and the check at startup that every one is there."""
    passes = Passes(LLMDeploymentController(settings, Kube()))
    register_indexes()

    @kopf.on.startup()
    async def keep_indexes(**kwargs: Any) -> None:
        passes.take_indexes(kwargs)

    @kopf.on.cleanup()
    async def stop_queues(**_: Any) -> None:
        passes.shutdown()

    @kopf.on.event(GROUP, VERSION, "llmdeployments", id="changed")
    async def llmdeployment_changed(
        type: str | None, namespace: str | None, name: str, uid: str, **_: Any
    ) -> None:
        """Every event of the object, including the listing at start, marks it; the pass skips a
        generation it has seen. No create/update handlers: kopf would write its last-handled spec
        into an annotation on every create and change, a write per object that status carries
        already (observedGeneration). An object that is gone is forgotten: an event, not a
        deletion handler, since an object without a finalizer is gone before one could run."""
        key = (str(namespace), name)
        if type == "DELETED":
            passes.forget(key, uid)
        else:
            passes.spec_changed.mark(key, SPEC)

    @kopf.on.timer(
        GROUP,
        VERSION,
        "llmdeployments",
        id="resync",
        interval=settings.resync_seconds,
        initial_delay=settings.resync_seconds,
        when=uses_registry,
    )
    def resync(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> None:
        with contextlib.suppress(RetryLater):  # already in status; the next tick asks again
            passes.run((str(namespace), name), kinds=None, ask_registry=True, body=dict(body))

    register_child_events(passes)


def register_child_events(passes: Passes) -> None:
    """Events of children, pods and rollouts mark their LLMDeployment for the kinds they touch."""

    def child_handler(kind: str) -> Any:
        async def child_changed(namespace: str | None, labels: kopf.Labels, **_: Any) -> None:
            passes.mark(namespace, labels.get(OWNER_LABEL), kind)

        return child_changed

    for kind, (group_version, plural, _) in CHILD_RESOURCES.items():
        kopf.on.event(group_version, plural, labels=MANAGED, id=f"child-{plural}")(child_handler(kind))

    @kopf.on.event("v1", "pods", labels=MANAGED, id="child-pod")
    async def pod_changed(namespace: str | None, labels: kopf.Labels, **_: Any) -> None:
        """For status; the Deployment is compared too, with the watch's copy."""
        passes.mark(namespace, labels.get(OWNER_LABEL), "Deployment")

    @kopf.on.event(GROUP, VERSION, "canaryrollouts", id="rollout-replicas")
    async def rollout_changed(namespace: str | None, spec: kopf.Spec, **_: Any) -> None:
        """A rollout resizing its target under replica-ratio routing: apply the new count now."""
        passes.mark(namespace, (spec.get("targetRef") or {}).get("name"), "Deployment")
