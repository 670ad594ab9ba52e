"""Retraining engines without a cluster: rendering (the user's template kept verbatim, the
operator's env, labels and owner added), status mapping on recorded objects, and the monitor's
reaction to a missing engine, a rejected template and a queued workload."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes.client import ApiException

from llmops_operator.api.driftmonitor import DriftMonitorSpec, DriftMonitorStatus, RetrainingSpec
from llmops_operator.config import Settings
from llmops_operator.crdgen import schema_for
from llmops_operator.drift.check import Verdict
from llmops_operator.handlers.driftmonitor import DriftMonitorController
from llmops_operator.retraining import ENGINES, QUEUE_LABEL, TrainerContext, engine_for, render
from llmops_operator.retraining.base import queued_message

MONITOR = {
    "apiVersion": "llmops.dev/v1alpha1",
    "kind": "DriftMonitor",
    "metadata": {"name": "drift", "namespace": "ns", "uid": "u1"},
}
CONTEXT = TrainerContext(
    name="drift-retrain-abc",
    event_id="abc",
    drifted=["prompt-tokens"],
    windows=("2026-02-22T11:00:00Z/2026-02-22T12:00:00Z", "2026-03-01T11:00:00Z/2026-03-01T12:00:00Z"),
    report_uri="runs:/r1/drift-report.html",
    tracking_uri="http://mlflow:5000",
    model_name="llama-3-8b",
)
SHORT = {"template": {"image": "trainer:1", "resources": {"gpus": 1, "memory": "32Gi"}}}
TRAINER_POD = {
    "metadata": {"labels": {"team": "ml"}},
    "spec": {
        "restartPolicy": "Never",
        "containers": [
            {
                "name": "torchrun",
                "image": "trainer:2",
                "env": [{"name": "NCCL_DEBUG", "value": "INFO"}, {"name": "MODEL_NAME", "value": "mine"}],
                "volumeMounts": [
                    {"name": "data", "mountPath": "/data"},
                    {"name": "shm", "mountPath": "/dev/shm"},
                ],
                "resources": {"limits": {"nvidia.com/gpu": 4}},
            },
            {"name": "sidecar", "image": "logs:1"},
        ],
        "volumes": [
            {"name": "data", "persistentVolumeClaim": {"claimName": "corpus"}},
            {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}},
        ],
        "nodeSelector": {"nvidia.com/gpu.product": "H100"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
    },
}
JOBSET_TEMPLATE = {
    "metadata": {"labels": {"team": "ml"}, "annotations": {"note": "2x4"}},
    "spec": {
        "replicatedJobs": [
            {
                "name": "workers",
                "replicas": 2,
                "template": {"spec": {"parallelism": 1, "completions": 1, "template": TRAINER_POD}},
            }
        ]
    },
}


def retraining(**fields: Any) -> RetrainingSpec:
    return RetrainingSpec.model_validate(fields or SHORT)


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container["env"]}


def test_the_short_form_becomes_todays_job() -> None:
    job = render(engine_for("Job"), MONITOR, retraining(), CONTEXT)
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = env_of(container)
    assert env["DRIFT_EVENT_ID"] == "abc" and env["DRIFTED_FEATURES"] == "prompt-tokens"
    assert env["MODEL_NAME"] == "llama-3-8b" and env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert env["CURRENT_WINDOW"] == CONTEXT.windows[1] and env["BASELINE_WINDOW"] == CONTEXT.windows[0]
    assert env["DRIFT_REPORT_URI"] == "runs:/r1/drift-report.html"
    assert container["resources"]["limits"] == {"nvidia.com/gpu": 1}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert job["metadata"]["ownerReferences"][0]["uid"] == "u1"
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert job["spec"]["backoffLimit"] == 1 and "suspend" not in job["spec"]


def test_a_full_job_template_is_kept_verbatim_but_for_env_labels_and_owner() -> None:
    template = {"metadata": {"labels": {"team": "ml"}}, "spec": {"backoffLimit": 0, "template": TRAINER_POD}}
    job = render(engine_for("Job"), MONITOR, retraining(workloadTemplate=copy.deepcopy(template)), CONTEXT)
    pod = job["spec"]["template"]
    assert pod["spec"]["volumes"] == TRAINER_POD["spec"]["volumes"]
    assert pod["spec"]["nodeSelector"] == {"nvidia.com/gpu.product": "H100"}
    assert pod["spec"]["tolerations"] == TRAINER_POD["spec"]["tolerations"]
    assert job["spec"]["backoffLimit"] == 0 and "ttlSecondsAfterFinished" not in job["spec"]
    trainer, sidecar = pod["spec"]["containers"]
    assert trainer["volumeMounts"] == TRAINER_POD["spec"]["containers"][0]["volumeMounts"]
    assert env_of(trainer)["NCCL_DEBUG"] == "INFO"
    assert env_of(trainer)["MODEL_NAME"] == "llama-3-8b"  # the operator's value wins
    assert env_of(sidecar)["DRIFT_EVENT_ID"] == "abc"
    assert "securityContext" not in trainer  # nothing the user did not write
    assert job["metadata"]["labels"]["team"] == "ml" and pod["metadata"]["labels"]["team"] == "ml"
    assert job["metadata"]["labels"]["llmops.dev/drift-event"] == "abc"
    assert TRAINER_POD["spec"]["containers"][0]["env"][1] == {"name": "MODEL_NAME", "value": "mine"}


def test_a_jobset_of_two_gpu_pods_gets_the_env_in_every_container_and_kueues_label() -> None:
    spec = retraining(engine="JobSet", queueName="gpus", workloadTemplate=JOBSET_TEMPLATE)
    jobset = render(engine_for("JobSet"), MONITOR, spec, CONTEXT)
    assert jobset["apiVersion"] == "jobset.x-k8s.io/v1alpha2" and jobset["kind"] == "JobSet"
    assert jobset["metadata"]["labels"][QUEUE_LABEL] == "gpus" and jobset["spec"]["suspend"] is True
    assert jobset["metadata"]["annotations"] == {"note": "2x4"}
    replicated = jobset["spec"]["replicatedJobs"][0]
    assert replicated["replicas"] == 2
    for container in replicated["template"]["spec"]["template"]["spec"]["containers"]:
        assert env_of(container)["DRIFT_REPORT_URI"] == "runs:/r1/drift-report.html"


def test_the_short_form_on_jobset_is_one_replicated_trainer_job() -> None:
    jobset = render(engine_for("JobSet"), MONITOR, retraining(engine="JobSet", **SHORT), CONTEXT)
    (replicated,) = jobset["spec"]["replicatedJobs"]
    assert replicated["replicas"] == 1 and jobset["spec"]["ttlSecondsAfterFinished"] == 86400
    container = replicated["template"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "trainer:1" and env_of(container)["DRIFT_EVENT_ID"] == "abc"


def test_short_and_full_forms_exclude_each_other_in_the_crd() -> None:
    schema = json.dumps(schema_for(RetrainingSpec))
    assert "exactly one of template or workloadTemplate" in schema


@pytest.mark.parametrize(
    ("engine", "recorded", "result"),
    [
        ("Job", None, "Missing"),
        ("Job", {"spec": {"suspend": True}, "status": {}}, "Pending"),
        ("Job", {"spec": {}, "status": {"active": 1}}, "Running"),
        (
            "Job",
            {"spec": {}, "status": {"conditions": [{"type": "Complete", "status": "True"}]}},
            "Succeeded",
        ),
        ("Job", {"spec": {}, "status": {"conditions": [{"type": "Failed", "status": "True"}]}}, "Failed"),
        ("JobSet", {"spec": {"suspend": True}, "status": {}}, "Pending"),
        (
            "JobSet",
            {"spec": {"suspend": False}, "status": {"replicatedJobsStatus": [{"active": 2}]}},
            "Running",
        ),
        (
            "JobSet",
            {
                "spec": {},
                "status": {
                    "conditions": [
                        {"type": "Completed", "status": "True", "lastTransitionTime": "2026-03-01T13:00:00Z"}
                    ]
                },
            },
            "Succeeded",
        ),
        ("JobSet", {"spec": {}, "status": {"conditions": [{"type": "Failed", "status": "True"}]}}, "Failed"),
    ],
)
def test_status_mapping(engine: str, recorded: dict[str, Any] | None, result: str) -> None:
    assert engine_for(engine).progress(recorded).result == result


def test_a_completed_jobset_reports_when_it_completed() -> None:
    recorded = {
        "status": {
            "conditions": [
                {"type": "Completed", "status": "True", "lastTransitionTime": "2026-03-01T13:00:00Z"}
            ]
        }
    }
    assert engine_for("JobSet").progress(recorded).completion_time == "2026-03-01T13:00:00Z"


def test_kueues_reason_is_what_a_queued_workload_reports() -> None:
    recorded = {
        "status": {
            "conditions": [
                {
                    "type": "QuotaReserved",
                    "status": "False",
                    "reason": "Pending",
                    "message": "couldn't assign flavors to pod set workers: insufficient unused quota for "
                    "nvidia.com/gpu in flavor gpu, 8 more needed",
                }
            ]
        }
    }
    assert queued_message(recorded).startswith("Pending: couldn't assign flavors")
    assert "8 more needed" in queued_message(recorded)


def test_every_engine_in_the_table_is_in_the_crds_enum() -> None:
    enum = RetrainingSpec.model_json_schema()["properties"]["engine"]["enum"]
    assert sorted(enum) == sorted(ENGINES)


class RecordingKube:
    """Answers the engine's REST calls from a dict; a POST may be made to fail."""

    def __init__(self, fail: ApiException | None = None) -> None:
        self.fail = fail
        self.objects: dict[str, dict[str, Any]] = {}
        self.deleted: list[str] = []

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return None

    def request(self, method: str, path: str, query: Any = None, body: Any = None, **_: Any) -> Any:
        if method == "POST":
            if self.fail is not None:
                raise self.fail
            self.objects[f"{path}/{body['metadata']['name']}"] = body
            return body
        if method == "DELETE":
            self.deleted.append(path)
            return {}
        if path in self.objects:
            return self.objects[path]
        raise ApiException(status=404, reason="Not Found")


