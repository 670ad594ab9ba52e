"""Metrics to verdict: query templates, the vLLM presets, and the four honest measurement outcomes.

A measurement is ``Successful``, ``Failed``, ``Inconclusive`` (no data, NaN, an empty vector, too few
samples for a rank test) or ``Error`` (Prometheus unreachable or the query refused). Only the
first two are verdicts about the canary; the progress module never promotes or rolls back on the
other two.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from ..api.canaryrollout import AnalysisSpec, BaselineComparison, MetricCheck, MetricPreset
from ..metrics import MetricsProvider, MetricsUnavailable, QueryFailed
from ..metrics.templates import TemplateError, render_query
from ..statistics.mann_whitney import mann_whitney

Phase = Literal["Successful", "Failed", "Inconclusive", "Error"]
MIN_BASELINE_SAMPLES = 3

# The Prometheus labels a ServiceMonitor gives each vLLM pod (podTargetLabels of the LLMDeployment's
# ServiceMonitor): which LLMDeployment it belongs to, so canary and stable are told apart by name.
_SELECTOR = 'namespace="{{namespace}}",llmops_dev_llmdeployment="{{canary}}"'
_REQUESTS = _SELECTOR + ',handler=~"/v1/.*"'  # API calls only, not scrapes or probes
_WINDOW = "{{interval}}"


def _quantile_ms(histogram: str) -> str:
    return (
        f"1000 * histogram_quantile(0.95, sum by (le) "
        f"(rate({histogram}_bucket{{{_SELECTOR}}}[{{{{interval}}}}])))"
    )


# vLLM before 0.11 had no inter-token histogram; its time_per_output_token_seconds measures the same.
_ITL, _ITL_BEFORE_0_11 = "vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds"


@dataclass(frozen=True)
class Preset:
    """A named query with its default judgement: a maximum, or, for shares whose level is the
    clients' doing rather than the model's, the baseline judge against the stable."""

    query: str
    max: str | None
    unit: str
    # The series the query reads (a name, optionally with extra matchers in braces). When the query
    # returns no data and the canary has none of them, the measurement names them: an engine that
    # does not export a series (llm-d-inference-sim has no http_*) is told apart from no traffic.
    sources: tuple[str, ...] = ()
    baseline: BaselineComparison | None = None


def _share(numerator: str, denominator: str) -> str:
    """Percent of ``denominator`` that is ``numerator``; no numerator series yet counts as 0,
    while no requests at all stays no data."""
    return f"100 * (sum(rate({numerator}[{_WINDOW}])) or vector(0)) / sum(rate({denominator}[{_WINDOW}]))"


PRESETS: dict[MetricPreset, Preset] = {
    "errorRate": Preset(
        query=(
            # No 5xx series yet means no errors (0), while no requests at all stays no data.
            f'100 * (sum(rate(http_requests_total{{{_REQUESTS},status="5xx"}}[{_WINDOW}])) or vector(0))'
            f" / sum(rate(http_requests_total{{{_REQUESTS}}}[{_WINDOW}]))"
        ),
        max="1",
        unit="%",
        sources=("http_requests_total",),
    ),
    "e2eLatencyP95": Preset(
        query=_quantile_ms("vllm:e2e_request_latency_seconds"),
        max="2000",
        unit="ms",
        sources=("vllm:e2e_request_latency_seconds_bucket",),
    ),
    # A share of 4xx is partly the clients' own doing (bad requests), so the canary is judged
    # against the stable on the same traffic: a shorter maxModelLen refusing long prompts shows.
    "clientErrorShare": Preset(
        query=_share(
            f'http_requests_total{{{_REQUESTS},status="4xx"}}', f"http_requests_total{{{_REQUESTS}}}"
        ),
        max=None,
        unit="%",
        baseline=BaselineComparison(),
        sources=("http_requests_total",),
    ),
    # Answers cut at max_tokens or the context's end (vLLM's finished_reason="length"). The
    # denominator needs vLLM's label, so an engine naming it otherwise (llm-d-inference-sim's
    # finish_reason) reads as a missing source, not as 0 % truncated.
    "truncationShare": Preset(
        query=_share(
            f'vllm:request_success_total{{{_SELECTOR},finished_reason="length"}}',
            f'vllm:request_success_total{{{_SELECTOR},finished_reason!=""}}',
        ),
        max=None,
        unit="%",
        baseline=BaselineComparison(),
        sources=('vllm:request_success_total{finished_reason!=""}',),
    ),
    "timeToFirstTokenP95": Preset(
        query=_quantile_ms("vllm:time_to_first_token_seconds"),
        max="2000",
        unit="ms",
        sources=("vllm:time_to_first_token_seconds_bucket",),
    ),
    "interTokenLatencyP95": Preset(
        query=f"({_quantile_ms(_ITL)}) or ({_quantile_ms(_ITL_BEFORE_0_11)})",
        max="200",
        unit="ms",
        sources=(f"{_ITL}_bucket", f"{_ITL_BEFORE_0_11}_bucket"),
    ),
}

# Shadow traffic: the canary answers copies of the stable's requests, so besides speed and errors the
# length of its answers is compared with the stable's (a model that truncates, or rambles, shows here).
RESPONSE_LENGTH = MetricCheck(
    name="response-length",
    query=(
        f"sum(rate(vllm:request_generation_tokens_sum{{{_SELECTOR}}}[{_WINDOW}]))"
        f" / sum(rate(vllm:request_generation_tokens_count{{{_SELECTOR}}}[{_WINDOW}]))"
    ),
    baseline=BaselineComparison(direction="higherIsBetter"),
)

DEFAULT_METRICS = [
    MetricCheck(name="error-rate", preset="errorRate"),
    MetricCheck(name="latency-p95", preset="e2eLatencyP95"),
    MetricCheck(name="client-error-share", preset="clientErrorShare"),
    MetricCheck(name="truncation-share", preset="truncationShare"),
]


@dataclass(frozen=True)
class Measurement:
    metric: str
    phase: Phase
    value: str = ""
    threshold: str = ""
    message: str = ""


def with_preset_defaults(metric: MetricCheck) -> MetricCheck:
    """A preset judged against the stable by default gets that judge when the user set none."""
    preset = PRESETS[metric.preset] if metric.preset is not None else None
    if preset is None or preset.baseline is None:
        return metric
    if metric.min is not None or metric.max is not None or metric.baseline is not None:
        return metric
    return metric.model_copy(update={"baseline": preset.baseline})


def metrics_of(analysis: AnalysisSpec) -> list[MetricCheck]:
    return [with_preset_defaults(metric) for metric in (analysis.metrics or DEFAULT_METRICS)]


def applicable(metrics: list[MetricCheck], canary_weight: int, mirror_percent: int = 0) -> list[MetricCheck]:
    """The metrics that can be judged at ``canary_weight``. At 100% the stable serves nothing, so
    there is no baseline to compare with: baseline-only metrics sit out, the others keep their
    thresholds. On shadow traffic alone (weight 0, a mirror) both sides answer the same requests:
    every metric is also judged against the stable (the baseline judge), and so is the response
    length."""
    if canary_weight == 0 and mirror_percent > 0:
        shadow = [
            m if m.baseline else m.model_copy(update={"baseline": BaselineComparison()}) for m in metrics
        ]
        if all(m.name != RESPONSE_LENGTH.name for m in shadow):
            shadow.append(RESPONSE_LENGTH)
        return shadow
    if canary_weight < 100:
        return metrics
    kept = []
    for metric in metrics:
        if metric.baseline is None:
            kept.append(metric)
        elif metric.min is not None or metric.max is not None:
            kept.append(metric.model_copy(update={"baseline": None}))
    return kept


def query_of(metric: MetricCheck) -> str:
    if metric.preset is not None:
        return PRESETS[metric.preset].query
    assert metric.query is not None  # the CRD requires exactly one of preset and query
    return metric.query


def bounds_of(metric: MetricCheck) -> tuple[float | None, float | None]:
    """(min, max): a preset without explicit bounds gets its default maximum."""
    low = float(metric.min) if metric.min is not None else None
    high = float(metric.max) if metric.max is not None else None
    default = PRESETS[metric.preset].max if metric.preset is not None else None
    if default is not None and low is None and high is None and metric.baseline is None:
        high = float(default)
    return low, high


def validate(metrics: list[MetricCheck], variables: Mapping[str, str]) -> str | None:
    """The first template error among the metrics, as a message naming the metric."""
    for metric in metrics:
        try:
            render_query(query_of(metric), variables)
        except TemplateError as error:
            return f"analysis.metrics[{metric.name}].query: {error}"
    return None


def _threshold_text(low: float | None, high: float | None) -> str:
    parts = []
    if low is not None:
        parts.append(f">= {low:g}")
    if high is not None:
        parts.append(f"<= {high:g}")
    return " and ".join(parts)


def judge_values(metric: str, values: list[float], low: float | None, high: float | None) -> Measurement:
    """An instant query's values against thresholds: every series must pass."""
    threshold = _threshold_text(low, high)
    if not values:
        return Measurement(metric, "Inconclusive", "", threshold, "the query returned no data")
    if any(math.isnan(v) or math.isinf(v) for v in values):
        return Measurement(metric, "Inconclusive", "NaN", threshold, "the query returned NaN (no traffic?)")
    shown = ", ".join(f"{v:.4g}" for v in values)
    bad = [v for v in values if (low is not None and v < low) or (high is not None and v > high)]
    if bad:
        return Measurement(metric, "Failed", shown, threshold, f"{bad[0]:.4g} is outside {threshold}")
    return Measurement(metric, "Successful", shown, threshold, "")


