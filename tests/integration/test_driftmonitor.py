"""DriftMonitor end to end: a real Prometheus scraping a vLLM-compatible server whose prompt length
distribution the test shifts halfway, the operator judging windows of vLLM's own histograms, and a
retraining Job that kwok runs to completion.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.argocd_health import health as argocd_health
from tests.simulator.loadgen import LoadGenerator
from tests.simulator.vllm_sim import VLLMSimulator

from .conftest import PLUGIN_DIR, ROOT, Cluster, MLflowServer, OperatorProcess, PrometheusServer, wait_for

WINDOW = 15  # seconds: the current window, and the baseline window that ended one window ago


def prompt_words(median: float) -> int:
    """The load's prompt length in words (the simulator counts one token per word)."""
    return int(random.lognormvariate(0, 0.4) * median)


class DriftWorld:
    def __init__(self, cluster: Cluster, namespace: str, tmp_path: Path, mlflow: MLflowServer) -> None:
        self.mlflow = mlflow
        self.cluster, self.namespace, self.tmp_path = cluster, namespace, tmp_path
        self.sim = VLLMSimulator("llama", 0).start()
        labels = {"namespace": namespace, "pod": "llama-0", "llmops_dev_llmdeployment": "llama"}
        self.prometheus = PrometheusServer(
            tmp_path / "prometheus",
            {
                "global": {"scrape_interval": "1s"},
                "scrape_configs": [
                    {
                        "job_name": "vllm",
                        "static_configs": [{"targets": [f"127.0.0.1:{self.sim.port}"], "labels": labels}],
                    }
                ],
            },
        )
        self.operator = OperatorProcess(
            namespace,
            tmp_path / "operator.log",
            env={
                "LLMOPS_PROMETHEUS_URL": self.prometheus.url,
                "LLMOPS_MLFLOW_TRACKING_URI": mlflow.uri,
                "LLMOPS_DRIFT_TICK_SECONDS": "1",
            },
        )
        self.median_words = 20.0
        self.load = LoadGenerator(
            f"http://127.0.0.1:{self.sim.port}",
            f"http://127.0.0.1:{self.sim.port}",
            lambda: 0.0,
            rate_per_second=20,
            prompt_words=lambda: prompt_words(self.median_words),
        )

    def start(self, **spec: Any) -> None:
        """Starts the world with a monitor; ``spec`` overrides its fields (None drops one)."""
        self.prometheus.start()
        self.operator.start()
        self.load.start()
        monitor = {
            "apiVersion": "llmops.dev/v1alpha1",
            "kind": "DriftMonitor",
            "metadata": {"name": "prompts"},
            "spec": {
                "targetRef": {"name": "llama"},
                "interval": "3s",
                "currentWindow": f"{WINDOW}s",
                "baseline": {"relative": {"offset": f"{WINDOW}s", "duration": f"{WINDOW}s"}},
                "features": [
                    {
                        "name": "prompt-tokens",
                        "source": {"histogram": {"metric": "vllm:request_prompt_tokens"}},
                        "test": "psi",
                        "threshold": "0.25",
                    }
                ],
                "policy": {"minSamples": 100},
                "retraining": {
                    "template": {"image": "registry.invalid/trainer:1", "command": ["train"]},
                    "cooldown": "10m",
                },
                "onRetrained": {"autoRollout": True},
                **spec,
            },
        }
        monitor["spec"] = {key: value for key, value in monitor["spec"].items() if value is not None}
        self.cluster.apply(monitor, self.namespace)

    def stop(self) -> None:
        self.load.stop()
        self.operator.stop()
        self.prometheus.stop()
        self.sim.stop()

    def status(self) -> dict[str, Any]:
        return self.cluster.get("driftmonitor", "prompts", "-n", self.namespace).get("status") or {}

    def condition(self, type_: str) -> dict[str, Any]:
        return next((c for c in self.status().get("conditions") or [] if c["type"] == type_), {})

    def jobs(self) -> list[dict[str, Any]]:
        return list(self.cluster.get("jobs", "-n", self.namespace)["items"])


@pytest.fixture
def drift_world(
    cluster: Cluster, namespace: str, tmp_path: Path, mlflow_server: MLflowServer
) -> Iterator[DriftWorld]:
    world = DriftWorld(cluster, namespace, tmp_path, mlflow_server)
    try:
        yield world
    finally:
        print(cluster.kubectl("get", "driftmonitor,jobs", "-n", namespace, "-o", "yaml", check=False).stdout)
        world.stop()
        assert "Traceback" not in world.operator.logs(), world.operator.logs()


