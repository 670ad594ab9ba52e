"""The decisions of one CanaryRollout tick as small pure functions, in the order the tick asks them.

Each gate looks at a ``Snapshot`` of what the controller read and answers with an ``Outcome``:
``Proceed``, ``Wait`` (with the reason and message the conditions carry), ``Pause`` or ``Fail``
(roll back). The controller (handlers/canaryrollout.py) reads, asks ``first_stop``, and carries
out what comes back; a new check is one function here and a line in ``GATES``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from pydantic import ValidationError

from .. import names
from ..api.canaryrollout import CanaryRolloutSpec, CanaryRolloutStatus, RollbackOrder
from ..api.common import validation_message
from ..api.llmdeployment import LLMDeploymentSpec
from ..durations import parse_duration
from ..timestamps import seconds_since
from . import analysis, failfast, progress

Event = tuple[str, str, str]  # (Normal or Warning, reason, message)
RUNNING = ("Progressing", "Paused", "Promoting")


def normal(reason: str, message: str) -> Event:
    return ("Normal", reason, message)


def warning(reason: str, message: str) -> Event:
    return ("Warning", reason, message)


@dataclass(frozen=True)
class Proceed:
    """Nothing stops this tick here."""


@dataclass(frozen=True)
class Wait:
    """The rollout cannot go on yet. With ``keep_phase`` false the phase becomes ``Waiting`` and
    ``reason`` is the Progressing condition's reason; with it true (a rollout under way, waiting
    for the cluster to catch up) the phase stays and ``message`` says what it waits for."""

    reason: str
    message: str
    keep_phase: bool = False


@dataclass(frozen=True)
class Pause:
    reason: str  # pausedReason: NoData, MetricsUnavailable, Manual
    message: str


@dataclass(frozen=True)
class Fail:
    """Roll back, for this reason (the failing metric, or a request)."""

    reason: str
    metric: str = ""  # the failing metric's name; empty for a request


Outcome = Proceed | Wait | Pause | Fail
PROCEED = Proceed()


@dataclass(frozen=True)
class Snapshot:
    """What a tick read before deciding anything: the rollout, its siblings, the target."""

    rollout: dict[str, Any]
    spec: CanaryRolloutSpec
    status: CanaryRolloutStatus
    siblings: list[dict[str, Any]]
    target: dict[str, Any] | None
    shares_service: bool  # of the router the spec names
    now: datetime
    steps: list[progress.Step] = field(default_factory=list)

    @property
    def target_name(self) -> str:
        return self.spec.target_ref.name

    @property
    def started(self) -> bool:
        return self.status.phase not in ("", "Waiting")

    @cached_property
    def target_spec(self) -> LLMDeploymentSpec | str:
        """The target's parsed spec, or why it does not parse."""
        try:
            return LLMDeploymentSpec.model_validate((self.target or {}).get("spec") or {})
        except ValidationError as error:
            return validation_message(error)


def rival_of(rollout: dict[str, Any], siblings: list[dict[str, Any]]) -> str | None:
    """The rollout that owns the target while this one waits: the one already running, else the
    oldest, so exactly one of several rollouts of one LLMDeployment proceeds."""
    me = rollout["metadata"]

    def rank(other: dict[str, Any]) -> tuple[int, str, str]:
        running = 0 if (other.get("status") or {}).get("phase", "") in RUNNING else 1
        return running, other["metadata"].get("creationTimestamp", ""), other["metadata"]["name"]

    active = [
        other
        for other in siblings
        if (other.get("status") or {}).get("phase") not in progress.TERMINAL
        and not other["metadata"].get("deletionTimestamp")
    ]
    if not any(other["metadata"]["uid"] == me["uid"] for other in active):
        active.append(rollout)
    first = min(active, key=rank)
    return None if first["metadata"]["uid"] == me["uid"] else str(first["metadata"]["name"])


# -- the gates before a rollout moves, in order ------------------------------------------------------


def no_rival(s: Snapshot) -> Outcome:
    rival = rival_of(s.rollout, s.siblings)
    if rival is None:
        return PROCEED
    return Wait(names.WAITING_FOR_ROLLOUT, f"CanaryRollout {rival} is already rolling out {s.target_name}")


def target_found(s: Snapshot) -> Outcome:
    if s.target is not None:
        return PROCEED
    return Wait(names.TARGET_NOT_FOUND, f"LLMDeployment {s.target_name} not found")


def target_valid(s: Snapshot) -> Outcome:
    """A rollout under way keeps its phase (a Waiting one would start over once the target is
    fixed); one that has not started waits with the reason."""
    if not isinstance(s.target_spec, str):
        return PROCEED
    message = f"LLMDeployment {s.target_name} is invalid: {s.target_spec}"
    return Wait(names.INVALID_TARGET, message, keep_phase=s.started)


