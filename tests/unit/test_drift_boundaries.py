"""A DriftMonitor check at its edges, as a user reads it in status and in the report: windows
and queries, which threshold means what, Bonferroni, minSamples and minDriftedFeatures, the
numbers and history written to status, reference datasets, episode ids and Job names."""

from __future__ import annotations

import base64
import io
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import numpy as np
import pytest

from llmops_operator.api.driftmonitor import DriftMonitorSpec, FeatureCheck, FeatureResult
from llmops_operator.drift import check
from llmops_operator.drift.datasets import DatasetError, column, parse_dataset
from llmops_operator.drift.report import BASELINE_COLOUR, CURRENT_COLOUR, bars, render_report, steps
from llmops_operator.statistics.drift import DEFAULT_FLOORS, judge_feature
from llmops_operator.statistics.histogram import Histogram
from llmops_operator.timestamps import format_time

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
INF = float("inf")
BOUNDS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, INF]
TOKENS = {"histogram": {"metric": "vllm:request_prompt_tokens"}}


def spec(**fields: object) -> DriftMonitorSpec:
    base: dict[str, object] = {
        "targetRef": {"name": "llama"},
        "currentWindow": "1h",
        "baseline": {"relative": {"offset": "168h", "duration": "2h"}},
        "features": [{"name": "prompt-tokens", "source": TOKENS}],
        "retraining": {"template": {"image": "trainer:1"}},
    }
    base.update(fields)
    return DriftMonitorSpec.model_validate(base)


def features(*names: str, **extra: object) -> list[dict[str, object]]:
    return [{"name": name, "source": TOKENS, **extra} for name in names]


class Recorder:
    """A metrics provider that answers from fixed data and records what it was asked."""

    def __init__(
        self, buckets: list[dict[float, float]] | None = None, series: list[list[float]] | None = None
    ):
        self.bucket_answers, self.series_answers = list(buckets or []), list(series or [])
        self.calls: list[tuple[object, ...]] = []

    def instant(self, query: str) -> list[float]:
        raise AssertionError("a drift check reads windows")

    def buckets(self, query: str, at: datetime) -> dict[float, float]:
        self.calls.append(("buckets", query, at))
        return self.bucket_answers.pop(0)

    def range(
        self, query: str, seconds: float, step_seconds: float, end: datetime | None = None
    ) -> list[float]:
        self.calls.append(("range", query, seconds, step_seconds, end))
        return self.series_answers.pop(0)


def cumulative(samples: np.ndarray, bounds: list[float] = BOUNDS) -> dict[float, float]:
    return {bound: float((samples <= bound).sum()) for bound in bounds}


def lognormal(seed: int, n: int, mu: float = 3.0) -> np.ndarray:
    return np.random.default_rng(seed).lognormal(mu, 0.5, n)


def histograms(base: np.ndarray, current: np.ndarray) -> tuple[Histogram, Histogram]:
    return (
        Histogram.from_cumulative(BOUNDS, list(cumulative(base).values())),
        Histogram.from_cumulative(BOUNDS, list(cumulative(current).values())),
    )


# --- windows and queries -------------------------------------------------------------------------


def test_relative_and_fixed_baseline_windows() -> None:
    baseline, current = check.windows(spec(), NOW)
    assert current == check.Window(NOW - timedelta(hours=1), NOW)
    assert baseline == check.Window(NOW - timedelta(hours=170), NOW - timedelta(hours=168))
    assert baseline.text() == "2026-02-22T10:00:00Z/2026-02-22T12:00:00Z"
    assert (baseline.seconds, current.seconds) == (7200, 3600)
    fixed = spec(baseline={"fixed": {"start": "2026-02-01T00:00:00Z", "end": "2026-02-01T06:30:00Z"}})
    window, _ = check.windows(fixed, NOW)
    assert window == check.Window(datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 2, 1, 6, 30, tzinfo=UTC))


def test_a_window_lasts_whole_seconds_and_at_least_one() -> None:
    assert check.Window(NOW, NOW).seconds == 1
    assert check.Window(NOW, NOW + timedelta(seconds=90.4)).seconds == 90
    assert check.Window(NOW, NOW + timedelta(seconds=90.6)).seconds == 91


