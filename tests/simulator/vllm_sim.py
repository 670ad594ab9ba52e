"""A vLLM-compatible server without a GPU: vLLM's OpenAI completions and chat API and its /metrics.

It matches a real vLLM (0.32, checked by tests/integration/test_simulator_fidelity.py) on what the
operator reads: the ``vllm:*`` names with ``model_name`` and ``engine``, vLLM's histogram bucket
layouts (latency beyond 10 s and 120 s, token counts in a 1-2-5 series up to ``max_model_len``),
``vllm:request_success_total{finished_reason}`` created at 0 for every reason, and
``http_requests_total{handler,method,status}`` per route as vLLM's FastAPI instrumentator counts it
(``/v1/models`` counted; ``/health``, ``/metrics`` and ``/version`` not; unknown paths as handler
``none``). Requests fail the way vLLM's do: an unknown model is 404, a prompt or ``max_tokens``
beyond the context length and malformed JSON are 400, each counted as ``4xx``; generation stops
at the end of the context. Prompts count one token per word.

Latency is really spent (the client waits) and failures are injected deterministically: a 5%
failure rate fails exactly one request in twenty, starting with the first.

What it answers: without a fixture, ``token`` repeated up to ``max_tokens`` (finished_reason
``length``, as a random model runs on), or, with ``answer_tokens``, an answer of that many tokens
that ends with ``stop`` when it fits in ``max_tokens`` and is cut there (``length``) when it does
not. With a fixture (``--answers``: JSON Lines of ``{"prompt", "answer"}``) a known prompt gets its
answer, except a deterministic ``wrong_percent`` of the prompts (ranked by a hash of the prompt,
so a larger share contains a smaller one, as a worse model keeps its predecessor's mistakes), which
get the answer reversed: wrong, and invalid when the answer was JSON. ``--judge`` makes it an LLM
judge that scores by a rule: 5 when the answer in the judge's prompt equals the reference, else 1.

    python tests/simulator/vllm_sim.py --port 18001 --model llama --ttft-ms 40 --itl-ms 10
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import re
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# vLLM's bucket boundaries (0.32): request latencies, time to first token, inter-token latency.
REQUEST_LATENCY_BUCKETS = (
    *(0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0),
    *(240.0, 480.0, 960.0, 1920.0, 7680.0),
)
TTFT_BUCKETS = (
    *(0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0),
    *(20.0, 40.0, 80.0, 160.0, 640.0, 2560.0),
)
ITL_BUCKETS = (
    *(0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0),
    *(20.0, 40.0, 80.0),
)
HTTP_DURATION_BUCKETS = (0.1, 0.5, 1.0)
INTER_TOKEN_METRIC = "vllm:inter_token_latency_seconds"
# The same histogram's name before vLLM 0.11 (what an older engine image exports instead).
INTER_TOKEN_METRIC_BEFORE_0_11 = "vllm:time_per_output_token_seconds"
FINISHED_REASONS = ("stop", "length", "abort", "error", "repetition")
# Paths vLLM's instrumentator leaves uncounted.
UNCOUNTED_PATHS = {"/metrics", "/health", "/load", "/ping", "/version", "/server_info"}
ROUTES = {("GET", "/v1/models"), ("POST", "/v1/completions"), ("POST", "/v1/chat/completions")}


def one_two_five_buckets(maximum: int) -> tuple[float, ...]:
    """1, 2, 5, 10, 20, 50, ... up to ``maximum``: vLLM's token-count buckets for a context length."""
    bounds: list[float] = []
    decade = 1
    while True:
        for step in (1, 2, 5):
            if step * decade > maximum:
                return tuple(bounds)
            bounds.append(float(step * decade))
        decade *= 10


@dataclass
class Behaviour:
    """What the server does; tests change it while it runs."""

    ttft_ms: float = 40.0
    itl_ms: float = 10.0
    failure_percent: float = 0.0
    answer_tokens: int | None = None  # the natural answer length; None runs on to max_tokens
    wrong_percent: float = 0.0  # of the fixture's prompts, answered wrong


# The operator's judge prompt (llmops_operator/evaluation/judge.py) puts these two sections last.
JUDGED = re.compile(r"Reference:\n(?P<reference>.*?)\n\nAnswer:\n(?P<answer>.*?)\n\nReply with", re.DOTALL)


def rank_percent(prompt: str) -> float:
    """A prompt's fixed place in 0..100, so a share of prompts is the same prompts every time."""
    return int(hashlib.sha256(prompt.encode()).hexdigest()[:8], 16) / 2**32 * 100


def load_answers(path: str) -> dict[str, str]:
    with open(path, encoding="utf-8") as lines:
        records = [json.loads(line) for line in lines if line.strip()]
    return {str(record["prompt"]): str(record["answer"]) for record in records}


class RequestError(Exception):
    """An answer vLLM gives instead of a completion: its HTTP status and its error body."""

    def __init__(self, status: int, message: str, type_: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"message": message, "type": type_, "param": param, "code": status}}


class Server(ThreadingHTTPServer):
    """A deeper accept queue than socketserver's 5: vLLM's server takes 64 clients connecting at
    once (a gateway's connection pool, a benchmark's streams) without resetting any."""

    request_queue_size = 1024


