"""What a DriftMonitor does with a verdict, as pure functions: the episode it starts or ends, whether
its retraining may start (cooldown, concurrencyPolicy), what a refused create means, how the
engine's progress maps to status, and the CanaryRollout of a retrained version.

The controller (handlers/driftmonitor.py) reads, asks these, and writes what comes back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .. import API_VERSION, names
from ..api.driftmonitor import RetrainingRun, RetrainingSpec
from ..conditions import ConditionStatus
from ..durations import parse_duration
from ..retraining import Progress
from ..timestamps import format_time, parse_time
from . import check

Event = tuple[str, str, str]  # (Normal or Warning, reason, message)
Condition = tuple[str, ConditionStatus, str, str]  # (type, status, reason, message)
NO_VERDICT = "no verdict without a baseline and current samples; no retraining"
ACTIVE = ("", "Pending", "Running")  # results of a workload that has not finished


def unavailable(reason: str, message: str) -> list[Condition]:
    """A check that could not read its windows (or its reference dataset) judges nothing."""
    return [
        (names.READY, "False", reason, message),
        (names.DRIFTED, "Unknown", reason, NO_VERDICT),
    ]


@dataclass(frozen=True)
class Episode:
    """The Drifted condition of one verdict, the episode id (empty when not drifting), the new
    status.driftEventId (None: unchanged) and the Event marking an episode's start or end."""

    drifted: Condition
    event_id: str = ""
    drift_event_id: str | None = None
    event: Event | None = None

    def held(self, note: str) -> Episode:
        """This episode with why its retraining is held back (or queued) in the Drifted message."""
        if not note:
            return self
        type_, state, reason, message = self.drifted
        return Episode(
            (type_, state, reason, f"{message}; {note}"), self.event_id, self.drift_event_id, self.event
        )


def episode(verdict: check.Verdict, drifting: bool, current_event: str, uid: str, now: datetime) -> Episode:
    """An episode lasts from the first drifted check to the first check without drift; it keeps the
    id of the check that started it, so one episode has one retraining."""
    summary = verdict.summary()
    if drifting:
        event_id = current_event or check.drift_event_id(uid, now)
        started = (
            None if current_event else ("Warning", names.DRIFT_DETECTED, f"{summary} (event {event_id})")
        )
        return Episode((names.DRIFTED, "True", names.DRIFT, summary), event_id, event_id, started)
    if verdict.no_data:
        return Episode((names.DRIFTED, "Unknown", names.NO_DATA, summary))
    ended = None
    if current_event:
        ended = ("Normal", names.DRIFT_ENDED, f"drift event {current_event} ended: {summary}")
    return Episode((names.DRIFTED, "False", names.NO_DRIFT, summary), drift_event_id="", event=ended)


@dataclass(frozen=True)
class Start:
    """Create this episode's workload; first delete ``replace`` (Replace policy) when set."""

    replace: str | None = None


@dataclass(frozen=True)
class Hold:
    """No workload for this episode now: ``message`` says why (empty: it has one already)."""

    message: str = ""


def may_start(
    retraining: RetrainingSpec, last: RetrainingRun | None, event_id: str, kind: str, now: datetime
) -> Start | Hold:
    """One workload per episode, none inside the cooldown, none beside an unfinished one under
    Forbid; Replace deletes the unfinished one first."""
    if last is None:
        return Start()
    if last.drift_event_id == event_id:
        return Hold()
    if last.start_time:
        started = parse_time(last.start_time)
        cooldown = parse_duration(retraining.cooldown)
        if (now - started).total_seconds() < cooldown:
            until = format_time(started + timedelta(seconds=cooldown))
            return Hold(f"retraining held by the cooldown until {until} (last {kind} {last.job_name})")
    if last.result not in ACTIVE:
        return Start()
    if retraining.concurrency_policy == "Forbid":
        state = "queued" if last.result == "Pending" else "still running"
        return Hold(f"retraining held: {kind} {last.job_name} is {state} (concurrencyPolicy Forbid)")
    return Start(replace=last.job_name)