def test_a_histogram_feature_reads_the_targets_bucket_increase_over_each_window() -> None:
    monitor = spec()
    baseline, current = check.windows(monitor, NOW)
    prometheus = Recorder(buckets=[cumulative(lognormal(1, 300)), cumulative(lognormal(2, 300))])
    observed = check.collect(monitor, prometheus, "ns", NOW)
    selector = 'namespace="ns",llmops_dev_llmdeployment="llama"'
    assert prometheus.calls == [
        (
            "buckets",
            f"sum by (le) (increase(vllm:request_prompt_tokens_bucket{{{selector}}}[7200s]))",
            baseline.end,
        ),
        (
            "buckets",
            f"sum by (le) (increase(vllm:request_prompt_tokens_bucket{{{selector}}}[3600s]))",
            current.end,
        ),
    ]
    base, cur = observed["prompt-tokens"]
    assert isinstance(base, Histogram) and base.total == 300 and cur.total == 300


def test_a_query_feature_is_sampled_at_its_step_with_target_substituted() -> None:
    monitor = spec(
        features=[
            {
                "name": "queue",
                "source": {
                    "query": {"promql": 'vllm:num_requests_waiting{pod=~"{{target}}-.*"}', "step": "30s"}
                },
            }
        ]
    )
    baseline, current = check.windows(monitor, NOW)
    prometheus = Recorder(series=[[1.0, 2.0], [3.0]])
    observed = check.collect(monitor, prometheus, "ns", NOW)
    query = 'vllm:num_requests_waiting{pod=~"llama-.*"}'
    assert prometheus.calls == [
        ("range", query, 7200, 30, baseline.end),
        ("range", query, 3600, 30, current.end),
    ]
    assert [x.tolist() for x in observed["queue"]] == [[1.0, 2.0], [3.0]]


# --- reference datasets --------------------------------------------------------------------------


def dataset_spec(source: dict[str, object], **feature: object) -> DriftMonitorSpec:
    return spec(
        baseline={"dataset": {"configMap": {"name": "reference", "key": "train.csv"}}},
        features=[{"name": "prompt-tokens", "source": source, **feature}],
    )


def test_a_dataset_column_named_like_the_feature_is_binned_into_the_live_buckets() -> None:
    monitor = dataset_spec(TOKENS)
    dataset = parse_dataset("prompt-tokens\n1\n3\n3\n700\n5000\n")
    observed = check.collect(
        monitor, Recorder(buckets=[cumulative(np.array([1.0, 4.0]))]), "ns", NOW, dataset
    )
    binned, live = observed["prompt-tokens"]
    assert isinstance(binned, Histogram) and isinstance(live, Histogram)
    assert binned.upper_bounds.tolist() == BOUNDS and binned.counts.tolist() == [
        1,
        0,
        2,
        0,
        0,
        0,
        0,
        0,
        0,
        1,
        1,
    ]
    assert live.total == 2


def test_a_dataset_against_a_window_without_series_is_no_data() -> None:
    monitor = dataset_spec(TOKENS)
    dataset = parse_dataset("prompt-tokens\n" + "\n".join(str(v) for v in range(500)))
    observed = check.collect(monitor, Recorder(buckets=[{}]), "ns", NOW, dataset)
    verdict = check.judge(monitor, observed, now=NOW)
    assert verdict.no_data == ["prompt-tokens"]
    assert verdict.features[0].baseline_samples == verdict.features[0].current_samples == 0


def test_a_dataset_column_against_a_query_feature_compares_samples() -> None:
    monitor = dataset_spec({"query": {"promql": "vllm:num_requests_waiting"}}, baselineColumn="queue")
    dataset = parse_dataset('{"queue": [1, 2, 3]}')
    observed = check.collect(monitor, Recorder(series=[[4.0, 5.0]]), "ns", NOW, dataset)
    assert [x.tolist() for x in observed["prompt-tokens"]] == [[1.0, 2.0, 3.0], [4.0, 5.0]]


def test_datasets_at_their_edges() -> None:
    parsed = parse_dataset(" a , b\n1,2\n3\n\nnan,4\n")
    assert sorted(parsed) == ["a", "b"]  # names trimmed, a short row has empty cells
    assert parsed["a"].tolist() == [1.0, 3.0] and parsed["b"].tolist() == [2.0, 4.0]  # NaN is no sample
    assert parse_dataset('\n  [{"a": 1, "b": 2}, {"b": 3}]')["b"].tolist() == [2.0, 3.0]
    with pytest.raises(DatasetError, match=r"^not valid JSON: "):
        parse_dataset("{oops")
    with pytest.raises(DatasetError, match=r"^a JSON object dataset maps each column to a list of values$"):
        parse_dataset('{"a": 1}')
    with pytest.raises(DatasetError, match=r"^a JSON dataset is a list of records or an object of columns$"):
        parse_dataset("[1, 2]")
    with pytest.raises(DatasetError, match=r"^column 'b' row 1: \[1\] is not a number$"):
        parse_dataset('{"a": [1], "b": [[1]]}')
    with pytest.raises(DatasetError, match=r"^no column 'c' in the dataset \(it has a, b\)$"):
        column(parse_dataset("b,a\n1,2\n"), "c")