def start(
    kube: RecordingKube, spec_fields: dict[str, Any], status: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any], list[tuple[str, str, str, str]]]:
    spec = DriftMonitorSpec.model_validate(
        {
            "targetRef": {"name": "llama"},
            "baseline": {"relative": {"offset": "168h", "duration": "1h"}},
            "features": [{"name": "ttft", "source": {"histogram": {"metric": "ttft_seconds"}}}],
            "retraining": spec_fields,
        }
    )
    conditions: list[tuple[str, str, str, str]] = []
    updates: dict[str, Any] = {}
    controller = DriftMonitorController(Settings(), kube)  # type: ignore[arg-type]
    held = controller._start_job(
        MONITOR,
        spec,
        DriftMonitorStatus.model_validate(status or {}),
        "ev2",
        Verdict(features=[], drifted=["ttft"], no_data=[]),
        CONTEXT.windows,
        "",
        datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
        updates,
        [],
        lambda *c: conditions.append(c),
    )
    return held, updates, conditions


def test_an_engine_that_is_not_installed_is_ready_false_and_nothing_is_recorded() -> None:
    kube = RecordingKube(fail=ApiException(status=404, reason="Not Found"))
    held, updates, conditions = start(kube, {"engine": "JobSet", **SHORT})
    assert conditions[0][:3] == ("Ready", "False", "EngineNotInstalled")
    assert "not installed" in held and "lastRetraining" not in updates


