"""A DriftMonitor check without a cluster: windows, queries, verdicts, episode ids, the Job."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from scipy import stats

from llmops_operator.api.driftmonitor import DriftMonitorSpec, FeatureResult, QuerySource
from llmops_operator.drift import check
from llmops_operator.drift.datasets import DatasetError, column, parse_dataset
from llmops_operator.drift.report import render_report
from llmops_operator.metrics.templates import TemplateError
from llmops_operator.statistics.drift import Histogram

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
BOUNDS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, float("inf")]


def spec(**fields: object) -> DriftMonitorSpec:
    base: dict[str, object] = {
        "targetRef": {"name": "llama"},
        "interval": "1m",
        "currentWindow": "1h",
        "baseline": {"relative": {"offset": "168h", "duration": "1h"}},
        "features": [
            {"name": "prompt-tokens", "source": {"histogram": {"metric": "vllm:request_prompt_tokens"}}},
            {
                "name": "ttft",
                "source": {"histogram": {"metric": "vllm:time_to_first_token_seconds"}},
                "test": "ks",
            },
        ],
        "policy": {"minSamples": 100},
        "retraining": {"template": {"image": "trainer:1", "resources": {"gpus": 1, "memory": "32Gi"}}},
    }
    base.update(fields)
    return DriftMonitorSpec.model_validate(base)


def cumulative(samples: np.ndarray) -> dict[float, float]:
    return {bound: float((samples <= bound).sum()) for bound in BOUNDS}


class RecordedPrometheus:
    """Answers each feature's query per window end, as Prometheus would for those windows."""

    def __init__(self, buckets: dict[tuple[str, datetime], np.ndarray], series: dict[datetime, list[float]]):
        self.buckets_by_window, self.series_by_end = buckets, series
        self.queries: list[str] = []

    def buckets(self, query: str, at: datetime) -> dict[float, float]:
        self.queries.append(query)
        metric = query.split("increase(")[1].split("_bucket")[0]
        samples = self.buckets_by_window.get((metric, at))
        return {} if samples is None else cumulative(samples)

    def instant(self, query: str, at: Any = None) -> list[float]:
        raise AssertionError("a drift check reads windows, not instants")

    def range(
        self, query: str, seconds: float, step_seconds: float, end: datetime | None = None
    ) -> list[float]:
        self.queries.append(query)
        assert end is not None
        return self.series_by_end.get(end, [])


def observed_for(monitor: DriftMonitorSpec, baseline: np.ndarray, current: np.ndarray) -> check.Verdict:
    """Both histogram features see the same pair of windows."""
    base_window, current_window = check.windows(monitor, NOW)
    assert base_window is not None
    buckets = {
        (metric, window.end): data
        for metric in ("vllm:request_prompt_tokens", "vllm:time_to_first_token_seconds")
        for window, data in ((base_window, baseline), (current_window, current))
    }
    return check.judge(monitor, check.collect(monitor, RecordedPrometheus(buckets, {}), "ns", NOW), now=NOW)


def test_a_real_shift_drifts_and_the_same_distribution_does_not() -> None:
    rng = np.random.default_rng(7)
    base = rng.lognormal(3.0, 0.5, 5000)
    same = rng.lognormal(3.0, 0.5, 5000)
    longer = rng.lognormal(4.0, 0.5, 5000)
    monitor = spec()
    steady = observed_for(monitor, base, same)
    assert steady.drifted == [] and not check.is_drift(monitor, steady)
    shifted = observed_for(monitor, base, longer)
    assert "prompt-tokens" in shifted.drifted and check.is_drift(monitor, shifted)
    prompt = shifted.features[0]
    assert prompt.test == "psi" and prompt.statistic is not None and prompt.statistic > 0.2
    assert prompt.floor == "0.0025" and float(prompt.threshold) > 0.0025  # the null's, on vLLM's buckets
    assert prompt.alpha == "0.005"  # 0.01 over two features (Bonferroni)
    assert prompt.p_value is not None and prompt.p_value < 1e-10
    assert prompt.drift_type == "location/sudden" and prompt.current_samples == 5000
    assert prompt.location_shift is not None and prompt.location_shift > 1
    assert "prompt-tokens (psi" in shifted.summary() and "location/sudden" in shifted.summary()
    assert steady.features[0].drift_type == "none" and steady.features[0].history[-1].drifted is False


def test_too_few_samples_is_no_data_never_drift() -> None:
    rng = np.random.default_rng(1)
    few = observed_for(spec(), rng.lognormal(3, 0.5, 50), rng.lognormal(5, 0.5, 50))
    assert few.drifted == [] and few.no_data == ["prompt-tokens", "ttft"]
    assert "no verdict for prompt-tokens, ttft" in few.summary() and "need 100 each" in few.summary()
    assert few.features[0].history == []  # a check without a verdict is not history


