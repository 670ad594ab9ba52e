"""The drift statistics against Evidently: speed on 1M vs 1M samples x 10 features, and detection
power at a fixed 5% false-positive rate.

Speed: our sample path (all five tests per feature on the raw samples), our histogram path (the
tests on vLLM-style bucket counts, which is what Prometheus hands over; binning the raw samples is
timed apart), and Evidently's DataDriftPreset on the same frames.

Power: for each shift, R trials of baseline against current. Each method's statistic is
calibrated on R null trials so that exactly 5% of them would alarm; the table gives the share of
shifted trials above that threshold (a fair point on each ROC curve), then each method's own
default decision rates. Evidently's statistic is the per-column drift score of its own
DataDriftPreset (normalised Wasserstein above 1000 rows), with every trial a column of one report.

Evidently is a benchmark-only dependency, kept out of the project's environment:
    python3 -m venv .bench && .bench/bin/pip install -e . evidently "pandas<2.3"
    .bench/bin/python benchmarks/drift_vs_evidently.py [--rows 1000000] [--trials 200]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from llmops_operator.statistics.drift import (
    TESTS,
    SamplePair,
    judge_feature,
    judge_pair,
    ks_samples,
    psi,
    wasserstein_samples,
)
from llmops_operator.statistics.histogram import Histogram

BOUNDS = np.array([-3.0, -2.0, -1.5, -1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, np.inf])


def evidently_scores(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, float]:
    from evidently import Report
    from evidently.presets import DataDriftPreset

    snapshot = Report([DataDriftPreset()]).run(current, reference).dict()
    scores = {}
    for metric in snapshot["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith("ValueDrift"):
            scores[config["column"]] = float(metric["value"])
    return scores


def evidently_is_p_value(rows: int) -> bool:
    """Evidently's default for numeric columns: KS (a p-value) up to 1000 rows, else a distance."""
    return rows <= 1000


def speed(rows: int, features: int) -> None:
    rng = np.random.default_rng(0)
    baseline = {f"f{i}": rng.normal(size=rows) for i in range(features)}
    current = {f"f{i}": rng.normal(loc=0.05 * i, size=rows) for i in range(features)}
    started = time.perf_counter()
    for name in baseline:
        pair = SamplePair(baseline[name], current[name])  # what a feature's check prepares once
        for test in TESTS:
            judge_pair(test, pair, alpha=0.01 / features)
    samples_s = time.perf_counter() - started
    started = time.perf_counter()
    histograms = {
        name: (Histogram.from_samples(baseline[name], BOUNDS), Histogram.from_samples(current[name], BOUNDS))
        for name in baseline
    }
    binning_s = time.perf_counter() - started
    started = time.perf_counter()
    for base, cur in histograms.values():
        for test in TESTS:
            judge_feature(test, base, cur, alpha=0.01 / features)
    histogram_s = time.perf_counter() - started
    reference_frame, current_frame = pd.DataFrame(baseline), pd.DataFrame(current)
    started = time.perf_counter()
    evidently_scores(reference_frame, current_frame)
    evidently_s = time.perf_counter() - started
    print(f"speed: {features} features, {rows:,} vs {rows:,} samples")
    print(f"  ours, samples (all five tests)          {samples_s:8.2f} s")
    binning = f"(+ {binning_s:.2f} s binning)"
    print(f"  ours, histograms (all five tests)       {histogram_s * 1000:8.2f} ms  {binning}")
    print(f"  Evidently DataDriftPreset               {evidently_s:8.2f} s")
    print(f"  speed-up: samples {evidently_s / samples_s:.1f}x, histograms {evidently_s / histogram_s:,.0f}x")


Statistic = Callable[[np.ndarray, np.ndarray], float]


def ours() -> dict[str, Statistic]:
    return {
        "KS (samples)": lambda b, c: ks_samples(b, c).statistic,
        "PSI (histogram)": lambda b, c: (
            psi(Histogram.from_samples(b, BOUNDS), Histogram.from_samples(c, BOUNDS)).statistic
        ),
        "Wasserstein (samples)": lambda b, c: wasserstein_samples(b, c).statistic,
    }


def power(rows: int, trials: int) -> None:
    rng = np.random.default_rng(1)
    shifts: list[tuple[str, float, float]] = [("mean +0.1 sd", 0.1, 1.0), ("mean +0.2 sd", 0.2, 1.0)]
    shifts += [("mean +0.3 sd", 0.3, 1.0), ("mean +0.5 sd", 0.5, 1.0), ("mean +1.0 sd", 1.0, 1.0)]
    shifts += [("sd x1.25", 0.0, 1.25), ("sd x1.5", 0.0, 1.5)]

    def draw(loc: float, scale: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
        base = [rng.normal(size=rows) for _ in range(trials)]
        cur = [rng.normal(loc=loc, scale=scale, size=rows) for _ in range(trials)]
        return base, cur

    def evidently_column_scores(base: list[np.ndarray], cur: list[np.ndarray]) -> np.ndarray:
        reference = pd.DataFrame({f"t{i}": b for i, b in enumerate(base)})
        current = pd.DataFrame({f"t{i}": c for i, c in enumerate(cur)})
        scores = evidently_scores(reference, current)
        values = np.array([scores[f"t{i}"] for i in range(len(base))])
        return -values if evidently_is_p_value(rows) else values  # larger = more drift

    methods = ours()
    null_base, null_cur = draw(0.0, 1.0)
    thresholds = {
        name: np.quantile([f(b, c) for b, c in zip(null_base, null_cur, strict=True)], 0.95)
        for name, f in methods.items()
    }
    evidently_null = evidently_column_scores(null_base, null_cur)
    evidently_threshold = np.quantile(evidently_null, 0.95)
    evidently_default = (evidently_null < -0.05) if evidently_is_p_value(rows) else (evidently_null >= 0.1)
    ours_default_fp = np.mean(
        [
            judge_feature("psi", Histogram.from_samples(b, BOUNDS), Histogram.from_samples(c, BOUNDS)).drifted
            for b, c in zip(null_base, null_cur, strict=True)
        ]
    )
    names = [*methods, "Evidently (its test)"]
    print(f"power: detection rate at 5% false positives, {trials} trials of {rows:,} vs {rows:,} samples")
    print("  " + f"{'shift':<14}" + "".join(f"{name:>24}" for name in names))
    for label, loc, scale in shifts:
        base, cur = draw(loc, scale)
        rates = [
            np.mean([f(b, c) > thresholds[name] for b, c in zip(base, cur, strict=True)])
            for name, f in methods.items()
        ]
        rates.append(float(np.mean(evidently_column_scores(base, cur) > evidently_threshold)))
        print("  " + f"{label:<14}" + "".join(f"{rate:>24.2f}" for rate in rates))
    print(
        f"  default thresholds on identical distributions: ours (PSI, alpha 0.01 and its floor) alarms "
        f"{ours_default_fp:.1%}, Evidently alarms {float(np.mean(evidently_default)):.1%}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=10)
    parser.add_argument("--power-rows", type=int, default=2000)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--part", choices=["speed", "power", "both"], default="both")
    args = parser.parse_args()
    if args.part in ("speed", "both"):
        speed(args.rows, args.features)
    if args.part in ("power", "both"):
        power(args.power_rows, args.trials)


if __name__ == "__main__":
    main()
