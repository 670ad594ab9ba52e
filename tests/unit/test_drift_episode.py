"""drift/episode.py at its edges, as status and Events show them: the Event types of an episode's
start and end, what a held note keeps, the cooldown's last second, the shape of
status.lastRetraining, and the CanaryRollout that ships a retrained version."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from llmops_operator import API_VERSION, names
from llmops_operator.api.canaryrollout import CanaryRolloutSpec
from llmops_operator.api.driftmonitor import RetrainingRun, RetrainingSpec
from llmops_operator.drift import check, episode
from llmops_operator.retraining import Progress
from llmops_operator.timestamps import format_time

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DRIFTED = check.Verdict(features=[], drifted=["ttft"], no_data=[])
QUIET = check.Verdict(features=[], drifted=[], no_data=[])
SHORT = {"template": {"image": "trainer:1"}}


def test_an_episode_starts_with_a_warning_and_ends_with_a_normal_event() -> None:
    started = episode.episode(DRIFTED, True, "", "u1", NOW)
    event_id = check.drift_event_id("u1", NOW)
    assert started.event == ("Warning", names.DRIFT_DETECTED, f"{DRIFTED.summary()} (event {event_id})")
    ended = episode.episode(QUIET, False, event_id, "u1", NOW)
    assert ended.event == ("Normal", names.DRIFT_ENDED, f"drift event {event_id} ended: no feature drifted")


def test_a_held_note_changes_only_the_drifted_message() -> None:
    started = episode.episode(DRIFTED, True, "", "u1", NOW)
    held = started.held("retraining held by the cooldown")
    assert (held.event_id, held.drift_event_id, held.event) == (
        started.event_id,
        started.drift_event_id,
        started.event,
    )
    assert held.drifted[:3] == started.drifted[:3]


def test_the_cooldown_ends_on_its_last_second() -> None:
    last = RetrainingRun(
        job_name="old",
        drift_event_id="ev1",
        start_time=format_time(NOW - timedelta(hours=1)),
        result="Succeeded",
    )
    retraining = RetrainingSpec.model_validate({**SHORT, "cooldown": "1h"})
    assert episode.may_start(retraining, last, "ev2", "Job", NOW) == episode.Start()
    held = episode.may_start(retraining, last, "ev2", "Job", NOW - timedelta(seconds=1))
    assert isinstance(held, episode.Hold) and "cooldown until 2026-03-01T12:00:00Z" in held.message


def test_a_bad_request_is_an_invalid_template_like_an_unprocessable_one() -> None:
    for status in (400, 422):
        refused = episode.refused("Job", "batch/v1", status, "spec.template: Required value")
        assert refused == (
            (
                names.READY,
                "False",
                names.INVALID_SPEC,
                "the API server rejected the Job: spec.template: Required value",
            ),
            "retraining held: its template is invalid",
        )
    assert episode.refused("Job", "batch/v1", 401, "Unauthorized") is None


def test_last_retraining_of_a_created_workload_is_camel_case_without_empty_times() -> None:
    assert episode.started("drift-retrain-ev1", "ev1", NOW, None) == {
        "jobName": "drift-retrain-ev1",
        "driftEventId": "ev1",
        "startTime": "2026-03-01T12:00:00Z",
        "result": "Running",
        "modelVersion": "",
        "rolloutName": "",
    }
    assert episode.started("drift-retrain-ev1", "ev1", NOW, "team-a")["result"] == "Pending"


def test_progress_keeps_last_retraining_in_status_form() -> None:
    run = RetrainingRun(
        job_name="old", drift_event_id="ev1", start_time="2026-03-01T11:00:00Z", result="Pending"
    )
    admitted = episode.follow(run, Progress("Running"), "Job", None, NOW)
    assert admitted.last_retraining == {
        "jobName": "old",
        "driftEventId": "ev1",
        "startTime": "2026-03-01T11:00:00Z",
        "result": "Running",
        "modelVersion": "",
        "rolloutName": "",
    }


def test_a_queued_reason_is_reported_only_while_the_workload_is_pending() -> None:
    run = RetrainingRun(job_name="old", drift_event_id="ev1", result="Pending")
    admitted = episode.follow(run, Progress("Running"), "Job", "quota reserved", NOW)
    assert admitted.conditions == [(names.RETRAINED, "Unknown", names.JOB_RUNNING, "Job old is running")]


def test_a_finished_workload_is_a_normal_event() -> None:
    run = RetrainingRun(job_name="old", drift_event_id="ev1", result="Running")
    done = episode.follow(run, Progress("Succeeded"), "Job", None, NOW)
    assert done.events == [("Normal", names.RETRAINING_SUCCEEDED, "Job old succeeded")]


def test_the_rollout_of_a_retrained_version_is_a_valid_canary_rollout() -> None:
    rollout = episode.retrained_rollout("ns", "drift", "llama", "llama-model", "7", "ev1")
    assert rollout == {
        "apiVersion": API_VERSION,
        "kind": "CanaryRollout",
        "metadata": {
            "name": "llama-retrained-ev1",
            "namespace": "ns",
            "labels": {names.DRIFT_MONITOR_KEY: "drift", names.DRIFT_EVENT_KEY: "ev1"},
        },
        "spec": {"targetRef": {"name": "llama"}, "canary": {"model": {"uri": "models:/llama-model/7"}}},
    }
    spec = CanaryRolloutSpec.model_validate(rollout["spec"])
    assert spec.steps == [] and spec.evaluation is None  # the default steps, no evaluation


def test_the_rollout_is_evaluated_first_when_on_retrained_asks_for_it() -> None:
    evaluation = {"dataset": {"configMap": {"name": "prompts", "key": "prompts.jsonl"}}}
    rollout = episode.retrained_rollout("ns", "drift", "llama", "m", "7", "ev1", evaluation)
    assert rollout["spec"]["evaluation"] == evaluation
    assert rollout["spec"]["canary"] == {"model": {"uri": "models:/m/7"}}


def test_a_long_target_name_is_cut_at_forty_characters_in_the_rollout_name() -> None:
    target = "t" * 39 + "uvw"
    name = episode.rollout_name(target, "0123456789")
    assert name == "t" * 39 + "u-retrained-0123456789"
    assert len(name) <= 63  # a DNS label, whatever the target's length
