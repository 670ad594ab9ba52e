"""The operator judging a real vLLM: PyPI's CPU build serving small random Llama models that
tools/vllm.sh builds, scraped by a real Prometheus, with the operator's own queries unchanged.

kwok runs no containers, so each side's pods are stood in for by one vLLM process, scraped with the
labels a ServiceMonitor would give the pods. The canary ``canary-equal`` has the stable model's
size and is promoted; ``canary-slow`` is deeper and wider, so genuinely slower per token (no fault
injected), and is rolled back on its latency. A DriftMonitor reads vLLM's own
``vllm:request_prompt_tokens`` histogram, whose token counts come from the model's real tokenizer.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.simulator.loadgen import LoadGenerator

from .conftest import Cluster, MLflowServer, OperatorProcess, PrometheusServer, wait_for
from .real_vllm import VLLMServer, VLLMServers

STABLE, CANARY = "llama", "llama-canary"
INTERVAL = 10  # seconds between measurements
# On two shared cores the absolute latency of even the small model swings with the machine's load
# (a p95 of 1.9 s was seen while other builds ran), so latency is judged against the stable side,
# which shares that load: Mann-Whitney U with an effect-size bound. Measured: 16-token completions
# take ~50 ms (p95 ~80 ms) on the stable model and ~1.1 s (p95 ~1.8 s) on canary-slow.
DRIFT_WINDOW = 15  # seconds


def scrape_config(namespace: str, targets: list[tuple[VLLMServer, str]]) -> dict[str, Any]:
    def target(server: VLLMServer, deployment: str) -> dict[str, Any]:
        return {
            "targets": [f"127.0.0.1:{server.port}"],
            "labels": {
                "namespace": namespace,
                "pod": f"{deployment}-7d9f8b6c5d-x2x4z",
                "service": STABLE,
                "llmops_dev_llmdeployment": deployment,
            },
        }

    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": "vllm", "static_configs": [target(server, name) for server, name in targets]}
        ],
    }


class RolloutWorld:
    """A CanaryRollout of the ``stable`` model's LLMDeployment to a version served by ``canary``."""

    def __init__(
        self, cluster: Cluster, namespace: str, tmp_path: Path, mlflow: MLflowServer, servers: VLLMServers
    ) -> None:
        self.cluster, self.namespace, self.tmp_path, self.mlflow = cluster, namespace, tmp_path, mlflow
        self.servers = servers
        self.model = f"m-{namespace}"
        self.load: LoadGenerator | None = None
        self.prometheus: PrometheusServer | None = None
        self.operator: OperatorProcess | None = None

    def ready(self, deployment: str) -> int:
        result = self.cluster.kubectl(
            "get",
            "deployment",
            deployment,
            "-n",
            self.namespace,
            "-o",
            "jsonpath={.status.readyReplicas}",
            check=False,
        )
        return int(result.stdout or 0) if result.returncode == 0 else 0

    def canary_share(self) -> float:
        canary, stable = self.ready(CANARY), self.ready(STABLE)
        return canary / (canary + stable) if canary + stable else 0.0

    def start(self, canary_model: str) -> None:
        running = self.servers.ensure("stable", canary_model)
        stable_server, canary_server = running["stable"], running[canary_model]
        self.prometheus = PrometheusServer(
            self.tmp_path / "prometheus",
            scrape_config(self.namespace, [(stable_server, STABLE), (canary_server, CANARY)]),
        )
        self.operator = OperatorProcess(
            self.namespace,
            self.tmp_path / "operator.log",
            env={
                "LLMOPS_PROMETHEUS_URL": self.prometheus.url,
                "LLMOPS_MLFLOW_TRACKING_URI": self.mlflow.uri,
                "LLMOPS_ROLLOUT_TICK_SECONDS": "1",
            },
        )
        self.mlflow.register(self.model, "s3://models/llama/v1", alias="champion")
        self.mlflow.register(self.model, "s3://models/llama/v2")
        self.prometheus.start()
        self.operator.start()
        stable = {
            "apiVersion": "llmops.dev/v1alpha1",
            "kind": "LLMDeployment",
            "metadata": {"name": STABLE},
            "spec": {"model": {"uri": f"models:/{self.model}@champion"}, "replicas": 2},
        }
        self.cluster.apply(stable, self.namespace)
        wait_for(lambda: self.ready(STABLE) == 2, timeout=60, what="the stable side Ready")
        self.load = LoadGenerator(
            stable_server.url,
            canary_server.url,
            self.canary_share,
            rate_per_second=4,
            max_tokens=16,
            # canary-slow on a loaded two-core machine has taken over 10 s an answer; a client
            # giving up sooner left it no finished request to measure (the rollout paused NoData).
            request_timeout=180,
            workers=96,
        ).start()
        rollout = {
            "apiVersion": "llmops.dev/v1alpha1",
            "kind": "CanaryRollout",
            "metadata": {"name": "upgrade"},
            "spec": {
                "targetRef": {"name": STABLE},
                "canary": {"model": {"uri": f"models:/{self.model}/2"}},
                # One interval's pause first: a measurement's rate windows reach back one interval,
                # and the stable side's would hold the minute before the canary took half the
                # traffic, when two cores served one model (p95 ~300 ms, then ~1.5 s for both). CI
                # rolled the equal canary back on that difference once.
                "steps": [
                    {"setWeight": 50},
                    {"pause": {"duration": f"{INTERVAL}s"}},
                    {"analysis": {}},
                    {"setWeight": 100},
                    {"analysis": {}},
                ],
                "analysis": {
                    "interval": f"{INTERVAL}s",
                    "metrics": [
                        {"name": "error-rate", "preset": "errorRate", "max": "1"},
                        {"name": "latency", "preset": "e2eLatencyP95", "baseline": {"maxEffectSize": "0.5"}},
                    ],
                    "failureLimit": 1,
                },
                "scaleDownDelay": "3s",
            },
        }
        self.cluster.apply(rollout, self.namespace)

    def stop(self) -> None:
        if self.load is not None:
            self.load.stop()
        if self.operator is not None:
            self.operator.stop()
        if self.prometheus is not None:
            self.prometheus.stop()

    def status(self) -> dict[str, Any]:
        return self.cluster.get("canaryrollout", "upgrade", "-n", self.namespace).get("status") or {}

    def condition(self, type_: str) -> dict[str, Any]:
        return next((c for c in self.status().get("conditions") or [] if c["type"] == type_), {})

    def wait_phase(self, phase: str, timeout: float) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            status = self.status()
            assert status.get("phase") not in {"Promoted", "RolledBack"} - {phase}, status
            return status if status.get("phase") == phase else None

        return dict(wait_for(reached, timeout=timeout, interval=0.5, what=f"phase {phase}"))