def fixed_replicas(s: Snapshot) -> Outcome:
    """Replica-ratio routing sizes both sides itself; an autoscaler would fight it."""
    if not s.shares_service or isinstance(s.target_spec, str) or s.target_spec.autoscaling is None:
        return PROCEED
    return Wait(
        names.TARGET_AUTOSCALES,
        f"LLMDeployment {s.target_name} autoscales; replica-ratio routing needs fixed replicas "
        "(use trafficRouting.gatewayAPI)",
    )


def variables_of(spec: CanaryRolloutSpec, namespace: str) -> dict[str, str]:
    """The variables a query template may name."""
    target = spec.target_ref.name
    return {
        "canary": names.canary_name(target),
        "stable": target,
        "namespace": namespace,
        "interval": spec.analysis.interval,
    }


def analysis_valid(s: Snapshot) -> Outcome:
    variables = variables_of(s.spec, s.rollout["metadata"]["namespace"])
    invalid = analysis.validate(analysis.metrics_of(s.spec.analysis), variables)
    return PROCEED if invalid is None else Wait(names.INVALID_ANALYSIS, invalid)


def target_ready(s: Snapshot) -> Outcome:
    """A canary is judged against a stable that serves: a rollout starts once its target is Ready."""
    if s.started:
        return PROCEED
    conditions = ((s.target or {}).get("status") or {}).get("conditions") or []
    if any(c.get("type") == names.READY and c.get("status") == "True" for c in conditions):
        return PROCEED
    return Wait(names.WAITING_FOR_TARGET, f"waiting for LLMDeployment {s.target_name} to be Ready")


Gate = Callable[[Snapshot], Outcome]
GATES: tuple[Gate, ...] = (no_rival, target_found, target_valid, fixed_replicas, analysis_valid, target_ready)


def first_stop(snapshot: Snapshot, gates: tuple[Gate, ...] = GATES) -> Outcome:
    """The first gate's answer that is not Proceed; Proceed when every gate lets the tick through."""
    for gate in gates:
        outcome = gate(snapshot)
        if not isinstance(outcome, Proceed):
            return outcome
    return PROCEED


# -- requests and measurement rounds -----------------------------------------------------------------


def request_of(meta: dict[str, Any]) -> tuple[str, progress.Request | None]:
    """The manual request annotation: ``verb`` or ``verb:nonce`` (the CLI adds a nonce)."""
    raw = str((meta.get("annotations") or {}).get(names.REQUEST_ANNOTATION, ""))
    verb = raw.partition(":")[0].strip()
    for known in progress.REQUESTS:
        if verb == known:
            return raw, known
    return raw, None


def reset(status: CanaryRolloutStatus) -> None:
    """Back to the first step, keeping the conditions (they move by themselves) and the request."""
    fresh = CanaryRolloutStatus(handled_request=status.handled_request)
    for name in CanaryRolloutStatus.model_fields:
        if name != "conditions":
            setattr(status, name, getattr(fresh, name))


def apply_request(
    status: CanaryRolloutStatus, rollout: dict[str, Any], steps: list[progress.Step], now: datetime
) -> tuple[Outcome, list[Event]]:
    """A request not yet handled, carried out on ``status``: an abort answers Fail, the rest change
    the status (marked handled) and tell in an Event. No request, or one already handled: Proceed."""
    raw, request = request_of(rollout["metadata"])
    if request is None or raw == status.handled_request:
        return PROCEED, []
    status.handled_request = raw
    if request == "retry":
        if status.phase != "RolledBack":
            return PROCEED, []
        reset(status)
        return PROCEED, [normal(names.RETRY, "starting the rollout again from the first step")]
    if status.phase in progress.TERMINAL:
        return PROCEED, []
    if request == "abort":
        return Fail("aborted by request"), []
    return PROCEED, _steer(status, request, steps, now)


def _steer(
    status: CanaryRolloutStatus, request: progress.Request, steps: list[progress.Step], now: datetime
) -> list[Event]:
    if request == "pause":
        status.paused_reason = names.MANUAL
        return [normal(names.PAUSED_EVENT, "paused by request")]
    if request == "resume":
        if not status.paused_reason:
            return []
        status.paused_reason = ""
        return [normal(names.RESUMED, "resumed by request")]
    if progress.at_indefinite_pause(status, steps):  # promote
        progress.start_step(status, status.current_step_index + 1, now)
        return [normal(names.PROMOTE, "continuing past the pause by request")]
    status.paused_reason = ""
    status.phase = "Promoting"
    return [normal(names.PROMOTE, "promoting now by request, skipping the remaining steps")]


