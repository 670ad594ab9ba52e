"""What README promises of DriftMonitor beyond the main episode: MLflow being away costs the report
and never the verdict, concurrencyPolicy Forbid and Replace, a failed retraining Job that is not
retried, a fixed-window baseline, and reference datasets from MLflow or malformed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from .conftest import Cluster, MLflowServer, Outage, wait_for
from .test_driftmonitor import WINDOW, DriftWorld, prompt_words


def running(world: DriftWorld) -> Iterator[DriftWorld]:
    try:
        yield world
    finally:
        print(
            world.cluster.kubectl("get", "driftmonitor,jobs,pods", "-n", world.namespace, "-o", "yaml").stdout
        )
        world.stop()
        assert "Traceback" not in world.operator.logs(), world.operator.logs()


@pytest.fixture
def world_with_outage(
    cluster: Cluster, namespace: str, tmp_path: Path, mlflow_outage: tuple[MLflowServer, Outage]
) -> Iterator[DriftWorld]:
    yield from running(DriftWorld(cluster, namespace, tmp_path, mlflow_outage[0]))


@pytest.fixture
def world(
    cluster: Cluster, namespace: str, tmp_path: Path, mlflow_server: MLflowServer
) -> Iterator[DriftWorld]:
    yield from running(DriftWorld(cluster, namespace, tmp_path, mlflow_server))


def retraining(**overrides: Any) -> dict[str, Any]:
    return {"template": {"image": "registry.invalid/trainer:1", "command": ["train"]}, **overrides}


def job_names(world: DriftWorld) -> list[str]:
    return sorted(job["metadata"]["name"] for job in world.jobs())


def events(world: DriftWorld, reason: str) -> list[dict[str, Any]]:
    found = world.cluster.get("events", "-n", world.namespace)["items"]
    return [event for event in found if event["reason"] == reason]


def test_mlflow_down_costs_the_report_never_the_verdict(
    world_with_outage: DriftWorld, mlflow_outage: tuple[MLflowServer, Outage]
) -> None:
    world, outage = world_with_outage, mlflow_outage[1]
    world.start(onRetrained={"autoRollout": False})
    wait_for(lambda: world.condition("Drifted").get("reason") == "NoDrift", timeout=60, what="a verdict")
    assert world.condition("Reported")["status"] == "True"
    assert world.status()["reportUri"].startswith("runs:/")

    outage.cut()
    world.median_words = 80.0
    wait_for(
        lambda: world.condition("Drifted").get("status") == "True", timeout=40, what="drift, MLflow down"
    )
    reported = wait_for(
        lambda: world.condition("Reported") if world.condition("Reported").get("status") == "False" else None,
        timeout=30,
        what="Reported=False",
    )
    assert reported["reason"] == "RegistryUnavailable"
    status = world.status()
    assert status["reportUri"] == ""
    assert status["features"][0]["drifted"] and status["features"][0]["statistic"] > 0.25
    # The verdict still starts its retraining; the trainer is told there is no report.
    jobs = wait_for(world.jobs, timeout=15, what="the retraining Job")
    env = {
        item["name"]: item.get("value")
        for item in jobs[0]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env.get("DRIFT_REPORT_URI") in (None, "")

    outage.restore()
    wait_for(lambda: world.condition("Reported").get("status") == "True", timeout=60, what="reports again")
    wait_for(
        lambda: world.status().get("reportUri", "").startswith("runs:/"), timeout=30, what="a report URI"
    )
    assert len(world.jobs()) == 1


SHORT_WINDOW = 8  # seconds: 160 samples at the load's 20 requests a second


def pending_job_world(world: DriftWorld, policy: str) -> str:
    """Starts drift with a Job that cannot be scheduled (more GPUs than any node), so it stays
    running as far as Kubernetes knows; returns the first episode's Job name."""
    short = f"{SHORT_WINDOW}s"  # an episode ends once the baseline window holds the new traffic
    world.start(
        currentWindow=short,
        baseline={"relative": {"offset": short, "duration": short}},
        retraining=retraining(
            template={"image": "registry.invalid/trainer:1", "resources": {"gpus": 64}},
            cooldown="1s",
            concurrencyPolicy=policy,
            backoffLimit=0,
        ),
        onRetrained={"autoRollout": False},
    )
    wait_for(lambda: world.condition("Drifted").get("reason") == "NoDrift", timeout=60, what="a verdict")
    world.median_words = 80.0
    jobs = wait_for(world.jobs, timeout=60, what="the first episode's Job")
    assert len(jobs) == 1
    first = str(jobs[0]["metadata"]["name"])
    # The episode ends once the baseline window holds the longer prompts too; then a second one.
    wait_for(lambda: world.condition("Drifted").get("reason") == "NoDrift", timeout=90, what="episode end")
    world.median_words = 20.0
    return first


