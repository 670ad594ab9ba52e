"""DriftMonitor controller: every ``interval``, baseline against current window per feature from
Prometheus histograms; on drift, one retraining Job per drift episode, within cooldown and the
concurrency policy. All state (the episode id, the last Job) lives in status.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import kopf
from kubernetes.client import ApiException
from pydantic import ValidationError

from .. import API_VERSION, GROUP, VERSION, lazy, telemetry
from ..api.common import validation_message
from ..api.driftmonitor import DriftMonitor, DriftMonitorSpec, DriftMonitorStatus, RetrainingRun
from ..conditions import set_condition, status_changes
from ..config import Settings
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
from ..retraining import EVENT_LABEL, MONITOR_LABEL, TrainerContext, engine_for, render
from ..retraining import base as engines

if TYPE_CHECKING:  # numpy and the statistics load with the first check (lazy.py), not at start
    from ..drift import check
    from ..drift.datasets import Columns

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
EVENT_TAG = f"{GROUP}/drift-event"  # the tag a trainer puts on the version it registers
MONITOR_TAG = f"{GROUP}/driftmonitor"
REPORT_FILE = "drift-report.html"


class DatasetNotFound(Exception):
    """The ConfigMap or key named as the reference dataset does not exist (yet)."""


def _dataset_text(spec: DriftMonitorSpec) -> str:
    reference = spec.baseline.dataset
    assert reference is not None
    if reference.config_map is not None:
        return f"configmap {reference.config_map.name}/{reference.config_map.key}"
    assert reference.mlflow_artifact is not None
    return f"runs:/{reference.mlflow_artifact.run_id}/{reference.mlflow_artifact.path}"


def _parse(stamp: str | None) -> datetime | None:
    return datetime.strptime(stamp, TIME_FORMAT).replace(tzinfo=UTC) if stamp else None


def check_due(spec: DriftMonitorSpec, status: DriftMonitorStatus, generation: int, now: datetime) -> bool:
    last = _parse(status.last_check_time)
    if last is None or status.observed_generation != generation:
        return True
    return (now - last).total_seconds() >= parse_duration(spec.interval)


class DriftMonitorController:
    def __init__(self, settings: Settings, kube: Kube) -> None:
        self.settings = settings
        self.kube = kube
        self._artifacts: dict[tuple[str, str, str], Columns] = {}

    def tick(self, body: dict[str, Any]) -> None:
        meta = body["metadata"]
        generation = int(meta.get("generation") or 0)
        current = dict(body.get("status") or {})
        conditions: list[dict[str, Any]] = list(current.get("conditions") or [])
        try:
            spec = DriftMonitor.model_validate(body).spec
        except ValidationError as error:
            conditions = set_condition(
                conditions, "Ready", "False", "InvalidSpec", validation_message(error), generation
            )
            self._write(body, current, {"observedGeneration": generation, "conditions": conditions})
            return
        status = DriftMonitorStatus.model_validate(current)
        now = datetime.now(UTC).replace(microsecond=0)
        events: list[tuple[str, str, str]] = []
        updates: dict[str, Any] = {"observedGeneration": generation}

        def condition(type_: str, state: Any, reason: str, message: str) -> None:
            nonlocal conditions
            conditions = set_condition(conditions, type_, state, reason, message, generation)

        if check_due(spec, status, generation, now):
            self._check(body, spec, status, now, updates, condition, events)
        if spec.retraining is not None and status.last_retraining is not None:
            self._follow_job(body, spec, status, updates, condition, events)
            if spec.on_retrained.auto_rollout:
                self._open_rollout(body, spec, status, updates, condition, events)
        updates["conditions"] = conditions
        self._write(body, current, updates)
        for type_, reason, message in events:
            self.kube.post_event(body, type_, reason, message)

    def _check(
        self,
        body: dict[str, Any],
        spec: DriftMonitorSpec,
        status: DriftMonitorStatus,
        now: datetime,
        updates: dict[str, Any],
        condition: Any,
        events: list[tuple[str, str, str]],
    ) -> None:
        lazy.load("llmops_operator.drift.check")
        from ..drift import check
        from ..drift.datasets import DatasetError

        meta = body["metadata"]
        provider = provider_for(spec.prometheus, self.settings.prometheus_url)
        baseline_window, current_window = check.windows(spec, now)
        updates["lastCheckTime"] = now.strftime(TIME_FORMAT)
        no_verdict = "no verdict without a baseline and current samples; no retraining"
        try:
            dataset = self._dataset(spec, meta["namespace"]) if spec.baseline.dataset is not None else None
            observed = check.collect(spec, provider, meta["namespace"], now, dataset)
        except MetricsUnavailable as error:
            condition("Ready", "False", "MetricsUnavailable", str(error))
            condition("Drifted", "Unknown", "MetricsUnavailable", no_verdict)
            return
        except (QueryFailed, TemplateError) as error:
            condition("Ready", "False", "QueryFailed", f"Prometheus refused a feature's query: {error}")
            condition("Drifted", "Unknown", "QueryFailed", no_verdict)
            return
        except (DatasetError, DatasetNotFound, ArtifactNotFound) as error:
            reason = "InvalidDataset" if isinstance(error, DatasetError) else "DatasetNotFound"
            condition("Ready", "False", reason, f"reference dataset: {error}")
            condition("Drifted", "Unknown", reason, no_verdict)
            return
        except RegistryUnavailable as error:
            condition("Ready", "False", "RegistryUnavailable", f"reference dataset: {error}")
            condition("Drifted", "Unknown", "RegistryUnavailable", no_verdict)
            return
        verdict = check.judge(spec, observed, status.features, now)  # history: the last status
        drifting = check.is_drift(spec, verdict)
        telemetry.drift_checked(meta["namespace"], meta["name"], verdict.features, drifting)
        updates["features"] = [f.model_dump(mode="json", by_alias=True) for f in verdict.features]
        condition("Ready", "True", "Checked", f"checked {len(spec.features)} features")
        event_id = (status.drift_event_id or check.drift_event_id(meta["uid"], now)) if drifting else ""
        baseline_text = baseline_window.text() if baseline_window is not None else _dataset_text(spec)
        report_uri = self._report(
            body, verdict, observed, baseline_text, current_window.text(), event_id, condition
        )
        updates["reportUri"] = report_uri
        drifted_before = status.drift_event_id != ""
        if drifting:
            held = ""
            if spec.retraining is not None:
                windows = (baseline_text, current_window.text())
                held = self._start_job(
                    body,
                    spec,
                    status,
                    event_id,
                    verdict,
                    windows,
                    report_uri,
                    now,
                    updates,
                    events,
                    condition,
                )
            condition("Drifted", "True", "Drift", verdict.summary() + (f"; {held}" if held else ""))
            updates["driftEventId"] = event_id
            if not drifted_before:
                events.append(("Warning", "DriftDetected", f"{verdict.summary()} (event {event_id})"))
        elif verdict.no_data:
            condition("Drifted", "Unknown", "NoData", verdict.summary())
        else:
            condition("Drifted", "False", "NoDrift", verdict.summary())
            updates["driftEventId"] = ""
            if drifted_before:
                events.append(
                    (
                        "Normal",
                        "DriftEnded",
                        f"drift event {status.drift_event_id} ended: {verdict.summary()}",
                    )
                )

    def _dataset(self, spec: DriftMonitorSpec, namespace: str) -> Columns:
        """A ConfigMap is read at every check (it may be edited); an MLflow artifact is immutable,
        so it is downloaded once per operator process."""
        from ..drift.datasets import parse_dataset

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
        observed: dict[str, tuple[check.Observation, check.Observation]],
        baseline: str,
        current: str,
        event_id: str,
        condition: Any,
    ) -> str:
        """Every check is an MLflow run in the monitor's experiment: per-feature metrics and the
        report. MLflow being away costs the report, never the verdict."""
        from ..drift.report import render_report

        meta = body["metadata"]
        monitor = f"{meta['namespace']}/{meta['name']}"
        experiment = f"driftmonitor/{monitor}"
        metrics: dict[str, float] = {"drifted_features": float(len(verdict.drifted))}
        for result in verdict.features:
            if result.statistic is not None:
                metrics[f"{result.name}/statistic"] = result.statistic
                metrics[f"{result.name}/drifted"] = float(result.drifted)
            if result.p_value is not None:
                metrics[f"{result.name}/p_value"] = result.p_value
        tags = {MONITOR_TAG: monitor, **({EVENT_TAG: event_id} if event_id else {})}
        params = {"baseline": baseline, "current_window": current}
        params.update({f"{r.name}/test": f"{r.test} {r.threshold}" for r in verdict.features})
        report = render_report(f"Drift check of {monitor}", verdict, observed, baseline, current)
        try:
            run_id = log_run(
                self.settings.mlflow_tracking_uri,
                experiment,
                f"check-{current.split('/')[1]}",
                tags=tags,
                params=params,
                metrics=metrics,
                texts={REPORT_FILE: report},
            )
        except RegistryUnavailable as error:
            condition("Reported", "False", "RegistryUnavailable", f"no report for this check: {error}")
            return ""
        condition("Reported", "True", "Logged", f"MLflow experiment {experiment}, run {run_id}")
        return f"runs:/{run_id}/{REPORT_FILE}"

    def _start_job(
        self,
        body: dict[str, Any],
        spec: DriftMonitorSpec,
        status: DriftMonitorStatus,
        event_id: str,
        verdict: check.Verdict,
        windows: tuple[str, str],
        report_uri: str,
        now: datetime,
        updates: dict[str, Any],
        events: list[tuple[str, str, str]],
        condition: Any,
    ) -> str:
        """One workload per drift episode, on the monitor's engine, and none inside the cooldown
        or beside a queued or running one (Forbid). Returns why retraining is held back, for the
        Drifted condition; empty when it is not."""
        from ..drift import check

        assert spec.retraining is not None
        meta = body["metadata"]
        engine = engine_for(spec.retraining.engine)
        last = status.last_retraining
        if last is not None and last.drift_event_id == event_id:
            return ""  # this episode already has its workload
        if last is not None:
            started = _parse(last.start_time)
            cooldown = parse_duration(spec.retraining.cooldown)
            if started is not None and (now - started).total_seconds() < cooldown:
                until = (started + timedelta(seconds=cooldown)).strftime(TIME_FORMAT)
                return f"retraining held by the cooldown until {until} (last {engine.kind} {last.job_name})"
            if last.result in ("", "Pending", "Running"):
                if spec.retraining.concurrency_policy == "Forbid":
                    state = "queued" if last.result == "Pending" else "still running"
                    held = f"{engine.kind} {last.job_name} is {state}"
                    return f"retraining held: {held} (concurrencyPolicy Forbid)"
                engines.delete(self.kube, engine, meta["namespace"], last.job_name)  # Replace
        name = check.job_name(meta["name"], event_id)
        target = self.kube.get("LLMDeployment", meta["namespace"], spec.target_ref.name) or {}
        uri = str(((target.get("spec") or {}).get("model") or {}).get("uri", ""))
        ref = parse_registry_uri(uri)
        context = TrainerContext(
            name=name,
            event_id=event_id,
            drifted=verdict.drifted,
            windows=windows,
            report_uri=report_uri,
            tracking_uri=self.settings.mlflow_tracking_uri,
            model_name=ref.name if ref is not None else spec.target_ref.name,
        )
        workload = render(engine, body, spec.retraining, context)
        try:
            created = engines.create(self.kube, engine, workload)
        except ApiException as error:
            if error.status == 404:
                message = f"engine {engine.kind} ({engine.api_version}) is not installed in the cluster"
                condition("Ready", "False", "EngineNotInstalled", message)
                return f"retraining held: {message}"
            if error.status in (400, 422):
                message = f"the API server rejected the {engine.kind}: {api_error_text(error)}"
                condition("Ready", "False", "InvalidSpec", message)
                return "retraining held: its template is invalid"
            raise
        queued = spec.retraining.queue_name
        updates["lastRetraining"] = RetrainingRun(
            job_name=name,
            drift_event_id=event_id,
            start_time=now.strftime(TIME_FORMAT),
            result="Pending" if queued else "Running",
        ).model_dump(mode="json", by_alias=True, exclude_none=True)
        if created:
            telemetry.retraining(meta["namespace"], meta["name"], "started")
            events.append(("Normal", "RetrainingStarted", f"{engine.kind} {name} for drift event {event_id}"))
        return f"retraining {engine.kind} {name} queued in Kueue LocalQueue {queued}" if queued else ""

    def _follow_job(
        self,
        body: dict[str, Any],
        spec: DriftMonitorSpec,
        status: DriftMonitorStatus,
        updates: dict[str, Any],
        condition: Any,
        events: list[tuple[str, str, str]],
    ) -> None:
        """Maps the engine's status to lastRetraining and Retrained; a queued workload reports
        Kueue's reason for not admitting it yet."""
        assert spec.retraining is not None
        run = status.last_retraining
        if run is None or run.result in ("Succeeded", "Failed") or "lastRetraining" in updates:
            return
        engine = engine_for(spec.retraining.engine)
        workload = engines.get(self.kube, engine, body["metadata"]["namespace"], run.job_name)
        progress = engine.progress(workload)
        what = f"{engine.kind} {run.job_name}"
        if progress.result == "Pending" and workload is not None:
            why = engines.queued_message(engines.kueue_workload(self.kube, workload))
            condition("Retrained", "Unknown", "Queued", f"{what} is queued: {why}")
        if progress.result == run.result:
            return
        finished = dict(run.model_dump(mode="json", by_alias=True, exclude_none=True), result=progress.result)
        if progress.result in ("Succeeded", "Failed"):
            finished["completionTime"] = progress.completion_time or datetime.now(UTC).strftime(TIME_FORMAT)
        updates["lastRetraining"] = finished
        if progress.result in ("Succeeded", "Failed"):
            telemetry.retraining(
                body["metadata"]["namespace"], body["metadata"]["name"], progress.result.lower()
            )
        if progress.result == "Failed":
            condition("Retrained", "False", "JobFailed", f"{what} failed; it is not retried")
            events.append(("Warning", "RetrainingFailed", f"{what} failed; it is not retried"))
        elif progress.result == "Succeeded":
            condition("Retrained", "True", "JobSucceeded", f"{what} succeeded")
            events.append(("Normal", "RetrainingSucceeded", f"{what} succeeded"))
        elif progress.result == "Running":
            condition("Retrained", "Unknown", "JobRunning", f"{what} is running")

    def _open_rollout(
        self,
        body: dict[str, Any],
        spec: DriftMonitorSpec,
        status: DriftMonitorStatus,
        updates: dict[str, Any],
        condition: Any,
        events: list[tuple[str, str, str]],
    ) -> None:
        """The version the Job registered (found by its drift-event tag) goes out as a canary."""
        run = RetrainingRun.model_validate(updates.get("lastRetraining") or status.last_retraining)
        if run.result != "Succeeded" or run.rollout_name:
            return
        meta = body["metadata"]
        target = self.kube.get("LLMDeployment", meta["namespace"], spec.target_ref.name) or {}
        ref = parse_registry_uri(str(((target.get("spec") or {}).get("model") or {}).get("uri", "")))
        model_name = ref.name if ref is not None else spec.target_ref.name
        try:
            version = find_version_by_tag(
                model_name, EVENT_TAG, run.drift_event_id, self.settings.mlflow_tracking_uri
            )
        except RegistryUnavailable as error:
            condition("Retrained", "False", "RegistryUnavailable", str(error))
            return
        if version is None:
            message = f"no version of {model_name} tagged {EVENT_TAG}={run.drift_event_id} yet"
            condition("Retrained", "False", "WaitingForModelVersion", message)
            return
        name = f"{spec.target_ref.name[:40]}-retrained-{run.drift_event_id}"
        rollout_spec: dict[str, Any] = {
            "targetRef": {"name": spec.target_ref.name},
            "canary": {"model": {"uri": f"models:/{model_name}/{version}"}},
        }
        if spec.on_retrained.evaluation is not None:  # the retrained version is evaluated first
            evaluation = spec.on_retrained.evaluation
            rollout_spec["evaluation"] = evaluation.model_dump(mode="json", by_alias=True, exclude_none=True)
        rollout = {
            "apiVersion": API_VERSION,
            "kind": "CanaryRollout",
            "metadata": {
                "name": name,
                "namespace": meta["namespace"],
                "labels": {MONITOR_LABEL: meta["name"], EVENT_LABEL: run.drift_event_id},
            },
            "spec": rollout_spec,
        }
        if self.kube.create(rollout):
            events.append(
                ("Normal", "RolloutCreated", f"CanaryRollout {name} ships {model_name} version {version}")
            )
        updates["lastRetraining"] = dict(
            run.model_dump(mode="json", by_alias=True, exclude_none=True),
            modelVersion=version,
            rolloutName=name,
        )
        condition("Retrained", "True", "RolloutCreated", f"CanaryRollout {name} ships version {version}")

    def _write(self, body: dict[str, Any], current: dict[str, Any], desired: dict[str, Any]) -> None:
        changes = status_changes(current, desired)
        if changes:
            meta = body["metadata"]
            self.kube.patch_status("DriftMonitor", meta["namespace"], meta["name"], changes)


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
