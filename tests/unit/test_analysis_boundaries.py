"""Analysis verdicts at their edges: a value on a threshold passes, a p-value on alpha or an effect
on its bound is no rollback, and each measurement carries what the user reads in status."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from llmops_operator.api.canaryrollout import BaselineComparison, MetricCheck
from llmops_operator.metrics import MetricsUnavailable, QueryFailed
from llmops_operator.rollout.analysis import Measurement, judge_baseline, judge_values, measure

VARIABLES = {"canary": "llama-canary", "stable": "llama", "namespace": "ns", "interval": "1m"}
SLOW = [10.0, 11.0, 12.0, 13.0]
FAST = [1.0, 2.0, 3.0, 4.0]
ONE_SIDED_P = 1 / 70  # exact Mann-Whitney p when all four canary samples rank above all four stable


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1.0, 2.0], Measurement("m", "Successful", "1, 2", ">= 1 and <= 2", "")),
        ([0.999], Measurement("m", "Failed", "0.999", ">= 1 and <= 2", "0.999 is outside >= 1 and <= 2")),
        ([2.001], Measurement("m", "Failed", "2.001", ">= 1 and <= 2", "2.001 is outside >= 1 and <= 2")),
        ([1.5, 7.0], Measurement("m", "Failed", "1.5, 7", ">= 1 and <= 2", "7 is outside >= 1 and <= 2")),
        ([], Measurement("m", "Inconclusive", "", ">= 1 and <= 2", "the query returned no data")),
        (
            [1.5, math.nan],
            Measurement("m", "Inconclusive", "NaN", ">= 1 and <= 2", "the query returned NaN (no traffic?)"),
        ),
        (
            [math.inf],
            Measurement("m", "Inconclusive", "NaN", ">= 1 and <= 2", "the query returned NaN (no traffic?)"),
        ),
    ],
)
def test_values_on_a_threshold_pass_and_beyond_it_fail(values: list[float], expected: Measurement) -> None:
    assert judge_values("m", values, 1.0, 2.0) == expected


def test_one_sided_thresholds_say_only_the_side_they_have() -> None:
    assert judge_values("m", [5.0], None, 5.0) == Measurement("m", "Successful", "5", "<= 5", "")
    assert judge_values("m", [5.0], 5.0, None) == Measurement("m", "Successful", "5", ">= 5", "")
    assert judge_values("m", [4.0], 5.0, None).phase == "Failed"
    assert judge_values("m", [6.0], None, 5.0).phase == "Failed"


def comparison(alpha: float = 0.05, max_effect: str = "0.2", **fields: Any) -> BaselineComparison:
    return BaselineComparison.model_validate({"alpha": repr(alpha), "maxEffectSize": max_effect, **fields})


def test_a_slower_canary_fails_the_baseline_comparison_with_its_p_value_and_effect() -> None:
    assert judge_baseline("latency", SLOW, FAST, comparison()) == Measurement(
        "latency",
        "Failed",
        "p=0.0143 effect=1.00",
        "p >= 0.05 or effect <= 0.2",
        "the canary is worse than the stable baseline",
    )
    assert judge_baseline("latency", FAST, SLOW, comparison()) == Measurement(
        "latency", "Successful", "p=1 effect=-1.00", "p >= 0.05 or effect <= 0.2", ""
    )


def test_the_test_is_one_sided() -> None:
    # A two-sided test doubles p to 0.029: significant only one-sided at alpha 0.02.
    assert judge_baseline("latency", SLOW, FAST, comparison(alpha=0.02)).phase == "Failed"


def test_a_p_value_equal_to_alpha_is_not_significant() -> None:
    assert judge_baseline("latency", SLOW, FAST, comparison(alpha=ONE_SIDED_P)).phase == "Successful"
    assert judge_baseline("latency", SLOW, FAST, comparison(alpha=ONE_SIDED_P * 1.01)).phase == "Failed"


def test_an_effect_equal_to_its_bound_is_tolerated() -> None:
    assert judge_baseline("latency", SLOW, FAST, comparison(max_effect="1")).phase == "Successful"
    assert judge_baseline("latency", SLOW, FAST, comparison(max_effect="0.99")).phase == "Failed"


def test_higher_is_better_fails_a_canary_that_is_lower() -> None:
    throughput = comparison(direction="higherIsBetter")
    failed = judge_baseline("tokens", FAST, SLOW, throughput)
    assert (failed.phase, failed.value) == ("Failed", "p=0.0143 effect=1.00")
    assert judge_baseline("tokens", SLOW, FAST, throughput).phase == "Successful"


@pytest.mark.parametrize(("canary", "stable"), [(3, 3), (3, 4), (4, 3)])
def test_three_samples_a_side_are_enough_for_a_verdict(canary: int, stable: int) -> None:
    verdict = judge_baseline("latency", SLOW[:canary], FAST[:stable], comparison(alpha=0.5))
    assert verdict.phase == "Failed"


@pytest.mark.parametrize(("canary", "stable"), [(2, 4), (4, 2)])
def test_fewer_than_three_samples_a_side_is_inconclusive(canary: int, stable: int) -> None:
    assert judge_baseline("latency", [*SLOW[:canary], math.nan], FAST[:stable], comparison()) == Measurement(
        "latency",
        "Inconclusive",
        "",
        "p >= 0.05 or effect <= 0.2",
        f"{canary} canary and {stable} stable samples; need 3 each",
    )


class Provider:
    """Answers by query text; records range calls as (query, seconds, step)."""

    def __init__(self, instant: dict[str, list[float]], ranges: dict[str, list[float]]) -> None:
        self.answers, self.ranges = instant, ranges
        self.range_calls: list[tuple[str, float, float]] = []

    def instant(self, query: str, at: Any = None) -> list[float]:
        return self.answers[query]

    def range(self, query: str, seconds: float, step_seconds: float, end: Any = None) -> list[float]:
        self.range_calls.append((query, seconds, step_seconds))
        return self.ranges[query]

    def buckets(self, query: str, at: Any) -> dict[float, float]:
        raise AssertionError("an analysis never reads buckets")


QUERY = 'latency{pod="{{canary}}"}'
CANARY, STABLE = 'latency{pod="llama-canary"}', 'latency{pod="llama"}'


def check(**fields: Any) -> MetricCheck:
    return MetricCheck.model_validate({"name": "latency", "query": QUERY, **fields})


def test_thresholds_alone_judge_the_instant_query() -> None:
    provider = Provider({CANARY: [300.0]}, {})
    assert measure(provider, check(max="400"), VARIABLES, 60) == Measurement(
        "latency", "Successful", "300", "<= 400", ""
    )
    assert provider.range_calls == []


def test_a_threshold_failure_is_the_verdict_without_a_baseline_comparison() -> None:
    provider = Provider({CANARY: [500.0]}, {})
    verdict = measure(provider, check(max="400", baseline={}), VARIABLES, 60)
    assert verdict == Measurement("latency", "Failed", "500", "<= 400", "500 is outside <= 400")
    assert provider.range_calls == []


def test_the_baseline_compares_the_canary_with_the_stable_over_the_window() -> None:
    provider = Provider({}, {CANARY: SLOW, STABLE: FAST})
    verdict = measure(provider, check(baseline={}), VARIABLES, 600)
    assert verdict == Measurement(
        "latency",
        "Failed",
        "p=0.0143 effect=1.00",
        "p >= 0.05 or effect <= 0.2",
        "the canary is worse than the stable baseline",
    )
    assert provider.range_calls == [(CANARY, 600, 60.0), (STABLE, 600, 60.0)]  # ten samples a window


def test_a_short_window_is_sampled_every_second_at_most() -> None:
    provider = Provider({}, {CANARY: FAST, STABLE: SLOW})
    measure(provider, check(baseline={}), VARIABLES, 5)
    assert [call[2] for call in provider.range_calls] == [1.0, 1.0]


def test_passing_threshold_and_baseline_report_both() -> None:
    provider = Provider({CANARY: [300.0]}, {CANARY: FAST, STABLE: SLOW})
    assert measure(provider, check(max="400", baseline={}), VARIABLES, 60) == Measurement(
        "latency", "Successful", "300; p=1 effect=-1.00", "<= 400; p >= 0.05 or effect <= 0.2", ""
    )


def test_a_passing_threshold_does_not_hide_a_failed_baseline() -> None:
    provider = Provider({CANARY: [300.0]}, {CANARY: SLOW, STABLE: FAST})
    verdict = measure(provider, check(max="400", baseline={}), VARIABLES, 60)
    assert (verdict.phase, verdict.threshold) == ("Failed", "p >= 0.05 or effect <= 0.2")


def failing(error: Exception) -> Callable[[str], list[float]]:
    def instant(query: str) -> list[float]:
        raise error

    return instant


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            MetricsUnavailable("prometheus is down"),
            Measurement("latency", "Error", "", ">= 10 and <= 400", "prometheus is down"),
        ),
        (
            QueryFailed("bad_data: parse error"),
            Measurement("latency", "Error", "", ">= 10 and <= 400", "query failed: bad_data: parse error"),
        ),
    ],
)
def test_an_unreachable_or_refusing_prometheus_is_an_error_not_a_verdict(
    error: Exception, expected: Measurement
) -> None:
    provider = Provider({}, {})
    provider.instant = failing(error)  # type: ignore[method-assign]
    assert measure(provider, check(min="10", max="400"), VARIABLES, 60) == expected


def test_an_unknown_template_variable_is_an_error_naming_it() -> None:
    verdict = measure(Provider({}, {}), check(query="up{x='{{pod}}'}", max="1"), VARIABLES, 60)
    assert verdict == Measurement(
        "latency",
        "Error",
        "",
        "",
        "unknown variable {{pod}} (known: {{canary}}, {{interval}}, {{namespace}}, {{stable}})",
    )
