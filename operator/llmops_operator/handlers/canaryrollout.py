"""CanaryRollout controller: one tick per rollout moves it along; every bit of state is in status.

Each tick reads the rollout fresh (never a cached status), applies the canary LLMDeployment and
the traffic split, measures when a measurement is due, and writes status only when it changed.
Every side effect is idempotent (server-side apply, a route read back, an alias compared before it
is moved), so an operator killed mid-step resumes at the same step with the same canary.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from datetime import UTC, datetime
from typing import Any

import kopf
from kubernetes.client import ApiException
from pydantic import ValidationError

from .. import API_VERSION, GROUP, VERSION, telemetry
from ..api.canaryrollout import CanaryRollout, CanaryRolloutSpec, CanaryRolloutStatus
from ..api.common import validation_message
from ..api.llmdeployment import LLMDeploymentSpec
from ..conditions import set_condition, status_changes
from ..config import Settings
from ..durations import parse_duration
from ..kube import Kube, api_error_text, contains
from ..metrics import provider_for
from ..model_uris import parse_registry_uri
from ..names import (
    CANARY_OF_LABEL,
    REJECTED,
    REQUEST_ANNOTATION,
    ROLLOUT_LABEL,
    SERVES_FOR_ANNOTATION,
    VERDICT_TAG,
    canary_name,
)
from ..registry.mlflow import RegistryUnavailable, set_alias, tag_version
from ..rollout import analysis, progress
from ..rollout.progress import TERMINAL
from ..routing import RouteNotUsable, Sides, TrafficRouter, router_for
from ..timestamps import format_time, now_text, seconds_since
from ..workqueue import KeyedLocks

log = logging.getLogger(__name__)


def canary_overlay(spec: CanaryRolloutSpec, target_spec: dict[str, Any]) -> dict[str, Any]:
    """The canary's changes as a partial LLMDeployment spec.

    A new model URI replaces the target's model identity: a pinned version cannot follow an alias,
    so ``followAlias`` goes off with it (the alias itself moves at promotion).
    """
    overlay = dict(spec.canary.model_dump(mode="json", by_alias=True, exclude_none=True))
    model = overlay.get("model")
    target_model = target_spec.get("model") or {}
    if isinstance(model, dict) and "uri" in model and target_model.get("followAlias"):
        ref = parse_registry_uri(model["uri"])
        if ref is None or ref.alias is None:
            model["followAlias"] = False
    return overlay


def merged(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """``overlay`` laid over ``base``: maps merge, everything else is replaced."""
    result = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def request_of(meta: dict[str, Any]) -> tuple[str, progress.Request | None]:
    """The manual request annotation: ``verb`` or ``verb:nonce`` (the CLI adds a nonce)."""
    raw = str((meta.get("annotations") or {}).get(REQUEST_ANNOTATION, ""))
    verb = raw.partition(":")[0].strip()
    for known in progress.REQUESTS:
        if verb == known:
            return raw, known
    return raw, None


class CanaryRolloutController:
    def __init__(self, settings: Settings, kube: Kube) -> None:
        self.settings = settings
        self.kube = kube

    # -- reading the world ------------------------------------------------------------------------

    def _ready(self, deployment: dict[str, Any] | None) -> tuple[int, int]:
        """(ready pods, pods) of a Deployment."""
        if deployment is None:
            return 0, 0
        state = deployment.get("status") or {}
        return int(state.get("readyReplicas") or 0), int(state.get("replicas") or 0)

    def _sides(self, namespace: str, target: str, full: int) -> Sides:
        canary_ready, _ = self._ready(self.kube.get("Deployment", namespace, canary_name(target)))
        stable_ready, stable_pods = self._ready(self.kube.get("Deployment", namespace, target))
        return Sides(full=full, canary_ready=canary_ready, stable_ready=stable_ready, stable_pods=stable_pods)

    def _router(self, spec: CanaryRolloutSpec, namespace: str, target: str) -> TrafficRouter:
        return router_for(spec, self.kube, namespace)

    def _rival(self, body: dict[str, Any], siblings: list[dict[str, Any]]) -> str | None:
        """The rollout that owns the target while this one waits: the one already running, else
        the oldest, so exactly one of several rollouts of one LLMDeployment proceeds."""
        me = body["metadata"]

        def rank(other: dict[str, Any]) -> tuple[int, str, str]:
            phase = (other.get("status") or {}).get("phase", "")
            running = 0 if phase in ("Progressing", "Paused", "Promoting") else 1
            return running, other["metadata"].get("creationTimestamp", ""), other["metadata"]["name"]

        active = [
            other
            for other in siblings
            if (other.get("status") or {}).get("phase") not in TERMINAL
            and not other["metadata"].get("deletionTimestamp")
        ]
        if not any(other["metadata"]["uid"] == me["uid"] for other in active):
            active.append(body)
        first = min(active, key=rank)
        return None if first["metadata"]["uid"] == me["uid"] else str(first["metadata"]["name"])

    # -- writing the world ------------------------------------------------------------------------

    def _apply_canary(
        self,
        rollout: dict[str, Any],
        target: dict[str, Any],
        spec: CanaryRolloutSpec,
        replicas: int,
        shares_service: bool,
    ) -> dict[str, Any] | None:
        """The canary LLMDeployment: the target's spec with the overlay, owned by the rollout.
        None while another (ended) rollout's canary of the same target is still being removed."""
        target_name = target["metadata"]["name"]
        canary_spec = merged(target.get("spec") or {}, canary_overlay(spec, target.get("spec") or {}))
        canary_spec["replicas"] = replicas
        canary_spec.pop("autoscaling", None)  # the rollout sizes the canary
        meta = rollout["metadata"]
        desired: dict[str, Any] = {
            "apiVersion": API_VERSION,
            "kind": "LLMDeployment",
            "metadata": {
                "name": canary_name(target_name),
                "namespace": meta["namespace"],
                "labels": {CANARY_OF_LABEL: target_name, ROLLOUT_LABEL: meta["name"]},
                "annotations": {SERVES_FOR_ANNOTATION: target_name} if shares_service else {},
                "ownerReferences": [
                    {
                        "apiVersion": API_VERSION,
                        "kind": "CanaryRollout",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": canary_spec,
        }
        live = self.kube.get("LLMDeployment", meta["namespace"], canary_name(target_name))
        if live is not None:
            refs = live["metadata"].get("ownerReferences") or []
            owner: dict[str, Any] = next((ref for ref in refs if ref.get("controller")), {})
            if owner.get("uid") != meta["uid"]:  # an ended rollout's canary: it goes before ours comes
                if not live["metadata"].get("deletionTimestamp"):
                    self.kube.delete("LLMDeployment", meta["namespace"], canary_name(target_name))
                return None
            if contains(live, desired):
                return live
        return self.kube.apply(desired)

    def _scale_canary(self, namespace: str, target: str, replicas: int) -> None:
        live = self.kube.get("LLMDeployment", namespace, canary_name(target))
        if live is not None and (live.get("spec") or {}).get("replicas") != replicas:
            self.kube.scale("LLMDeployment", namespace, canary_name(target), replicas)

    # -- the tick ---------------------------------------------------------------------------------

    def tick(self, namespace: str, name: str, siblings: list[dict[str, Any]]) -> None:
        body = self.kube.get("CanaryRollout", namespace, name)  # fresh: a cached status may be stale
        if body is None or body["metadata"].get("deletionTimestamp"):
            return
        current = dict(body.get("status") or {})
        generation = int(body["metadata"].get("generation") or 0)
        try:
            rollout = CanaryRollout.model_validate(body)
        except ValidationError as error:
            conditions = set_condition(
                current.get("conditions") or [],
                "Ready",
                "False",
                "InvalidSpec",
                validation_message(error),
                generation,
            )
            self._write(body, current, {"observedGeneration": generation, "conditions": conditions})
            return
        status = CanaryRolloutStatus.model_validate(current)
        step = _Tick(self, body, rollout.spec, status, datetime.now(UTC))
        detail = step.run(siblings)
        steps = step.steps
        # None values stay in: in a merge patch they remove a field the status no longer has.
        desired = status.model_dump(mode="json", by_alias=True)
        desired["observedGeneration"] = generation
        desired["conditions"] = progress.conditions_for(
            status, steps, generation, detail, now_text(), step.waiting_reason
        )
        self._write(body, current, desired)
        telemetry.rollout_observed(namespace, name, status.phase, status.canary_weight)
        for type_, reason, message in step.events:
            self.kube.post_event(body, type_, reason, message)

    def _write(self, body: dict[str, Any], current: dict[str, Any], desired: dict[str, Any]) -> None:
        changes = status_changes(current, desired)
        if changes:
            meta = body["metadata"]
            self.kube.patch_status("CanaryRollout", meta["namespace"], meta["name"], changes)


class _Tick:
    """One pass over one rollout: the steps the handler carries out, in order."""

    def __init__(
        self,
        controller: CanaryRolloutController,
        body: dict[str, Any],
        spec: CanaryRolloutSpec,
        status: CanaryRolloutStatus,
        now: datetime,
    ) -> None:
        self.c, self.kube = controller, controller.kube
        self.body, self.spec, self.status, self.now = body, spec, status, now
        self.namespace, self.name = body["metadata"]["namespace"], body["metadata"]["name"]
        self.target = spec.target_ref.name
        self.steps = progress.plan(spec)
        self.events: list[tuple[str, str, str]] = []
        self._pause_detail = ""
        self.waiting_reason = "Waiting"  # or which other thing this rollout waits for

    def event(self, warning: bool, reason: str, message: str) -> None:
        self.events.append(("Warning" if warning else "Normal", reason, message))

    def run(self, siblings: list[dict[str, Any]]) -> str:
        """Returns the detail the conditions carry."""
        status = self.status
        raw, request = request_of(self.body["metadata"])
        if request is not None and raw != status.handled_request:
            status.handled_request = raw
            if request == "retry" and status.phase == "RolledBack":
                self._reset()
                self.event(False, "Retry", "starting the rollout again from the first step")
            elif status.phase not in TERMINAL:
                message = self._manual(request)
                if message:
                    return message
        if status.phase == "Promoted":
            return self._condition_message("Promoted")
        if status.phase == "RolledBack":
            self._after_rollback()
            return self._condition_message("RolledBack")
        rival = self.c._rival(self.body, siblings)
        if rival is not None:
            status.phase = "Waiting"
            self.waiting_reason = "WaitingForRollout"
            return f"CanaryRollout {rival} is already rolling out {self.target}"
        target = self.kube.get("LLMDeployment", self.namespace, self.target)
        if target is None:
            status.phase = "Waiting"
            self.waiting_reason = "TargetNotFound"
            return f"LLMDeployment {self.target} not found"
        try:
            target_spec = LLMDeploymentSpec.model_validate(target.get("spec") or {})
        except ValidationError as error:
            return f"LLMDeployment {self.target} is invalid: {validation_message(error)}"
        router = self.c._router(self.spec, self.namespace, self.target)
        if router.shares_service and target_spec.autoscaling is not None:
            status.phase = "Waiting"
            return (
                f"LLMDeployment {self.target} autoscales; replica-ratio routing needs fixed replicas "
                "(use trafficRouting.gatewayAPI)"
            )
        variables = self._variables()
        invalid = analysis.validate(analysis.metrics_of(self.spec.analysis), variables)
        if invalid is not None:
            status.phase = "Waiting"
            return invalid
        if status.phase in ("", "Waiting"):
            conditions = (target.get("status") or {}).get("conditions") or []
            if not any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
                status.phase = "Waiting"
                self.waiting_reason = "WaitingForTarget"  # a canary is judged against a stable that serves
                return f"waiting for LLMDeployment {self.target} to be Ready"
            status.phase = "Progressing"
            status.canary_name = canary_name(self.target)
            status.stable_version = str((target.get("status") or {}).get("model", {}).get("version", ""))
            progress.start_step(status, 0, self.now)
            self.event(False, "Started", f"rolling out a canary of {self.target} via {router.describe()}")
        full = target_spec.replicas
        if status.phase == "Promoting":
            return self._promote(target, router, full)
        weight = status.canary_weight
        try:
            canary = self.c._apply_canary(
                self.body, target, self.spec, progress.canary_replicas(full, weight), router.shares_service
            )
            if canary is None:
                return f"waiting for the previous canary {canary_name(self.target)} to be deleted"
            status.canary_version = str((canary.get("status") or {}).get("model", {}).get("version", ""))
            sides = self.c._sides(self.namespace, self.target, full)
            status.stable_replicas = router.stable_replicas(weight, sides)
            verified = router.set_weight(weight, sides)
        except RouteNotUsable as error:
            return str(error)
        if verified and status.weight_verified_at is None:
            status.weight_verified_at = format_time(self.now)
            if weight > 0:
                self.event(False, "WeightSet", f"canary weight {weight}% verified ({router.describe()})")
        if progress.measurement_due(status, self.spec.analysis, self.now):
            rolled_back = self._measure(router, full)
            if rolled_back is not None:
                return rolled_back
        if progress.advance(status, self.steps, self.spec, self.now):
            status.phase = "Promoting"
            self.event(False, "Promoting", "every step passed; promoting the canary")
            return self._promote(target, router, full)
        if status.paused_reason:
            status.phase = "Paused"
            return self._pause_message()
        status.phase = "Progressing"
        if not verified:
            return f"waiting for {weight}% to reach the canary ({router.describe()})"
        return ""

    # -- pieces -----------------------------------------------------------------------------------

    def _variables(self) -> dict[str, str]:
        return {
            "canary": canary_name(self.target),
            "stable": self.target,
            "namespace": self.namespace,
            "interval": self.spec.analysis.interval,
        }

    def _measure(self, router: TrafficRouter, full: int) -> str | None:
        provider = provider_for(self.spec.analysis.prometheus, self.c.settings.prometheus_url)
        window = parse_duration(self.spec.analysis.interval)
        measurements = [
            analysis.measure(provider, metric, self._variables(), window)
            for metric in analysis.applicable(
                analysis.metrics_of(self.spec.analysis), self.status.canary_weight
            )
        ]
        for measurement in measurements:
            telemetry.measured(self.namespace, self.name, measurement.metric, measurement.phase)
        before = self.status.paused_reason
        verdict = progress.record(self.status, measurements, self.spec.analysis, self.now)
        if verdict.rollback is not None:
            return self._rollback(router, full, verdict.rollback)
        if verdict.pause and before != "Manual":
            self.status.paused_reason = verdict.pause
            if before != verdict.pause:
                self.event(True, verdict.pause, verdict.pause_message)
            self._pause_detail = verdict.pause_message
        elif before in progress.AUTOMATIC_PAUSES and not verdict.pause:
            self.status.paused_reason = ""
            self.event(False, "Resumed", f"measurements are back after {before}")
        return None

    def _pause_message(self) -> str:
        if self._pause_detail:
            return self._pause_detail
        return next(
            (
                f"{m.metric}: {m.message}"
                for m in self.status.measurements
                if m.phase in ("Inconclusive", "Error") and m.message
            ),
            f"paused ({self.status.paused_reason})",
        )

    def _condition_message(self, type_: str) -> str:
        existing = next((c for c in self.status.conditions if c.type == type_), None)
        return existing.message if existing is not None else ""

    def _manual(self, request: progress.Request) -> str:
        status = self.status
        if request == "pause":
            status.paused_reason = "Manual"
            self.event(False, "Paused", "paused by request")
        elif request == "resume":
            if status.paused_reason:
                status.paused_reason = ""
                self.event(False, "Resumed", "resumed by request")
        elif request == "promote":
            if progress.at_indefinite_pause(status, self.steps):
                progress.start_step(status, status.current_step_index + 1, self.now)
                self.event(False, "Promote", "continuing past the pause by request")
            else:
                status.paused_reason = ""
                status.phase = "Promoting"
                self.event(False, "Promote", "promoting now by request, skipping the remaining steps")
        elif request == "abort":
            target = self.kube.get("LLMDeployment", self.namespace, self.target)
            full = int(((target or {}).get("spec") or {}).get("replicas") or 1)
            router = self.c._router(self.spec, self.namespace, self.target)
            return self._rollback(router, full, "aborted by request")
        return ""

    def _reset(self) -> None:
        fresh = CanaryRolloutStatus(handled_request=self.status.handled_request)
        for field in CanaryRolloutStatus.model_fields:
            if field != "conditions":
                setattr(self.status, field, getattr(fresh, field))

    def _rollback(self, router: TrafficRouter, full: int, reason: str) -> str:
        """All traffic to stable at once; the canary goes to zero (after the delay when a router
        can take its traffic away without scaling it)."""
        status = self.status
        status.canary_weight, status.stable_weight = 0, 100
        status.weight_verified_at = None
        status.stable_replicas = None
        status.phase = "RolledBack"
        status.paused_reason = ""
        status.finished_at = format_time(self.now)
        try:
            router.set_weight(0, Sides(full=full, canary_ready=0, stable_ready=0, stable_pods=0))
        except RouteNotUsable as error:
            log.warning("rollback of %s: %s", self.target, error)
        if router.shares_service:
            self.c._scale_canary(self.namespace, self.target, 0)
        message = reason if reason.startswith("aborted") else f"rolled back: {reason}"
        telemetry.rolled_back(self.namespace, self.name)
        self.event(True, "RolledBack", message)
        self._tag_rejected()
        return message

    def _tag_rejected(self) -> None:
        ref = parse_registry_uri(self.spec.canary.model.uri) if self.spec.canary.model else None
        if ref is None or not self.status.canary_version:
            return
        tracking_uri = self.c.settings.mlflow_tracking_uri
        try:
            tag_version(ref.name, self.status.canary_version, VERDICT_TAG, REJECTED, tracking_uri)
        except RegistryUnavailable as error:
            self.event(True, "RegistryUnavailable", f"could not tag the canary version rejected: {error}")

    def _after_rollback(self) -> None:
        """The delayed half of a rollback: the canary scaled to zero once the delay has passed."""
        finished = self.status.finished_at
        if finished is None:
            return
        if seconds_since(finished, self.now) >= parse_duration(self.spec.scale_down_delay):
            self.c._scale_canary(self.namespace, self.target, 0)

    def _promote(self, target: dict[str, Any], router: TrafficRouter, full: int) -> str:
        """The stable takes the canary's values, the alias moves, the stable is back at full
        capacity on the new version, and only then does the canary go."""
        status = self.status
        overlay = canary_overlay(self.spec, target.get("spec") or {})
        if not contains(target.get("spec") or {}, overlay):
            if self.spec.promotion.mode == "GitOps":
                status.gitops_changes = [
                    {"path": f"spec.{path}", "value": value} for path, value in _leaves(overlay)
                ]
                return "waiting for Git to change the LLMDeployment as status.gitopsChanges says"
            self.kube.merge_patch("LLMDeployment", self.namespace, self.target, {"spec": overlay})
            self.event(False, "Promoted", f"LLMDeployment {self.target} now has the canary's spec")
            return f"LLMDeployment {self.target} is rolling to the canary's spec"
        status.gitops_changes = []
        moved = self._move_alias()
        if moved is not None:
            return moved
        status.stable_replicas = None  # the stable side back to its own replica count
        target_status = target.get("status") or {}
        generation = int(target["metadata"].get("generation") or 0)
        ready = (
            int(target_status.get("observedGeneration") or 0) >= generation
            and int(target_status.get("readyReplicas") or 0) >= full
            and status.canary_version in ("", target_status.get("model", {}).get("version"))
        )
        deployment = self.kube.get("Deployment", self.namespace, self.target)
        updated = int(((deployment or {}).get("status") or {}).get("updatedReplicas") or 0)
        if not ready or updated < full:
            return f"waiting for {self.target} to run the canary's version on {full} ready replicas"
        try:
            router.set_weight(0, Sides(full=full, canary_ready=0, stable_ready=full, stable_pods=full))
        except RouteNotUsable as error:
            return str(error)
        self.kube.delete("LLMDeployment", self.namespace, canary_name(self.target))
        status.phase = "Promoted"
        status.canary_weight, status.stable_weight = 0, 100
        status.finished_at = format_time(self.now)
        version = f" (version {status.canary_version})" if status.canary_version else ""
        self.event(False, "Completed", f"the canary{version} is the new stable {self.target}")
        return f"the canary{version} is the new stable {self.target}"

    def _move_alias(self) -> str | None:
        alias = self.spec.promotion.registry_alias
        ref = parse_registry_uri(self.spec.canary.model.uri) if self.spec.canary.model else None
        if not alias or ref is None or not self.status.canary_version:
            return None
        try:
            if set_alias(ref.name, alias, self.status.canary_version, self.c.settings.mlflow_tracking_uri):
                self.event(False, "AliasMoved", f"{ref.name}@{alias} -> version {self.status.canary_version}")
        except RegistryUnavailable as error:
            return f"cannot move {ref.name}@{alias} yet: {error}"
        return None


def _leaves(tree: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    leaves: list[tuple[str, Any]] = []
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            leaves.extend(_leaves(value, f"{path}."))
        else:
            leaves.append((path, value))
    return leaves


def settled(body: dict[str, Any], now: datetime) -> bool:
    """An ended rollout with nothing left to do: its tick need not even read it."""
    status = body.get("status") or {}
    raw, request = request_of(body.get("metadata") or {})
    if request is not None and raw != status.get("handledRequest", ""):
        return False
    if status.get("phase") == "Promoted":
        return True
    if status.get("phase") != "RolledBack" or not status.get("finishedAt"):
        return False
    delay = parse_duration(str((body.get("spec") or {}).get("scaleDownDelay") or "30s"))
    return seconds_since(status["finishedAt"], now) > delay + 60  # the delayed scale-down is long done


def register(settings: Settings) -> None:
    controller = CanaryRolloutController(settings, Kube())
    # A tick and the release, one at a time: a tick still running when the rollout is deleted must
    # not set a canary weight after the release gave all traffic back to the stable (the tick
    # reads the rollout again under the lock and stops at its deletionTimestamp).
    lock: KeyedLocks[tuple[str, str]] = KeyedLocks()

    @kopf.index(GROUP, VERSION, "canaryrollouts", id="rollout_index")
    def rollout_index(namespace: str | None, spec: kopf.Spec, body: kopf.Body, **_: Any) -> dict[Any, Any]:
        target = (spec.get("targetRef") or {}).get("name")
        return {(namespace, target): dict(body)}

    @kopf.on.timer(GROUP, VERSION, "canaryrollouts", id="tick", interval=settings.rollout_tick_seconds)
    def tick(namespace: str | None, name: str, spec: kopf.Spec, body: kopf.Body, **kwargs: Any) -> None:
        assert namespace is not None  # the kind is namespaced
        if settled(dict(body), datetime.now(UTC)):
            return
        target = (spec.get("targetRef") or {}).get("name")
        siblings = list(kwargs["rollout_index"].get((namespace, target), []))
        try:
            with lock((namespace, name)), telemetry.reconciling("CanaryRollout"):
                controller.tick(namespace, name, siblings)
        except ApiException as error:
            raise kopf.TemporaryError(f"API server: {api_error_text(error)}", delay=2) from error

    @kopf.on.delete(GROUP, VERSION, "canaryrollouts", id="release")
    def release(namespace: str | None, name: str, spec: kopf.Spec, status: kopf.Status, **_: Any) -> None:
        """A rollout deleted mid-flight gives the traffic back to the stable (its canary goes by
        garbage collection, and the stable's replica count returns to its own spec)."""
        assert namespace is not None
        telemetry.rollout_forgotten(namespace, name)
        with lock((namespace, name)):
            fresh = controller.kube.get("CanaryRollout", namespace, name)  # a tick may have ended it
            give_back(namespace, spec, (fresh or {}).get("status") or dict(status))
        lock.forget((namespace, name))

    def give_back(namespace: str, spec: kopf.Spec, status: dict[str, Any]) -> None:
        if status.get("phase") in TERMINAL:
            return
        try:
            rollout_spec = CanaryRolloutSpec.model_validate(dict(spec))
        except ValidationError:
            return
        router = controller._router(rollout_spec, namespace, rollout_spec.target_ref.name)
        with contextlib.suppress(RouteNotUsable):  # no route, nothing to give back
            router.set_weight(0, Sides(full=1, canary_ready=0, stable_ready=0, stable_pods=0))
