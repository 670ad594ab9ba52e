"""Retraining on the engines' real controllers: Kueue v0.17.0 and JobSet v0.11.1, built from their
Go modules and run beside the local control plane by tools/engines.sh. A drift episode's JobSet
(2 pods x 4 GPUs, a data PVC) is admitted by Kueue from a ClusterQueue of 8 GPUs, waits with Kueue's
reason while another workload holds the quota, and kwok runs its pods to completion.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import ROOT, Cluster, MLflowServer, free_port, wait_for
from .test_driftmonitor import DriftWorld

ENGINES = str(ROOT / "tools" / "engines.sh")
SHORT = "8s"  # both windows: 160 samples at the load's 20 requests a second
FLAVOR = "retraining-h100"
CLUSTER_QUEUE = "retraining-gpus"
QUEUE = "training"
GPU = "nvidia.com/gpu"
GPU_TOLERATION = {"key": GPU, "operator": "Exists", "effect": "NoSchedule"}


@pytest.fixture(scope="session")
def engines(cluster: Cluster) -> Iterator[None]:
    """Kueue and JobSet started by the project's script (a failure to start fails the tests), with
    a ResourceFlavor of the cluster's H100 nodes and a ClusterQueue of 8 of their GPUs."""
    ports = {
        name: str(free_port())
        for name in (
            "LLMOPS_KUEUE_WEBHOOK_PORT",
            "LLMOPS_KUEUE_HEALTH_PORT",
            "LLMOPS_JOBSET_WEBHOOK_PORT",
            "LLMOPS_JOBSET_HEALTH_PORT",
        )
    }
    env = {**os.environ, **ports}
    were_running = subprocess.run([ENGINES, "status", "jobset", "kueue"], env=env).returncode == 0
    subprocess.run([ENGINES, "start", "jobset", "kueue"], env=env, check=True, timeout=600)
    cluster.apply(
        [
            {
                "apiVersion": "kueue.x-k8s.io/v1beta2",
                "kind": "ResourceFlavor",
                "metadata": {"name": FLAVOR},
                "spec": {
                    "nodeLabels": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
                    "tolerations": [GPU_TOLERATION],
                },
            },
            {
                "apiVersion": "kueue.x-k8s.io/v1beta2",
                "kind": "ClusterQueue",
                "metadata": {"name": CLUSTER_QUEUE},
                "spec": {
                    "namespaceSelector": {},
                    "resourceGroups": [
                        {
                            "coveredResources": ["cpu", "memory", GPU],
                            "flavors": [
                                {
                                    "name": FLAVOR,
                                    "resources": [
                                        {"name": "cpu", "nominalQuota": "64"},
                                        {"name": "memory", "nominalQuota": "1Ti"},
                                        {"name": GPU, "nominalQuota": 8},
                                    ],
                                }
                            ],
                        }
                    ],
                },
            },
        ],
        "default",
    )
    yield
    cluster.kubectl("delete", "clusterqueue", CLUSTER_QUEUE, "--ignore-not-found", check=False)
    cluster.kubectl("delete", "resourceflavor", FLAVOR, "--ignore-not-found", check=False)
    if not were_running:
        subprocess.run([ENGINES, "stop", "jobset", "kueue"], env=env, check=False)


@pytest.fixture
def world(
    cluster: Cluster, namespace: str, tmp_path: Path, mlflow_server: MLflowServer, engines: None
) -> Iterator[DriftWorld]:
    cluster.apply(
        {
            "apiVersion": "kueue.x-k8s.io/v1beta2",
            "kind": "LocalQueue",
            "metadata": {"name": QUEUE},
            "spec": {"clusterQueue": CLUSTER_QUEUE},
        },
        namespace,
    )
    world = DriftWorld(cluster, namespace, tmp_path, mlflow_server)
    try:
        yield world
    finally:
        print(
            cluster.kubectl(
                "get", "driftmonitor,jobsets,jobs,workloads", "-n", namespace, "-o", "yaml"
            ).stdout
        )
        world.stop()
        assert "Traceback" not in world.operator.logs(), world.operator.logs()


