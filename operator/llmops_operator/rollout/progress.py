"""Steps, counters and verdicts of a CanaryRollout as pure functions over its typed status.

The handler feeds in what it observed (a verified weight, fresh measurements, a manual request)
and carries out what comes back; everything it needs to resume after a restart is in status.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from ..api.canaryrollout import (
    AnalysisSpec,
    CanaryRolloutSpec,
    CanaryRolloutStatus,
    ExperimentStep,
    HeaderRouteStatus,
    MeasurementStatus,
    MetricTally,
)
from ..conditions import set_condition
from ..durations import parse_duration
from ..names import (
    ABORTED,
    ANALYSIS_FAILED,
    EVALUATION_FAILED,
    FAILED_FAST,
    METRICS_UNAVAILABLE,
    NO_DATA,
    NOT_PAUSED,
    NOT_PROMOTED,
    NOT_ROLLED_BACK,
    PAUSED,
    PENDING,
    PROGRESSING,
    PROMOTED,
    PROMOTING,
    READY,
    ROLLED_BACK,
    STEP_IN_PROGRESS,
    WAITING,
    WAITING_FOR_PROMOTE,
)
from ..timestamps import format_time, parse_time, seconds_since
from .analysis import Measurement, applicable, metrics_of

AUTOMATIC_PAUSES = (NO_DATA, METRICS_UNAVAILABLE)
TERMINAL = ("Promoted", "RolledBack")  # phases a rollout ends in
Request = Literal["promote", "abort", "retry", "pause", "resume"]
REQUESTS: tuple[Request, ...] = ("promote", "abort", "retry", "pause", "resume")


StepKind = Literal["setWeight", "pause", "analysis", "setMirror", "setHeaderRoute", "experiment"]


@dataclass(frozen=True)
class Step:
    kind: StepKind
    weight: int = 0  # setWeight; experiment: the split it starts from
    duration_seconds: float | None = None  # pause without a duration waits for a promote; experiment
    metrics: tuple[str, ...] = ()  # analysis: empty means every metric
    mirror_percent: int = 0  # setMirror
    header: HeaderRouteStatus | None = None  # setHeaderRoute
    experiment: ExperimentStep | None = None


DEFAULT_STEPS = (
    Step("setWeight", weight=10),
    Step("analysis"),
    Step("setWeight", weight=50),
    Step("analysis"),
    Step("setWeight", weight=100),
    Step("analysis"),
)


def plan(spec: CanaryRolloutSpec) -> list[Step]:
    """The user's steps, or the defaults; always ending in an analysis at the final weight so
    nothing is promoted without ``minSuccessfulMeasurements`` successes there."""
    if not spec.steps:
        return list(DEFAULT_STEPS)
    steps: list[Step] = []
    for step in spec.steps:
        if step.set_weight is not None:
            steps.append(Step("setWeight", weight=step.set_weight))
        elif step.pause is not None:
            duration = parse_duration(step.pause.duration) if step.pause.duration else None
            steps.append(Step("pause", duration_seconds=duration))
        elif step.analysis is not None:
            steps.append(Step("analysis", metrics=tuple(step.analysis.metrics)))
        elif step.set_mirror is not None:
            steps.append(Step("setMirror", mirror_percent=step.set_mirror.percent))
        elif step.set_header_route is not None:
            route = step.set_header_route
            steps.append(Step("setHeaderRoute", header=HeaderRouteStatus(**route.model_dump())))
        elif step.experiment is not None:
            duration = parse_duration(step.experiment.duration)
            steps.append(
                Step(
                    "experiment",
                    weight=step.experiment.weight,
                    duration_seconds=duration,
                    experiment=step.experiment,
                )
            )
    if steps[-1].kind != "analysis":
        steps.append(Step("analysis"))
    return steps


@dataclass(frozen=True)
class RoundOutcome:
    """What the counters say after a measurement round."""

    rollback: str | None = None  # the failing metric, its value and threshold
    metric: str = ""  # the failing metric's name
    pause: str = ""  # NoData or MetricsUnavailable; empty when measuring works
    pause_message: str = ""


def start_step(status: CanaryRolloutStatus, index: int, now: datetime) -> None:
    status.current_step_index = index
    status.step_started_at = format_time(now)
    status.experiment_started_at = None
    for tally in status.tallies:
        tally.successful = 0


def sees_traffic(status: CanaryRolloutStatus) -> bool:
    """The canary gets requests: a share of users, or a mirrored copy of theirs."""
    return status.canary_weight > 0 or status.mirror_percent > 0


def canary_share(status: CanaryRolloutStatus) -> int:
    """The share of requests the canary must have pods for: its weight, its mirrored share, and at
    least one pod for a header route."""
    return max(status.canary_weight, status.mirror_percent, 1 if status.header_route else 0)


def experiment_decided(status: CanaryRolloutStatus, index: int) -> bool:
    return any(result.step == index for result in status.experiments)


def next_measurement_at(status: CanaryRolloutStatus, analysis: AnalysisSpec) -> datetime | None:
    """When the next measurement is due: an interval after the weight was verified and an interval
    after the last one, so no rate window straddles a weight change. None while nothing reaches
    the canary (no weight, no mirrored share). Stamps are whole seconds and so, for whole-second
    intervals, are these instants: a measurement taken exactly then is stamped exactly, and the
    schedule does not drift."""
    if not sees_traffic(status) or status.weight_verified_at is None:
        return None
    interval = timedelta(seconds=parse_duration(analysis.interval))
    due = parse_time(status.weight_verified_at) + interval
    if status.last_measured_at is not None:
        due = max(due, parse_time(status.last_measured_at) + interval)
    return due


def measurement_due(status: CanaryRolloutStatus, analysis: AnalysisSpec, now: datetime) -> bool:
    due = next_measurement_at(status, analysis)
    return due is not None and now >= due


def record(
    status: CanaryRolloutStatus, measurements: list[Measurement], analysis: AnalysisSpec, now: datetime
) -> RoundOutcome:
    """Count one round of measurements and say whether to roll back or pause."""
    stamp = format_time(now)
    status.last_measured_at = stamp
    tallies = {tally.name: tally for tally in status.tallies}
    latest = {m.metric: m for m in status.measurements}
    for m in measurements:
        tally = tallies.setdefault(m.metric, MetricTally(name=m.metric))
        if m.phase == "Error":
            tally.errors += 1
            tally.consecutive_errors += 1
        else:
            tally.consecutive_errors = 0
            if m.phase == "Inconclusive":
                tally.inconclusive += 1
                tally.consecutive_inconclusive += 1
            else:
                tally.consecutive_inconclusive = 0
                if m.phase == "Successful":
                    tally.successful += 1
                else:
                    tally.failed += 1
        latest[m.metric] = MeasurementStatus(
            metric=m.metric,
            phase=m.phase,
            value=m.value,
            threshold=m.threshold,
            message=m.message,
            measured_at=stamp,
        )
    status.tallies = [tallies[name] for name in sorted(tallies)]
    status.measurements = [latest[name] for name in sorted(latest)]
    for tally in status.tallies:
        if tally.failed > analysis.failure_limit:
            last = latest[tally.name]
            return RoundOutcome(
                rollback=(
                    f"metric {tally.name} failed {tally.failed} times (limit {analysis.failure_limit}): "
                    f"{last.value or 'no value'} against {last.threshold or 'the baseline'}"
                ),
                metric=tally.name,
            )
    measured = [tally for tally in status.tallies if tally.name in {m.metric for m in measurements}]
    for tally in measured:  # a metric that sat out this round says nothing about data now
        if tally.consecutive_errors > analysis.consecutive_error_limit:
            message = f"{tally.name}: {latest[tally.name].message}"
            return RoundOutcome(pause=METRICS_UNAVAILABLE, pause_message=message)
    for tally in measured:
        if tally.consecutive_inconclusive > analysis.inconclusive_limit:
            message = (
                f"{tally.name} had no data {tally.consecutive_inconclusive} times in a row: "
                f"{latest[tally.name].message}; neither promoting nor rolling back"
            )
            return RoundOutcome(pause=NO_DATA, pause_message=message)
    return RoundOutcome()


def advance(status: CanaryRolloutStatus, steps: list[Step], spec: CanaryRolloutSpec, now: datetime) -> bool:
    """Move through every step whose work is done; True when all are done (time to promote)."""
    if status.paused_reason:
        return False
    min_successful = spec.analysis.min_successful_measurements
    judged = {
        metric.name
        for metric in applicable(metrics_of(spec.analysis), status.canary_weight, status.mirror_percent)
    }
    while status.current_step_index < len(steps):
        step = steps[status.current_step_index]
        if step.kind == "setWeight":
            if status.canary_weight != step.weight:
                status.canary_weight = step.weight
                status.stable_weight = 100 - step.weight
                status.weight_verified_at = None
                return False
            if status.weight_verified_at is None:
                return False
        elif step.kind == "setMirror":
            if status.mirror_percent != step.mirror_percent:
                status.mirror_percent = step.mirror_percent
                status.weight_verified_at = None
                return False
            if status.weight_verified_at is None:
                return False
        elif step.kind == "setHeaderRoute":
            if status.header_route != step.header:
                status.header_route = step.header
                status.weight_verified_at = None
                return False
            if status.weight_verified_at is None:
                return False
        elif step.kind == "experiment":
            if status.experiment_started_at is None:
                if status.canary_weight != step.weight:
                    status.canary_weight, status.stable_weight = step.weight, 100 - step.weight
                    status.weight_verified_at = None
                    return False
                if status.weight_verified_at is None:
                    return False
                status.experiment_started_at = status.weight_verified_at
            if not experiment_decided(status, status.current_step_index):
                return False
        elif step.kind == "pause":
            if step.duration_seconds is None:
                return False
            if seconds_since(status.step_started_at, now) < step.duration_seconds:
                return False
        else:
            if not sees_traffic(status) or status.weight_verified_at is None:
                return False
            successes = {tally.name: tally.successful for tally in status.tallies}
            wanted = [name for name in step.metrics or judged if name in judged]
            if any(successes.get(name, 0) < min_successful for name in wanted):
                return False
        start_step(status, status.current_step_index + 1, now)
    return True


def at_indefinite_pause(status: CanaryRolloutStatus, steps: list[Step]) -> bool:
    index = status.current_step_index
    return index < len(steps) and steps[index].kind == "pause" and steps[index].duration_seconds is None


def canary_replicas(full: int, weight: int) -> int:
    """Canary pods for a weight: at least one as soon as any traffic is asked for."""
    return 0 if weight <= 0 else max(1, math.ceil(full * weight / 100))


def stable_replicas(full: int, weight: int, canary_ready: int) -> int:
    """Stable pods under replica-ratio routing: scaled down only as canary pods become Ready, so
    serving capacity never drops below ``full`` and no extra GPU beyond the canary's is needed."""
    floor_by_weight = full - math.floor(full * weight / 100)
    return max(0, floor_by_weight, full - canary_ready)


