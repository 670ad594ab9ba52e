"""The DriftMonitor controller's decisions without a cluster: the pure functions of drift/episode.py
(episodes, cooldown and concurrencyPolicy, refused creates, the engine's progress) and the
controller's retraining steps against the recording fake of kube.py."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes.client import ApiException

from llmops_operator import names
from llmops_operator.api.driftmonitor import (
    DriftMonitorSpec,
    DriftMonitorStatus,
    RetrainingRun,
    RetrainingSpec,
)
from llmops_operator.config import Settings
from llmops_operator.drift import check, episode
from llmops_operator.drift.datasets import DatasetError, DatasetNotFound
from llmops_operator.handlers.driftmonitor import Changes, DriftMonitorController, unavailable_conditions
from llmops_operator.metrics import MetricsUnavailable, QueryFailed
from llmops_operator.metrics.templates import TemplateError
from llmops_operator.registry.mlflow import ArtifactNotFound, RegistryUnavailable
from llmops_operator.retraining import Progress, TrainerContext
from llmops_operator.timestamps import format_time

from .fake_kube import FakeKube

NS = "ns"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SHORT = {"template": {"image": "trainer:1", "resources": {"gpus": 4}}}
DRIFTED = check.Verdict(features=[], drifted=["ttft"], no_data=[])
QUIET = check.Verdict(features=[], drifted=[], no_data=[])


def monitor(**retraining: Any) -> dict[str, Any]:
    return {
        "apiVersion": "llmops.dev/v1alpha1",
        "kind": "DriftMonitor",
        "metadata": {"name": "drift", "namespace": NS, "uid": "u1", "generation": 1},
        "spec": {
            "targetRef": {"name": "llama"},
            "baseline": {"relative": {"offset": "168h", "duration": "1h"}},
            "features": [{"name": "ttft", "source": {"histogram": {"metric": "ttft_seconds"}}}],
            "retraining": {**SHORT, **retraining},
        },
    }


def spec_of(body: dict[str, Any]) -> DriftMonitorSpec:
    return DriftMonitorSpec.model_validate(body["spec"])


def run(result: str, started: datetime = NOW - timedelta(days=1), name: str = "old") -> RetrainingRun:
    return RetrainingRun(job_name=name, drift_event_id="ev1", start_time=format_time(started), result=result)


# -- episodes ---------------------------------------------------------------------------------------


def test_an_episode_is_announced_once_keeps_its_id_and_ends_with_an_event() -> None:
    first = episode.episode(DRIFTED, True, "", "u1", NOW)
    assert first.event_id == check.drift_event_id("u1", NOW) == first.drift_event_id
    assert first.drifted[:3] == (names.DRIFTED, "True", names.DRIFT)
    assert first.event is not None and first.event[1] == names.DRIFT_DETECTED
    later = episode.episode(DRIFTED, True, first.event_id, "u1", NOW + timedelta(minutes=5))
    assert later.event_id == first.event_id and later.event is None
    ended = episode.episode(QUIET, False, first.event_id, "u1", NOW)
    assert ended.drifted[:3] == (names.DRIFTED, "False", names.NO_DRIFT) and ended.drift_event_id == ""
    assert (
        ended.event is not None and ended.event[1] == names.DRIFT_ENDED and first.event_id in ended.event[2]
    )
    assert episode.episode(QUIET, False, "", "u1", NOW).event is None


def test_no_data_is_unknown_and_leaves_the_episode_as_it_is() -> None:
    verdict = check.Verdict(features=[], drifted=[], no_data=["ttft"])
    decided = episode.episode(verdict, False, "ev1", "u1", NOW)
    assert decided.drifted[:3] == (names.DRIFTED, "Unknown", names.NO_DATA)
    assert decided.drift_event_id is None and decided.event is None


def test_a_held_note_is_appended_to_the_drifted_message() -> None:
    decided = episode.episode(DRIFTED, True, "", "u1", NOW).held("retraining held: x")
    assert decided.drifted[3].endswith("; retraining held: x")
    assert episode.episode(DRIFTED, True, "", "u1", NOW).held("").drifted[3] == DRIFTED.summary()


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (MetricsUnavailable("Prometheus unreachable"), names.METRICS_UNAVAILABLE),
        (QueryFailed("bad"), names.QUERY_FAILED),
        (TemplateError("{{x}}"), names.QUERY_FAILED),
        (DatasetError("row 3"), names.INVALID_DATASET),
        (DatasetNotFound("ConfigMap x not found"), names.DATASET_NOT_FOUND),
        (ArtifactNotFound("runs:/r/x"), names.DATASET_NOT_FOUND),
        (RegistryUnavailable("MLflow away"), names.REGISTRY_UNAVAILABLE),
    ],
)
def test_a_check_that_cannot_read_judges_nothing(error: Exception, reason: str) -> None:
    ready, drifted = unavailable_conditions(error)
    assert ready[:3] == (names.READY, "False", reason) and str(error) in ready[3]
    assert drifted[:3] == (names.DRIFTED, "Unknown", reason) and "no retraining" in drifted[3]


# -- may a workload start ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "last", "expected"),
    [
        ({}, None, episode.Start()),
        ({}, RetrainingRun(job_name="old", drift_event_id="ev2", result="Running"), episode.Hold()),
        (
            {"cooldown": "6h"},
            run("Succeeded", NOW - timedelta(hours=1)),
            "cooldown until 2026-03-01T17:00:00Z",
        ),
        ({"cooldown": "1h"}, run("Succeeded"), episode.Start()),
        ({"cooldown": "1h"}, run("Failed"), episode.Start()),
        ({"cooldown": "1h"}, run("Running"), "JobSet old is still running (concurrencyPolicy Forbid)"),
        ({"cooldown": "1h"}, run("Pending"), "JobSet old is queued (concurrencyPolicy Forbid)"),
        ({"cooldown": "1h", "concurrencyPolicy": "Replace"}, run("Pending"), episode.Start(replace="old")),
        ({"cooldown": "1h", "concurrencyPolicy": "Replace"}, run("Running"), episode.Start(replace="old")),
    ],
)
def test_one_workload_per_episode_within_cooldown_and_concurrency_policy(
    fields: dict[str, Any], last: RetrainingRun | None, expected: episode.Start | episode.Hold | str
) -> None:
    decided = episode.may_start(
        RetrainingSpec.model_validate({**SHORT, **fields}), last, "ev2", "JobSet", NOW
    )
    if isinstance(expected, str):
        assert isinstance(decided, episode.Hold) and expected in decided.message
    else:
        assert decided == expected


def test_what_a_refused_create_means() -> None:
    missing = episode.refused("JobSet", "jobset.x-k8s.io/v1alpha2", 404, "404 Not Found")
    assert (
        missing is not None and missing[0][2] == names.ENGINE_NOT_INSTALLED and "not installed" in missing[1]
    )
    invalid = episode.refused("Job", "batch/v1", 422, "422: spec.template: Required value")
    assert invalid is not None and invalid[0][2] == names.INVALID_SPEC
    assert "spec.template: Required value" in invalid[0][3] and "invalid" in invalid[1]
    assert episode.refused("Job", "batch/v1", 500, "boom") is None


# -- the engine's progress --------------------------------------------------------------------------


def test_progress_maps_to_last_retraining_retrained_and_events() -> None:
    queued = episode.follow(run("Pending"), Progress("Pending"), "JobSet", "Pending: 8 more needed", NOW)
    assert queued.last_retraining is None and queued.events == []
    assert queued.conditions == [
        (names.RETRAINED, "Unknown", names.QUEUED, "JobSet old is queued: Pending: 8 more needed")
    ]
    admitted = episode.follow(run("Pending"), Progress("Running"), "JobSet", None, NOW)
    assert admitted.last_retraining is not None and admitted.last_retraining["result"] == "Running"
    assert admitted.conditions[0][2] == names.JOB_RUNNING and admitted.finished is None
    done = episode.follow(
        run("Running"), Progress("Succeeded", "", "2026-03-01T11:59:00Z"), "JobSet", None, NOW
    )
    assert (
        done.last_retraining is not None and done.last_retraining["completionTime"] == "2026-03-01T11:59:00Z"
    )
    assert done.events[0][1] == names.RETRAINING_SUCCEEDED and done.finished == "succeeded"
    failed = episode.follow(run("Running"), Progress("Failed"), "Job", None, NOW)
    assert failed.last_retraining is not None and failed.last_retraining["completionTime"] == format_time(NOW)
    assert failed.conditions[0][:3] == (names.RETRAINED, "False", names.JOB_FAILED)
    assert failed.events[0][0] == "Warning" and failed.finished == "failed"
    assert episode.follow(run("Running"), Progress("Running"), "Job", None, NOW) == episode.Followed()


# -- the controller's steps through the fake of kube.py ---------------------------------------------

CONTEXT = TrainerContext(
    name="drift-retrain-ev2",
    event_id="ev2",
    drifted=["ttft"],
    windows=("a/b", "c/d"),
    report_uri="",
    tracking_uri="http://mlflow:5000",
    model_name="llama",
)


def retrain(
    kube: FakeKube, body: dict[str, Any], status: dict[str, Any] | None = None
) -> tuple[str, Changes]:
    changes = Changes([], 1)
    controller = DriftMonitorController(Settings(), kube)
    note = controller._retrain(
        body, spec_of(body), DriftMonitorStatus.model_validate(status or {}), CONTEXT, NOW, changes
    )
    return note, changes


def test_an_engine_that_is_not_installed_is_ready_false_and_nothing_is_recorded() -> None:
    kube = FakeKube(refuse={"JobSet": ApiException(status=404, reason="Not Found")})
    note, changes = retrain(kube, monitor(engine="JobSet"))
    (ready,) = changes.conditions
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "False", "EngineNotInstalled")
    assert "not installed" in note and "lastRetraining" not in changes.updates and kube.writes == []


def test_a_template_the_api_server_rejects_is_invalid_spec_with_its_message() -> None:
    error = ApiException(status=422, reason="Unprocessable Entity")
    error.body = json.dumps(
        {"message": 'Job.batch "x" is invalid: spec.template.spec.containers: Required value'}
    )
    note, changes = retrain(FakeKube(refuse={"Job": error}), monitor())
    (ready,) = changes.conditions
    assert (
        ready["reason"] == "InvalidSpec"
        and "spec.template.spec.containers: Required value" in ready["message"]
    )
    assert "lastRetraining" not in changes.updates and "invalid" in note


def test_a_queued_workload_is_pending_and_forbid_creates_nothing_beside_it() -> None:
    kube = FakeKube()
    note, changes = retrain(kube, monitor(engine="JobSet", queueName="gpus"))
    created = kube.stored("JobSet", NS, CONTEXT.name)
    assert created["spec"]["suspend"] is True and created["metadata"]["labels"][names.QUEUE_LABEL] == "gpus"
    assert (
        changes.updates["lastRetraining"]["result"] == "Pending" and "queued in Kueue LocalQueue gpus" in note
    )
    assert [event[1] for event in changes.events] == [names.RETRAINING_STARTED]
    earlier = {"driftEventId": "ev1", "lastRetraining": run("Pending").model_dump(by_alias=True)}
    kube = FakeKube()
    note, changes = retrain(kube, monitor(engine="JobSet", queueName="gpus", cooldown="0s"), earlier)
    assert kube.writes == [] and "is queued" in note and "Forbid" in note and changes.updates == {}


def test_replace_deletes_the_unfinished_workload_on_its_engine() -> None:
    old = {
        "apiVersion": "jobset.x-k8s.io/v1alpha2",
        "kind": "JobSet",
        "metadata": {"name": "old", "namespace": NS},
    }
    kube = FakeKube(old)
    earlier = {"lastRetraining": run("Pending").model_dump(by_alias=True)}
    retrain(kube, monitor(engine="JobSet", concurrencyPolicy="Replace", cooldown="0s"), earlier)
    assert kube.writes == [("delete", "JobSet", "old"), ("create", "JobSet", CONTEXT.name)]


def test_a_restarted_operator_creates_no_second_workload() -> None:
    kube = FakeKube()
    retrain(kube, monitor(engine="JobSet"))
    note, changes = retrain(kube, monitor(engine="JobSet"))  # the status write was lost: create again
    assert kube.verbs("JobSet") == ["create"] and changes.events == [] and note == ""
    assert changes.updates["lastRetraining"]["jobName"] == CONTEXT.name


def queued_world() -> FakeKube:
    """A monitor whose last check is fresh (no check due) with a suspended JobSet Kueue holds."""
    body = monitor(engine="JobSet", queueName="gpus")
    body["status"] = {
        "observedGeneration": 1,
        "lastCheckTime": format_time(NOW),
        "lastRetraining": run("Pending", NOW, name="drift-retrain-ev1").model_dump(
            by_alias=True, exclude_none=True
        ),
    }
    jobset = {
        "apiVersion": "jobset.x-k8s.io/v1alpha2",
        "kind": "JobSet",
        "metadata": {"name": "drift-retrain-ev1", "namespace": NS, "uid": "js-1"},
        "spec": {"suspend": True},
    }
    kueue = {
        "kind": "Workload",
        "metadata": {"name": "jobset-x", "namespace": NS, "labels": {names.KUEUE_JOB_UID_LABEL: "js-1"}},
        "status": {
            "conditions": [
                {
                    "type": "QuotaReserved",
                    "status": "False",
                    "reason": "Pending",
                    "message": "insufficient unused quota for nvidia.com/gpu in flavor h100, 8 more needed",
                }
            ]
        },
    }
    return FakeKube(body, jobset, kueue)


def test_a_tick_reports_kueues_reason_then_the_completion_and_then_writes_nothing() -> None:
    kube = queued_world()
    controller = DriftMonitorController(Settings(), kube)
    controller.tick(kube.stored("DriftMonitor", NS, "drift"), NOW)
    retrained = next(
        c for c in kube.status_of("DriftMonitor", NS, "drift")["conditions"] if c["type"] == "Retrained"
    )
    assert retrained["reason"] == "Queued" and "8 more needed" in retrained["message"]
    assert kube.verbs() == ["status"]

    jobset = copy.deepcopy(kube.stored("JobSet", NS, "drift-retrain-ev1"))
    jobset["spec"]["suspend"] = False
    jobset["status"] = {
        "conditions": [{"type": "Completed", "status": "True", "lastTransitionTime": "2026-03-01T12:00:30Z"}]
    }
    kube.put(jobset)
    later = NOW + timedelta(seconds=40)
    controller.tick(kube.stored("DriftMonitor", NS, "drift"), later)
    status = kube.status_of("DriftMonitor", NS, "drift")
    assert status["lastRetraining"]["result"] == "Succeeded"
    assert status["lastRetraining"]["completionTime"] == "2026-03-01T12:00:30Z"
    assert [event[1] for event in kube.events] == [names.RETRAINING_SUCCEEDED]
    writes = len(kube.writes)
    controller.tick(kube.stored("DriftMonitor", NS, "drift"), later)  # nothing changed: nothing written
    assert len(kube.writes) == writes and len(kube.events) == 1


def test_an_invalid_spec_is_ready_false_and_nothing_else() -> None:
    body = monitor()
    body["spec"]["interval"] = "soon"
    kube = FakeKube(body)
    DriftMonitorController(Settings(), kube).tick(kube.stored("DriftMonitor", NS, "drift"), NOW)
    (ready,) = kube.status_of("DriftMonitor", NS, "drift")["conditions"]
    assert (ready["type"], ready["reason"]) == ("Ready", "InvalidSpec") and "interval" in ready["message"]