# --- which threshold means what ------------------------------------------------------------------


def test_default_tests_and_what_a_threshold_means_for_each() -> None:
    policy = spec(policy={"alpha": "0.02", "minEffectSize": "0.3"}).policy
    monitor = spec(
        features=[
            {"name": "tokens", "source": TOKENS},
            {"name": "queue", "source": {"query": {"promql": "q"}}},
            {"name": "ks-level", "source": TOKENS, "test": "ks", "threshold": "0.05"},
            {"name": "chi-level", "source": TOKENS, "test": "chiSquare", "threshold": "0.001"},
            {"name": "psi-floor", "source": TOKENS, "threshold": "0.1"},
            {"name": "js", "source": TOKENS, "test": "jensenShannon"},
        ]
    )
    tokens, queue, ks_level, chi_level, psi_floor, js = monitor.features
    assert [check.default_test(f) for f in monitor.features] == [
        "psi",
        "ks",
        "ks",
        "chiSquare",
        "psi",
        "jensenShannon",
    ]
    # a p-value test's threshold is its significance level, its floor minEffectSize
    assert (check.alpha_of(ks_level, policy), check.floor_of(ks_level, policy)) == (0.05, 0.3)
    assert (check.alpha_of(chi_level, policy), check.floor_of(chi_level, policy)) == (0.001, 0.3)
    assert (check.alpha_of(queue, policy), check.floor_of(queue, policy)) == (0.02, 0.3)
    # a distance test's threshold is its floor; minEffectSize is not for it
    assert (check.alpha_of(psi_floor, policy), check.floor_of(psi_floor, policy)) == (0.02, 0.1)
    assert (check.alpha_of(tokens, policy), check.floor_of(tokens, policy)) == (0.02, DEFAULT_FLOORS["psi"])
    assert check.floor_of(js, policy) == DEFAULT_FLOORS["jensenShannon"]
    default_policy = spec().policy
    assert check.floor_of(queue, default_policy) == DEFAULT_FLOORS["ks"]
    assert check.alpha_of(queue, default_policy) == 0.01


# --- verdicts: Bonferroni, minSamples, minDriftedFeatures -----------------------------------------


def borderline() -> tuple[Histogram, Histogram]:
    """A shift whose PSI p-value lies between alpha / 3 and alpha (0.01)."""
    base = lognormal(10, 2000)
    return histograms(base, lognormal(11, 2000, mu=3.04))


def test_bonferroni_divides_alpha_by_the_number_of_features() -> None:
    pair = borderline()
    names = ("a", "b", "c")
    observed = dict.fromkeys(names, pair)
    one = check.judge(spec(features=features("a")), {"a": pair}, now=NOW).features[0]
    assert one.p_value is not None and 0.01 / 3 < one.p_value < 0.01 and one.drifted
    shared = check.judge(spec(features=features(*names)), observed, now=NOW)
    assert shared.drifted == [] and [f.alpha for f in shared.features] == ["0.00333"] * 3
    alone = check.judge(spec(features=features(*names), policy={"bonferroni": False}), observed, now=NOW)
    assert alone.drifted == list(names) and alone.features[0].alpha == "0.01"


def test_min_samples_is_the_smallest_window_judged() -> None:
    base, current = lognormal(12, 150), lognormal(13, 150, mu=4.0)
    pair = histograms(base, current)
    judged = check.judge(spec(policy={"minSamples": 150}), {"prompt-tokens": pair}, now=NOW)
    assert judged.drifted == ["prompt-tokens"] and judged.no_data == []
    short = check.judge(spec(policy={"minSamples": 151}), {"prompt-tokens": pair}, now=NOW)
    assert short.no_data == ["prompt-tokens"] and short.drifted == []
    assert short.features[0].message == "150 baseline and 150 current samples; need 151 each"
    assert short.summary() == (
        "no verdict for prompt-tokens (prompt-tokens: 150 baseline and 150 current samples; need 151 each)"
    )