def test_forbid_holds_a_second_episode_while_the_first_job_runs(world: DriftWorld) -> None:
    first = pending_job_world(world, "Forbid")
    held = wait_for(
        lambda: "concurrencyPolicy Forbid" in world.condition("Drifted").get("message", ""),
        timeout=60,
        what="the second episode held by Forbid",
    )
    assert held
    assert job_names(world) == [first]
    assert world.status()["lastRetraining"]["jobName"] == first


def test_replace_deletes_the_running_job_for_the_new_episode(world: DriftWorld) -> None:
    first = pending_job_world(world, "Replace")
    second = wait_for(
        lambda: next((name for name in job_names(world) if name != first), None),
        timeout=60,
        what="the second episode's Job",
    )
    wait_for(lambda: job_names(world) == [second], timeout=30, what="the first Job deleted")
    status = world.status()
    assert status["lastRetraining"]["jobName"] == second
    assert status["driftEventId"] in second


def test_a_failed_job_is_reported_and_not_retried(world: DriftWorld) -> None:
    world.start(
        retraining=retraining(
            template={"image": "registry.invalid/trainer:1", "resources": {"gpus": 64}}, backoffLimit=0
        ),
        onRetrained={"autoRollout": False},
    )
    wait_for(lambda: world.condition("Drifted").get("reason") == "NoDrift", timeout=60, what="a verdict")
    world.median_words = 80.0
    jobs = wait_for(world.jobs, timeout=60, what="the retraining Job")
    job = jobs[0]["metadata"]["name"]
    # The pod cannot be scheduled, so kwok leaves it alone: the test fails it as a crashed trainer would.
    pod = wait_for(
        lambda: next(
            iter(world.cluster.get("pods", "-n", world.namespace, "-l", f"job-name={job}")["items"]), None
        ),
        timeout=30,
        what="the Job's pod",
    )
    failed = {"status": {"phase": "Failed", "reason": "Error", "message": "trainer exited with code 1"}}
    world.cluster.kubectl(
        "patch",
        "pod",
        pod["metadata"]["name"],
        "-n",
        world.namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(failed),
    )
    retrained = wait_for(
        lambda: (
            world.condition("Retrained")
            if world.condition("Retrained").get("reason") == "JobFailed"
            else None
        ),
        timeout=60,
        what="Retrained=False JobFailed",
    )
    assert retrained["status"] == "False" and "not retried" in retrained["message"]
    assert world.status()["lastRetraining"]["result"] == "Failed"
    assert len(events(world, "RetrainingFailed")) == 1
    # The episode goes on, and its failed Job is not replaced by another.
    checked = world.status()["lastCheckTime"]
    wait_for(lambda: world.status()["lastCheckTime"] != checked, timeout=30, what="a later check")
    wait_for(
        lambda: world.status()["lastCheckTime"] != checked and world.condition("Drifted")["status"] == "True",
        timeout=30,
        what="a later check, still drifted",
    )
    assert job_names(world) == [job]


