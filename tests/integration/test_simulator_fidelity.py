"""The simulator against a real vLLM: the same requests sent to both, the same scrape of both.

tests/simulator/vllm_sim.py stands in for vLLM in most integration tests, so it must answer and
expose what the operator reads the way vLLM does: status codes and body shapes, metric families
with their types, label names, bucket bounds and pre-created label values. The one allowed
difference: the real vLLM exposes more families (prefix cache, preemptions, iteration tokens,
Python and process metrics, ...) that the simulator leaves out because the operator reads none
of them; every family the simulator has, the real vLLM has the same way.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.simulator.vllm_sim import VLLMSimulator

from .real_vllm import VLLMServers

# What the operator's presets, DriftMonitor sources and autoscaling read (counter names without
# the _total suffix, as the exposition parser gives them).
OPERATOR_READS = {
    "vllm:e2e_request_latency_seconds": "histogram",
    "vllm:time_to_first_token_seconds": "histogram",
    "vllm:inter_token_latency_seconds": "histogram",
    "vllm:request_prompt_tokens": "histogram",
    "vllm:request_generation_tokens": "histogram",
    "vllm:request_queue_time_seconds": "histogram",
    "vllm:num_requests_running": "gauge",
    "vllm:num_requests_waiting": "gauge",
    "vllm:kv_cache_usage_perc": "gauge",
    "vllm:request_success": "counter",
    "vllm:prompt_tokens": "counter",
    "vllm:generation_tokens": "counter",
    "http_requests": "counter",
}
# What the request script below makes vLLM count (handler, method, status class).
COUNTED = {
    ("/v1/models", "GET", "2xx"),
    ("/v1/completions", "POST", "2xx"),
    ("/v1/chat/completions", "POST", "2xx"),
    ("/v1/completions", "POST", "4xx"),
    ("/v1/chat/completions", "POST", "4xx"),
    ("none", "GET", "4xx"),
}


def send(url: str, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"{url}{path}", data=body, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            status, text = answer.status, answer.read()
    except urllib.error.HTTPError as refused:
        status, text = refused.code, refused.read()
    try:
        return status, json.loads(text or b"null")
    except json.JSONDecodeError:
        return status, None


def request_script(model: str, max_model_len: int) -> list[tuple[str, str, bytes | None]]:
    """One of each answer the operator's queries tell apart: success, refusal, unknown path."""
    too_long = " ".join(["word"] * max_model_len)

    def completion(**fields: Any) -> bytes:
        return json.dumps({"model": model, "max_tokens": 4, **fields}).encode()

    return [
        ("GET", "/v1/models", None),
        ("POST", "/v1/completions", completion(prompt="hello model")),
        ("POST", "/v1/chat/completions", completion(messages=[{"role": "user", "content": "hello"}])),
        ("POST", "/v1/completions", completion(prompt="hello", model="no-such-model")),
        ("POST", "/v1/completions", completion(prompt=too_long)),
        ("POST", "/v1/chat/completions", completion(messages=[{"role": "user", "content": too_long}])),
        ("POST", "/v1/completions", b"{not json"),
        ("GET", "/no-such-path", None),
        ("GET", "/health", None),
        ("GET", "/version", None),
    ]