def test_a_window_without_series_is_no_data() -> None:
    monitor = spec()
    verdict = check.judge(monitor, check.collect(monitor, RecordedPrometheus({}, {}), "ns", NOW))
    assert verdict.no_data == ["prompt-tokens", "ttft"] and verdict.features[0].current_samples == 0


def test_query_features_are_sampled_over_each_window() -> None:
    rng = np.random.default_rng(3)
    monitor = spec(
        features=[
            {
                "name": "queue",
                "source": {"query": {"promql": 'sum(vllm:num_requests_waiting{namespace="{{namespace}}"})'}},
            }
        ]
    )
    base_window, current_window = check.windows(monitor, NOW)
    assert base_window is not None
    series = {base_window.end: list(rng.normal(2, 1, 300)), current_window.end: list(rng.normal(5, 1, 300))}
    prometheus = RecordedPrometheus({}, series)
    verdict = check.judge(monitor, check.collect(monitor, prometheus, "ns", NOW), now=NOW)
    assert prometheus.queries == ['sum(vllm:num_requests_waiting{namespace="ns"})'] * 2
    queue = verdict.features[0]
    assert queue.test == "ks" and queue.drifted and queue.p_value is not None
    assert queue.drift_change == "location" and queue.drift_pattern == "sudden"
    with pytest.raises(TemplateError, match="pod"):
        check.feature_query(
            monitor.features[0].model_copy(
                update={
                    "source": monitor.features[0].source.model_copy(
                        update={"query": QuerySource(promql="up{pod='{{pod}}'}")}
                    )
                }
            ),
            "ns",
            "llama",
            current_window,
        )


def test_two_bucket_layouts_of_one_feature_are_compared_on_their_common_bounds() -> None:
    """A canary with max_model_len 8192 publishes a 5000 bound the baseline (4096) lacks, and a
    stale le series is missing from the baseline window: same traffic, no drift."""
    rng = np.random.default_rng(11)
    monitor = spec(features=spec().model_dump(by_alias=True)["features"][:1])
    base_window, _ = check.windows(monitor, NOW)
    assert base_window is not None
    short = [b for b in BOUNDS if b != 20] + [2000]  # 20 went stale in the baseline window
    long_ = [*BOUNDS[:-1], 2000, 5000, float("inf")]

    class TwoLayouts(RecordedPrometheus):
        def buckets(self, query: str, at: datetime) -> dict[float, float]:
            samples = rng.lognormal(3.0, 0.5, 3000)
            return {b: float((samples <= b).sum()) for b in (short if at == base_window.end else long_)}

    for _ in range(10):
        verdict = check.judge(monitor, check.collect(monitor, TwoLayouts({}, {}), "ns", NOW), now=NOW)
        assert verdict.drifted == [] and verdict.no_data == []


def test_no_common_buckets_is_no_data_naming_both_layouts() -> None:
    monitor = spec(features=spec().model_dump(by_alias=True)["features"][:1])
    base_window, _ = check.windows(monitor, NOW)

    class Unrelated(RecordedPrometheus):
        def buckets(self, query: str, at: datetime) -> dict[float, float]:
            bounds = [0.1, 0.5, float("inf")] if at == base_window.end else [1000.0, 2000.0, float("inf")]
            return {b: 500.0 * (i + 1) for i, b in enumerate(bounds)}

    verdict = check.judge(monitor, check.collect(monitor, Unrelated({}, {}), "ns", NOW), now=NOW)
    assert verdict.no_data == ["prompt-tokens"]
    assert "le 0.1..0.5,+Inf" in verdict.summary() and "le 1000..2000,+Inf" in verdict.summary()


def test_the_check_history_gives_how_the_drift_arrived() -> None:
    """The status of each check feeds the next: a drift that rises over longer than a window is
    gradual; a change seen before, after quiet checks, is recurring."""
    monitor = spec(currentWindow="10m", features=spec().model_dump(by_alias=True)["features"][:1])
    quantiles = stats.norm.ppf((np.arange(4000) + 0.5) / 4000)  # noiseless log-normal windows
    base = np.exp(3.0 + 0.5 * quantiles)
    previous: list[FeatureResult] = []
    moments = [datetime(2026, 3, 1, 12, minute, tzinfo=UTC) for minute in range(0, 60, 5)]
    # quiet, then rising towards the threshold from minute 10 on, drift at minute 25
    shifts = [0.0, 0.0, 0.035, 0.04, 0.043, 0.06, 0.1, 0.3, 0.0, 0.0, 0.3, 0.3]
    patterns = []
    for moment, shift in zip(moments, shifts, strict=True):
        current = np.exp(3.0 + shift + 0.5 * quantiles)
        base_window, current_window = check.windows(monitor, moment)
        assert base_window is not None
        buckets = {
            ("vllm:request_prompt_tokens", base_window.end): base,
            ("vllm:request_prompt_tokens", current_window.end): current,
        }
        observed = check.collect(monitor, RecordedPrometheus(buckets, {}), "ns", moment)
        verdict = check.judge(monitor, observed, previous, moment)
        previous = verdict.features
        patterns.append(previous[0].drift_pattern)
    assert len(previous[0].history) == check.HISTORY_LENGTH
    assert previous[0].history[-1].time == "2026-03-01T12:55:00Z"
    assert patterns[:5] == [""] * 5
    assert patterns[5] == "gradual" and patterns[7] == "gradual"  # the episode keeps it
    assert patterns[8] == patterns[9] == ""  # quiet again
    assert patterns[10] == patterns[11] == "recurring"