def judge_baseline(
    metric: str, canary: list[float], stable: list[float], comparison: BaselineComparison
) -> Measurement:
    """Kayenta's judge: a one-sided Mann-Whitney U test plus a rank-biserial effect-size bound,
    and, when ``meanRatio`` is set, canary mean over stable mean beyond it too.

    Failed only when the canary is worse with significance *and* by a margin that matters, so a
    trivial shift at high volume is not a rollback. Small or tied samples get an exact or
    permutation p-value (``statistics.mann_whitney``).
    """
    canary = [v for v in canary if math.isfinite(v)]
    stable = [v for v in stable if math.isfinite(v)]
    alpha, max_effect = float(comparison.alpha), float(comparison.max_effect_size)
    lower_is_better = comparison.direction == "lowerIsBetter"
    limit = None if comparison.mean_ratio is None else float(comparison.mean_ratio)
    threshold = f"p >= {alpha:g} or effect <= {max_effect:g}"
    if limit is not None:
        threshold += f" or ratio {'<=' if lower_is_better else '>='} {limit:g}"
    if len(canary) < MIN_BASELINE_SAMPLES or len(stable) < MIN_BASELINE_SAMPLES:
        message = f"{len(canary)} canary and {len(stable)} stable samples; need {MIN_BASELINE_SAMPLES} each"
        return Measurement(metric, "Inconclusive", "", threshold, message)
    result = mann_whitney(canary, stable, "greater" if lower_is_better else "less")
    effect = result.effect if lower_is_better else -result.effect  # + means the canary is worse
    value = f"p={result.p_value:.3g} effect={effect:.2f}"
    worse = result.p_value < alpha and effect > max_effect
    if limit is not None:
        stable_mean = sum(stable) / len(stable)
        ratio = sum(canary) / len(canary) / stable_mean if stable_mean else math.inf
        value += f" ratio={ratio:.3g}"
        worse = worse and (ratio > limit if lower_is_better else ratio < limit)
    if worse:
        return Measurement(metric, "Failed", value, threshold, "the canary is worse than the stable baseline")
    return Measurement(metric, "Successful", value, threshold, "")