def judge_round(paused_before: str, result: progress.RoundOutcome) -> tuple[Outcome, list[Event]]:
    """What a measurement round means for the rollout: Fail (roll back), Pause (no data or no
    metrics; a manual pause stays as it is), or Proceed, which lifts an automatic pause (the
    pausedReason after Proceed is ``paused_after(paused_before)``)."""
    if result.rollback is not None:
        return Fail(result.rollback, result.metric), []
    if result.pause and paused_before != names.MANUAL:
        said = [] if paused_before == result.pause else [warning(result.pause, result.pause_message)]
        return Pause(result.pause, result.pause_message), said
    if paused_before in progress.AUTOMATIC_PAUSES and not result.pause:
        return PROCEED, [normal(names.RESUMED, f"measurements are back after {paused_before}")]
    return PROCEED, []


def paused_after(paused_before: str) -> str:
    """The pausedReason after a round that neither failed nor paused: an automatic pause lifts."""
    return "" if paused_before in progress.AUTOMATIC_PAUSES else paused_before


def holding(measured: Outcome, experimented: Outcome) -> str:
    """What holds a step after its analysis: a paused measurement, else an undecided experiment;
    empty when neither holds it."""
    if isinstance(measured, Pause) and measured.message:
        return measured.message
    if isinstance(experimented, Wait):
        return experimented.message
    return ""


def judge_looks(status: CanaryRolloutStatus, answered: list[tuple[failfast.Look, list[float]]]) -> Outcome:
    """The fast-fail looks the controller ran, consumed in time order into ``status.failFast``:
    Fail at the first sequential test that fires (only a rollback can come early), else Proceed."""
    for look, values in answered:
        reason = failfast.record(status, look, values)
        if reason is not None:
            return Fail(reason, look.metric.name)
    return PROCEED


# -- rollback ----------------------------------------------------------------------------------------

LATENCY_PRESETS = ("e2eLatencyP95", "timeToFirstTokenP95", "interTokenLatencyP95")


def rollback_order(spec: CanaryRolloutSpec, metric: str) -> RollbackOrder:
    """Whether the canary loses its traffic at once or serves until the stable side is Ready.
    ``Auto``: a canary that is only slow still answers correctly, so it keeps serving while the
    stable side comes back (no capacity dip); one that fails requests, an unknown (custom) metric
    and an abort lose their traffic at once."""
    chosen = spec.rollback.canary_traffic
    if chosen == "RemoveAtOnce":
        return "RemovedAtOnce"
    if chosen == "KeepUntilStableReady":
        return "KeptUntilStableReady"
    check = next((m for m in analysis.metrics_of(spec.analysis) if m.name == metric), None)
    slow_only = check is not None and check.preset in LATENCY_PRESETS
    return "KeptUntilStableReady" if slow_only else "RemovedAtOnce"


def canary_pending_removal(status: dict[str, Any]) -> bool:
    """A rollback that keeps the canary serving until the stable side is Ready, not done yet."""
    rollback = status.get("rollback") or {}
    return rollback.get("order") == "KeptUntilStableReady" and not rollback.get("canaryRemovedAt")


# -- promotion ---------------------------------------------------------------------------------------


def stable_caught_up(
    target: dict[str, Any], deployment: dict[str, Any] | None, full: int, canary_version: str
) -> Outcome:
    """The stable runs the canary's version on all its replicas: only then may the canary go."""
    state = target.get("status") or {}
    generation = int(target["metadata"].get("generation") or 0)
    ready = (
        int(state.get("observedGeneration") or 0) >= generation
        and int(state.get("readyReplicas") or 0) >= full
        and canary_version in ("", state.get("model", {}).get("version"))
    )
    updated = int(((deployment or {}).get("status") or {}).get("updatedReplicas") or 0)
    if ready and updated >= full:
        return PROCEED
    name = target["metadata"]["name"]
    return Wait(
        names.PROMOTING, f"waiting for {name} to run the canary's version on {full} ready replicas", True
    )


def settled(rollout: dict[str, Any], now: datetime) -> bool:
    """An ended rollout with nothing left to do: its tick need not even read it."""
    status = rollout.get("status") or {}
    raw, request = request_of(rollout.get("metadata") or {})
    if request is not None and raw != status.get("handledRequest", ""):
        return False
    if status.get("phase") == "Promoted":
        return True
    if status.get("phase") != "RolledBack" or not status.get("finishedAt") or canary_pending_removal(status):
        return False
    delay = parse_duration(str((rollout.get("spec") or {}).get("scaleDownDelay") or "30s"))
    return seconds_since(status["finishedAt"], now) > delay + 60  # the delayed scale-down is long done
