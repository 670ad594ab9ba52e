"""A CanaryRollout judged on llm-d-inference-sim, the Go vLLM imitation KServe's canary tests run,
built from its Go module by tools/build-tools.sh: injected latency is judged on vLLM's histogram
names, and the series it does not export (no ``http_*``) are named, never read as 0% errors.

kwok runs no containers, so each side's pods are stood in for by one llm-d-inference-sim process,
scraped with the labels a ServiceMonitor would give the pods.
"""

from __future__ import annotations

import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.simulator.loadgen import LoadGenerator

from .conftest import (
    ROOT,
    VERSIONS,
    Cluster,
    MLflowServer,
    OperatorProcess,
    PrometheusServer,
    free_port,
    wait_for,
)

VERSION = VERSIONS["LLM_D_INFERENCE_SIM_VERSION"]
BINARY = ROOT / ".tools" / f"llm-d-inference-sim-{VERSION}" / "llm-d-inference-sim"
STABLE, CANARY = "llama", "llama-canary"
INTERVAL = 4  # seconds between measurements


class LlmDSim:
    """``llm-d-inference-sim`` serving a made-up model name (no tokenizer to download) with the
    given latencies."""

    def __init__(self, log_path: Path, ttft_ms: int, itl_ms: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.args = [
            f"--port={self.port}",
            "--model=llama",
            "--mode=random",
            f"--time-to-first-token={ttft_ms}ms",
            f"--inter-token-latency={itl_ms}ms",
        ]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> LlmDSim:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen([str(BINARY), *self.args], stdout=log, stderr=subprocess.STDOUT)

        def answers() -> bool:
            assert self.process is not None and self.process.poll() is None, self.log_path.read_text()
            try:
                with urllib.request.urlopen(f"{self.url}/v1/models", timeout=2) as answer:
                    return bool(answer.status == 200)
            except OSError:
                return False

        wait_for(answers, timeout=60, what="llm-d-inference-sim to answer")
        return self

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as answer:
            return str(answer.read().decode())

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@pytest.fixture(scope="session")
def llm_d_inference_sim() -> Path:
    """Built on first use (about 8 minutes on 2 cores), cached in .tools/ after."""
    subprocess.run([str(ROOT / "tools" / "build-tools.sh"), "llm-d-inference-sim"], check=True, timeout=3600)
    return BINARY


def scrape(namespace: str, sims: dict[str, LlmDSim]) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {
                "job_name": "llm-d-inference-sim",
                "static_configs": [
                    {
                        "targets": [f"127.0.0.1:{sim.port}"],
                        "labels": {
                            "namespace": namespace,
                            "pod": f"{deployment}-7d9f8b6c5d-x2x4z",
                            "service": STABLE,
                            "llmops_dev_llmdeployment": deployment,
                        },
                    }
                    for deployment, sim in sims.items()
                ],
            }
        ],
    }


@pytest.fixture
def sims(llm_d_inference_sim: Path, tmp_path: Path) -> Iterator[dict[str, LlmDSim]]:
    started = {
        STABLE: LlmDSim(tmp_path / "stable.log", ttft_ms=20, itl_ms=5).start(),
        CANARY: LlmDSim(tmp_path / "canary.log", ttft_ms=300, itl_ms=5).start(),  # injected latency
    }
    yield started
    for sim in started.values():
        sim.stop()


