"""A vLLM-compatible server without a GPU: the OpenAI completions API and vLLM's /metrics.

It emits vLLM's real metric names, labels and histogram buckets (``vllm:*`` with ``model_name`` and
``engine``; ``http_requests_total`` with ``handler``, ``method`` and ``status`` as vLLM's FastAPI
instrumentator does), so the operator's PromQL runs unchanged against it. Latency is really spent
(the client waits) and failures are injected deterministically: a 5% failure rate fails exactly
one request in twenty, starting with the first.

    python tests/simulator/vllm_sim.py --port 18001 --model llama --ttft-ms 40 --itl-ms 10
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# vLLM's bucket boundaries (vllm/v1/metrics/loggers.py).
E2E_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0)
TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
ITL_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
TOKEN_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)


@dataclass
class Behaviour:
    """What the server does; tests change it while it runs."""

    ttft_ms: float = 40.0
    itl_ms: float = 10.0
    failure_percent: float = 0.0


class VLLMSimulator:
    def __init__(self, model: str, port: int, behaviour: Behaviour | None = None) -> None:
        self.model = model
        self.behaviour = behaviour or Behaviour()
        self.registry = CollectorRegistry()
        labels = ["model_name", "engine"]
        r = self.registry
        self.e2e = Histogram("vllm:e2e_request_latency_seconds", "", labels, registry=r, buckets=E2E_BUCKETS)
        self.ttft = Histogram(
            "vllm:time_to_first_token_seconds", "", labels, registry=r, buckets=TTFT_BUCKETS
        )
        self.itl = Histogram("vllm:inter_token_latency_seconds", "", labels, registry=r, buckets=ITL_BUCKETS)
        self.prompt_hist = Histogram(
            "vllm:request_prompt_tokens", "prompt", labels, buckets=TOKEN_BUCKETS, registry=r
        )
        self.generation_hist = Histogram(
            "vllm:request_generation_tokens", "generation", labels, buckets=TOKEN_BUCKETS, registry=r
        )
        self.success = Counter("vllm:request_success", "success", [*labels, "finished_reason"], registry=r)
        self.prompt_tokens = Counter("vllm:prompt_tokens", "prompt tokens", labels, registry=r)
        self.generation_tokens = Counter("vllm:generation_tokens", "generation tokens", labels, registry=r)
        self.running = Gauge("vllm:num_requests_running", "running", labels, registry=r)
        self.waiting = Gauge("vllm:num_requests_waiting", "waiting", labels, registry=r)
        self.kv_cache = Gauge("vllm:kv_cache_usage_perc", "kv cache", labels, registry=r)
        self.http = Counter("http_requests", "http", ["handler", "method", "status"], registry=r)
        self._count = 0
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.server.daemon_threads = True
        self.server.handle_error = lambda *_: None  # type: ignore[method-assign]  # scrapers hang up
        self.port = self.server.server_address[1]
        self._thread: threading.Thread | None = None
        for metric in (self.running, self.waiting, self.kv_cache):
            metric.labels(model, "0").set(0)

    def start(self) -> VLLMSimulator:
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _should_fail(self) -> bool:
        with self._lock:
            self._count += 1
            n, rate = self._count, self.behaviour.failure_percent
        return math.ceil(n * rate / 100) > math.ceil((n - 1) * rate / 100)  # from the first request

    def complete(self, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """One completion: the latency is spent, then recorded the way vLLM records it."""
        labels = (self.model, "0")
        if self._should_fail():
            self.http.labels("/v1/completions", "POST", "5xx").inc()
            return 500, {"error": {"message": "injected failure", "type": "InternalServerError"}}
        prompt = str(request.get("prompt", ""))
        prompt_tokens = max(1, len(prompt.split()))
        tokens = max(1, int(request.get("max_tokens", 16)))
        behaviour = self.behaviour
        self.running.labels(*labels).inc()
        try:
            started = time.monotonic()
            time.sleep(behaviour.ttft_ms / 1000)
            first = time.monotonic() - started
            time.sleep(behaviour.itl_ms * (tokens - 1) / 1000)
            total = time.monotonic() - started
        finally:
            self.running.labels(*labels).dec()
        self.ttft.labels(*labels).observe(first)
        for _ in range(tokens - 1):
            self.itl.labels(*labels).observe(behaviour.itl_ms / 1000)
        self.e2e.labels(*labels).observe(total)
        self.prompt_hist.labels(*labels).observe(prompt_tokens)
        self.generation_hist.labels(*labels).observe(tokens)
        self.prompt_tokens.labels(*labels).inc(prompt_tokens)
        self.generation_tokens.labels(*labels).inc(tokens)
        self.success.labels(*labels, "length").inc()
        self.http.labels("/v1/completions", "POST", "2xx").inc()
        body = {
            "id": f"cmpl-{self._count}",
            "object": "text_completion",
            "model": self.model,
            "choices": [{"index": 0, "text": " token" * tokens, "finish_reason": "length"}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": tokens,
                "total_tokens": prompt_tokens + tokens,
            },
        }
        return 200, body

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        sim = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:  # quiet
                pass

            def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path == "/metrics":
                    self._send(200, generate_latest(sim.registry), CONTENT_TYPE_LATEST)
                elif self.path == "/health":
                    self._send(200, b"")
                elif self.path == "/v1/models":
                    models = {"object": "list", "data": [{"id": sim.model, "object": "model"}]}
                    self._send(200, json.dumps(models).encode())
                else:
                    self._send(404, b'{"detail":"Not Found"}')

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    request = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    self._send(400, b'{"error":{"message":"invalid JSON"}}')
                    return
                if self.path not in ("/v1/completions", "/v1/chat/completions"):
                    self._send(404, b'{"detail":"Not Found"}')
                    return
                status, body = sim.complete(request)
                self._send(status, json.dumps(body).encode())

        return Handler


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", default="model")
    parser.add_argument("--ttft-ms", type=float, default=40.0)
    parser.add_argument("--itl-ms", type=float, default=10.0)
    parser.add_argument("--failure-percent", type=float, default=0.0)
    args = parser.parse_args()
    sim = VLLMSimulator(args.model, args.port, Behaviour(args.ttft_ms, args.itl_ms, args.failure_percent))
    with contextlib.suppress(KeyboardInterrupt):
        sim.server.serve_forever()


if __name__ == "__main__":
    main()