@pytest.fixture
def rollout_world(
    cluster: Cluster, namespace: str, tmp_path: Path, mlflow_server: MLflowServer, vllm_servers: VLLMServers
) -> Iterator[RolloutWorld]:
    world = RolloutWorld(cluster, namespace, tmp_path, mlflow_server, vllm_servers)
    try:
        yield world
    finally:
        print(cluster.kubectl("get", "-n", namespace, "canaryrollout", "-o", "yaml", check=False).stdout)
        if world.load is not None:
            print(f"[load] sent {world.load.sent} errors {world.load.errors} (stable, canary)")
        for server in vllm_servers.running.values():
            print(f"[vllm] {server.model} log tail:\n{server.log_tail(15)}")
        world.stop()
        if world.operator is not None:
            assert "Traceback" not in world.operator.logs(), world.operator.logs()


def test_a_canary_as_fast_as_stable_is_promoted(rollout_world: RolloutWorld) -> None:
    world = rollout_world
    world.start("canary-equal")
    status = world.wait_phase("Promoted", timeout=400)
    measured = {m["metric"]: m for m in status["measurements"]}
    assert {name: m["phase"] for name, m in measured.items()} == {
        "error-rate": "Successful",
        "latency": "Successful",
    }
    assert world.condition("Promoted")["status"] == "True"
    assert world.mlflow.client().get_model_version_by_alias(world.model, "champion").version == "2"
    assert world.load is not None and world.load.errors == [0, 0]