def _naming_missing_sources(
    provider: MetricsProvider, verdict: Measurement, preset: Preset, variables: Mapping[str, str]
) -> Measurement:
    """A no-data verdict that says so when the canary exports none of the preset's series."""
    for source in preset.sources:
        name, _, matchers = source.partition("{")
        selector = ",".join(filter(None, (_SELECTOR, matchers.rstrip("}"))))
        if provider.instant(render_query(f"group({name}{{{selector}}})", variables)):
            return verdict
    missing = " or ".join(preset.sources)
    message = f"the query returned no data: {variables['canary']} exports no {missing} series"
    return Measurement(verdict.metric, "Inconclusive", "", verdict.threshold, message)


def measure(
    provider: MetricsProvider,
    metric: MetricCheck,
    variables: Mapping[str, str],
    window_seconds: float,
) -> Measurement:
    """Run one metric: thresholds on an instant query, then the baseline comparison if asked."""
    low, high = bounds_of(metric)
    template = query_of(metric)
    try:
        query = render_query(template, variables)
        verdict: Measurement | None = None
        if low is not None or high is not None:
            verdict = judge_values(metric.name, provider.instant(query), low, high)
            if verdict.phase == "Inconclusive" and not verdict.value and metric.preset is not None:
                return _naming_missing_sources(provider, verdict, PRESETS[metric.preset], variables)
            if verdict.phase != "Successful" or metric.baseline is None:
                return verdict
        assert metric.baseline is not None
        step = max(window_seconds / 10, 1.0)
        against_stable = render_query(template, {**variables, "canary": variables["stable"]})
        compared = judge_baseline(
            metric.name,
            provider.range(query, window_seconds, step),
            provider.range(against_stable, window_seconds, step),
            metric.baseline,
        )
        if verdict is not None and compared.phase == "Successful":
            value = f"{verdict.value}; {compared.value}"
            return Measurement(metric.name, "Successful", value, f"{verdict.threshold}; {compared.threshold}")
        return compared
    except TemplateError as error:
        return Measurement(metric.name, "Error", "", "", str(error))
    except MetricsUnavailable as error:
        return Measurement(metric.name, "Error", "", _threshold_text(low, high), str(error))
    except QueryFailed as error:
        return Measurement(metric.name, "Error", "", _threshold_text(low, high), f"query failed: {error}")


def look_query(
    metric: MetricCheck, side: Literal["threshold", "baseline"], variables: Mapping[str, str]
) -> str:
    """A fast-fail look as one query: the metric itself for a threshold, canary over stable in one
    expression for a baseline (NaN unless each side is one series)."""
    template = query_of(metric)
    query = render_query(template, variables)
    if side == "threshold":
        return query
    against_stable = render_query(template, {**variables, "canary": variables["stable"]})
    return f"vector(scalar({query}) / scalar({against_stable}))"
