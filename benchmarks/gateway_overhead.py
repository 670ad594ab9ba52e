"""What the LLMGateway's proxy adds: latency over a direct call, requests per second per replica,
and how many requests a tenant gets past an exhausted budget.

The real pinned LiteLLM proxy (tools/litellm.sh) and Redis (tools/redis.sh), configured by the
operator's own rendering, in front of the vLLM-compatible simulator (2 ms to the first token,
1 ms per token, 4 tokens). Each concurrency level sends the same number of requests directly and
through the gateway, features off (one route, master key) and on (a tenant checked in Redis on
every request, spend counted, the content filter; the cache is on but every prompt is new).

    PYTHONPATH=operator .venv/bin/python benchmarks/gateway_overhead.py [--requests 400] [--workers 1]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.simulator.vllm_sim import Behaviour, VLLMSimulator  # noqa: E402

from llmops_operator.api.llmgateway import LLMGatewaySpec  # noqa: E402
from llmops_operator.rendering import llmgateway as rendering  # noqa: E402

MASTER, TENANT = "sk-bench-master", "sk-bench-tenant"
PRICE = 1e-5  # USD per token on the benchmark route


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def gateway_spec(backend: int, redis_port: int, features: bool, budget: str | None = None) -> LLMGatewaySpec:
    route = {
        "name": "bench",
        "external": {
            "provider": "openai-compatible",
            "model": "bench",
            "baseURL": f"http://127.0.0.1:{backend}/v1",
        },
        "price": {"input": f"{PRICE:.7f}", "output": f"{PRICE:.7f}"},
    }
    body: dict[str, Any] = {"masterKey": {"name": "admin", "key": "key"}, "routes": [route]}
    if features:
        tenant: dict[str, Any] = {
            "name": "bench",
            "keySecret": {"name": "bench", "key": "key"},
            "rpm": 1000000,
        }
        if budget is not None:
            tenant["budget"] = {"usd": budget, "period": "day"}
        body |= {
            "tenants": [tenant],
            "redis": {"host": "127.0.0.1", "port": redis_port},
            "cache": {"mode": "exact"},
            "guardrails": {
                "contentFilter": {"patterns": [{"prebuilt": "email"}], "keywords": [{"keyword": "blocked"}]}
            },
        }
    return LLMGatewaySpec.model_validate(body)


class Gateway:
    """One replica: the rendered ConfigMap's files in a directory and the rendered environment."""

    def __init__(self, spec: LLMGatewaySpec, directory: Path, workers: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        resolved = {
            r.name: rendering.ResolvedRoute(r.name, r.external.base_url, "openai/bench", PRICE, PRICE)
            for r in spec.routes
            if r.external
        }
        for name, text in rendering.config_files(spec, resolved).items():
            (directory / name).write_text(text)
        secrets = {"LITELLM_MASTER_KEY": MASTER, "LLMOPS_TENANT_0_KEY": TENANT}
        env = {"PATH": os.environ["PATH"], "HOME": str(directory)}
        for variable in rendering.environment(spec):
            env[variable["name"]] = secrets.get(variable["name"], variable.get("value", ""))
        if "LLMOPS_GATEWAY_TENANTS" in env:
            env["LLMOPS_GATEWAY_TENANTS"] = str(directory / rendering.TENANTS_FILE)
        self.port = free_port()
        env |= {"PORT": str(self.port), "LITELLM_PORT": str(self.port), "NUM_WORKERS": str(workers)}
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [str(ROOT / "tools" / "litellm.sh"), "serve", str(directory / rendering.CONFIG_FILE)],
            env=env,
            stdout=(directory / "proxy.log").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        started = time.monotonic()
        while not self._live():
            if self.process.poll() is not None or time.monotonic() - started > 600:
                self.stop()
                raise RuntimeError((directory / "proxy.log").read_text()[-3000:])
            time.sleep(0.5)
        self.startup_seconds = time.monotonic() - started

    def _live(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health/liveliness", timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            self.process.wait(timeout=30)


def call(base: str, key: str, model: str, n: int) -> tuple[float, int]:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": f"request {n} {time.time_ns()}"}],
        "max_tokens": 4,
    }
    request = urllib.request.Request(
        f"{base}/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            answer.read()
            code = answer.status
    except urllib.error.HTTPError as error:
        code = error.code
    return time.perf_counter() - started, code


def run(
    base: str, key: str, model: str, concurrency: int, requests: int
) -> tuple[list[float], float, list[int]]:
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(lambda n: call(base, key, model, n), range(requests)))
    elapsed = time.perf_counter() - started
    return [r[0] for r in results], requests / elapsed, [r[1] for r in results]


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    redis_port = free_port()
    subprocess.run(
        [str(ROOT / "tools" / "redis.sh"), "start", str(work / "redis"), str(redis_port)], check=True
    )
    backend = VLLMSimulator("bench", 0, Behaviour(ttft_ms=2, itl_ms=1)).start()
    direct = f"http://127.0.0.1:{backend.port}"
    rows = []
    running: list[Gateway] = []
    try:
        for features in (False, True):
            gateway = Gateway(
                gateway_spec(backend.port, redis_port, features), work / f"gw-{features}", args.workers
            )
            running.append(gateway)
            key = TENANT if features else MASTER
            run(gateway.url, key, "bench", 4, 20)  # warm up
            for concurrency in (1, 16, 64):
                base_latency, _, _ = run(direct, "none", "bench", concurrency, args.requests)
                latency, rps, codes = run(gateway.url, key, "bench", concurrency, args.requests)
                assert set(codes) == {200}, codes
                rows.append(
                    (
                        "on" if features else "off",
                        concurrency,
                        1000 * (percentile(latency, 50) - percentile(base_latency, 50)),
                        1000 * (percentile(latency, 99) - percentile(base_latency, 99)),
                        rps,
                        gateway.startup_seconds,
                    )
                )
            gateway.stop()
        # Budget lag: a budget of 20 requests' spend, 16 concurrent streams until refused.
        per_request = PRICE * 7  # "request N T" is 3 prompt tokens to the simulator, and 4 generated
        lag_spec = gateway_spec(backend.port, redis_port, True, budget=f"{20 * per_request:.7f}")
        gateway = Gateway(lag_spec, work / "gw-budget", args.workers)
        running.append(gateway)
        _, _, codes = run(gateway.url, TENANT, "bench", 16, 200)
        served = codes.count(200)
        gateway.stop()
    finally:
        for started in running:
            started.stop()
        backend.stop()
        subprocess.run([str(ROOT / "tools" / "redis.sh"), "stop", str(work / "redis")], check=True)
    print(f"LiteLLM, {args.workers} worker(s), {args.requests} requests per cell; added: gateway - direct")
    print(f"{'features':>8} {'streams':>7} {'+p50 ms':>9} {'+p99 ms':>9} {'rps':>7} {'startup s':>9}")
    for features_on, concurrency, p50, p99, rps, startup in rows:
        print(f"{features_on:>8} {concurrency:>7} {p50:>9.1f} {p99:>9.1f} {rps:>7.1f} {startup:>9.1f}")
    print(f"budget: a budget worth 20 requests served {served} at 16 streams ({served - 20} past it)")


if __name__ == "__main__":
    main()