def test_a_slower_canary_model_is_rolled_back_on_its_latency(rollout_world: RolloutWorld) -> None:
    world = rollout_world
    world.start("canary-slow")
    status = world.wait_phase("RolledBack", timeout=400)
    failed = [m for m in status["measurements"] if m["phase"] == "Failed"]
    assert failed and {m["metric"] for m in failed} == {"latency"}, status["measurements"]
    rolled = world.condition("RolledBack")
    assert rolled["reason"] == "AnalysisFailed" and "latency" in rolled["message"], rolled
    assert world.mlflow.client().get_model_version_by_alias(world.model, "champion").version == "1"
    wait_for(lambda: world.canary_share() == 0.0, timeout=30, what="no traffic to the canary")


class DriftWorld:
    """A DriftMonitor on the real ``vllm:request_prompt_tokens`` of the stable model's server."""

    def __init__(
        self, cluster: Cluster, namespace: str, tmp_path: Path, mlflow: MLflowServer, server: VLLMServer
    ) -> None:
        self.cluster, self.namespace = cluster, namespace
        self.prometheus = PrometheusServer(
            tmp_path / "prometheus", scrape_config(namespace, [(server, STABLE)])
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
            server.url,
            server.url,
            lambda: 0.0,
            rate_per_second=12,
            max_tokens=2,
            prompt_words=lambda: max(1, int(random.lognormvariate(0, 0.4) * self.median_words)),
        )

    def start(self) -> None:
        self.prometheus.start()
        self.operator.start()
        self.load.start()
        monitor = {
            "apiVersion": "llmops.dev/v1alpha1",
            "kind": "DriftMonitor",
            "metadata": {"name": "prompts"},
            "spec": {
                "targetRef": {"name": STABLE},
                "interval": "3s",
                "currentWindow": f"{DRIFT_WINDOW}s",
                "baseline": {"relative": {"offset": f"{DRIFT_WINDOW}s", "duration": f"{DRIFT_WINDOW}s"}},
                "features": [
                    {
                        "name": "prompt-tokens",
                        "source": {"histogram": {"metric": "vllm:request_prompt_tokens"}},
                        "test": "psi",
                        "threshold": "0.25",
                    }
                ],
                "policy": {"minSamples": 100},
                "onRetrained": {"autoRollout": False},
            },
        }
        self.cluster.apply(monitor, self.namespace)

    def stop(self) -> None:
        self.load.stop()
        self.operator.stop()
        self.prometheus.stop()

    def status(self) -> dict[str, Any]:
        return self.cluster.get("driftmonitor", "prompts", "-n", self.namespace).get("status") or {}

    def drifted(self) -> dict[str, Any]:
        return next((c for c in self.status().get("conditions") or [] if c["type"] == "Drifted"), {})


@pytest.fixture
def drift_world(
    cluster: Cluster, namespace: str, tmp_path: Path, mlflow_server: MLflowServer, vllm_servers: VLLMServers
) -> Iterator[DriftWorld]:
    server = vllm_servers.ensure("stable")["stable"]
    world = DriftWorld(cluster, namespace, tmp_path, mlflow_server, server)
    try:
        yield world
    finally:
        print(cluster.kubectl("get", "driftmonitor", "-n", namespace, "-o", "yaml", check=False).stdout)
        world.stop()
        assert "Traceback" not in world.operator.logs(), world.operator.logs()


def test_drift_in_real_prompt_token_counts_is_detected_and_steady_prompts_are_not(
    drift_world: DriftWorld,
) -> None:
    world = drift_world
    world.start()
    wait_for(lambda: world.drifted().get("reason") == "NoDrift", timeout=90, what="a steady verdict")
    # Steady prompts: several checks in a row, each judged and none a drift.
    checks: set[str] = set()

    def judged_steady_checks() -> bool:
        status = world.status()
        assert world.drifted()["status"] == "False", status
        checks.add(str(status.get("lastCheckTime")))
        return len(checks) >= 4

    wait_for(judged_steady_checks, timeout=60, interval=1, what="four steady checks")
    feature = world.status()["features"][0]
    assert feature["baselineSamples"] >= 100 and feature["currentSamples"] >= 100 and not feature["drifted"]
    world.median_words = 80.0  # prompts four times longer, counted by the model's own tokenizer
    wait_for(lambda: world.drifted().get("status") == "True", timeout=60, what="drift detected")
    assert "prompt-tokens" in world.drifted()["message"]
    feature = world.status()["features"][0]
    assert feature["drifted"] and float(feature["statistic"]) > 0.25