def test_a_reference_dataset_is_binned_into_the_live_buckets() -> None:
    rng = np.random.default_rng(5)
    monitor = spec(
        baseline={"dataset": {"configMap": {"name": "reference", "key": "train.csv"}}},
        features=[
            {
                "name": "prompt-tokens",
                "source": {"histogram": {"metric": "vllm:request_prompt_tokens"}},
                "baselineColumn": "prompt_len",
            }
        ],
    )
    assert check.windows(monitor, NOW)[0] is None
    training = rng.lognormal(3.0, 0.5, 4000)
    dataset = parse_dataset("prompt_len\n" + "\n".join(f"{v:.2f}" for v in training))
    _, current_window = check.windows(monitor, NOW)
    for live, drifts in ((rng.lognormal(3.0, 0.5, 3000), False), (rng.lognormal(4.0, 0.5, 3000), True)):
        prometheus = RecordedPrometheus({("vllm:request_prompt_tokens", current_window.end): live}, {})
        observed = check.collect(monitor, prometheus, "ns", NOW, dataset)
        baseline, _ = observed["prompt-tokens"]
        assert isinstance(baseline, Histogram) and baseline.total == 4000
        assert check.judge(monitor, observed, now=NOW).features[0].drifted is drifts
    with pytest.raises(DatasetError, match="no column 'prompt-tokens'"):
        column(dataset, "prompt-tokens")


def test_datasets_parse_csv_and_json_and_name_bad_cells() -> None:
    assert parse_dataset("a,b\n1,2\n3,\n")["b"].tolist() == [2.0]
    assert parse_dataset('[{"a": 1}, {"a": 2.5}]')["a"].tolist() == [1.0, 2.5]
    assert parse_dataset('{"a": [1, 2, null]}')["a"].tolist() == [1.0, 2.0]
    with pytest.raises(DatasetError, match="column 'a' row 2: 'x' is not a number"):
        parse_dataset("a\n1\nx\n")
    with pytest.raises(DatasetError, match="empty"):
        parse_dataset("  ")


def test_the_report_shows_every_feature_as_a_plot() -> None:
    rng = np.random.default_rng(9)
    monitor = spec()
    base_window, current_window = check.windows(monitor, NOW)
    assert base_window is not None
    buckets = {
        ("vllm:request_prompt_tokens", base_window.end): rng.lognormal(3, 0.5, 2000),
        ("vllm:request_prompt_tokens", current_window.end): rng.lognormal(4, 0.5, 2000),
        ("vllm:time_to_first_token_seconds", base_window.end): rng.lognormal(3, 0.5, 2000),
        ("vllm:time_to_first_token_seconds", current_window.end): rng.lognormal(3, 0.5, 2000),
    }
    observed = check.collect(monitor, RecordedPrometheus(buckets, {}), "ns", NOW)
    verdict = check.judge(monitor, observed)
    page = render_report(
        "Drift check of ns/drift", verdict, observed, base_window.text(), current_window.text()
    )
    assert page.count('src="data:image/png;base64,') == 2
    assert "drift in prompt-tokens" in page and current_window.text() in page
    samples = {"queue": (rng.normal(0, 1, 500), rng.normal(1, 1, 500))}
    queue = check.Verdict(
        [FeatureResult(name="queue", test="ks", baseline_samples=500, current_samples=500)], [], []
    )
    assert render_report("t", queue, samples, "b", "c").count("data:image/png") == 1


def test_episode_ids_and_job_names_are_deterministic() -> None:
    first = check.drift_event_id("uid-1", NOW)
    assert first == check.drift_event_id("uid-1", NOW) != check.drift_event_id("uid-2", NOW)
    name = check.job_name("a-very-long-monitor-name-that-keeps-going-and-going", first)
    assert len(name) <= 63 and name.endswith(first)