def test_min_drifted_features_is_the_least_that_is_drift() -> None:
    shifted = histograms(lognormal(14, 2000), lognormal(15, 2000, mu=4.0))
    steady = histograms(lognormal(16, 2000), lognormal(17, 2000))
    monitor = spec(features=features("a", "b", "c"), policy={"minDriftedFeatures": 2})
    one = check.judge(monitor, {"a": shifted, "b": steady, "c": steady}, now=NOW)
    assert one.drifted == ["a"] and not check.is_drift(monitor, one)
    two = check.judge(monitor, {"a": shifted, "b": steady, "c": shifted}, now=NOW)
    assert two.drifted == ["a", "c"] and check.is_drift(monitor, two)
    assert two.no_data == [] and two.summary().startswith("drift in a (psi ") and ", c (psi " in two.summary()


def test_the_summary_names_drift_first_then_missing_data() -> None:
    shifted = histograms(lognormal(14, 2000), lognormal(15, 2000, mu=4.0))
    empty = (Histogram.from_cumulative(BOUNDS, [0] * 11), Histogram.from_cumulative(BOUNDS, [0] * 11))
    monitor = spec(features=features("a", "b"))
    both = check.judge(monitor, {"a": shifted, "b": empty}, now=NOW)
    result = both.features[0]
    assert both.drifted == ["a"] and both.no_data == ["b"]
    assert both.summary() == (
        f"drift in a (psi {result.statistic:.3g} >= {result.threshold}, {result.drift_type})"
    )
    quiet = check.judge(monitor, {"a": histograms(lognormal(16, 2000), lognormal(17, 2000)), "b": empty})
    assert quiet.summary() == "no verdict for b (b: 0 baseline and 0 current samples; need 100 each)"
    assert check.judge(
        spec(), {"prompt-tokens": histograms(lognormal(16, 2000), lognormal(17, 2000))}
    ).summary() == ("no feature drifted")


# --- what status shows -----------------------------------------------------------------------------


def test_the_status_entry_of_a_drifted_feature() -> None:
    base, current = lognormal(18, 3000), lognormal(19, 4000, mu=3.5)
    verdict = check.judge(spec(), {"prompt-tokens": histograms(base, current)}, now=NOW)
    result = verdict.features[0]
    assert (result.name, result.test, result.drifted) == ("prompt-tokens", "psi", True)
    assert (result.baseline_samples, result.current_samples) == (3000, 4000)
    assert result.floor == "0.0025" and result.alpha == "0.01"
    assert float(result.threshold) == pytest.approx(float(f"{float(result.threshold):.3g}"))
    assert result.statistic is not None and result.statistic == round(result.statistic, 6)
    assert result.drift_type == "location/sudden" and result.drift_change == "location"
    assert result.drift_pattern == "sudden" and result.message == ""
    assert (
        result.location_shift is not None and result.location_shift == round(result.location_shift, 4) > 0.5
    )
    assert result.scale_ratio is not None and result.scale_ratio == round(result.scale_ratio, 4)
    assert result.scale_ratio > 1.3  # a log-normal's median times e^0.5 widens it as much
    (entry,) = result.history
    assert entry.time == "2026-03-01T12:00:00Z" and entry.statistic == result.statistic
    assert entry.threshold is not None and float(result.threshold) == pytest.approx(entry.threshold, rel=1e-3)
    assert entry.threshold == round(entry.threshold, 6) and entry.threshold != float(result.threshold)
    assert (entry.drifted, entry.drift_change) == (True, "location")
    assert entry.location_shift == result.location_shift


def test_tiny_p_values_keep_six_significant_digits() -> None:
    result = check.judge(
        spec(), {"prompt-tokens": histograms(lognormal(20, 3000), lognormal(21, 3000, mu=3.5))}
    )
    p_value = result.features[0].p_value
    assert p_value is not None and 0 < p_value < 1e-10  # not rounded to 0
    assert p_value == float(f"{p_value:.6g}")


def test_a_quiet_feature_has_no_type_and_no_measure() -> None:
    verdict = check.judge(
        spec(), {"prompt-tokens": histograms(lognormal(22, 3000), lognormal(23, 3000))}, now=NOW
    )
    result = verdict.features[0]
    assert not result.drifted and result.drift_type == "none"
    assert (result.drift_change, result.drift_pattern, result.location_shift, result.scale_ratio) == (
        "",
        "",
        None,
        None,
    )
    assert result.history[-1].drift_change == "" and result.history[-1].location_shift == 0.0
    assert result.p_value is not None and result.p_value > 0.01


