"""What the evaluation gate's state means for a tick, as pure functions: the evaluation runs
before the first step, with the canary at 0% traffic, and its verdict decides whether the steps
start (passed), the rollout rolls back (failed) or pauses (inconclusive, never a promotion)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from ..api.canaryrollout import CanaryRolloutSpec, CanaryRolloutStatus
from ..api.evaluation import EvaluationStatus, ScorerResult
from ..durations import parse_duration
from ..timestamps import seconds_since

Verdict = Literal["passed", "failed", "inconclusive"]


def gating(spec: CanaryRolloutSpec, status: CanaryRolloutStatus) -> bool:
    """True while the evaluation stands between the rollout and its first step."""
    if spec.evaluation is None:
        return False
    return status.evaluation is None or status.evaluation.phase != "Passed"


@dataclass(frozen=True)
class Decision:
    phase: Literal["Running", "Passed", "Failed", "Inconclusive"]
    message: str


def decide(
    evaluation: EvaluationStatus,
    job_result: str,
    job_message: str,
    verdict: Verdict | None,
    verdict_message: str,
    scorers: list[ScorerResult],
    timeout: str,
    now: datetime,
) -> Decision:
    """From the run's verdict (the Job writes it), else from the Job's end or the time spent."""
    if verdict == "passed":
        return Decision("Passed", "every scorer passed")
    if verdict == "failed":
        return Decision("Failed", verdict_message or "an evaluation scorer failed")
    if verdict == "inconclusive":
        reasons = "; ".join(f"{s.name}: {s.message}" for s in scorers if s.phase == "Inconclusive")
        return Decision("Inconclusive", verdict_message or reasons or "the evaluation reached no verdict")
    if job_result == "Failed":
        return Decision("Inconclusive", f"the evaluation Job failed without a verdict: {job_message}".strip())
    if evaluation.started_at and seconds_since(evaluation.started_at, now) > parse_duration(timeout):
        return Decision("Inconclusive", f"no verdict within the evaluation timeout of {timeout}")
    if job_result == "Succeeded":
        return Decision("Running", "the evaluation Job ended; waiting for its verdict in MLflow")
    return Decision("Running", f"evaluating the canary (Job {evaluation.job_name})")


def summary(scorers: list[ScorerResult]) -> str:
    """Each scorer against its threshold, for an Event."""
    return "; ".join(f"{s.name} {s.value or 'n/a'} ({s.threshold}): {s.phase}" for s in scorers)