# The session fixture builds the simulator on first use (8 minutes or more on 2 cores, a cold Go
# cache): pytest-timeout counts fixture set-up, so this test gets more than the suite's 600 s.
@pytest.mark.timeout(2400)
def test_injected_latency_rolls_back_and_the_missing_http_series_is_named(
    cluster: Cluster, namespace: str, tmp_path: Path, mlflow_server: MLflowServer, sims: dict[str, LlmDSim]
) -> None:
    prometheus = PrometheusServer(tmp_path / "prometheus", scrape(namespace, sims))
    operator = OperatorProcess(
        namespace,
        tmp_path / "operator.log",
        env={
            "LLMOPS_PROMETHEUS_URL": prometheus.url,
            "LLMOPS_MLFLOW_TRACKING_URI": mlflow_server.uri,
            "LLMOPS_ROLLOUT_TICK_SECONDS": "1",
        },
    )
    model = f"m-{namespace}"
    mlflow_server.register(model, "s3://models/llama/v1", alias="champion")
    mlflow_server.register(model, "s3://models/llama/v2")
    prometheus.start()
    operator.start()
    load: LoadGenerator | None = None

    def ready(deployment: str) -> int:
        found = cluster.kubectl(
            "get",
            "deployment",
            deployment,
            "-n",
            namespace,
            "-o",
            "jsonpath={.status.readyReplicas}",
            check=False,
        )
        return int(found.stdout or 0) if found.returncode == 0 else 0

    def canary_share() -> float:
        canary, stable = ready(CANARY), ready(STABLE)
        return canary / (canary + stable) if canary + stable else 0.0

    def rollout() -> dict[str, Any]:
        return cluster.get("canaryrollout", "upgrade", "-n", namespace).get("status") or {}

    try:
        stable = {
            "apiVersion": "llmops.dev/v1alpha1",
            "kind": "LLMDeployment",
            "metadata": {"name": STABLE},
            "spec": {"model": {"uri": f"models:/{model}@champion"}, "replicas": 2},
        }
        cluster.apply(stable, namespace)
        wait_for(lambda: ready(STABLE) == 2, timeout=60, what="the stable side Ready")
        load = LoadGenerator(sims[STABLE].url, sims[CANARY].url, canary_share, rate_per_second=10).start()
        spec = {
            "targetRef": {"name": STABLE},
            "canary": {"model": {"uri": f"models:/{model}/2"}},
            "steps": [{"setWeight": 50}, {"analysis": {}}],
            "analysis": {
                "interval": f"{INTERVAL}s",
                "metrics": [
                    {"name": "error-rate", "preset": "errorRate", "max": "1"},
                    {"name": "ttft", "preset": "timeToFirstTokenP95", "max": "100"},
                ],
                "failureLimit": 0,
                "inconclusiveLimit": 20,
                # Judged by full measurements, whose record names the missing series; the watch
                # between them would roll the 15x slower canary back before the first one.
                "failFast": {"enabled": False},
            },
        }
        cluster.apply(
            {
                "apiVersion": "llmops.dev/v1alpha1",
                "kind": "CanaryRollout",
                "metadata": {"name": "upgrade"},
                "spec": spec,
            },
            namespace,
        )
        status = wait_for(
            lambda: (lambda s: s if s.get("phase") in ("RolledBack", "Promoted") else None)(rollout()),
            timeout=150,
            what="the rollout's verdict",
        )
        assert status["phase"] == "RolledBack", status
        measured = {m["metric"]: m for m in status["measurements"]}
        assert measured["ttft"]["phase"] == "Failed" and float(measured["ttft"]["value"]) > 100, measured
        errors = measured["error-rate"]
        assert errors["phase"] == "Inconclusive" and errors["value"] == "", errors
        assert (
            errors["message"] == f"the query returned no data: {CANARY} exports no http_requests_total series"
        )
        rolled = next(c for c in status["conditions"] if c["type"] == "RolledBack")
        assert "ttft" in rolled["message"] and "error-rate" not in rolled["message"], rolled
        assert load.errors == [0, 0]
        # What the operator read is what the simulator exports, once it has served requests.
        exported = sims[CANARY].metrics()
        assert "vllm:time_to_first_token_seconds_bucket" in exported and "http_requests_total" not in exported
        assert 'finish_reason="' in exported and "finished_reason" not in exported
    finally:
        print(cluster.kubectl("get", "-n", namespace, "canaryrollout", "-o", "yaml", check=False).stdout)
        if load is not None:
            load.stop()
        operator.stop()
        prometheus.stop()
    assert "Traceback" not in operator.logs(), operator.logs()