def test_a_shift_starts_exactly_one_retraining_job(drift_world: DriftWorld) -> None:
    world = drift_world
    world.start()
    # Until the baseline window has filled, the verdict is NoData, never drift.
    wait_for(lambda: world.condition("Drifted").get("reason") == "NoData", timeout=30, what="NoData at first")
    wait_for(
        lambda: world.condition("Drifted").get("reason") == "NoDrift", timeout=60, what="a steady verdict"
    )
    # No shift: many checks, each judged and none a drift, and no Job.
    checks = set()

    def judged_steady_checks() -> bool:
        status = world.status()
        assert world.condition("Drifted")["status"] == "False", status
        checks.add(status.get("lastCheckTime"))
        return len(checks) >= 4

    wait_for(judged_steady_checks, timeout=60, interval=1, what="four steady checks")
    assert world.jobs() == []
    feature = world.status()["features"][0]
    assert feature["name"] == "prompt-tokens" and feature["baselineSamples"] >= 100 and not feature["drifted"]

    world.median_words = 80.0  # prompts four times longer
    drifted = wait_for(
        lambda: world.condition("Drifted").get("status") == "True", timeout=40, what="drift detected"
    )
    assert drifted
    assert "prompt-tokens" in world.condition("Drifted")["message"]
    jobs = wait_for(world.jobs, timeout=15, what="the retraining Job")
    assert len(jobs) == 1
    status = world.status()
    event = status["driftEventId"]
    job = jobs[0]
    assert job["metadata"]["name"] == status["lastRetraining"]["jobName"] and event in job["metadata"]["name"]
    env = {
        item["name"]: item.get("value") for item in job["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["DRIFT_EVENT_ID"] == event and env["DRIFTED_FEATURES"] == "prompt-tokens"
    assert env["MODEL_NAME"] == "llama" and env["CURRENT_WINDOW"].count("/") == 1
    # The check that found the drift is an MLflow run with per-feature metrics and a plotted report,
    # and the trainer is told where that report is.
    run_id = env["DRIFT_REPORT_URI"].removeprefix("runs:/").split("/")[0]
    run = world.mlflow.client().get_run(run_id)
    assert run.data.tags["llmops.dev/drift-event"] == event
    assert (
        run.data.metrics["prompt-tokens/statistic"] > 0.25 and run.data.metrics["prompt-tokens/drifted"] == 1
    )
    experiment = world.mlflow.client().get_experiment(run.info.experiment_id)
    assert experiment.name == f"driftmonitor/{world.namespace}/prompts"
    report = Path(world.mlflow.client().download_artifacts(run_id, "drift-report.html", str(world.tmp_path)))
    page = report.read_text()
    assert "drift in prompt-tokens" in page and page.count("data:image/png;base64,") == 1
    plugin = [str(PLUGIN_DIR / "kubectl-llmops"), "--kubeconfig", str(world.cluster.kubeconfig)]
    view = subprocess.run(
        [*plugin, "-n", world.namespace, "drift", "get", "prompts"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert view.returncode == 0, view.stderr
    assert "prompt-tokens" in view.stdout and "psi" in view.stdout and "0.25" in view.stdout, view.stdout
    monitor = {"namespace": world.namespace, "monitor": "prompts"}
    assert world.operator.metric("llmops_drift_detected", **monitor) == 1
    assert world.operator.metric("llmops_drift_statistic", feature="prompt-tokens", **monitor) > 0.25
    assert world.operator.metric("llmops_retraining_jobs_total", event="started", **monitor) == 1

    # The operator restarts mid-episode: the episode and its Job are remembered, not doubled.
    world.operator.stop()
    world.operator.start()
    world.operator.wait_reconciles("DriftMonitor", 4)  # checks of the restarted operator
    assert len(world.jobs()) == 1
    assert world.status()["driftEventId"] in ("", event)
    # kwok runs the Job's pod to completion; the outcome lands in status.
    wait_for(
        lambda: (world.status().get("lastRetraining") or {}).get("result") == "Succeeded",
        timeout=60,
        what="the Job's success in status",
    )
    # kwok runs no containers: the test plays the trainer, with the Job's own environment.
    wait_for(
        lambda: world.condition("Retrained").get("reason") == "WaitingForModelVersion",
        timeout=30,
        what="the operator waiting for the retrained version",
    )
    trainer = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "retrain" / "train.py")],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert trainer.returncode == 0, trainer.stderr
    version = (
        world.mlflow.client()
        .search_model_versions(filter_string=f"name = 'llama' and tags.`llmops.dev/drift-event` = '{event}'")[
            0
        ]
        .version
    )
    rollout_name = f"llama-retrained-{event}"
    rollout = wait_for(
        lambda: (
            world.cluster.kubectl(
                "get", "canaryrollout", rollout_name, "-n", world.namespace, "-o", "json", check=False
            ).returncode
            == 0
        ),
        timeout=30,
        what="the CanaryRollout for the retrained version",
    )
    assert rollout
    created = world.cluster.get("canaryrollout", rollout_name, "-n", world.namespace)
    assert created["spec"]["canary"]["model"]["uri"] == f"models:/llama/{version}"
    assert world.status()["lastRetraining"]["modelVersion"] == str(version)
    assert world.condition("Retrained")["reason"] == "RolloutCreated"
    if world.condition("Drifted")["status"] == "True":  # this episode's fix is on its way
        monitor = world.cluster.get("driftmonitor", "prompts", "-n", world.namespace)
        assert argocd_health(monitor)["status"] == "Progressing"

    # Once the baseline window holds the new prompts too, the episode ends; the cooldown holds.
    wait_for(
        lambda: world.condition("Drifted").get("reason") == "NoDrift", timeout=60, what="the episode ending"
    )
    assert len(world.jobs()) == 1
    # Prompts shrink back: a new episode, inside the cooldown, so no second Job, and status says why.
    world.median_words = 20.0
    wait_for(lambda: world.condition("Drifted").get("status") == "True", timeout=40, what="a second episode")
    assert world.status()["driftEventId"] not in ("", event)
    held = wait_for(
        lambda: "cooldown" in world.condition("Drifted").get("message", ""), timeout=10, what="the cooldown"
    )
    assert held
    world.operator.wait_reconciles("DriftMonitor", 3)  # more checks inside the cooldown
    assert len(world.jobs()) == 1
    reasons = {e["reason"] for e in world.cluster.get("events", "-n", world.namespace)["items"]}
    assert {
        "DriftDetected",
        "RetrainingStarted",
        "RetrainingSucceeded",
        "RolloutCreated",
        "DriftEnded",
    } <= reasons


def test_a_reference_dataset_baseline_from_a_configmap(drift_world: DriftWorld) -> None:
    """The baseline is the training set's prompt lengths (a ConfigMap), not a past window."""
    world = drift_world
    training = [max(1, prompt_words(20.0)) for _ in range(3000)]
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "training-set"},
        "data": {"prompts.csv": "prompt_tokens\n" + "\n".join(map(str, training))},
    }
    world.start(
        baseline={"dataset": {"configMap": {"name": "training-set", "key": "prompts.csv"}}},
        features=[
            {
                "name": "prompt-tokens",
                "source": {"histogram": {"metric": "vllm:request_prompt_tokens"}},
                "baselineColumn": "prompt_tokens",
                "test": "psi",
                "threshold": "0.25",
            }
        ],
    )
    # Before the ConfigMap exists the monitor says so, and judges nothing.
    wait_for(
        lambda: world.condition("Ready").get("reason") == "DatasetNotFound",
        timeout=30,
        what="DatasetNotFound",
    )
    assert "training-set" in world.condition("Ready")["message"]
    world.cluster.apply(configmap, world.namespace)
    wait_for(
        lambda: world.condition("Drifted").get("reason") == "NoDrift",
        timeout=60,
        what="live traffic like training",
    )
    feature = world.status()["features"][0]
    assert feature["baselineSamples"] == 3000 and feature["currentSamples"] >= 100
    world.median_words = 80.0
    wait_for(
        lambda: world.condition("Drifted").get("status") == "True",
        timeout=40,
        what="drift from the training set",
    )
    assert len(wait_for(world.jobs, timeout=15, what="the retraining Job")) == 1
    job_env = {
        item["name"]: item.get("value")
        for item in world.jobs()[0]["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert job_env["BASELINE_WINDOW"] == "configmap training-set/prompts.csv"


def test_a_promql_feature_is_sampled_over_both_windows(drift_world: DriftWorld) -> None:
    """A query source: the user's PromQL, with {{namespace}} and {{target}} filled in, sampled at
    its step over the baseline window and over the current one."""
    world = drift_world
    query = 'sum(vllm:num_requests_running{namespace="{{namespace}}",llmops_dev_llmdeployment="{{target}}"})'
    world.start(
        features=[{"name": "running", "source": {"query": {"promql": query, "step": "1s"}}}],
        policy={"minSamples": 10},
        retraining=None,
        onRetrained={"autoRollout": False},
    )
    feature = wait_for(
        lambda: next(
            (f for f in world.status().get("features") or [] if f.get("statistic") is not None), None
        ),
        timeout=60,
        what="a judged query feature",
    )
    assert feature["test"] == "ks" and feature["pValue"] is not None
    assert 10 <= feature["baselineSamples"] <= WINDOW + 1 and 10 <= feature["currentSamples"] <= WINDOW + 1
    assert world.condition("Ready")["reason"] == "Checked"
    assert world.jobs() == []


def test_prometheus_down_means_no_verdict_and_no_job(drift_world: DriftWorld) -> None:
    world = drift_world
    world.start()
    wait_for(
        lambda: world.condition("Drifted").get("reason") == "NoDrift", timeout=60, what="a steady verdict"
    )
    world.prometheus.stop()
    world.median_words = 80.0
    wait_for(
        lambda: world.condition("Ready").get("reason") == "MetricsUnavailable",
        timeout=30,
        what="MetricsUnavailable",
    )
    assert world.condition("Drifted")["status"] == "Unknown"
    assert "unreachable" in world.condition("Ready")["message"]
    world.operator.wait_reconciles("DriftMonitor", 4)  # checks with longer prompts and no Prometheus
    assert world.jobs() == []
    assert world.condition("Drifted")["status"] == "Unknown"