def scrape(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as answer:
        return {family.name: family for family in text_string_to_metric_families(answer.read().decode())}


def label_names(family: Any) -> set[str]:
    return {name for sample in family.samples for name in sample.labels} - {"le"}


def buckets(family: Any) -> list[float]:
    bounds = {float(s.labels["le"]) for s in family.samples if s.name.endswith("_bucket")}
    return sorted(bounds)


def label_values(family: Any, name: str) -> set[str]:
    return {sample.labels[name] for sample in family.samples if name in sample.labels}


def http_counted(families: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (s.labels["handler"], s.labels["method"], s.labels["status"])
        for s in families["http_requests"].samples
        if s.name == "http_requests_total"
    }


def shape(body: Any) -> Any:
    """The keys of a JSON answer, nested, without the values."""
    if isinstance(body, dict):
        return {key: shape(value) for key, value in body.items()}
    if isinstance(body, list):
        return [shape(body[0])] if body else []
    return None


def contains_shape(real: Any, simulated: Any) -> bool:
    """Every key the simulator answers with is where vLLM puts it (vLLM may answer more)."""
    if isinstance(simulated, dict):
        return isinstance(real, dict) and all(
            key in real and contains_shape(real[key], value) for key, value in simulated.items()
        )
    if isinstance(simulated, list):
        return isinstance(real, list) and all(
            contains_shape(r, s) for r, s in zip(real, simulated, strict=False)
        )
    return True


class Pair:
    def __init__(self, real_url: str, simulator: VLLMSimulator, model: str, max_model_len: int) -> None:
        self.real_url, self.simulator = real_url, simulator
        self.sim_url = f"http://127.0.0.1:{simulator.port}"
        self.model, self.max_model_len = model, max_model_len
        script = request_script(model, max_model_len)
        self.answers = [(send(real_url, *step), send(self.sim_url, *step)) for step in script]
        self.steps = [f"{method} {path}" for method, path, _ in script]
        self.real, self.simulated = scrape(real_url), scrape(self.sim_url)


@pytest.fixture(scope="module")
def pair(vllm_servers: VLLMServers) -> Iterator[Pair]:
    server = vllm_servers.ensure("stable")["stable"]
    card = server.models()["data"][0]  # type: ignore[index]
    simulator = VLLMSimulator(card["id"], 0, max_model_len=int(card["max_model_len"])).start()
    try:
        yield Pair(server.url, simulator, card["id"], int(card["max_model_len"]))
    finally:
        simulator.stop()


def test_same_requests_get_the_same_answers(pair: Pair) -> None:
    for step, ((real_status, real_body), (sim_status, sim_body)) in zip(
        pair.steps, pair.answers, strict=True
    ):
        assert sim_status == real_status, (step, real_body, sim_body)
        if isinstance(real_body, dict) and "error" in real_body:
            assert sim_body["error"]["type"] == real_body["error"]["type"], (step, real_body, sim_body)
            assert sim_body["error"]["code"] == real_body["error"]["code"], step
        if isinstance(real_body, dict) and "object" in real_body:
            assert sim_body["object"] == real_body["object"], step
        assert contains_shape(shape(real_body), shape(sim_body)), (step, real_body, sim_body)
    statuses = [status for (status, _), _ in pair.answers]
    assert statuses == [200, 200, 200, 404, 400, 400, 400, 404, 200, 200]


def test_every_family_the_operator_reads_is_exposed_alike(pair: Pair) -> None:
    for name, kind in OPERATOR_READS.items():
        assert pair.real[name].type == kind, name
        assert pair.simulated[name].type == kind, name
    for name, family in pair.simulated.items():
        assert name in pair.real, f"{name}: the simulator exposes a family vLLM has not"
        real = pair.real[name]
        assert family.type == real.type, name
        assert label_names(family) == label_names(real), name
        if family.type == "histogram":
            assert buckets(family) == buckets(real), name


def test_label_values_match(pair: Pair) -> None:
    for name, family in pair.simulated.items():
        if name.startswith("vllm:"):
            assert label_values(family, "model_name") == {pair.model}, name
            assert label_values(family, "engine") == label_values(pair.real[name], "engine"), name
    reasons = label_values(pair.real["vllm:request_success"], "finished_reason")
    assert label_values(pair.simulated["vllm:request_success"], "finished_reason") == reasons
    assert {"stop", "length", "abort", "error"} <= reasons
    # Pre-created: every reason has its series on both, whether or not a request finished so.
    for families in (pair.real, pair.simulated):
        totals = {
            s.labels["finished_reason"]
            for s in families["vllm:request_success"].samples
            if s.name == "vllm:request_success_total"
        }
        assert totals == reasons
    # The request script's counts: per route, /v1/models included, probes and scrapes not.
    simulated = http_counted(pair.simulated)
    assert simulated == COUNTED
    assert http_counted(pair.real) >= COUNTED
    for counted in (simulated, http_counted(pair.real)):
        assert not {handler for handler, _, _ in counted} & {"/health", "/metrics", "/version"}