def test_an_unbounded_critical_value_is_shown_as_none() -> None:
    # every count in one bucket: chi-square has a single pooled bucket and no critical value
    single = Histogram.from_cumulative(BOUNDS, [0] * 4 + [500] * 7)
    verdict = check.judge(spec(features=features("a", test="chiSquare")), {"a": (single, single)}, now=NOW)
    result = verdict.features[0]
    assert not result.drifted and result.history[-1].threshold is None and result.threshold == "inf"


def history(*entries: tuple[int, float, float, bool, str, float]) -> FeatureResult:
    return FeatureResult(
        name="prompt-tokens",
        drifted=entries[-1][3],
        drift_pattern="gradual" if entries[-1][3] else "",
        history=[
            FeatureCheck(
                time=(NOW - timedelta(seconds=ago)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                statistic=statistic,
                threshold=threshold,
                drifted=drifted,
                drift_change=change,
                location_shift=shift,
            )
            for ago, statistic, threshold, drifted, change, shift in entries
        ],
    )


def drifted_now() -> dict[str, tuple[Histogram, Histogram]]:
    return {"prompt-tokens": histograms(lognormal(24, 3000), lognormal(25, 3000, mu=3.5))}


def test_the_history_in_status_says_how_a_drift_arrived() -> None:
    monitor = spec()  # one-hour current window
    # rising at half the threshold and more for longer than a window: gradual
    rising = history((5400, 0.006, 0.01, False, "", 0.1), (1800, 0.008, 0.01, False, "", 0.2))
    assert check.judge(monitor, drifted_now(), [rising], NOW).features[0].drift_pattern == "gradual"
    # the same run within one window: sudden
    recent = history((3000, 0.006, 0.01, False, "", 0.1), (1800, 0.008, 0.01, False, "", 0.2))
    assert check.judge(monitor, drifted_now(), [recent], NOW).features[0].drift_pattern == "sudden"
    # an earlier check without a statistic or threshold is not a rise
    unknown = history((5400, 0.006, 0.0, False, "", 0.1), (1800, 0.008, 0.01, False, "", 0.2))
    assert check.judge(monitor, drifted_now(), [unknown], NOW).features[0].drift_pattern == "sudden"
    # the same change upwards drifted before, quiet since: recurring; downwards it is new
    up = history((5400, 0.5, 0.01, True, "location", 1.2), (1800, 0.001, 0.01, False, "", 0.0))
    assert check.judge(monitor, drifted_now(), [up], NOW).features[0].drift_type == "location/recurring"
    down = history((5400, 0.5, 0.01, True, "location", -1.2), (1800, 0.001, 0.01, False, "", 0.0))
    assert check.judge(monitor, drifted_now(), [down], NOW).features[0].drift_pattern == "sudden"
    # a continuing episode keeps the pattern status gave it
    ongoing = history((1800, 0.5, 0.01, True, "location", 1.2))
    assert check.judge(monitor, drifted_now(), [ongoing], NOW).features[0].drift_pattern == "gradual"


def test_status_keeps_the_last_ten_checks_and_no_data_adds_none() -> None:
    entries = [(600 * (12 - i), 0.001, 0.01, False, "", 0.0) for i in range(12)]
    previous = history(*entries)
    after = check.judge(spec(), drifted_now(), [previous], NOW).features[0]
    assert len(after.history) == 10 and after.history[-1].time == "2026-03-01T12:00:00Z"
    assert after.history[0] == previous.history[3]
    empty = (Histogram.from_cumulative(BOUNDS, [0] * 11), Histogram.from_cumulative(BOUNDS, [0] * 11))
    kept = check.judge(spec(), {"prompt-tokens": empty}, [after], NOW).features[0]
    assert kept.history == after.history


# --- episodes and Jobs -----------------------------------------------------------------------------


def test_an_episode_id_stays_the_same_across_releases() -> None:
    """An upgraded operator must name a running episode as before, or it would start a second Job."""
    assert check.drift_event_id("uid-1", NOW) == "84b33397a8"
    assert check.drift_event_id("uid-1", NOW + timedelta(seconds=1)) != "84b33397a8"


def test_job_names_cut_the_monitor_name_at_forty_characters_without_a_trailing_dash() -> None:
    assert check.job_name("drift", "0123456789") == "drift-retrain-0123456789"
    assert check.job_name("a" * 39 + "-bcd", "0123456789") == "a" * 39 + "-retrain-0123456789"
    assert check.job_name("a" * 41, "0123456789") == "a" * 40 + "-retrain-0123456789"


# --- the report ------------------------------------------------------------------------------------


def png_of(page: str, index: int = 0) -> np.ndarray:
    from matplotlib import image

    encoded = page.split('src="data:image/png;base64,')[index + 1].split('"')[0]
    return np.asarray(image.imread(io.BytesIO(base64.b64decode(encoded)), format="png"))


def colour_share(picture: np.ndarray, colour: str) -> float:
    rgb = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)]) / 255
    return float(np.mean(np.all(np.abs(picture[..., :3] - rgb) < 0.01, axis=-1)))