class VLLMSimulator:
    def __init__(
        self,
        model: str,
        port: int,
        behaviour: Behaviour | None = None,
        max_model_len: int = 2048,
        answers: dict[str, str] | None = None,
        judge: bool = False,
        inter_token_metric: str = INTER_TOKEN_METRIC,
    ) -> None:
        self.model = model
        self.max_model_len = max_model_len
        self.behaviour = behaviour or Behaviour()
        self.answers = answers or {}
        self.judge = judge
        self.registry = CollectorRegistry()
        labels = ["model_name", "engine"]
        r = self.registry
        tokens = one_two_five_buckets(max_model_len)
        self.e2e = Histogram(
            "vllm:e2e_request_latency_seconds", "", labels, registry=r, buckets=REQUEST_LATENCY_BUCKETS
        )
        self.queue_time = Histogram(
            "vllm:request_queue_time_seconds", "", labels, registry=r, buckets=REQUEST_LATENCY_BUCKETS
        )
        self.ttft = Histogram(
            "vllm:time_to_first_token_seconds", "", labels, registry=r, buckets=TTFT_BUCKETS
        )
        self.itl = Histogram(inter_token_metric, "", labels, registry=r, buckets=ITL_BUCKETS)
        self.prompt_hist = Histogram(
            "vllm:request_prompt_tokens", "prompt", labels, buckets=tokens, registry=r
        )
        self.generation_hist = Histogram(
            "vllm:request_generation_tokens", "generation", labels, buckets=tokens, registry=r
        )
        self.success = Counter("vllm:request_success", "success", [*labels, "finished_reason"], registry=r)
        self.prompt_tokens = Counter("vllm:prompt_tokens", "prompt tokens", labels, registry=r)
        self.generation_tokens = Counter("vllm:generation_tokens", "generation tokens", labels, registry=r)
        self.running = Gauge("vllm:num_requests_running", "running", labels, registry=r)
        self.waiting = Gauge("vllm:num_requests_waiting", "waiting", labels, registry=r)
        self.kv_cache = Gauge("vllm:kv_cache_usage_perc", "kv cache", labels, registry=r)
        self.http = Counter("http_requests", "http", ["handler", "method", "status"], registry=r)
        self.http_duration = Histogram(
            "http_request_duration_seconds",
            "http duration",
            ["handler", "method"],
            registry=r,
            buckets=HTTP_DURATION_BUCKETS,
        )
        self._count = 0
        self.last_prompt = ""
        self._lock = threading.Lock()
        self.server = Server(("127.0.0.1", port), self._handler())
        self.server.daemon_threads = True
        self.server.handle_error = lambda *_: None  # type: ignore[method-assign]  # scrapers hang up
        self.port = self.server.server_address[1]
        self._thread: threading.Thread | None = None
        series = (self.model, "0")
        for metric in (self.running, self.waiting, self.kv_cache):
            metric.labels(*series).set(0)
        for family in (self.prompt_tokens, self.generation_tokens, self.e2e, self.queue_time, self.ttft):
            family.labels(*series)
        for family in (self.itl, self.prompt_hist, self.generation_hist):
            family.labels(*series)
        for reason in FINISHED_REASONS:
            self.success.labels(*series, reason)

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

    def models(self) -> dict[str, Any]:
        card = {
            "id": self.model,
            "object": "model",
            "created": int(time.time()),
            "owned_by": "vllm",
            "root": self.model,
            "parent": None,
            "max_model_len": self.max_model_len,
        }
        return {"object": "list", "data": [card]}

    def _check(self, request: dict[str, Any], prompt_tokens: int, max_tokens: int) -> None:
        """The refusals vLLM answers before generating anything."""
        model = request.get("model")
        if model is not None and model != self.model:
            message = f"The model `{model}` does not exist. Valid aliases: {self.model}."
            raise RequestError(404, message, "NotFoundError", "model")
        if prompt_tokens >= self.max_model_len:  # no room left for one generated token
            raise RequestError(
                400,
                f"This model's maximum context length is {self.max_model_len} tokens. However, your "
                f"prompt contains at least {prompt_tokens} input tokens, which exceeds this limit.",
                "BadRequestError",
                "input_tokens",
            )
        if max_tokens > self.max_model_len:
            raise RequestError(
                400,
                f"max_tokens={max_tokens} is more than the context length of {self.max_model_len}.",
                "BadRequestError",
                "max_tokens",
            )

    def complete(self, request: dict[str, Any], chat: bool = False) -> dict[str, Any]:
        """One completion: the latency is spent, then recorded the way vLLM records it."""
        if chat:
            messages = request.get("messages") or []
            text = " ".join(str(message.get("content", "")) for message in messages)
            last = str(messages[-1].get("content", "")) if messages else ""
        else:
            text = last = str(request.get("prompt", ""))
        self.last_prompt = text  # as received: tests read what a gateway in front forwarded
        prompt_tokens = len(text.split())
        tokens = max(1, int(request.get("max_tokens") or 16))
        self._check(request, prompt_tokens, tokens)
        tokens = min(tokens, self.max_model_len - prompt_tokens)  # generation stops at the context's end
        content = self._content(last)
        finish_reason = "length"
        if content is not None:
            words = content.split(" ")
            if len(words) <= tokens:
                tokens, finish_reason = max(1, len(words)), "stop"
            else:
                content = " ".join(words[:tokens])
        if self._should_fail():
            raise RequestError(500, "injected failure", "InternalServerError")
        labels = (self.model, "0")
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
        self.queue_time.labels(*labels).observe(0.0)
        self.ttft.labels(*labels).observe(first)
        for _ in range(tokens - 1):
            self.itl.labels(*labels).observe(behaviour.itl_ms / 1000)
        self.e2e.labels(*labels).observe(total)
        self.prompt_hist.labels(*labels).observe(prompt_tokens)
        self.generation_hist.labels(*labels).observe(tokens)
        self.prompt_tokens.labels(*labels).inc(prompt_tokens)
        self.generation_tokens.labels(*labels).inc(tokens)
        self.success.labels(*labels, finish_reason).inc()
        text_out = " token" * tokens if content is None else content
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": tokens,
            "total_tokens": prompt_tokens + tokens,
        }
        common = {"created": int(time.time()), "model": self.model, "usage": usage}
        if chat:
            message = {"role": "assistant", "content": text_out}
            choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
            return {
                "id": f"chatcmpl-{uuid.uuid4().hex}",
                "object": "chat.completion",
                "choices": [choice],
                **common,
            }
        choice = {"index": 0, "text": text_out, "logprobs": None, "finish_reason": finish_reason}
        return {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "choices": [choice], **common}

    def _content(self, prompt: str) -> str | None:
        """The answer's text, or None for ``token`` repeated to the end."""
        if self.judge:
            found = JUDGED.search(prompt)
            same = found is not None and found["answer"].strip() == found["reference"].strip()
            return "5" if same else "1"
        if prompt in self.answers:
            answer = self.answers[prompt]
            return answer[::-1] if rank_percent(prompt) < self.behaviour.wrong_percent else answer
        if self.behaviour.answer_tokens is not None:
            return " ".join(["word"] * self.behaviour.answer_tokens)
        return None

    def _answer(self, method: str, path: str, body: bytes) -> tuple[int, bytes, str]:
        if path == "/metrics":
            return 200, generate_latest(self.registry), CONTENT_TYPE_LATEST
        if path == "/health":
            return 200, b"", "application/json"
        if path == "/version":
            return 200, b'{"version":"0.32.0"}', "application/json"
        if (method, path) not in ROUTES:
            return 404, b'{"detail":"Not Found"}', "application/json"
        if path == "/v1/models":
            return 200, json.dumps(self.models()).encode(), "application/json"
        try:
            try:
                request = json.loads(body or b"{}")
            except json.JSONDecodeError as error:
                raise RequestError(400, f"JSON decode error: {error}", "Bad Request", "body") from error
            answer = self.complete(request, chat=path == "/v1/chat/completions")
        except RequestError as refused:
            return refused.status, json.dumps(refused.body).encode(), "application/json"
        return 200, json.dumps(answer).encode(), "application/json"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        sim = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:  # quiet
                pass

            def _serve(self, method: str) -> None:
                started = time.monotonic()
                path = self.path.split("?", 1)[0]
                length = int(self.headers.get("Content-Length") or 0)
                status, body, content_type = sim._answer(method, path, self.rfile.read(length))
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                if path in UNCOUNTED_PATHS:
                    return
                handler = path if (method, path) in ROUTES else "none"
                sim.http.labels(handler, method, f"{status // 100}xx").inc()
                sim.http_duration.labels(handler, method).observe(time.monotonic() - started)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

        return Handler


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", default="model")
    parser.add_argument("--max-model-len", type=int, default=2048)
    parser.add_argument("--ttft-ms", type=float, default=40.0)
    parser.add_argument("--itl-ms", type=float, default=10.0)
    parser.add_argument("--failure-percent", type=float, default=0.0)
    parser.add_argument(
        "--inter-token-metric",
        default=INTER_TOKEN_METRIC,
        choices=[INTER_TOKEN_METRIC, INTER_TOKEN_METRIC_BEFORE_0_11],
        help="the inter-token histogram's name: vLLM 0.11 and later, or older",
    )
    parser.add_argument("--answer-tokens", type=int, default=None)
    parser.add_argument("--answers", default=None, help="JSON Lines of {prompt, answer}")
    parser.add_argument("--wrong-percent", type=float, default=0.0)
    parser.add_argument("--judge", action="store_true")
    args = parser.parse_args()
    behaviour = Behaviour(
        args.ttft_ms, args.itl_ms, args.failure_percent, args.answer_tokens, args.wrong_percent
    )
    answers = load_answers(args.answers) if args.answers else None
    sim = VLLMSimulator(
        args.model, args.port, behaviour, args.max_model_len, answers, args.judge, args.inter_token_metric
    )
    with contextlib.suppress(KeyboardInterrupt):
        sim.server.serve_forever()


if __name__ == "__main__":
    main()
