"""LLMGateway end to end: the operator renders LiteLLM's children, and the real pinned LiteLLM
proxy (tools/litellm.sh) runs them as the pod would, in front of vLLM-compatible simulators, with
a real Redis (tools/redis.sh) shared by two replicas and a real Prometheus scraping them.

kwok runs no containers, so each gateway replica is a local process started with the rendered
Deployment's command, arguments and environment (Secrets resolved as the kubelet would), and the
rendered ConfigMap written to a directory standing for its volume. Two substitutions stand for
what a cluster provides: the mount path is that directory, and the LLMDeployment's cluster DNS
name is the simulator's loopback address; PORT and HOST pick a free loopback port.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.simulator.vllm_sim import Behaviour, VLLMSimulator

from .conftest import ROOT, VERSIONS, Cluster, OperatorProcess, PrometheusServer, free_port, wait_for

MASTER_KEY = "sk-master-test"
KEYS = {"team-budget": "sk-budget-1", "team-rpm": "sk-rpm-1", "team-tpm": "sk-tpm-1"}
BACKUP_PRICE = (1e-6, 2e-6)  # USD per input and output token, the external route's custom price
GPU_HOUR_PRICE = 3.6
LITELLM = ROOT / ".tools" / f"litellm-{VERSIONS['LITELLM_VERSION']}" / "bin" / "litellm"


def gateway(name: str, redis_port: int, primary: int, backup: int) -> dict[str, Any]:
    external = {"provider": "openai-compatible", "apiKey": {"name": "provider", "key": "key"}}
    return {
        "apiVersion": "llmops.dev/v1alpha1",
        "kind": "LLMGateway",
        "metadata": {"name": name},
        "spec": {
            "masterKey": {"name": "gateway-admin", "key": "key"},
            "routes": [
                {
                    "name": "self-hosted",
                    "llmDeployment": {"name": "llama"},
                    "gpuHourPrice": str(GPU_HOUR_PRICE),
                },
                {
                    "name": "premium",
                    "external": {**external, "model": "flaky", "baseURL": f"http://127.0.0.1:{primary}/v1"},
                },
                {
                    "name": "standard",
                    "external": {**external, "model": "backup", "baseURL": f"http://127.0.0.1:{backup}/v1"},
                    "price": {"input": f"{BACKUP_PRICE[0]:.7f}", "output": f"{BACKUP_PRICE[1]:.7f}"},
                },
            ],
            "fallbacks": [{"route": "premium", "to": ["standard"]}],
            "tenants": [
                {
                    "name": "team-budget",
                    "keySecret": {"name": "tenant-budget", "key": "key"},
                    "budget": {"usd": "0.00005", "period": "day"},
                },
                {"name": "team-rpm", "keySecret": {"name": "tenant-rpm", "key": "key"}, "rpm": 2},
                {
                    "name": "team-tpm",
                    "keySecret": {"name": "tenant-tpm", "key": "key"},
                    "tpm": 25,
                    "routes": ["standard"],
                },
            ],
            "redis": {"host": "127.0.0.1", "port": redis_port},
            "cache": {"mode": "exact", "ttl": "10m"},
            "guardrails": {
                "contentFilter": {
                    "patterns": [{"prebuilt": "email", "action": "Mask"}],
                    "keywords": [{"keyword": "forbiddenword", "action": "Block"}],
                }
            },
            "pricing": {"throughputWindow": "2m", "refreshInterval": "1h"},
        },
    }


def secret(name: str, value: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": {"key": value}}


class GatewayReplica:
    """One gateway pod as a local process: the rendered command, args, env and ConfigMap."""

    def __init__(self, cluster: Cluster, namespace: str, directory: Path, backends: dict[str, str]) -> None:
        self.cluster, self.namespace, self.directory, self.backends = cluster, namespace, directory, backends
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        config_map = self.cluster.get("configmap", "gw-gateway", "-n", self.namespace)
        deployment = self.cluster.get("deployment", "gw-gateway", "-n", self.namespace)
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        mount = container["volumeMounts"][0]["mountPath"]
        self.directory.mkdir(parents=True, exist_ok=True)
        for file, text in config_map["data"].items():
            for cluster_address, local in self.backends.items():
                text = text.replace(cluster_address, local)
            (self.directory / file).write_text(text)
        env = {"PATH": os.environ["PATH"], "HOME": str(self.directory)}
        for variable in container["env"]:
            if "value" in variable:
                env[variable["name"]] = variable["value"].replace(mount, str(self.directory))
            else:
                ref = variable["valueFrom"]["secretKeyRef"]
                data = self.cluster.get("secret", ref["name"], "-n", self.namespace)["data"]
                env[variable["name"]] = base64.b64decode(data[ref["key"]]).decode()
        env.update(PORT=str(self.port), HOST="127.0.0.1")
        assert container["command"] == ["litellm"]
        args = [arg.replace(mount, str(self.directory)) for arg in container["args"]]
        log = (self.directory / "proxy.log").open("ab")
        self.process = subprocess.Popen(
            [str(LITELLM), *args], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        wait_for(self._live, timeout=400, interval=1, what=f"the gateway replica on {self.port}")

    def _live(self) -> bool:
        assert self.process is not None and self.process.poll() is None, (
            self.directory / "proxy.log"
        ).read_text()
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{self.url}/health/liveliness", timeout=2) as answer,
        ):
            return bool(answer.status == 200)
        return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
        self.process = None

    def chat(
        self, key: str, model: str, text: str, max_tokens: int = 5
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        body = {"model": model, "messages": [{"role": "user", "content": text}], "max_tokens": max_tokens}
        request = urllib.request.Request(
            f"{self.url}/v1/chat/completions",
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return answer.status, lower(answer.headers), json.loads(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, lower(error.headers), json.loads(error.read() or b"{}")


def lower(headers: Any) -> dict[str, str]:
    return {key.lower(): value for key, value in headers.items()}


def prometheus_value(prometheus: PrometheusServer, query: str) -> float:
    url = f"{prometheus.url}/api/v1/query?" + urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(url, timeout=10) as answer:
        result = json.loads(answer.read())["data"]["result"]
    return sum(float(series["value"][1]) for series in result)


@pytest.fixture
def redis_port(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    script = str(ROOT / "tools" / "redis.sh")
    subprocess.run([script, "start", str(tmp_path / "redis"), str(port)], check=True, timeout=300)
    yield port
    subprocess.run([script, "stop", str(tmp_path / "redis")], check=True)


def serve_traffic(simulator: VLLMSimulator, stop: threading.Event) -> None:
    while not stop.wait(0.2):
        simulator.complete({"model": simulator.model, "prompt": "one two three four", "max_tokens": 16})


def seconds_left_in_minute() -> float:
    return 60 - time.time() % 60


def test_gateway_routes_falls_back_limits_prices_caches_and_filters(
    cluster: Cluster, namespace: str, tmp_path: Path, redis_port: int
) -> None:
    subprocess.run([str(ROOT / "tools" / "litellm.sh"), "install"], check=True, timeout=1800)
    llama = VLLMSimulator("llama", 0, Behaviour(ttft_ms=2, itl_ms=1)).start()
    flaky = VLLMSimulator("flaky", 0, Behaviour(ttft_ms=2, itl_ms=1, failure_percent=100)).start()
    backup = VLLMSimulator("backup", 0, Behaviour(ttft_ms=2, itl_ms=1)).start()
    gateway_ports = [free_port(), free_port()]
    prometheus = PrometheusServer(
        tmp_path / "prometheus",
        {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {"job_name": "vllm", "static_configs": [{"targets": [f"127.0.0.1:{llama.port}"]}]},
                {
                    "job_name": "gateway",
                    "static_configs": [{"targets": [f"127.0.0.1:{p}" for p in gateway_ports]}],
                },
            ],
        },
    )
    prometheus.start()
    operator = OperatorProcess(
        namespace, tmp_path / "operator.log", {"LLMOPS_PROMETHEUS_URL": prometheus.url}
    )
    replicas: list[GatewayReplica] = []
    stop_traffic = threading.Event()
    try:
        # The self-hosted model serves traffic all along (its measured throughput prices it).
        traffic = threading.Thread(target=serve_traffic, args=(llama, stop_traffic), daemon=True)
        traffic.start()
        query = 'rate(vllm:generation_tokens_total{model_name="llama"}[2m])'
        wait_for(lambda: prometheus_value(prometheus, query) > 0, timeout=60, what="the model's throughput")
        for name, value in [("gateway-admin", MASTER_KEY), ("provider", "sk-provider"),
                            ("tenant-budget", KEYS["team-budget"]), ("tenant-rpm", KEYS["team-rpm"]),
                            ("tenant-tpm", KEYS["team-tpm"])]:  # fmt: skip
            cluster.apply(secret(name, value), namespace)
        llmd = {
            "apiVersion": "llmops.dev/v1alpha1",
            "kind": "LLMDeployment",
            "metadata": {"name": "llama"},
            "spec": {
                "model": {"uri": "hf://org/llama", "servedModelName": "llama"},
                "resources": {"gpus": 0},
            },
        }
        cluster.apply([llmd, gateway("gw", redis_port, flaky.port, backup.port)], namespace)
        operator.start()

        def applied() -> dict[str, Any] | None:
            status = cluster.get("llmgateway", "gw", "-n", namespace).get("status") or {}
            conditions = {c["type"]: c for c in status.get("conditions") or []}
            ok = conditions.get("ConfigApplied", {}).get("status") == "True"
            return status if ok and status.get("configHash") else None

        status = wait_for(applied, timeout=90, what="ConfigApplied on the gateway")
        stop_traffic.set()  # priced; from here on the model serves only the gateway's requests
        traffic.join()
        routes = {r["name"]: r for r in status["routes"]}
        assert routes["self-hosted"]["priceSource"] == "derived"
        assert routes["standard"]["priceSource"] == "spec"
        self_hosted_price = float(routes["self-hosted"]["inputCostPerToken"])
        assert self_hosted_price > 0
        deployment = cluster.get("deployment", "gw-gateway", "-n", namespace)
        assert (
            deployment["spec"]["template"]["metadata"]["annotations"]["llmops.dev/config-hash"]
            == status["configHash"]
        )
        config_map = cluster.get("configmap", "gw-gateway", "-n", namespace)
        assert "sk-" not in json.dumps(config_map["data"]).replace("sk-master", "")  # keys stay in Secrets
        backends = {
            f"http://llama.{namespace}.svc.cluster.local:8000/v1": f"http://127.0.0.1:{llama.port}/v1"
        }
        for index, port in enumerate(gateway_ports):
            replica = GatewayReplica(cluster, namespace, tmp_path / f"replica-{index}", backends)
            replica.port, replica.url = port, f"http://127.0.0.1:{port}"
            replicas.append(replica)
        first, second = replicas
        first.start()

        # Unknown keys are refused; routing by model name reaches the LLMDeployment's server.
        assert first.chat("sk-nobody", "standard", "hello")[0] == 401
        served_before = llama.prompt_tokens.labels("llama", "0")._value.get()
        code, headers, body = first.chat(KEYS["team-rpm"], "self-hosted", "routed by name")
        assert code == 200, body
        assert llama.prompt_tokens.labels("llama", "0")._value.get() == served_before + 3
        usage = body["usage"]
        expected = self_hosted_price * (usage["prompt_tokens"] + usage["completion_tokens"])
        assert float(headers["x-litellm-response-cost"]) == pytest.approx(expected, rel=1e-6)

        # The premium route answers 500: the standard route answers instead, at its own price.
        code, headers, body = first.chat(KEYS["team-rpm"], "premium", "falls back please")
        assert code == 200, body
        usage = body["usage"]
        expected = usage["prompt_tokens"] * BACKUP_PRICE[0] + usage["completion_tokens"] * BACKUP_PRICE[1]
        assert float(headers["x-litellm-response-cost"]) == pytest.approx(expected, rel=1e-6)
        wait_for(
            lambda: prometheus_value(prometheus, "litellm_deployment_successful_fallbacks_total") >= 1,
            timeout=60,
            what="the fallback counted in the gateway's metrics",
        )

        # rpm 2 per minute: the third request in one minute is refused with Retry-After.
        # (The tenant's earlier requests may have been in the minute before: up to three more.)
        if seconds_left_in_minute() < 15:
            wait_for(lambda: seconds_left_in_minute() > 45, timeout=20, what="a fresh minute")
        rpm_codes = []
        for n in range(3):
            code, headers, body = first.chat(KEYS["team-rpm"], "standard", f"request {n}")
            rpm_codes.append(code)
            if code != 200:
                break
        assert code == 429 and int(headers["retry-after"]) >= 1, (rpm_codes, body)
        assert "requests per minute" in body["error"]["message"]

        # The tpm tenant may use only the standard route, and 25 tokens a minute.
        assert first.chat(KEYS["team-tpm"], "self-hosted", "not mine")[0] == 403
        # Tokens are counted when an answer has been logged (LiteLLM's callbacks run after it),
        # so the refusal may come a request or two after the 25th token: ten 10-token requests.
        if seconds_left_in_minute() < 20:
            wait_for(lambda: seconds_left_in_minute() > 50, timeout=25, what="a fresh minute")
        tpm_codes = []
        for n in range(10):
            code, headers, body = first.chat(KEYS["team-tpm"], "standard", f"tokens {n}", max_tokens=8)
            tpm_codes.append(code)
            if code != 200:
                break
        assert tpm_codes[0] == 200 and tpm_codes[-1] == 429, tpm_codes
        assert "tokens per minute" in body["error"]["message"] and int(headers["retry-after"]) >= 1

        # Exact cache: the same request again is answered without the backend.
        prompt = "cache me if you can"
        assert first.chat(KEYS["team-budget"], "standard", prompt)[0] == 200
        asked = backup.prompt_tokens.labels("backup", "0")._value.get()
        code, headers, _ = first.chat(KEYS["team-budget"], "standard", prompt)
        assert code == 200 and "x-litellm-cache-key" in {k.lower() for k in headers}
        assert backup.prompt_tokens.labels("backup", "0")._value.get() == asked

        # Guardrails: a blocked keyword is refused, an email address reaches the model masked.
        code, _, body = first.chat(KEYS["team-budget"], "standard", "say forbiddenword now")
        assert code == 400 and "forbiddenword" in body["error"]["message"]
        assert first.chat(KEYS["team-budget"], "standard", "write to jane@example.com")[0] == 200
        assert "jane@example.com" not in backup.last_prompt and "REDACTED" in backup.last_prompt.upper()

        # Budget 0.00005 USD a day: spend until refused, with the reset time in the message.
        for n in range(40):
            code, headers, body = first.chat(KEYS["team-budget"], "standard", f"spend {n}", max_tokens=16)
            if code != 200:
                break
        assert code == 429 and "resets at" in body["error"]["message"], body
        assert int(headers["retry-after"]) > 0
        # A second replica shares the counters in Redis; a restarted one forgets nothing.
        second.start()
        code, _, body = second.chat(KEYS["team-budget"], "standard", "other replica")
        assert code == 429 and "budget" in body["error"]["message"]
        first.stop()
        first.start()
        code, _, body = first.chat(KEYS["team-budget"], "standard", "after restart")
        assert code == 429 and "budget" in body["error"]["message"]

        # A rotated tenant key reaches the pods' config hash without restarting the operator.
        cluster.apply(secret("tenant-rpm", "sk-rpm-2"), namespace)
        wait_for(
            lambda: (
                cluster.get("llmgateway", "gw", "-n", namespace)["status"]["configHash"]
                != status["configHash"]
            ),
            timeout=60,
            what="a new config hash after the Secret rotated",
        )
        rolled = cluster.get("deployment", "gw-gateway", "-n", namespace)
        assert (
            rolled["spec"]["template"]["metadata"]["annotations"]["llmops.dev/config-hash"]
            != status["configHash"]
        )
    finally:
        stop_traffic.set()
        for replica in replicas:
            replica.stop()
        operator.stop()
        prometheus.stop()
        for simulator in (llama, flaky, backup):
            simulator.stop()
    assert "Traceback" not in operator.logs(), operator.logs()