def conditions_for(
    status: CanaryRolloutStatus,
    steps: list[Step],
    generation: int,
    detail: str,
    now: str,
    waiting_reason: str = WAITING,
) -> list[dict[str, Any]]:
    """The five conditions, derived from the state so they can never disagree with it."""
    phase = status.phase
    step = status.current_step_index
    where = f"step {min(step + 1, len(steps))}/{len(steps)}, canary weight {status.canary_weight}%"
    conditions = [c.model_dump(mode="json", by_alias=True) for c in status.conditions]

    def put(type_: str, state: Literal["True", "False", "Unknown"], reason: str, message: str) -> None:
        nonlocal conditions
        conditions = set_condition(conditions, type_, state, reason, message, generation, now)

    indefinite = phase == "Progressing" and at_indefinite_pause(status, steps)
    if phase == "Promoted":
        put(PROGRESSING, "False", PROMOTED, detail or "the canary is the new stable")
    elif phase == "RolledBack":
        put(PROGRESSING, "False", ROLLED_BACK, detail)
    elif phase == "Waiting":
        put(PROGRESSING, "False", waiting_reason, detail)
    elif status.paused_reason:
        put(PROGRESSING, "False", status.paused_reason, detail or where)
    elif phase == "Promoting":
        put(PROGRESSING, "True", PROMOTING, detail or "all steps passed")
    else:
        reason = WAITING_FOR_PROMOTE if indefinite else STEP_IN_PROGRESS
        put(PROGRESSING, "True", reason, detail or where)
    if status.paused_reason:
        put(PAUSED, "True", status.paused_reason, detail or where)
    elif indefinite:
        put(PAUSED, "True", WAITING_FOR_PROMOTE, f"{where}: `kubectl llmops rollout promote` continues")
    else:
        put(PAUSED, "False", NOT_PAUSED, "")
    promoted = phase == "Promoted"
    put(PROMOTED, "True" if promoted else "False", PROMOTED if promoted else NOT_PROMOTED, "")
    if phase == "RolledBack":
        evaluated = status.evaluation is not None and status.evaluation.phase == "Failed"
        fired = any(evidence.fired for evidence in status.fail_fast)
        if detail.startswith("aborted"):
            reason = ABORTED
        else:
            reason = EVALUATION_FAILED if evaluated else FAILED_FAST if fired else ANALYSIS_FAILED
        put(ROLLED_BACK, "True", reason, detail)
    else:
        put(ROLLED_BACK, "False", NOT_ROLLED_BACK, "")
    if promoted:
        put(READY, "True", PROMOTED, detail or "the canary is the new stable")
    else:
        put(READY, "False", phase or PENDING, detail or where)
    return conditions