def fine_tune(gpus_per_pod: int = 4) -> dict[str, Any]:
    """A 2-node x 4-GPU torchrun JobSet with its training data on a PVC and a sized /dev/shm; the
    metrics sidecar is there to show the trainer's environment reaches every container."""
    pod = {
        "restartPolicy": "Never",
        "tolerations": [GPU_TOLERATION],
        "volumes": [
            {"name": "data", "persistentVolumeClaim": {"claimName": "training-data"}},
            {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}},
        ],
        "containers": [
            {
                "name": "trainer",
                "image": "registry.invalid/finetune:1",
                "command": ["torchrun", "--nnodes=2", "--nproc-per-node=4", "finetune.py"],
                "env": [{"name": "DATA_DIR", "value": "/data"}],
                "volumeMounts": [
                    {"name": "data", "mountPath": "/data"},
                    {"name": "shm", "mountPath": "/dev/shm"},
                ],
                "resources": {
                    "requests": {GPU: gpus_per_pod, "cpu": "8", "memory": "64Gi"},
                    "limits": {GPU: gpus_per_pod},
                },
            },
            {
                "name": "metrics",
                "image": "registry.invalid/metrics-agent:1",
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
            },
        ],
    }
    job = {"parallelism": 1, "completions": 1, "backoffLimit": 0, "template": {"spec": pod}}
    return {
        "metadata": {"labels": {"team": "ml"}},
        "spec": {"replicatedJobs": [{"name": "node", "replicas": 2, "template": {"spec": job}}]},
    }


def training_data(cluster: Cluster, namespace: str) -> None:
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "training-data"},
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "storageClassName": "",
            "resources": {"requests": {"storage": "10Gi"}},
        },
    }
    cluster.apply(claim, namespace)


def start(world: DriftWorld, **retraining: Any) -> None:
    """A monitor on short windows whose retraining is the JobSet engine; steady traffic first."""
    on_retrained = retraining.pop("onRetrained", {"autoRollout": False})
    world.start(
        currentWindow=SHORT,
        baseline={"relative": {"offset": SHORT, "duration": SHORT}},
        retraining={"engine": "JobSet", "cooldown": "1s", **retraining},
        onRetrained=on_retrained,
    )
    wait_for(lambda: world.condition("Drifted").get("reason") == "NoDrift", timeout=180, what="a verdict")


def jobsets(world: DriftWorld) -> list[dict[str, Any]]:
    return list(world.cluster.get("jobsets", "-n", world.namespace)["items"])


def kueue_workloads(world: DriftWorld) -> list[dict[str, Any]]:
    return list(world.cluster.get("workloads.kueue.x-k8s.io", "-n", world.namespace)["items"])


def condition_of(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == type_), {})


def result(world: DriftWorld) -> str:
    return str((world.status().get("lastRetraining") or {}).get("result", ""))


def blocker(world: DriftWorld) -> str:
    """Another team's Job that Kueue admits with all 8 GPUs and whose pod never schedules (a node
    that does not exist), so it holds the quota until it is deleted."""
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "other-team", "labels": {"kueue.x-k8s.io/queue-name": QUEUE}},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "nodeSelector": {"kubernetes.io/hostname": "reserved-elsewhere"},
                    "tolerations": [GPU_TOLERATION],
                    "containers": [
                        {
                            "name": "work",
                            "image": "registry.invalid/other:1",
                            "resources": {"requests": {GPU: 8}, "limits": {GPU: 8}},
                        }
                    ],
                }
            }
        },
    }
    world.cluster.apply(job, world.namespace)
    wait_for(
        lambda: any(condition_of(w, "Admitted").get("status") == "True" for w in kueue_workloads(world)),
        timeout=60,
        what="the other team's Job admitted by Kueue",
    )
    return "other-team"


