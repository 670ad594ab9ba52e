"""Retraining engines without a cluster: rendering (the user's template kept verbatim, the
operator's env, labels and owner added), status mapping on recorded objects, and the monitor's
reaction to a missing engine, a rejected template and a queued workload."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from llmops_operator.api.driftmonitor import RetrainingSpec
from llmops_operator.crdgen import schema_for
from llmops_operator.names import QUEUE_LABEL
from llmops_operator.retraining import ENGINES, TrainerContext, engine_for, render
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
