"""CanaryRollout controller: one tick per rollout moves it along; every bit of state is in status.

Each tick reads the rollout fresh (never a cached status), asks the gates of rollout/gates.py
whether it may move, applies the canary LLMDeployment and the traffic split, measures when a
measurement is due, and writes status only when it changed. Every side effect is idempotent
(server-side apply, a route read back, an alias compared before it is moved), so an operator
killed mid-step resumes at the same step with the same canary.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import kopf
from kubernetes.client import ApiException
from pydantic import ValidationError

from .. import GROUP, VERSION, telemetry
from ..api.canaryrollout import (
    CanaryRollout,
    CanaryRolloutSpec,
    CanaryRolloutStatus,
    ExperimentResult,
    RollbackStatus,
)
from ..api.common import PrometheusEndpoint
from ..api.llmdeployment import LLMDeploymentSpec
from ..conditions import invalid_spec_status
from ..config import Settings
from ..durations import parse_duration
from ..kube import Kube, api_error_text, contains
from ..metrics import MetricsProvider, MetricsUnavailable, QueryFailed, provider_for
from ..metrics.templates import TemplateError
from ..model_uris import parse_registry_uri
from ..names import (
    ALIAS_MOVED,
    BANDIT_MOVED,
    CANARY_REMOVED,
    COMPLETED,
    EXPERIMENT_DECIDED,
    EXPERIMENT_KEY_TAG,
    FAILED_FAST,
    NO_DATA,
    PROMOTED,
    PROMOTING,
    REGISTRY_UNAVAILABLE,
    REJECTED,
    ROLLED_BACK,
    ROLLOUT_LABEL,
    STABLE_RESTORED,
    STARTED,
    VERDICT_TAG,
    WAITING,
    WEIGHT_SET,
    canary_name,
)
from ..registry.mlflow import (
    ArtifactNotFound,
    RegistryUnavailable,
    download_text,
    finished_run,
    log_run,
    set_alias,
    tag_version,
)
from ..rollout import analysis, experiment, failfast, gates, progress
from ..rollout import evaluation as evaluation_gate
from ..rollout.canary import canary_overlay, desired_canary, leaves
from ..routing import HeaderMatch, RouteNotUsable, Sides, TrafficRules, router_for
from ..timestamps import format_micro_time, format_time, now, now_text, parse_time, seconds_since
from ..workqueue import KeyedLocks
from .evaluation import EvaluationStage

log = logging.getLogger(__name__)
# (the resource's endpoint, the operator-wide address) -> a provider; tests hand in a fake
ProviderFactory = Callable[[PrometheusEndpoint | None, str], MetricsProvider]


class CanaryRolloutController:
    """Reads a rollout and what it points at, asks the gates (rollout/gates.py), acts on the answer."""

    def __init__(self, settings: Settings, kube: Kube, providers: ProviderFactory = provider_for) -> None:
        self.settings = settings
        self.kube = kube
        self.providers = providers

    def tick(self, namespace: str, name: str, siblings: list[dict[str, Any]]) -> None:
        body = self.kube.get("CanaryRollout", namespace, name)  # fresh: a cached status may be stale
        if body is None or body["metadata"].get("deletionTimestamp"):
            return
        current = dict(body.get("status") or {})
        generation = int(body["metadata"].get("generation") or 0)
        try:
            rollout = CanaryRollout.model_validate(body)
        except ValidationError as error:
            self.kube.write_status(body, current, invalid_spec_status(current, generation, error))
            return
        status = CanaryRolloutStatus.model_validate(current)
        step = _Tick(self, body, rollout.spec, status, now())
        detail = step.run(siblings)
        # None values stay in: in a merge patch they remove a field the status no longer has.
        desired = status.model_dump(mode="json", by_alias=True)
        desired["observedGeneration"] = generation
        desired["conditions"] = progress.conditions_for(
            status, step.steps, generation, detail, now_text(), step.waiting_reason
        )
        self.kube.write_status(body, current, desired)
        telemetry.rollout_observed(namespace, name, status.phase, status.canary_weight)
        for type_, reason, message in step.events:
            self.kube.post_event(body, type_, reason, message)


def sides_of(kube: Kube, namespace: str, target: str, full: int) -> Sides:
    """Pods of both sides, as their Deployments report them."""

    def ready(deployment: dict[str, Any] | None) -> tuple[int, int]:
        state = (deployment or {}).get("status") or {}
        return int(state.get("readyReplicas") or 0), int(state.get("replicas") or 0)

    canary_ready, _ = ready(kube.get("Deployment", namespace, canary_name(target)))
    stable_ready, stable_pods = ready(kube.get("Deployment", namespace, target))
    return Sides(full=full, canary_ready=canary_ready, stable_ready=stable_ready, stable_pods=stable_pods)


def apply_canary(kube: Kube, desired: dict[str, Any], owner_uid: str) -> dict[str, Any] | None:
    """The canary as applied (unchanged when it matches). None while another (ended) rollout's
    canary of the same target is still being removed."""
    meta = desired["metadata"]
    live = kube.get("LLMDeployment", meta["namespace"], meta["name"])
    if live is not None:
        refs = live["metadata"].get("ownerReferences") or []
        owner: dict[str, Any] = next((ref for ref in refs if ref.get("controller")), {})
        if owner.get("uid") != owner_uid:  # an ended rollout's canary: it goes before ours comes
            if not live["metadata"].get("deletionTimestamp"):
                kube.delete("LLMDeployment", meta["namespace"], meta["name"])
            return None
        if contains(live, desired):
            return live
    return kube.apply(desired)


def rules_of(status: CanaryRolloutStatus) -> TrafficRules:
    """The mirror and header route the status says the route carries now."""
    header = status.header_route
    return TrafficRules(
        mirror_percent=status.mirror_percent,
        header=HeaderMatch(header.name, header.value, header.match) if header is not None else None,
    )


def scale_canary(kube: Kube, namespace: str, target: str, replicas: int) -> None:
    live = kube.get("LLMDeployment", namespace, canary_name(target))
    if live is not None and (live.get("spec") or {}).get("replicas") != replicas:
        kube.scale("LLMDeployment", namespace, canary_name(target), replicas)


class _Tick:
    """One pass over one rollout: the gates decide, these methods carry out, in order."""

    def __init__(
        self,
        controller: CanaryRolloutController,
        body: dict[str, Any],
        spec: CanaryRolloutSpec,
        status: CanaryRolloutStatus,
        moment: datetime,
    ) -> None:
        self.kube, self.settings, self.providers = controller.kube, controller.settings, controller.providers
        self.body, self.spec, self.status, self.now = body, spec, status, moment
        self.namespace, self.name = body["metadata"]["namespace"], body["metadata"]["name"]
        self.target = spec.target_ref.name
        self.router = router_for(spec, self.kube, self.namespace)
        self.steps = progress.plan(spec)
        self.events: list[gates.Event] = []
        self.waiting_reason = WAITING  # the Progressing reason while the phase is Waiting

    def run(self, siblings: list[dict[str, Any]]) -> str:
        """Returns the detail the conditions carry."""
        request, said = gates.apply_request(self.status, self.body, self.steps, self.now)
        self.events.extend(said)
        if isinstance(request, gates.Fail):
            return self._abort(request.reason)
        if self.status.phase == "Promoted":
            return self._condition_message(PROMOTED)
        if self.status.phase == "RolledBack":
            self._after_rollback()
            return self._condition_message(ROLLED_BACK)
        target = self.kube.get("LLMDeployment", self.namespace, self.target)
        snapshot = gates.Snapshot(
            self.body,
            self.spec,
            self.status,
            siblings,
            target,
            self.router.shares_service,
            self.now,
            self.steps,
        )
        stop = gates.first_stop(snapshot)
        if isinstance(stop, gates.Wait):
            return self._wait(stop)
        assert target is not None and isinstance(snapshot.target_spec, LLMDeploymentSpec)  # the gates said so
        if not snapshot.started:
            self._start(target)
        full = snapshot.target_spec.replicas
        if self.status.phase == "Promoting":
            return self._promote(target, full)
        if evaluation_gate.gating(self.spec, self.status):
            held = EvaluationStage(self).run(target, full)
            if held is not None:
                return held
        return self._step(target, full)

    # -- carrying out -----------------------------------------------------------------------------

    def _wait(self, wait: gates.Wait) -> str:
        if not wait.keep_phase:
            self.status.phase = "Waiting"
            self.waiting_reason = wait.reason
        return wait.message

    def _start(self, target: dict[str, Any]) -> None:
        status = self.status
        status.phase = "Progressing"
        status.canary_name = canary_name(self.target)
        status.stable_version = str((target.get("status") or {}).get("model", {}).get("version", ""))
        progress.start_step(status, 0, self.now)
        self.events.append(
            gates.normal(STARTED, f"rolling out a canary of {self.target} via {self.router.describe()}")
        )

    def _step(self, target: dict[str, Any], full: int) -> str:
        """The canary at the current weight, measured when due, then on to the next step."""
        verified = self._route(target, full)
        if isinstance(verified, str):
            return verified
        status = self.status
        if verified and status.weight_verified_at is None:
            status.weight_verified_at = format_time(self.now)
            if progress.sees_traffic(status) or status.header_route is not None:
                self.events.append(gates.normal(WEIGHT_SET, f"{self._traffic_text()} verified"))
        analysed = self._analyse(verified)
        if isinstance(analysed, gates.Fail):
            return self._rollback(full, analysed)
        detail = self._settle(target, full, verified, analysed)
        return detail or analysed

    def _route(self, target: dict[str, Any], full: int) -> bool | str:
        """The canary applied at its share of replicas and the router set to the current weight:
        whether the router verified the weight, or the detail of why it could not yet."""
        status, weight = self.status, self.status.canary_weight
        replicas = progress.canary_replicas(full, progress.canary_share(status))
        desired = desired_canary(self.body, target, self.spec, replicas, self.router.shares_service)
        try:
            canary = apply_canary(self.kube, desired, self.body["metadata"]["uid"])
            if canary is None:
                return f"waiting for the previous canary {canary_name(self.target)} to be deleted"
            status.canary_version = str((canary.get("status") or {}).get("model", {}).get("version", ""))
            sides = sides_of(self.kube, self.namespace, self.target, full)
            status.stable_replicas = self.router.stable_replicas(weight, sides)
            return self.router.set_weight(weight, sides, rules_of(status))
        except RouteNotUsable as error:
            return str(error)

    def _analyse(self, verified: bool) -> gates.Fail | str:
        """Between measurements the fast-fail watch, then the wait for a measurement due before
        the next tick (a tick that is already due skips the watch); the measurement when due; the
        experiment once the weight is verified. The first Fail, else what holds the step."""
        status, analysis = self.status, self.spec.analysis
        measured: gates.Outcome = gates.PROCEED
        experimented: gates.Outcome = gates.PROCEED
        if not progress.measurement_due(status, analysis, self.now):
            watched = self._watch()
            if isinstance(watched, gates.Fail):
                return watched
            self._wait_for_measurement()
        if progress.measurement_due(status, analysis, self.now):
            measured = self._measure()
            if isinstance(measured, gates.Fail):
                return measured
        if verified or status.experiment_started_at is not None:
            experimented = self._experiment()
            if isinstance(experimented, gates.Fail):
                return experimented
        return gates.holding(measured, experimented)

    def _traffic_text(self) -> str:
        status, parts = self.status, [f"canary weight {self.status.canary_weight}%"]
        if status.mirror_percent:
            parts.append(f"{status.mirror_percent}% mirrored")
        if status.header_route is not None:
            parts.append(
                f"header {status.header_route.name} {status.header_route.match} {status.header_route.value}"
            )
        return f"{', '.join(parts)} ({self.router.describe()})"

    def _experiment(self) -> gates.Outcome:
        """An experiment step under way: the bandit's next move when due, the comparison once the
        duration is over. Fail when a metric is worse on the canary; Wait says why it is undecided."""
        status, index = self.status, self.status.current_step_index
        step = self.steps[index] if index < len(self.steps) else None
        if step is None or step.experiment is None or status.experiment_started_at is None:
            return gates.PROCEED
        if progress.experiment_decided(status, index):
            return gates.PROCEED
        spec = step.experiment
        provider = self.providers(self.spec.analysis.prometheus, self.settings.prometheus_url)
        variables = gates.variables_of(self.spec, self.namespace)
        elapsed = seconds_since(status.experiment_started_at, self.now)
        try:
            if elapsed >= (step.duration_seconds or 0):
                results = experiment.compare(provider, spec, index, variables, elapsed, self.now)
                return self._decide(index, results)
            if spec.bandit is not None and experiment.bandit_due(status, spec.bandit, self.now):
                seed = f"{self.body['metadata']['uid']}/{index}"
                change = experiment.bandit_move(provider, spec.bandit, status, variables, seed, self.now)
                if change is not None:
                    experiment.record_change(status, change)
                    message = (
                        f"bandit: canary weight {change.weight}% (P(canary better) = {change.probability})"
                    )
                    self.events.append(gates.normal(BANDIT_MOVED, message))
        except experiment.NotYet as error:
            return gates.Wait(NO_DATA, f"experiment undecided: {error}", keep_phase=True)
        return gates.PROCEED

    def _decide(self, index: int, results: list[ExperimentResult]) -> gates.Outcome:
        """The experiment's verdict into status, an MLflow run and an Event."""
        results = self._log_experiment(index, results)
        self.status.experiments = [*self.status.experiments, *results]
        said = "; ".join(f"{r.metric} {r.decision} ({r.difference} in {r.interval})" for r in results)
        worse = [r for r in results if r.decision == "CanaryWorse"]
        if worse:
            return gates.Fail(f"experiment (step {index + 1}): {said}")
        self.events.append(gates.normal(EXPERIMENT_DECIDED, f"experiment (step {index + 1}): {said}"))
        return gates.PROCEED

    def _log_experiment(self, index: int, results: list[ExperimentResult]) -> list[ExperimentResult]:
        """One MLflow run per decided experiment: per metric the difference, its interval and the
        decision, and the results themselves. The run is keyed by the decision, so a decision made
        again after a restart lost its status write is the logged one, read back: one run, and
        status saying what it says. MLflow being away costs the run, never the verdict."""
        status, tracking = self.status, self.settings.mlflow_tracking_uri
        assert status.experiment_started_at is not None
        uid = self.body["metadata"]["uid"]
        key = (
            EXPERIMENT_KEY_TAG,
            experiment.experiment_key(uid, status.handled_request, index, status.experiment_started_at),
        )
        name = f"canaryrollout/{self.namespace}/{self.name}"
        metrics: dict[str, float] = {}
        params: dict[str, str] = {}
        for r in results:
            low, high = (float(x) for x in r.interval.strip("[]").split(","))
            metrics.update({f"{r.metric}/difference": float(r.difference), f"{r.metric}/low": low})
            metrics.update({f"{r.metric}/high": high, f"{r.metric}/p_value": float(r.p_value)})
            params.update({f"{r.metric}/decision": r.decision, f"{r.metric}/canary": r.canary})
            params[f"{r.metric}/stable"] = r.stable
        try:
            logged = finished_run(tracking, name, key)
            if logged is not None:
                recorded = json.loads(download_text(tracking, logged, experiment.RESULTS_ARTIFACT))
                return [ExperimentResult.model_validate(item | {"mlflowRunId": logged}) for item in recorded]
            document = [r.model_dump(mode="json", by_alias=True) for r in results]
            run_id = log_run(
                tracking,
                name,
                f"experiment-step-{index + 1}",
                tags={ROLLOUT_LABEL: self.name},
                params=params,
                metrics=metrics,
                texts={experiment.RESULTS_ARTIFACT: json.dumps(document, indent=2)},
                key=key,
            )
        except (RegistryUnavailable, ArtifactNotFound) as error:
            self.events.append(
                gates.warning(REGISTRY_UNAVAILABLE, f"experiment not logged to MLflow: {error}")
            )
            return results
        return [r.model_copy(update={"mlflow_run_id": run_id}) for r in results]

    def _wait_for_measurement(self) -> None:
        """A measurement due before the next tick is taken at its instant, not up to a tick late:
        the ticks' drift and the stamps' whole seconds made a 10 s interval 10.2 s apart."""
        due = progress.next_measurement_at(self.status, self.spec.analysis)
        if due is None:
            return
        ahead = (due - self.now).total_seconds()
        if 0 < ahead <= self.settings.rollout_tick_seconds:
            time.sleep(ahead)
            self.now = now()

    def _settle(self, target: dict[str, Any], full: int, verified: bool, pause_detail: str) -> str:
        status = self.status
        if progress.advance(status, self.steps, self.spec, self.now):
            status.phase = "Promoting"
            self.events.append(gates.normal(PROMOTING, "every step passed; promoting the canary"))
            return self._promote(target, full)
        if status.paused_reason:
            status.phase = "Paused"
            return pause_detail or self._pause_message()
        status.phase = "Progressing"
        if not verified:
            return f"waiting for {status.canary_weight}% to reach the canary ({self.router.describe()})"
        return ""

    def _measure(self) -> gates.Outcome:
        provider = self.providers(self.spec.analysis.prometheus, self.settings.prometheus_url)
        window = parse_duration(self.spec.analysis.interval)
        variables = gates.variables_of(self.spec, self.namespace)
        metrics = analysis.applicable(
            analysis.metrics_of(self.spec.analysis), self.status.canary_weight, self.status.mirror_percent
        )
        measurements = [analysis.measure(provider, metric, variables, window) for metric in metrics]
        for measurement in measurements:
            telemetry.measured(self.namespace, self.name, measurement.metric, measurement.phase)
        before = self.status.paused_reason
        result = progress.record(self.status, measurements, self.spec.analysis, self.now)
        outcome, said = gates.judge_round(before, result)
        self.events.extend(said)
        if isinstance(outcome, gates.Pause):
            self.status.paused_reason = outcome.reason
        elif isinstance(outcome, gates.Proceed):
            self.status.paused_reason = gates.paused_after(before)
        return outcome

    def _watch(self) -> gates.Outcome:
        """The fast-fail looks that are due, one query each, judged by gates.judge_looks. A look
        that cannot be read stays due (the full measurement reports the outage)."""
        looks = failfast.due(self.status, self.spec.analysis, self.now)
        if not looks:
            return gates.PROCEED
        provider = self.providers(self.spec.analysis.prometheus, self.settings.prometheus_url)
        variables = gates.variables_of(self.spec, self.namespace)
        answered: list[tuple[failfast.Look, list[float]]] = []
        refused: set[str] = set()
        for look in looks:
            if look.metric.name in refused:
                continue
            try:
                query = analysis.look_query(look.metric, look.side, {**variables, "interval": look.window})
                answered.append((look, provider.instant(query, look.at)))
            except MetricsUnavailable:
                break
            except (QueryFailed, TemplateError):
                refused.add(look.metric.name)
        outcome = gates.judge_looks(self.status, answered)
        if isinstance(outcome, gates.Fail):
            telemetry.measured(self.namespace, self.name, outcome.metric, FAILED_FAST)
        return outcome

    def _pause_message(self) -> str:
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

    def _full(self) -> int:
        target = self.kube.get("LLMDeployment", self.namespace, self.target)
        return int(((target or {}).get("spec") or {}).get("replicas") or 1)

    def _abort(self, reason: str) -> str:
        return self._rollback(self._full(), gates.Fail(reason))

    def _rollback(self, full: int, fail: gates.Fail) -> str:
        """Back to the stable: its Deployment returns to full size at once; the canary loses its
        traffic at once or once the stable side is Ready, as ``spec.rollback`` says."""
        status = self.status
        order = gates.rollback_order(self.spec, fail.metric)
        status.rollback = RollbackStatus(
            order=order, reason=fail.reason, started_at=format_micro_time(self.now)
        )
        status.weight_verified_at = None
        status.stable_replicas = None
        status.mirror_percent, status.header_route = 0, None
        status.phase = "RolledBack"
        status.paused_reason = ""
        status.finished_at = format_time(self.now)
        if order == "RemovedAtOnce":
            how = "the canary's traffic removed at once"
        else:
            how = f"the canary serves until {self.target} has {full} replicas Ready"
        reason = fail.reason
        message = reason if reason.startswith("aborted") else f"rolled back: {reason}"
        telemetry.rolled_back(self.namespace, self.name)
        self.events.append(gates.warning(ROLLED_BACK, f"{message}; {how}"))
        if order == "RemovedAtOnce" or self._stable_ready(full):
            self._remove_canary(full)
        self._tag_rejected()
        return message

    def _stable_ready(self, full: int) -> bool:
        state = (self.kube.get("Deployment", self.namespace, self.target) or {}).get("status") or {}
        return int(state.get("readyReplicas") or 0) >= full

    def _remove_canary(self, full: int) -> None:
        """The canary's traffic to zero (its pods too when they sit behind the stable Service)."""
        status = self.status
        status.canary_weight, status.stable_weight = 0, 100
        try:
            self.router.set_weight(0, Sides(full=full, canary_ready=0, stable_ready=0, stable_pods=0))
        except RouteNotUsable as error:
            log.warning("rollback of %s: %s", self.target, error)
        if self.router.shares_service:
            scale_canary(self.kube, self.namespace, self.target, 0)
        assert status.rollback is not None
        status.rollback.canary_removed_at = format_micro_time(self.now)
        self._stable_restored(full)
        if status.rollback.order == "KeptUntilStableReady" and status.rollback.stable_ready_at:
            self.events.append(
                gates.normal(
                    CANARY_REMOVED, f"{self.target} has {full} replicas Ready; the canary no longer serves"
                )
            )

    def _stable_restored(self, full: int) -> None:
        """Notes when the stable side is back at full size, and how long capacity was short."""
        rollback = self.status.rollback
        if rollback is None or rollback.stable_ready_at or not rollback.canary_removed_at:
            return
        if not self._stable_ready(full):
            return
        rollback.stable_ready_at = format_micro_time(self.now)
        short = (self.now - parse_time(rollback.canary_removed_at)).total_seconds()
        rollback.capacity_short_seconds = round(max(0.0, short), 3)
        if rollback.order == "RemovedAtOnce" and rollback.capacity_short_seconds:
            self.events.append(
                gates.normal(
                    STABLE_RESTORED,
                    f"{self.target} has {full} replicas Ready again; capacity was short for "
                    f"{rollback.capacity_short_seconds:g} s (the canary's traffic was removed at once)",
                )
            )

    def _tag_rejected(self) -> None:
        ref = parse_registry_uri(self.spec.canary.model.uri) if self.spec.canary.model else None
        if ref is None or not self.status.canary_version:
            return
        tracking_uri = self.settings.mlflow_tracking_uri
        try:
            tag_version(ref.name, self.status.canary_version, VERDICT_TAG, REJECTED, tracking_uri)
        except RegistryUnavailable as error:
            message = f"could not tag the canary version rejected: {error}"
            self.events.append(gates.warning(REGISTRY_UNAVAILABLE, message))

    def _after_rollback(self) -> None:
        """The later half of a rollback: a kept canary removed once the stable side is Ready, the
        time capacity was short, and the canary scaled to zero once the delay has passed."""
        rollback = self.status.rollback
        if rollback is not None and (not rollback.canary_removed_at or not rollback.stable_ready_at):
            full = self._full()
            if not rollback.canary_removed_at:
                if self._stable_ready(full):
                    self._remove_canary(full)
            else:
                self._stable_restored(full)
        finished = self.status.finished_at
        if finished and seconds_since(finished, self.now) >= parse_duration(self.spec.scale_down_delay):
            scale_canary(self.kube, self.namespace, self.target, 0)

    def _promote(self, target: dict[str, Any], full: int) -> str:
        """The stable takes the canary's values, the alias moves, the stable is back at full
        capacity on the new version, and only then does the canary go."""
        status = self.status
        overlay = canary_overlay(self.spec, target.get("spec") or {})
        if not contains(target.get("spec") or {}, overlay):
            return self._promote_spec(overlay)
        status.gitops_changes = []
        moved = self._move_alias()
        if moved is not None:
            return moved
        status.stable_replicas = None  # the stable side back to its own replica count
        deployment = self.kube.get("Deployment", self.namespace, self.target)
        caught_up = gates.stable_caught_up(target, deployment, full, status.canary_version)
        if isinstance(caught_up, gates.Wait):
            return caught_up.message
        try:
            self.router.set_weight(0, Sides(full=full, canary_ready=0, stable_ready=full, stable_pods=full))
        except RouteNotUsable as error:
            return str(error)
        self.kube.delete("LLMDeployment", self.namespace, canary_name(self.target))
        status.mirror_percent, status.header_route = 0, None
        status.phase = "Promoted"
        status.canary_weight, status.stable_weight = 0, 100
        status.finished_at = format_time(self.now)
        version = f" (version {status.canary_version})" if status.canary_version else ""
        self.events.append(gates.normal(COMPLETED, f"the canary{version} is the new stable {self.target}"))
        return f"the canary{version} is the new stable {self.target}"

    def _promote_spec(self, overlay: dict[str, Any]) -> str:
        """The canary's values into the target's spec, or, under GitOps, the list of what Git must change."""
        if self.spec.promotion.mode == "GitOps":
            self.status.gitops_changes = [
                {"path": f"spec.{path}", "value": value} for path, value in leaves(overlay)
            ]
            return "waiting for Git to change the LLMDeployment as status.gitopsChanges says"
        self.kube.merge_patch("LLMDeployment", self.namespace, self.target, {"spec": overlay})
        self.events.append(gates.normal(PROMOTED, f"LLMDeployment {self.target} now has the canary's spec"))
        return f"LLMDeployment {self.target} is rolling to the canary's spec"

    def _move_alias(self) -> str | None:
        alias = self.spec.promotion.registry_alias
        ref = parse_registry_uri(self.spec.canary.model.uri) if self.spec.canary.model else None
        if not alias or ref is None or not self.status.canary_version:
            return None
        version = self.status.canary_version
        try:
            if set_alias(ref.name, alias, version, self.settings.mlflow_tracking_uri):
                self.events.append(gates.normal(ALIAS_MOVED, f"{ref.name}@{alias} -> version {version}"))
        except RegistryUnavailable as error:
            return f"cannot move {ref.name}@{alias} yet: {error}"
        return None


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

    # sharp: ticks every interval from the previous tick's start, not from its end.
    @kopf.on.timer(
        GROUP, VERSION, "canaryrollouts", id="tick", interval=settings.rollout_tick_seconds, sharp=True
    )
    def tick(namespace: str | None, name: str, spec: kopf.Spec, body: kopf.Body, **kwargs: Any) -> None:
        assert namespace is not None  # the kind is namespaced
        if gates.settled(dict(body), now()):
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
        if status.get("phase") in progress.TERMINAL and not gates.canary_pending_removal(status):
            return
        try:
            rollout_spec = CanaryRolloutSpec.model_validate(dict(spec))
        except ValidationError:
            return
        router = router_for(rollout_spec, controller.kube, namespace)
        with contextlib.suppress(RouteNotUsable):  # no route, nothing to give back
            router.set_weight(0, Sides(full=1, canary_ready=0, stable_ready=0, stable_pods=0))