def test_a_drift_episode_runs_a_jobset_admitted_by_kueue_and_ships_a_canary(world: DriftWorld) -> None:
    training_data(world.cluster, world.namespace)
    start(world, workloadTemplate=fine_tune(), queueName=QUEUE, onRetrained={"autoRollout": True})
    world.median_words = 80.0
    created = wait_for(lambda: jobsets(world), timeout=120, what="the retraining JobSet")
    assert len(created) == 1
    name = created[0]["metadata"]["name"]
    event = world.status()["driftEventId"]
    assert event in name and world.status()["lastRetraining"]["jobName"] == name
    assert created[0]["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == QUEUE
    assert created[0]["metadata"]["labels"]["team"] == "ml"  # the user's template, kept
    # Kueue admits it from the 8-GPU ClusterQueue as a whole: 2 pods x 4 GPUs.
    admitted = wait_for(
        lambda: next(
            (w for w in kueue_workloads(world) if condition_of(w, "Admitted").get("status") == "True"), None
        ),
        timeout=120,
        what="the JobSet admitted by Kueue",
    )
    assert admitted["status"]["admission"]["clusterQueue"] == CLUSTER_QUEUE
    assignments = admitted["status"]["admission"]["podSetAssignments"]
    assert [(a["count"], a["resourceUsage"][GPU]) for a in assignments] == [(2, "8")]
    # The JobSet controller made one Job per node; each pod mounts the data and carries the
    # trainer's environment in every container.
    pods = wait_for(
        lambda: (
            found
            if len(
                found := world.cluster.get(
                    "pods", "-n", world.namespace, "-l", f"jobset.sigs.k8s.io/jobset-name={name}"
                )["items"]
            )
            == 2
            else None
        ),
        timeout=120,
        what="the JobSet's two pods",
    )
    for pod in pods:
        assert {"name": "data", "persistentVolumeClaim": {"claimName": "training-data"}} in pod["spec"][
            "volumes"
        ]
        assert (
            pod["spec"]["nodeSelector"]["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
        )  # Kueue's flavor
        for container in pod["spec"]["containers"]:
            env = {item["name"]: item.get("value") for item in container.get("env") or []}
            assert env["DRIFT_EVENT_ID"] == event and env["MODEL_NAME"] == "llama", container["name"]
            assert env["DRIFTED_FEATURES"] == "prompt-tokens"
    trainer_env = {
        item["name"]: item.get("value")
        for item in pods[0]["spec"]["containers"][0]["env"]
        if item.get("value") is not None
    }
    assert trainer_env["DATA_DIR"] == "/data"

    # A restarted operator finds its JobSet and creates no second workload.
    world.operator.stop()
    world.operator.start()
    checked = world.status().get("lastCheckTime")
    wait_for(
        lambda: world.status().get("lastCheckTime") != checked, timeout=60, what="a check after the restart"
    )
    assert len(jobsets(world)) == 1 and len(kueue_workloads(world)) == 1

    # kwok runs both pods to completion; JobSet reports Completed, the monitor Succeeded.
    wait_for(lambda: result(world) == "Succeeded", timeout=180, what="the JobSet's success in status")
    wait_for(
        lambda: world.condition("Retrained").get("reason") == "WaitingForModelVersion",
        timeout=60,
        what="the operator waiting for the retrained version",
    )
    trainer = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "retrain" / "train.py")],
        env={**os.environ, **trainer_env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert trainer.returncode == 0, trainer.stderr
    rollout = f"llama-retrained-{event}"
    wait_for(
        lambda: world.condition("Retrained").get("reason") == "RolloutCreated",
        timeout=60,
        what="the CanaryRollout",
    )
    created_rollout = world.cluster.get("canaryrollout", rollout, "-n", world.namespace)
    version = world.status()["lastRetraining"]["modelVersion"]
    assert created_rollout["spec"]["canary"]["model"]["uri"] == f"models:/llama/{version}"
    assert len(jobsets(world)) == 1


def test_a_retraining_waits_for_quota_with_kueues_reason_and_forbid_creates_nothing_beside_it(
    world: DriftWorld,
) -> None:
    training_data(world.cluster, world.namespace)
    other = blocker(world)
    start(world, workloadTemplate=fine_tune(), queueName=QUEUE, concurrencyPolicy="Forbid")
    world.median_words = 80.0
    name = wait_for(
        lambda: next((j["metadata"]["name"] for j in jobsets(world)), None), timeout=120, what="the JobSet"
    )
    queued = wait_for(
        lambda: (
            world.condition("Retrained") if world.condition("Retrained").get("reason") == "Queued" else None
        ),
        timeout=120,
        what="Retrained Queued with Kueue's reason",
    )
    assert result(world) == "Pending"
    assert "insufficient unused quota" in queued["message"] and GPU in queued["message"], queued
    assert jobsets(world)[0]["spec"]["suspend"] is True
    # The episode ends once the baseline holds the longer prompts; a second one is held by Forbid
    # beside the queued JobSet.
    wait_for(lambda: world.condition("Drifted").get("reason") == "NoDrift", timeout=180, what="episode end")
    world.median_words = 20.0
    held = wait_for(
        lambda: "concurrencyPolicy Forbid" in world.condition("Drifted").get("message", ""),
        timeout=120,
        what="the second episode held by Forbid",
    )
    assert held and "is queued" in world.condition("Drifted")["message"]
    assert [j["metadata"]["name"] for j in jobsets(world)] == [name]

    # The quota frees up: Kueue admits the JobSet, kwok completes it.
    world.cluster.kubectl("delete", "job", other, "-n", world.namespace, "--cascade=background")
    wait_for(lambda: result(world) == "Succeeded", timeout=180, what="the JobSet run once quota freed")
    assert world.condition("Retrained")["reason"] == "JobSucceeded"


def test_replace_deletes_the_running_jobset_for_the_new_episode(world: DriftWorld) -> None:
    # No queue, and more GPUs than a node has: the JobSet's pods never schedule, so it keeps running.
    template = fine_tune(gpus_per_pod=64)
    template["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"].pop("volumes")
    for container in template["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"][
        "containers"
    ]:
        container.pop("volumeMounts", None)
    start(world, workloadTemplate=template, concurrencyPolicy="Replace")
    world.median_words = 80.0
    first = wait_for(
        lambda: next((j["metadata"]["name"] for j in jobsets(world)), None), timeout=120, what="a JobSet"
    )
    wait_for(lambda: result(world) == "Running", timeout=60, what="the JobSet running")
    wait_for(lambda: world.condition("Drifted").get("reason") == "NoDrift", timeout=180, what="episode end")
    world.median_words = 20.0
    second = wait_for(
        lambda: next((j["metadata"]["name"] for j in jobsets(world) if j["metadata"]["name"] != first), None),
        timeout=120,
        what="the second episode's JobSet",
    )
    wait_for(
        lambda: [j["metadata"]["name"] for j in jobsets(world)] == [second],
        timeout=60,
        what="the first deleted",
    )
    assert world.status()["lastRetraining"]["jobName"] == second


def test_a_template_the_api_server_rejects_is_invalid_spec_and_creates_nothing(world: DriftWorld) -> None:
    template = fine_tune()
    template["spec"]["replicatedJobs"][0]["template"]["spec"]["parallelism"] = "lots"
    start(world, workloadTemplate=template)
    world.median_words = 80.0
    ready = wait_for(
        lambda: world.condition("Ready") if world.condition("Ready").get("reason") == "InvalidSpec" else None,
        timeout=120,
        what="Ready=False InvalidSpec",
    )
    assert ready["status"] == "False"
    assert "parallelism" in ready["message"] and "rejected the JobSet" in ready["message"], ready
    assert "template is invalid" in world.condition("Drifted")["message"]
    assert jobsets(world) == [] and "lastRetraining" not in world.status()


def test_the_kueue_and_jobset_samples_are_accepted(cluster: Cluster, namespace: str, engines: None) -> None:
    """README's samples: the queues, the monitor, and the JobSet its template makes, by the API
    server with Kueue's and JobSet's CRDs and webhooks."""
    samples = ROOT / "manifests" / "samples" / "kueue"
    for sample in sorted(samples.glob("*.yaml")):
        cluster.kubectl("create", "--dry-run=server", "--validate=strict", "-n", namespace, "-f", str(sample))
    monitor = yaml.safe_load((samples / "driftmonitor-llama-8b-jobset.yaml").read_text())
    template = monitor["spec"]["retraining"]["workloadTemplate"]
    jobset = {
        "apiVersion": "jobset.x-k8s.io/v1alpha2",
        "kind": "JobSet",
        "metadata": {**template["metadata"], "name": "llama-8b-retrain"},
        "spec": {**template["spec"], "suspend": True},
    }
    cluster.kubectl(
        "create",
        "--dry-run=server",
        "--validate=strict",
        "-n",
        namespace,
        "-f",
        "-",
        input=yaml.safe_dump(jobset),
    )


def test_an_engine_that_is_not_installed_is_reported_and_nothing_crash_loops(
    world: DriftWorld, cluster: Cluster
) -> None:
    """The JobSet CRD removed (its controller stopped first), then put back by the script."""
    subprocess.run([ENGINES, "stop", "jobset"], check=True)
    cluster.kubectl("delete", "crd", "jobsets.jobset.x-k8s.io", "--wait=true")
    try:
        start(world, workloadTemplate=fine_tune())
        world.median_words = 80.0
        ready = wait_for(
            lambda: (
                world.condition("Ready")
                if world.condition("Ready").get("reason") == "EngineNotInstalled"
                else None
            ),
            timeout=120,
            what="Ready=False EngineNotInstalled",
        )
        assert ready["status"] == "False" and "JobSet" in ready["message"]
        assert "not installed" in world.condition("Drifted")["message"]
        checked = world.status()["lastCheckTime"]
        wait_for(lambda: world.status()["lastCheckTime"] != checked, timeout=60, what="checks go on")
        assert world.condition("Ready")["reason"] == "EngineNotInstalled"
    finally:
        subprocess.run([ENGINES, "start", "jobset"], check=True, env={**os.environ, **jobset_ports()})


def jobset_ports() -> dict[str, str]:
    return {"LLMOPS_JOBSET_WEBHOOK_PORT": str(free_port()), "LLMOPS_JOBSET_HEALTH_PORT": str(free_port())}
