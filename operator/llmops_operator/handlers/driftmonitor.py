"""DriftMonitor controller: every ``interval``, baseline against current window per feature from
Prometheus histograms; on drift, one retraining workload per drift episode, within cooldown and the
concurrency policy. All state (the episode id, the last workload) lives in status.

Each step reads (Prometheus, the reference dataset, the engine's workload, MLflow), asks the pure
decisions of drift/episode.py, and writes what they answer through kube.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import kopf
from kubernetes.client import ApiException
from pydantic import ValidationError

from .. import GROUP, VERSION, names, telemetry
from ..api.driftmonitor import DriftMonitor, DriftMonitorSpec, DriftMonitorStatus, RetrainingRun
from ..conditions import ConditionStatus, invalid_spec_status, set_condition
from ..config import Settings
from ..drift import check, episode
from ..drift.datasets import Columns, DatasetError, DatasetNotFound, parse_dataset
from ..drift.report import render_report
from ..durations import parse_duration
from ..kube import Kube, api_error_text
from ..metrics import MetricsUnavailable, QueryFailed, provider_for
from ..metrics.templates import TemplateError
from ..model_uris import parse_registry_uri
from ..registry.mlflow import (
    ArtifactNotFound,
    RegistryUnavailable,
    download_text,
    find_version_by_tag,
    log_run,
)
from ..retraining import TrainerContext, engine_for, kueue_selector, queued_message, render
from ..timestamps import format_time, seconds_since
from ..timestamps import now as now_utc

REPORT_FILE = "drift-report.html"
Observed = dict[str, tuple[check.Observation, check.Observation]]
# What stops a check before a verdict: the exceptions, the reason, and the Ready message's prefix.
UNAVAILABLE: list[tuple[tuple[type[Exception], ...], str, str]] = [
    ((MetricsUnavailable,), names.METRICS_UNAVAILABLE, ""),
    ((QueryFailed, TemplateError), names.QUERY_FAILED, "Prometheus refused a feature's query: "),
    ((DatasetError,), names.INVALID_DATASET, "reference dataset: "),
    ((DatasetNotFound, ArtifactNotFound), names.DATASET_NOT_FOUND, "reference dataset: "),
    ((RegistryUnavailable,), names.REGISTRY_UNAVAILABLE, "reference dataset: "),
]
COLLECTION_ERRORS = tuple(kind for kinds, _, _ in UNAVAILABLE for kind in kinds)


def unavailable_conditions(error: Exception) -> list[episode.Condition]:
    """Ready and Drifted of a check that could not read its windows or its dataset."""
    reason, prefix = next((r, p) for kinds, r, p in UNAVAILABLE if isinstance(error, kinds))
    return episode.unavailable(reason, f"{prefix}{error}")


def _dataset_text(spec: DriftMonitorSpec) -> str:
    reference = spec.baseline.dataset
    assert reference is not None
    if reference.config_map is not None:
        return f"configmap {reference.config_map.name}/{reference.config_map.key}"
    assert reference.mlflow_artifact is not None
    return f"runs:/{reference.mlflow_artifact.run_id}/{reference.mlflow_artifact.path}"


def check_due(spec: DriftMonitorSpec, status: DriftMonitorStatus, generation: int, now: datetime) -> bool:
    if not status.last_check_time or status.observed_generation != generation:
        return True
    return seconds_since(status.last_check_time, now) >= parse_duration(spec.interval)


@dataclass
class Changes:
    """What one tick writes: status fields, conditions (set in the order decided) and Events."""

    conditions: list[dict[str, Any]]
    generation: int
    updates: dict[str, Any] = field(default_factory=dict)
    events: list[episode.Event] = field(default_factory=list)

    def condition(self, type_: str, state: ConditionStatus, reason: str, message: str) -> None:
        self.conditions = set_condition(self.conditions, type_, state, reason, message, self.generation)

    def set(self, conditions: list[episode.Condition]) -> None:
        for condition in conditions:
            self.condition(*condition)


class DriftMonitorController:
    def __init__(self, settings: Settings, kube: Kube) -> None:
        self.settings = settings
        self.kube = kube
        self._artifacts: dict[tuple[str, str, str], Columns] = {}

    def tick(self, body: dict[str, Any], now: datetime | None = None) -> None:
        meta = body["metadata"]
        generation = int(meta.get("generation") or 0)
        current = dict(body.get("status") or {})
        try:
            spec = DriftMonitor.model_validate(body).spec
        except ValidationError as error:
            self.kube.write_status(body, current, invalid_spec_status(current, generation, error))
            return
        status = DriftMonitorStatus.model_validate(current)
        moment = (now or now_utc()).replace(microsecond=0)
        changes = Changes(list(current.get("conditions") or []), generation)
        if check_due(spec, status, generation, moment):
            self._check(body, spec, status, moment, changes)
        if spec.retraining is not None and status.last_retraining is not None:
            self._follow(body, spec, status, moment, changes)
            if spec.on_retrained.auto_rollout:
                self._open_rollout(body, spec, status, changes)
        desired = {"observedGeneration": generation, **changes.updates, "conditions": changes.conditions}
        self.kube.write_status(body, current, desired)
        for type_, reason, message in changes.events:
            self.kube.post_event(body, type_, reason, message)

    def _check(
        self,
        body: dict[str, Any],
        spec: DriftMonitorSpec,
        status: DriftMonitorStatus,
        now: datetime,
        changes: Changes,
    ) -> None:
        """Read both windows, judge, log the report, and start this episode's retraining."""
        meta = body["metadata"]
        changes.updates["lastCheckTime"] = format_time(now)
        try:
            observed = self._observe(spec, meta["namespace"], now)
        except COLLECTION_ERRORS as error:
            changes.set(unavailable_conditions(error))
            return
        verdict = check.judge(spec, observed, status.features, now)  # history: the last status
        drifting = check.is_drift(spec, verdict)
        telemetry.drift_checked(meta["namespace"], meta["name"], verdict.features, drifting)
        changes.updates["features"] = [f.model_dump(mode="json", by_alias=True) for f in verdict.features]
        changes.condition(names.READY, "True", names.CHECKED, f"checked {len(spec.features)} features")
        decided = episode.episode(verdict, drifting, status.drift_event_id, meta["uid"], now)
        baseline_window, current_window = check.windows(spec, now)
        windows = (baseline_window.text() if baseline_window else _dataset_text(spec), current_window.text())
        report_uri = self._report(body, verdict, observed, windows, decided.event_id, changes)
        changes.updates["reportUri"] = report_uri
        if decided.event_id and spec.retraining is not None:
            context = self._context(body, spec, decided.event_id, verdict, windows, report_uri)
            decided = decided.held(self._retrain(body, spec, status, context, now, changes))
        changes.condition(*decided.drifted)
        if decided.drift_event_id is not None:
            changes.updates["driftEventId"] = decided.drift_event_id
        if decided.event is not None:
            changes.events.append(decided.event)

    def _observe(self, spec: DriftMonitorSpec, namespace: str, now: datetime) -> Observed:
        provider = provider_for(spec.prometheus, self.settings.prometheus_url)
        dataset = self._dataset(spec, namespace) if spec.baseline.dataset is not None else None
        return check.collect(spec, provider, namespace, now, dataset)

    def _dataset(self, spec: DriftMonitorSpec, namespace: str) -> Columns:
        """A ConfigMap is read at every check (it may be edited); an MLflow artifact is immutable,
        so it is downloaded once per operator process."""
        reference = spec.baseline.dataset
        assert reference is not None
        if reference.config_map is not None:
            found = self.kube.get("ConfigMap", namespace, reference.config_map.name)
            text = ((found or {}).get("data") or {}).get(reference.config_map.key)
            if text is None:
                what = f"ConfigMap {reference.config_map.name}"
                raise DatasetNotFound(
                    f"{what} not found"
                    if found is None
                    else f"{what} has no key {reference.config_map.key!r}"
                )
            return parse_dataset(str(text))
        assert reference.mlflow_artifact is not None
        key = (
            self.settings.mlflow_tracking_uri,
            reference.mlflow_artifact.run_id,
            reference.mlflow_artifact.path,
        )
        if key not in self._artifacts:
            self._artifacts[key] = parse_dataset(download_text(*key))
        return self._artifacts[key]

    def _report(
        self,
        body: dict[str, Any],
        verdict: check.Verdict,
        observed: Observed,
        windows: tuple[str, str],
        event_id: str,
        changes: Changes,
    ) -> str:
        """Every check is an MLflow run in the monitor's experiment: per-feature metrics and the
        report. MLflow being away costs the report, never the verdict."""
        meta = body["metadata"]
        monitor = f"{meta['namespace']}/{meta['name']}"
        experiment = f"driftmonitor/{monitor}"
        baseline, current = windows
        report = render_report(f"Drift check of {monitor}", verdict, observed, baseline, current)
        try:
            run_id = log_run(
                self.settings.mlflow_tracking_uri,
                experiment,
                f"check-{current.split('/')[1]}",
                tags=check_tags(monitor, event_id),
                params=check_params(verdict, windows),
                metrics=check_metrics(verdict),
                texts={REPORT_FILE: report},
            )
        except RegistryUnavailable as error:
            message = f"no report for this check: {error}"
            changes.condition(names.REPORTED, "False", names.REGISTRY_UNAVAILABLE, message)
            return ""
        changes.condition(
            names.REPORTED, "True", names.LOGGED, f"MLflow experiment {experiment}, run {run_id}"
        )
        return f"runs:/{run_id}/{REPORT_FILE}"

    def _model_name(self, namespace: str, spec: DriftMonitorSpec) -> str:
        """The registered model the target serves (its models:/ URI), else the target's name."""
        target = self.kube.get("LLMDeployment", namespace, spec.target_ref.name) or {}
        ref = parse_registry_uri(str(((target.get("spec") or {}).get("model") or {}).get("uri", "")))
        return ref.name if ref is not None else spec.target_ref.name

    def _context(
        self,
        body: dict[str, Any],
        spec: DriftMonitorSpec,
        event_id: str,
        verdict: check.Verdict,
        windows: tuple[str, str],
        report_uri: str,
    ) -> TrainerContext:
        meta = body["metadata"]
        return TrainerContext(
            name=check.job_name(meta["name"], event_id),
            event_id=event_id,
            drifted=verdict.drifted,
            windows=windows,
            report_uri=report_uri,
            tracking_uri=self.settings.mlflow_tracking_uri,
            model_name=self._model_name(meta["namespace"], spec),
        )

    def _retrain(
        self,
        body: dict[str, Any],
        spec: DriftMonitorSpec,
        status: DriftMonitorStatus,
        context: TrainerContext,
        now: datetime,
        changes: Changes,
    ) -> str:
        """This episode's workload on the monitor's engine, when episode.may_start allows it.
        Returns the note for the Drifted message: why retraining is held back, or that it is queued."""
        assert spec.retraining is not None
        namespace = body["metadata"]["namespace"]
        engine = engine_for(spec.retraining.engine)
        decision = episode.may_start(
            spec.retraining, status.last_retraining, context.event_id, engine.kind, now
        )
        if isinstance(decision, episode.Hold):
            return decision.message
        if decision.replace is not None:
            self.kube.delete(engine.kind, namespace, decision.replace)
        try:
            created = self.kube.create(render(engine, body, spec.retraining, context))
        except ApiException as error:
            answer = episode.refused(engine.kind, engine.api_version, error.status, api_error_text(error))
            if answer is None:
                raise
            changes.condition(*answer[0])
            return answer[1]
        queue = spec.retraining.queue_name
        changes.updates["lastRetraining"] = episode.started(context.name, context.event_id, now, queue)
        if created:
            telemetry.retraining(namespace, body["metadata"]["name"], "started")
            message = f"{engine.kind} {context.name} for drift event {context.event_id}"
            changes.events.append(("Normal", names.RETRAINING_STARTED, message))
        return episode.queued_note(engine.kind, context.name, queue)

    def _follow(
        self,
        body: dict[str, Any],
        spec: DriftMonitorSpec,
        status: DriftMonitorStatus,
        now: datetime,
        changes: Changes,
    ) -> None:
        """Reads the engine's workload (and Kueue's Workload while it is queued) and records what
        episode.follow makes of it."""
        assert spec.retraining is not None
        run = status.last_retraining
        if run is None or run.result in ("Succeeded", "Failed") or "lastRetraining" in changes.updates:
            return
        meta = body["metadata"]
        engine = engine_for(spec.retraining.engine)
        workload = self.kube.get(engine.kind, meta["namespace"], run.job_name)
        progress = engine.progress(workload)
        why = self._queued_why(workload) if progress.result == "Pending" and workload is not None else None
        followed = episode.follow(run, progress, engine.kind, why, now)
        if followed.last_retraining is not None:
            changes.updates["lastRetraining"] = followed.last_retraining
        if followed.finished is not None:
            telemetry.retraining(meta["namespace"], meta["name"], followed.finished)
        changes.set(followed.conditions)
        changes.events.extend(followed.events)

    def _queued_why(self, workload: dict[str, Any]) -> str:
        """Kueue's reason for holding a workload; Kueue's Workloads unreadable count as not there."""
        try:
            found = self.kube.select("Workload", workload["metadata"]["namespace"], kueue_selector(workload))
        except ApiException as error:
            if error.status not in (403, 404):
                raise
            found = []
        return queued_message(found[0] if found else None)

    def _open_rollout(
        self, body: dict[str, Any], spec: DriftMonitorSpec, status: DriftMonitorStatus, changes: Changes
    ) -> None:
        """The version the trainer registered (found by its drift-event tag) goes out as a canary."""
        run = RetrainingRun.model_validate(changes.updates.get("lastRetraining") or status.last_retraining)
        if run.result != "Succeeded" or run.rollout_name:
            return
        meta = body["metadata"]
        model_name = self._model_name(meta["namespace"], spec)
        tag = names.DRIFT_EVENT_KEY
        try:
            version = find_version_by_tag(
                model_name, tag, run.drift_event_id, self.settings.mlflow_tracking_uri
            )
        except RegistryUnavailable as error:
            changes.condition(names.RETRAINED, "False", names.REGISTRY_UNAVAILABLE, str(error))
            return
        if version is None:
            message = f"no version of {model_name} tagged {tag}={run.drift_event_id} yet"
            changes.condition(names.RETRAINED, "False", names.WAITING_FOR_MODEL_VERSION, message)
            return
        evaluation = spec.on_retrained.evaluation
        rollout = episode.retrained_rollout(
            meta["namespace"],
            meta["name"],
            spec.target_ref.name,
            model_name,
            version,
            run.drift_event_id,
            None
            if evaluation is None
            else evaluation.model_dump(mode="json", by_alias=True, exclude_none=True),
        )
        name = rollout["metadata"]["name"]
        if self.kube.create(rollout):
            message = f"CanaryRollout {name} ships {model_name} version {version}"
            changes.events.append(("Normal", names.ROLLOUT_CREATED, message))
        changes.updates["lastRetraining"] = dict(
            run.model_dump(mode="json", by_alias=True, exclude_none=True),
            modelVersion=version,
            rolloutName=name,
        )
        message = f"CanaryRollout {name} ships version {version}"
        changes.condition(names.RETRAINED, "True", names.ROLLOUT_CREATED, message)