def test_the_report_table_reads_like_status() -> None:
    shifted = histograms(lognormal(26, 2000), lognormal(27, 12000, mu=4.0))
    observed = {"<a>": shifted}
    monitor = spec(features=[{"name": "a", "source": TOKENS}])
    verdict = check.judge(monitor, {"a": shifted}, now=NOW)
    verdict.features[0].name = "<a>"
    page = render_report("drift <ns>", verdict, observed, "b-window", "c-window")
    result = verdict.features[0]
    assert "<title>drift &lt;ns&gt;</title>" in page and "<h1>drift &lt;ns&gt;</h1>" in page
    header = "".join(
        f"<th>{h}</th>"
        for h in (
            "feature",
            "test",
            "statistic",
            "p-value",
            "threshold",
            "drifted",
            "type",
            "baseline n",
            "current n",
        )
    )
    assert f"<tr>{header}</tr>" in page
    cells = [
        "&lt;a&gt;",
        "psi",
        f"{result.statistic:.4g}",
        f"{result.p_value:.3g}",
        result.threshold,
        "yes",
        "location/sudden",
        "2,000",
        "12,000",
    ]
    assert "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>" in page
    assert "<p>baseline b-window<br>current c-window</p>" in page
    assert '<h2>&lt;a&gt;</h2><img alt="&lt;a&gt;" src="data:image/png;base64,' in page


def test_the_report_draws_baseline_and_current_in_their_colours() -> None:
    shifted = histograms(lognormal(28, 2000), lognormal(29, 2000, mu=4.0))
    samples = (lognormal(30, 500), lognormal(31, 500, mu=3.5))
    for pair in (shifted, samples):
        verdict = check.judge(spec(), {"prompt-tokens": pair}, now=NOW)
        picture = png_of(render_report("t", verdict, {"prompt-tokens": pair}, "b", "c"))
        assert picture.shape[:2] == (270, 630)  # 7 x 3 inches at 90 dpi
        assert colour_share(picture, BASELINE_COLOUR) > 5e-5 and colour_share(picture, CURRENT_COLOUR) > 5e-5


def test_the_report_plots_only_features_with_samples_in_both_windows() -> None:
    empty = (Histogram.from_cumulative(BOUNDS, [0] * 11), Histogram.from_cumulative(BOUNDS, [0] * 11))
    verdict = check.judge(spec(), {"prompt-tokens": empty}, now=NOW)
    page = render_report("t", verdict, {"prompt-tokens": empty}, "b", "c")
    assert "data:image/png" not in page and "<td>no</td>" in page and "<td>0</td><td>0</td>" in page
    missing = check.Verdict([FeatureResult(name="gone", baseline_samples=5, current_samples=5)], [], [])
    assert "data:image/png" not in render_report("t", missing, {}, "b", "c")
    one_sided = check.Verdict([FeatureResult(name="x", baseline_samples=5, current_samples=0)], [], [])
    assert "data:image/png" not in render_report("t", one_sided, {"x": (np.ones(5), np.ones(0))}, "b", "c")


# --- edges the checks above leave open ---------------------------------------------------------------


def test_every_feature_of_a_dataset_baseline_is_collected() -> None:
    monitor = spec(
        baseline={"dataset": {"configMap": {"name": "reference", "key": "train.csv"}}},
        features=features("a", "b"),
    )
    live = cumulative(lognormal(40, 500))
    dataset = {"a": lognormal(41, 300), "b": lognormal(42, 200)}
    observed = check.collect(monitor, Recorder(buckets=[live, live]), "ns", NOW, dataset)
    assert sorted(observed) == ["a", "b"]
    assert [observed[name][0].total for name in ("a", "b")] == [300, 200]


