"""DriftMonitor controller: every ``interval``, baseline against current window per feature from
Prometheus histograms; on drift, one retraining Job per drift episode, within cooldown and the
concurrency policy. All state (the episode id, the last Job) lives in status.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import kopf
from kubernetes.client import ApiException
from pydantic import ValidationError

from .. import API_VERSION, GROUP, VERSION
from ..api.common import validation_message
from ..api.driftmonitor import DriftMonitor, DriftMonitorSpec, DriftMonitorStatus, RetrainingRun
from ..conditions import set_condition, status_changes
from ..config import Settings
from ..drift import check
from ..drift.retraining import EVENT_LABEL, MONITOR_LABEL, job_result, retraining_job
from ..durations import parse_duration
from ..kube import Kube, api_error_text
from ..metrics import MetricsUnavailable, QueryFailed
from ..metrics.prometheus import PrometheusProvider
from ..models import parse_registry_uri
from ..registry.mlflow import RegistryUnavailable, find_version_by_tag

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
EVENT_TAG = f"{GROUP}/drift-event"  # the tag a trainer puts on the version it registers


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

        problem = check.unsupported(spec)
        if problem is not None:
            condition("Ready", "False", "Unsupported", problem)
            condition("Drifted", "Unknown", "Unsupported", problem)
        elif check_due(spec, status, generation, now):
            self._check(body, spec, status, now, updates, condition, events)
        if spec.retraining is not None and status.last_retraining is not None:
            self._follow_job(body, status, updates, condition, events)
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
        meta = body["metadata"]
        url = spec.prometheus.address if spec.prometheus is not None else self.settings.prometheus_url
        provider = PrometheusProvider(url)
        baseline_window, current_window = check.windows(spec, now)
        updates["lastCheckTime"] = now.strftime(TIME_FORMAT)
        histograms = {}
        try:
            for feature in spec.features:
                histograms[feature.name] = tuple(
                    provider.buckets(
                        check.histogram_query(feature, meta["namespace"], spec.target_ref.name, w), w.end
                    )
                    for w in (baseline_window, current_window)
                )
        except (MetricsUnavailable, QueryFailed) as error:
            condition("Ready", "False", "MetricsUnavailable", str(error))
            condition("Drifted", "Unknown", "MetricsUnavailable", "no check without metrics; no retraining")
            return
        verdict = check.judge(spec, histograms)  # type: ignore[arg-type]
        updates["features"] = [f.model_dump(mode="json", by_alias=True) for f in verdict.features]
        drifted_before = status.drift_event_id != ""
        if check.is_drift(spec, verdict):
            condition("Ready", "True", "Checked", f"checked {len(spec.features)} features")
            condition("Drifted", "True", "Drift", verdict.summary())
            event_id = status.drift_event_id or check.drift_event_id(meta["uid"], now)
            updates["driftEventId"] = event_id
            if not drifted_before:
                events.append(("Warning", "DriftDetected", f"{verdict.summary()} (event {event_id})"))
            if spec.retraining is not None:
                self._start_job(
                    body,
                    spec,
                    status,
                    event_id,
                    verdict,
                    baseline_window,
                    current_window,
                    now,
                    updates,
                    events,
                )
        elif verdict.no_data and not verdict.drifted:
            condition("Ready", "True", "Checked", f"checked {len(spec.features)} features")
            condition("Drifted", "Unknown", "NoData", verdict.summary())
        else:
            condition("Ready", "True", "Checked", f"checked {len(spec.features)} features")
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

    def _start_job(
        self,
        body: dict[str, Any],
        spec: DriftMonitorSpec,
        status: DriftMonitorStatus,
        event_id: str,
        verdict: check.Verdict,
        baseline: check.Window,
        current: check.Window,
        now: datetime,
        updates: dict[str, Any],
        events: list[tuple[str, str, str]],
    ) -> None:
        """One Job per drift episode, and none inside the cooldown or beside a running one (Forbid)."""
        assert spec.retraining is not None
        meta = body["metadata"]
        last = status.last_retraining
        if last is not None and last.drift_event_id == event_id:
            return  # this episode already has its Job
        if last is not None:
            started = _parse(last.start_time)
            if started is not None and (now - started).total_seconds() < parse_duration(
                spec.retraining.cooldown
            ):
                return
            if last.result in ("", "Running"):
                if spec.retraining.concurrency_policy == "Forbid":
                    return
                self.kube.delete("Job", meta["namespace"], last.job_name)  # Replace
        name = check.job_name(meta["name"], event_id)
        target = self.kube.get("LLMDeployment", meta["namespace"], spec.target_ref.name) or {}
        uri = str(((target.get("spec") or {}).get("model") or {}).get("uri", ""))
        ref = parse_registry_uri(uri)
        job = retraining_job(
            monitor=body,
            retraining=spec.retraining,
            name=name,
            event_id=event_id,
            drifted=verdict.drifted,
            baseline=baseline,
            current=current,
            tracking_uri=self.settings.mlflow_tracking_uri,
            model_name=ref.name if ref is not None else spec.target_ref.name,
        )
        created = self.kube.create(job)
        updates["lastRetraining"] = RetrainingRun(
            job_name=name, drift_event_id=event_id, start_time=now.strftime(TIME_FORMAT), result="Running"
        ).model_dump(mode="json", by_alias=True, exclude_none=True)
        if created:
            events.append(("Normal", "RetrainingStarted", f"Job {name} for drift event {event_id}"))

    def _follow_job(
        self,
        body: dict[str, Any],
        status: DriftMonitorStatus,
        updates: dict[str, Any],
        condition: Any,
        events: list[tuple[str, str, str]],
    ) -> None:
        run = status.last_retraining
        if run is None or run.result in ("Succeeded", "Failed") or "lastRetraining" in updates:
            return
        job = self.kube.get("Job", body["metadata"]["namespace"], run.job_name)
        result = job_result(job)
        if result == run.result:
            return
        finished = dict(run.model_dump(mode="json", by_alias=True, exclude_none=True), result=result)
        if result in ("Succeeded", "Failed") and job is not None:
            finished["completionTime"] = (job.get("status") or {}).get("completionTime") or datetime.now(
                UTC
            ).strftime(TIME_FORMAT)
        updates["lastRetraining"] = finished
        if result == "Failed":
            condition("Retrained", "False", "JobFailed", f"Job {run.job_name} failed; it is not retried")
            events.append(("Warning", "RetrainingFailed", f"Job {run.job_name} failed; it is not retried"))
        elif result == "Succeeded":
            condition("Retrained", "True", "JobSucceeded", f"Job {run.job_name} succeeded")
            events.append(("Normal", "RetrainingSucceeded", f"Job {run.job_name} succeeded"))
        else:
            condition("Retrained", "Unknown", "JobRunning", f"Job {run.job_name} is running")

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
        rollout = {
            "apiVersion": API_VERSION,
            "kind": "CanaryRollout",
            "metadata": {
                "name": name,
                "namespace": meta["namespace"],
                "labels": {MONITOR_LABEL: meta["name"], EVENT_LABEL: run.drift_event_id},
            },
            "spec": {
                "targetRef": {"name": spec.target_ref.name},
                "canary": {"model": {"uri": f"models:/{model_name}/{version}"}},
            },
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
            controller.tick(body)
        except ApiException as error:
            raise kopf.TemporaryError(f"API server: {api_error_text(error)}", delay=5) from error