def check_tags(monitor: str, event_id: str) -> dict[str, str]:
    return {names.DRIFT_MONITOR_KEY: monitor, **({names.DRIFT_EVENT_KEY: event_id} if event_id else {})}


def check_params(verdict: check.Verdict, windows: tuple[str, str]) -> dict[str, str]:
    params = {"baseline": windows[0], "current_window": windows[1]}
    params.update({f"{r.name}/test": f"{r.test} {r.threshold}" for r in verdict.features})
    return params


def check_metrics(verdict: check.Verdict) -> dict[str, float]:
    metrics: dict[str, float] = {"drifted_features": float(len(verdict.drifted))}
    for result in verdict.features:
        if result.statistic is not None:
            metrics[f"{result.name}/statistic"] = result.statistic
            metrics[f"{result.name}/drifted"] = float(result.drifted)
        if result.p_value is not None:
            metrics[f"{result.name}/p_value"] = result.p_value
    return metrics


def register(settings: Settings) -> None:
    controller = DriftMonitorController(settings, Kube())

    @kopf.on.timer(GROUP, VERSION, "driftmonitors", id="check", interval=settings.drift_tick_seconds)
    def tick(namespace: str | None, name: str, **_: Any) -> None:
        assert namespace is not None
        body = controller.kube.get("DriftMonitor", namespace, name)  # fresh: never a stale episode id
        if body is None or body["metadata"].get("deletionTimestamp"):
            return
        try:
            with telemetry.reconciling("DriftMonitor"):
                controller.tick(body)
        except ApiException as error:
            raise kopf.TemporaryError(f"API server: {api_error_text(error)}", delay=5) from error

    @kopf.on.delete(GROUP, VERSION, "driftmonitors", id="forget", optional=True)
    def forget(namespace: str | None, name: str, **_: Any) -> None:
        assert namespace is not None
        telemetry.monitor_forgotten(namespace, name)