def test_a_fixed_window_baseline(world: DriftWorld) -> None:
    """The baseline is a fixed span of time (a past, known-good hour): drift once traffic leaves it."""
    world.prometheus.start()
    world.load.start()
    start = datetime.now(UTC)
    wait_for(
        lambda: datetime.now(UTC) - start > timedelta(seconds=WINDOW), timeout=WINDOW + 5, what="a window"
    )
    end = datetime.now(UTC)
    fixed = {"start": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "end": end.strftime("%Y-%m-%dT%H:%M:%SZ")}
    world.operator.start()
    world.cluster.apply(
        {
            "apiVersion": "llmops.dev/v1alpha1",
            "kind": "DriftMonitor",
            "metadata": {"name": "prompts"},
            "spec": {
                "targetRef": {"name": "llama"},
                "interval": "3s",
                "currentWindow": f"{WINDOW}s",
                "baseline": {"fixed": fixed},
                "features": [
                    {
                        "name": "prompt-tokens",
                        "source": {"histogram": {"metric": "vllm:request_prompt_tokens"}},
                        "test": "psi",
                        "threshold": "0.25",
                    }
                ],
                "policy": {"minSamples": 100},
            },
        },
        world.namespace,
    )
    wait_for(
        lambda: world.condition("Drifted").get("reason") == "NoDrift", timeout=60, what="like the baseline"
    )
    world.median_words = 80.0
    wait_for(lambda: world.condition("Drifted").get("status") == "True", timeout=40, what="drift from it")
    # A fixed baseline never catches up with the new traffic: the episode stays open.
    first = world.status()["lastCheckTime"]
    wait_for(lambda: world.status()["lastCheckTime"] != first, timeout=30, what="a later check")
    assert world.condition("Drifted")["status"] == "True"


def dataset_features() -> list[dict[str, Any]]:
    return [
        {
            "name": "prompt-tokens",
            "source": {"histogram": {"metric": "vllm:request_prompt_tokens"}},
            "baselineColumn": "prompt_tokens",
            "test": "psi",
            "threshold": "0.25",
        }
    ]


def test_a_reference_dataset_from_an_mlflow_artifact(world: DriftWorld, tmp_path: Path) -> None:
    client = world.mlflow.client()
    experiment = client.create_experiment(f"training-{world.namespace}")
    run = client.create_run(experiment)
    table = tmp_path / "prompts.json"
    table.write_text(json.dumps({"prompt_tokens": [max(1, prompt_words(20.0)) for _ in range(2000)]}))
    client.log_artifact(run.info.run_id, str(table), "data")
    client.set_terminated(run.info.run_id)
    world.start(
        baseline={"dataset": {"mlflowArtifact": {"runId": run.info.run_id, "path": "data/prompts.json"}}},
        features=dataset_features(),
        retraining=None,
        onRetrained={"autoRollout": False},
    )
    wait_for(lambda: world.condition("Drifted").get("reason") == "NoDrift", timeout=60, what="like training")
    assert world.status()["features"][0]["baselineSamples"] == 2000
    world.median_words = 80.0
    wait_for(lambda: world.condition("Drifted").get("status") == "True", timeout=40, what="drift")


def test_a_malformed_reference_dataset_is_invalid_dataset(world: DriftWorld) -> None:
    world.cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "training-set"},
            "data": {"prompts.csv": "prompt_tokens\n12\ntwelve\n14\n"},
        },
        world.namespace,
    )
    world.start(
        baseline={"dataset": {"configMap": {"name": "training-set", "key": "prompts.csv"}}},
        features=dataset_features(),
        retraining=None,
        onRetrained={"autoRollout": False},
    )
    ready = wait_for(
        lambda: (
            world.condition("Ready") if world.condition("Ready").get("reason") == "InvalidDataset" else None
        ),
        timeout=30,
        what="InvalidDataset",
    )
    assert ready["status"] == "False" and "prompt_tokens" in ready["message"]
    assert world.condition("Drifted")["status"] == "Unknown"
    assert world.jobs() == []