def test_the_drift_summary_names_only_the_features_that_drifted() -> None:
    shifted = histograms(lognormal(14, 2000), lognormal(15, 2000, mu=4.0))
    steady = histograms(lognormal(16, 2000), lognormal(17, 2000))
    verdict = check.judge(spec(features=features("a", "b")), {"a": shifted, "b": steady}, now=NOW)
    a = verdict.features[0]
    assert verdict.features[1].statistic is not None and not verdict.features[1].drifted
    assert verdict.summary() == f"drift in a (psi {a.statistic:.3g} >= {a.threshold}, {a.drift_type})"


def test_the_summary_gives_each_missing_features_reason() -> None:
    empty = (Histogram.from_cumulative(BOUNDS, [0] * 11), Histogram.from_cumulative(BOUNDS, [0] * 11))
    verdict = check.judge(spec(features=features("a", "b")), {"a": empty, "b": empty}, now=NOW)
    reason = "0 baseline and 0 current samples; need 100 each"
    assert verdict.summary() == f"no verdict for a, b (a: {reason}; b: {reason})"
    result = verdict.features[0]
    assert (result.statistic, result.p_value, result.threshold, result.scale_ratio) == (None, None, "", None)


def test_a_distance_tests_threshold_is_the_floor_it_is_judged_by() -> None:
    base, current = lognormal(18, 3000), lognormal(19, 4000, mu=3.5)
    pair = {"a": histograms(base, current)}
    drifted = check.judge(spec(features=features("a")), pair, now=NOW).features[0]
    assert drifted.drifted and drifted.statistic is not None
    above = f"{drifted.statistic * 1.5:.3f}"
    quiet = check.judge(spec(features=features("a", threshold=above)), pair, now=NOW).features[0]
    assert not quiet.drifted and quiet.floor == f"{float(above):g}" and quiet.statistic == drifted.statistic


def test_status_rounds_the_scale_ratio_to_four_places() -> None:
    pair = histograms(lognormal(18, 3000), lognormal(20, 4000, mu=3.5))
    verdict = judge_feature("psi", *pair, alpha=0.01, floor=DEFAULT_FLOORS["psi"], min_samples=100)
    assert verdict.measure is not None
    assert round(verdict.measure.scale_ratio, 4) != round(verdict.measure.scale_ratio, 5)
    result = check.judge(spec(), {"prompt-tokens": pair}, now=NOW).features[0]
    assert result.scale_ratio == round(verdict.measure.scale_ratio, 4)


def test_a_continuing_episode_keeps_a_sudden_or_recurring_pattern() -> None:
    # this history alone says recurring: drifted, quiet, drifted again
    back = history((5400, 0.5, 0.01, True, "location", 1.2), (3600, 0.001, 0.01, False, "", 0.0))
    back.history.append(
        back.history[0].model_copy(update={"time": format_time(NOW - timedelta(seconds=1800))})
    )
    back.drifted, back.drift_pattern = True, "sudden"
    assert check.judge(spec(), drifted_now(), [back], NOW).features[0].drift_pattern == "sudden"
    # a drifted entry without a pattern (never written by this release) gets one worked out
    back.drift_pattern = ""
    assert check.judge(spec(), drifted_now(), [back], NOW).features[0].drift_pattern == "recurring"
    # this one alone says sudden: one drifted check
    once = history((1800, 0.5, 0.01, True, "location", 1.2))
    once.drift_pattern = "recurring"
    assert check.judge(spec(), drifted_now(), [once], NOW).features[0].drift_pattern == "recurring"


def test_a_check_without_a_statistic_or_threshold_ends_a_rising_run() -> None:
    rising = history(
        (5400, 0.006, 0.01, False, "", 0.1),
        (3600, 0.007, 0.01, False, "", 0.1),
        (1800, 0.008, 0.01, False, "", 0.2),
    )
    assert check.judge(spec(), drifted_now(), [rising], NOW).features[0].drift_pattern == "gradual"
    for unknown in ({"statistic": None, "threshold": 1.2}, {"threshold": 0.0}):
        latest = rising.model_copy(deep=True)
        latest.history[-1] = latest.history[-1].model_copy(update=unknown)
        assert check.judge(spec(), drifted_now(), [latest], NOW).features[0].drift_pattern == "sudden"


def test_a_csv_column_may_be_named_with_a_capital_x() -> None:
    assert column(parse_dataset("X,y\n1,2\n3,4\n"), "X").tolist() == [1, 3]


