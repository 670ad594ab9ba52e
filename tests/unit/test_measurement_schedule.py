"""Measurements an exact interval apart: what a user reads as lastMeasuredAt, round after round."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

from llmops_operator.api.canaryrollout import AnalysisSpec, CanaryRolloutStatus
from llmops_operator.rollout.analysis import Measurement
from llmops_operator.rollout.progress import next_measurement_at, record
from llmops_operator.timestamps import format_time, parse_time

T0 = datetime(2026, 1, 1, 12, 0, 0, 700000, tzinfo=UTC)  # verified 0.7 s into a second


def test_measurements_taken_when_due_are_stamped_exactly_one_interval_apart() -> None:
    analysis = AnalysisSpec(interval="10s")
    status = CanaryRolloutStatus(canary_weight=50, weight_verified_at=format_time(T0))
    stamps = []
    for _ in range(6):
        due = next_measurement_at(status, analysis)
        assert due is not None
        # The tick wakes at the due instant and measures a few milliseconds later.
        record(
            status, [Measurement("latency", "Successful", "285")], analysis, due + timedelta(milliseconds=40)
        )
        assert status.last_measured_at is not None
        stamps.append(parse_time(status.last_measured_at))
    gaps = {(later - earlier).total_seconds() for earlier, later in pairwise(stamps)}
    assert gaps == {10.0}  # not 10.2: no drift from late ticks or truncated stamps


def test_nothing_is_due_while_no_traffic_reaches_the_canary() -> None:
    analysis = AnalysisSpec(interval="10s")
    assert next_measurement_at(CanaryRolloutStatus(canary_weight=50), analysis) is None
    stopped = CanaryRolloutStatus(canary_weight=0, weight_verified_at=format_time(T0))
    assert next_measurement_at(stopped, analysis) is None