def refused(kind: str, api_version: str, status: int, text: str) -> tuple[Condition, str] | None:
    """What the API server's refusal of a workload create means: (the Ready condition, the note
    for Drifted); None for an error that is not the monitor's (the tick is retried)."""
    if status == 404:
        message = f"engine {kind} ({api_version}) is not installed in the cluster"
        return (names.READY, "False", names.ENGINE_NOT_INSTALLED, message), f"retraining held: {message}"
    if status in (400, 422):
        message = f"the API server rejected the {kind}: {text}"
        return (names.READY, "False", names.INVALID_SPEC, message), "retraining held: its template is invalid"
    return None


def started(name: str, event_id: str, now: datetime, queue: str | None) -> dict[str, Any]:
    """status.lastRetraining of a workload just created: Pending while Kueue holds it."""
    return RetrainingRun(
        job_name=name,
        drift_event_id=event_id,
        start_time=format_time(now),
        result="Pending" if queue else "Running",
    ).model_dump(mode="json", by_alias=True, exclude_none=True)


def queued_note(kind: str, name: str, queue: str | None) -> str:
    return f"retraining {kind} {name} queued in Kueue LocalQueue {queue}" if queue else ""


@dataclass
class Followed:
    """What the engine's status changes: lastRetraining (None: unchanged), conditions, Events, and
    the result to count when the workload finished."""

    last_retraining: dict[str, Any] | None = None
    conditions: list[Condition] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    finished: str | None = None


def follow(
    run: RetrainingRun, progress: Progress, kind: str, queued_why: str | None, now: datetime
) -> Followed:
    """The engine's progress mapped to lastRetraining and Retrained; ``queued_why`` is Kueue's
    reason for not admitting a Pending workload yet."""
    what = f"{kind} {run.job_name}"
    followed = Followed()
    if progress.result == "Pending" and queued_why is not None:
        followed.conditions.append(
            (names.RETRAINED, "Unknown", names.QUEUED, f"{what} is queued: {queued_why}")
        )
    if progress.result == run.result:
        return followed
    done = progress.result in ("Succeeded", "Failed")
    record = dict(run.model_dump(mode="json", by_alias=True, exclude_none=True), result=progress.result)
    if done:
        record["completionTime"] = progress.completion_time or format_time(now)
        followed.finished = progress.result.lower()
    followed.last_retraining = record
    if progress.result == "Failed":
        message = f"{what} failed; it is not retried"
        followed.conditions.append((names.RETRAINED, "False", names.JOB_FAILED, message))
        followed.events.append(("Warning", names.RETRAINING_FAILED, message))
    elif progress.result == "Succeeded":
        followed.conditions.append((names.RETRAINED, "True", names.JOB_SUCCEEDED, f"{what} succeeded"))
        followed.events.append(("Normal", names.RETRAINING_SUCCEEDED, f"{what} succeeded"))
    elif progress.result == "Running":
        followed.conditions.append((names.RETRAINED, "Unknown", names.JOB_RUNNING, f"{what} is running"))
    return followed


def rollout_name(target: str, event_id: str) -> str:
    return f"{target[:40]}-retrained-{event_id}"


def retrained_rollout(
    namespace: str,
    monitor: str,
    target: str,
    model_name: str,
    version: str,
    event_id: str,
    evaluation: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The CanaryRollout that ships a retrained version with the default steps, evaluated first
    when ``onRetrained.evaluation`` asks for it."""
    rollout: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": "CanaryRollout",
        "metadata": {
            "name": rollout_name(target, event_id),
            "namespace": namespace,
            "labels": {names.DRIFT_MONITOR_KEY: monitor, names.DRIFT_EVENT_KEY: event_id},
        },
        "spec": {
            "targetRef": {"name": target},
            "canary": {"model": {"uri": f"models:/{model_name}/{version}"}},
        },
    }
    if evaluation is not None:
        rollout["spec"]["evaluation"] = evaluation
    return rollout