def test_a_template_the_api_server_rejects_is_invalid_spec_with_its_message() -> None:
    error = ApiException(status=422, reason="Unprocessable Entity")
    error.body = json.dumps(
        {"message": 'Job.batch "x" is invalid: spec.template.spec.containers: Required value'}
    )
    held, updates, conditions = start(RecordingKube(fail=error), SHORT)
    assert conditions[0][:3] == ("Ready", "False", "InvalidSpec")
    assert "spec.template.spec.containers: Required value" in conditions[0][3]
    assert "lastRetraining" not in updates and "invalid" in held


def test_a_queued_workload_is_pending_and_forbid_creates_nothing_beside_it() -> None:
    kube = RecordingKube()
    held, updates, _ = start(kube, {"queueName": "gpus", **SHORT})
    assert updates["lastRetraining"]["result"] == "Pending" and "queued" in held
    (created,) = kube.objects.values()
    assert created["spec"]["suspend"] is True and created["metadata"]["labels"][QUEUE_LABEL] == "gpus"
    earlier = {
        "driftEventId": "ev1",
        "lastRetraining": {"jobName": "old", "driftEventId": "ev1", "result": "Pending"},
    }
    kube = RecordingKube()
    held, updates, _ = start(kube, {"queueName": "gpus", "cooldown": "0s", **SHORT}, earlier)
    assert kube.objects == {} and "queued" in held and "Forbid" in held


def test_replace_deletes_the_queued_workload_on_its_engine() -> None:
    kube = RecordingKube()
    earlier = {"lastRetraining": {"jobName": "old", "driftEventId": "ev1", "result": "Pending"}}
    start(kube, {"engine": "JobSet", "concurrencyPolicy": "Replace", "cooldown": "0s", **SHORT}, earlier)
    assert kube.deleted == ["/apis/jobset.x-k8s.io/v1alpha2/namespaces/ns/jobsets/old"]
    assert len(kube.objects) == 1