def test_a_report_without_a_statistic_leaves_its_cells_empty() -> None:
    empty = (Histogram.from_cumulative(BOUNDS, [0] * 11), Histogram.from_cumulative(BOUNDS, [0] * 11))
    verdict = check.judge(spec(), {"prompt-tokens": empty}, now=NOW)
    page = render_report("t", verdict, {"prompt-tokens": empty}, "b", "c")
    assert "<tr><td>prompt-tokens</td><td>psi</td><td></td><td></td><td></td><td>no</td>" in page


class _Text(HTMLParser):
    """Where a page's text lies: (innermost open element, text)."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.text: list[tuple[str, str]] = []
        self.first = ""

    def handle_decl(self, decl: str) -> None:
        self.first = self.first or f"<!{decl}>"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.first = self.first or f"<{tag}>"
        if tag not in ("meta", "img", "br"):
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open.pop() == tag

    def handle_data(self, data: str) -> None:
        self.first = self.first or data
        self.text.append((self.open[-1] if self.open else "", data))


def test_the_report_is_one_html_page_with_text_only_where_it_is_shown() -> None:
    shifted = histograms(lognormal(26, 2000), lognormal(27, 12000, mu=4.0))
    samples = (lognormal(30, 500), lognormal(31, 500, mu=3.5))
    monitor = spec(features=[{"name": "a", "source": TOKENS}, {"name": "q", "source": TOKENS}])
    observed = {"a": shifted, "q": samples}
    page = render_report("drift", check.judge(monitor, observed, now=NOW), observed, "b", "c")
    parsed = _Text()
    parsed.feed(page)
    parsed.close()
    assert parsed.first == "<!doctype html>" and parsed.open == []
    assert {where for where, _ in parsed.text} == {"title", "style", "h1", "b", "p", "th", "td", "h2"}
    (style,) = [text for where, text in parsed.text if where == "style"]
    assert style.startswith("body{")


def test_the_plot_puts_each_windows_bucket_shares_beside_the_others_on_all_bounds() -> None:
    baseline = Histogram.from_cumulative([1, 5, INF], [2, 6, 8])  # counts 2, 4, 2
    current = Histogram.from_cumulative([1, 2, 5, INF], [1, 1, 3, 4])  # counts 1, 0, 2, 1
    labels, ((b_label, b_colour, b_x, b_share), (c_label, c_colour, c_x, c_share)) = bars(baseline, current)
    assert labels == ["≤1", "≤2", "≤5", "+Inf"]
    assert (b_label, b_colour, c_label, c_colour) == ("baseline", BASELINE_COLOUR, "current", CURRENT_COLOUR)
    # the baseline has no bar at le=2: it lacks the bucket
    assert b_x.tolist() == pytest.approx([-0.2, 1.8, 2.8]) and b_share.tolist() == [0.25, 0.5, 0.25]
    assert c_x.tolist() == pytest.approx([0.2, 1.2, 2.2, 3.2]) and c_share.tolist() == [0.25, 0, 0.5, 0.25]
    _, (_, (_, _, _, none)) = bars(baseline, Histogram.from_cumulative([1, 5, INF], [0, 0, 0]))
    assert none.tolist() == [0, 0, 0]
    _, (_, (_, _, _, one)) = bars(baseline, Histogram.from_cumulative([1, 5, INF], [0, 1, 1]))
    assert one.tolist() == [0, 1, 0]  # a single request is its window's whole share


def test_the_plot_bins_samples_over_their_middle_ninety_nine_percent() -> None:
    baseline, current = np.arange(1.0, 201.0), np.arange(101.0, 301.0)
    (b_label, b_colour, centres, b_share), (c_label, c_colour, c_centres, c_share) = steps(baseline, current)
    low, high = np.percentile(np.concatenate([baseline, current]), [0.5, 99.5])
    width = (high - low) / 30
    assert (b_label, b_colour, c_label, c_colour) == ("baseline", BASELINE_COLOUR, "current", CURRENT_COLOUR)
    assert centres.tolist() == pytest.approx([low + width * (i + 0.5) for i in range(30)])
    assert c_centres.tolist() == centres.tolist()
    assert b_share.sum() == pytest.approx(1) and c_share.sum() == pytest.approx(1)
    assert b_share[:10].sum() > 0.45 and b_share[21:].sum() == 0 and c_share[:9].sum() == 0
    # one value everywhere: one unit wide; a single sample is its whole share
    (_, _, centres, share), (_, _, _, single) = steps(np.full(5, 7.0), np.array([7.0]))
    assert centres[0] == pytest.approx(7 + 1 / 60) and centres[-1] == pytest.approx(8 - 1 / 60)
    assert share[0] == 1 and single[0] == 1
