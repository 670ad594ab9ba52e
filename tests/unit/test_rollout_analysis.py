"""Analysis on recorded Prometheus responses, served over HTTP to the real provider.

The files in ``prometheus_responses/`` are answers of a real Prometheus 2.42 to the operator's
preset queries against the vLLM simulator (tests/simulator): a canary with 5% errors, one with
no traffic, one whose traffic stopped (NaN), a refused query, a range query.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from llmops_operator.api.canaryrollout import AnalysisSpec, BaselineComparison, MetricCheck
from llmops_operator.metrics.prometheus import PrometheusProvider
from llmops_operator.rollout.analysis import (
    PRESETS,
    TemplateError,
    applicable,
    bounds_of,
    judge_baseline,
    measure,
    metrics_of,
    render_query,
    validate,
)

RECORDED = Path(__file__).parent / "prometheus_responses"
VARIABLES = {"canary": "llama-canary", "stable": "llama", "namespace": "ns", "interval": "4s"}


class Recorded:
    """An HTTP server answering every Prometheus API call with one recorded body."""

    def __init__(self) -> None:
        self.body = b""
        self.status = 200
        self.queries: list[str] = []
        recorded = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_GET(self) -> None:
                recorded.queries.append(self.path)
                self.send_response(recorded.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(recorded.body)))
                self.end_headers()
                self.wfile.write(recorded.body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, name: str, status: int = 200) -> PrometheusProvider:
        self.body = (RECORDED / f"{name}.json").read_bytes()
        self.status = status
        return PrometheusProvider(self.url)


@pytest.fixture(scope="module")
def prometheus() -> Iterator[Recorded]:
    recorded = Recorded()
    thread = threading.Thread(target=recorded.server.serve_forever, daemon=True)
    thread.start()
    yield recorded
    recorded.server.shutdown()


ERROR_RATE = MetricCheck(name="error-rate", preset="errorRate", max="1")
LATENCY = MetricCheck(name="latency", preset="e2eLatencyP95", max="400")


@pytest.mark.parametrize(
    ("recording", "metric", "phase", "value"),
    [
        ("error-rate-canary", ERROR_RATE, "Failed", "6.25"),
        (
            "error-rate-canary",
            MetricCheck(name="error-rate", preset="errorRate", max="10"),
            "Successful",
            "6.25",
        ),
        ("latency-canary", LATENCY, "Successful", "285"),
        ("latency-canary", MetricCheck(name="latency", preset="e2eLatencyP95", max="200"), "Failed", "285"),
        ("latency-canary", MetricCheck(name="latency", preset="e2eLatencyP95", min="300"), "Failed", "285"),
        ("error-rate-no-traffic", ERROR_RATE, "Inconclusive", ""),
        ("latency-unknown-deployment", LATENCY, "Inconclusive", ""),
        ("error-rate-stopped-traffic", ERROR_RATE, "Inconclusive", "NaN"),
        ("latency-stopped-traffic", LATENCY, "Inconclusive", "NaN"),
    ],
)
def test_recorded_answers_become_the_four_outcomes(
    prometheus: Recorded, recording: str, metric: MetricCheck, phase: str, value: str
) -> None:
    result = measure(prometheus.answer(recording), metric, VARIABLES, 4)
    assert (result.phase, result.value) == (phase, value)
    if phase == "Failed":
        assert result.value in result.message and result.threshold in result.message
    if phase == "Inconclusive":
        assert "no data" in result.message or "NaN" in result.message


def test_every_series_must_pass(prometheus: Recorded) -> None:
    """A query left unaggregated returns a value per pod; one bad pod fails the measurement."""
    rate = "rate(vllm:request_success_total[4s])"
    query = f"sum by (llmops_dev_llmdeployment) ({rate} or vllm:num_requests_running)"
    metric = MetricCheck(name="rps", query=query, max="0.5")
    result = measure(prometheus.answer("per-series"), metric, VARIABLES, 4)
    assert result.phase == "Failed"
    assert result.value.count(",") == 1  # both series are reported


def test_a_refused_query_is_an_error_not_a_verdict(prometheus: Recorded) -> None:
    result = measure(prometheus.answer("bad-query", status=400), LATENCY, VARIABLES, 4)
    assert result.phase == "Error"
    assert "parse error" in result.message


def test_a_failing_server_is_an_error(prometheus: Recorded) -> None:
    result = measure(prometheus.answer("bad-query", status=503), LATENCY, VARIABLES, 4)
    assert result.phase == "Error"


def test_an_unreachable_prometheus_is_an_error() -> None:
    result = measure(PrometheusProvider("http://127.0.0.1:9"), LATENCY, VARIABLES, 4)
    assert result.phase == "Error"
    assert "unreachable" in result.message


def test_the_operator_sends_the_rendered_preset(prometheus: Recorded) -> None:
    prometheus.queries.clear()
    measure(prometheus.answer("latency-canary"), LATENCY, VARIABLES, 4)
    (path,) = prometheus.queries
    assert "vllm%3Ae2e_request_latency_seconds_bucket" in path
    assert "llmops_dev_llmdeployment%3D%22llama-canary%22" in path
    assert "%5B4s%5D" in path  # the interval


def test_baseline_comparison_reads_both_sides_over_the_window(prometheus: Recorded) -> None:
    metric = MetricCheck(name="latency", preset="e2eLatencyP95", baseline=BaselineComparison())
    prometheus.queries.clear()
    result = measure(prometheus.answer("latency-range"), metric, VARIABLES, 8)
    # Both sides got the same recorded samples: no difference, so no failure.
    assert result.phase == "Successful"
    assert result.value.startswith("p=")
    assert len(prometheus.queries) == 2
    assert "llama-canary" in prometheus.queries[0] and "llama-canary" not in prometheus.queries[1]


def test_template_variables_are_checked() -> None:
    assert render_query("x{ns='{{ namespace }}'}[{{interval}}]", VARIABLES) == "x{ns='ns'}[4s]"
    with pytest.raises(TemplateError, match=r"\{\{pod\}\}"):
        render_query("x{pod='{{pod}}'}", VARIABLES)
    broken = MetricCheck(name="ttft", query="x{pod='{{pod}}'}", max="1")
    message = validate([ERROR_RATE, broken], VARIABLES)
    assert message is not None and "analysis.metrics[ttft]" in message and "{{pod}}" in message


def test_defaults_when_the_user_writes_no_promql() -> None:
    defaults = metrics_of(AnalysisSpec())
    names = [(m.name, m.preset) for m in defaults]
    assert names == [
        ("error-rate", "errorRate"),
        ("latency-p95", "e2eLatencyP95"),
        ("client-error-share", "clientErrorShare"),
        ("truncation-share", "truncationShare"),
    ]
    # The two shares are judged against the stable, not against a fixed level.
    judged = {m.name: (bounds_of(m), m.baseline) for m in defaults}
    assert judged["client-error-share"] == ((None, None), BaselineComparison())
    assert judged["truncation-share"] == ((None, None), BaselineComparison())
    # A user's own threshold on a share preset replaces the stable comparison.
    mine = metrics_of(AnalysisSpec(metrics=[MetricCheck(name="c", preset="clientErrorShare", max="5")]))
    assert mine[0].baseline is None and bounds_of(mine[0]) == (None, 5.0)
    # At 100% there is no stable to compare with: the shares sit out.
    assert [m.name for m in applicable(defaults, 100)] == ["error-rate", "latency-p95"]
    assert bounds_of(MetricCheck(name="e", preset="errorRate")) == (None, 1.0)
    assert bounds_of(MetricCheck(name="l", preset="e2eLatencyP95")) == (None, 2000.0)
    assert bounds_of(MetricCheck(name="l", preset="e2eLatencyP95", max="250")) == (None, 250.0)


def test_baseline_judge_fails_a_clearly_worse_canary() -> None:
    stable = [100.0 + i for i in range(20)]
    canary = [300.0 + i for i in range(20)]
    result = judge_baseline("latency", canary, stable, BaselineComparison())
    assert result.phase == "Failed"
    assert "effect=1.00" in result.value


def test_baseline_judge_ignores_a_significant_but_trivial_shift() -> None:
    """At high volume a 2% shift is significant; the effect-size bound keeps it a pass."""
    stable = [100.0 + (i % 100) for i in range(5000)]
    canary = [102.0 + (i % 100) for i in range(5000)]
    result = judge_baseline("latency", canary, stable, BaselineComparison())
    assert result.phase == "Successful"
    p_value = float(result.value.split()[0].removeprefix("p="))
    assert p_value < 0.05  # significant, and still not a failure


def test_baseline_judge_direction_and_sample_floor() -> None:
    throughput_stable = [50.0 + i for i in range(10)]
    throughput_canary = [10.0 + i for i in range(10)]
    higher = BaselineComparison(direction="higherIsBetter")
    assert judge_baseline("tps", throughput_canary, throughput_stable, higher).phase == "Failed"
    assert judge_baseline("tps", throughput_stable, throughput_canary, higher).phase == "Successful"
    few = judge_baseline("tps", [1.0, 2.0], throughput_stable, higher)
    assert few.phase == "Inconclusive" and "2 canary" in few.message
    nan = judge_baseline("tps", [float("nan")] * 10, throughput_stable, higher)
    assert nan.phase == "Inconclusive"


def test_at_full_weight_there_is_no_baseline_to_compare_with() -> None:
    versus_stable = MetricCheck(name="vs", preset="e2eLatencyP95", baseline=BaselineComparison())
    both = MetricCheck(name="both", preset="e2eLatencyP95", max="500", baseline=BaselineComparison())
    metrics = [ERROR_RATE, versus_stable, both]
    assert applicable(metrics, 50) == metrics
    at_full = applicable(metrics, 100)
    assert [m.name for m in at_full] == ["error-rate", "both"]
    assert at_full[1].baseline is None and at_full[1].max == "500"


class Exporting:
    """A provider whose canary exports only ``series``: each preset query returns no data, and a
    presence check (``group(name{...})``) finds a series only when its name is exported."""

    def __init__(self, *series: str) -> None:
        self.series = series
        self.queries: list[str] = []

    def instant(self, query: str) -> list[float]:
        self.queries.append(query)
        if query.startswith("group("):
            name = query.removeprefix("group(").split("{", 1)[0]
            return [1.0] if name in self.series and 'llmops_dev_llmdeployment="llama-canary"' in query else []
        return []

    def buckets(self, query: str, at: Any) -> dict[float, float]:
        raise NotImplementedError

    def range(self, query: str, seconds: float, step_seconds: float, end: Any = None) -> list[float]:
        raise NotImplementedError


def test_no_data_from_an_engine_without_the_series_names_the_missing_series() -> None:
    """llm-d-inference-sim exports vLLM's histograms but no http_* series: errorRate cannot be
    judged there, and says so instead of reading 0 or a bare "no data"."""
    llm_d = Exporting("vllm:e2e_request_latency_seconds_bucket", "vllm:request_success_total")
    result = measure(llm_d, ERROR_RATE, VARIABLES, 4)
    assert result.phase == "Inconclusive" and result.value == ""
    assert result.message == "the query returned no data: llama-canary exports no http_requests_total series"
    # The series is there but the window holds no requests: plain no data.
    quiet = measure(Exporting("http_requests_total"), ERROR_RATE, VARIABLES, 4)
    assert (quiet.phase, quiet.message) == ("Inconclusive", "the query returned no data")


def test_inter_token_latency_falls_back_to_the_pre_0_11_histogram() -> None:
    query = render_query(PRESETS["interTokenLatencyP95"].query, VARIABLES)
    new, old = query.split(" or ")
    assert "vllm:inter_token_latency_seconds_bucket" in new and "time_per_output" not in new
    assert "vllm:time_per_output_token_seconds_bucket" in old and 'llama-canary"' in old
    assert new.removeprefix("(").removesuffix(")").startswith("1000 * histogram_quantile(0.95")
    itl = MetricCheck(name="itl", preset="interTokenLatencyP95")
    neither = measure(Exporting(), itl, VARIABLES, 4)
    assert neither.message == (
        "the query returned no data: llama-canary exports no vllm:inter_token_latency_seconds_bucket"
        " or vllm:time_per_output_token_seconds_bucket series"
    )
    older = measure(Exporting("vllm:time_per_output_token_seconds_bucket"), itl, VARIABLES, 4)
    assert older.message == "the query returned no data"
