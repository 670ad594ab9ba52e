"""Calibration of DriftMonitor's default verdicts: how often each test alarms, per window size,
on samples and on vLLM-layout histograms, with Evidently's defaults on the same samples beside it.

Every cell is the share of seeded trials (baseline window against current window, n vs n) that
the default policy calls drift (alpha 0.01, the test's default floor, one feature). Cases, on a
latent standard normal z:

    no change              both windows z                        target <= 1%
    no change, 2 layouts   histograms only: the current window in another bucket layout
    shift 0.2 sd           current z + 0.2
    sd x1.25               current 1.25 z
    shape                  current bimodal, same mean and variance (+-0.8 plus 0.6 z)
    trivial 0.01 sd        current z + 0.01 (x1.01, 1% of the mean, of the token feature)  target 0%

Samples: z itself. Histograms: prompt lengths exp(ln 200 + z) in vLLM's token buckets (1-2-5 up
to max_model_len 4096; the second layout is max_model_len 8192), or, with ``--latency``, TTFT
exp(ln 0.3 + 0.8 z) seconds in vLLM's TTFT buckets (the second layout: an older vLLM whose
bounds stop at 10 s). Evidently (if importable) runs its DataDriftPreset defaults on the
samples: KS at p < 0.05 up to 1000 rows, normalised Wasserstein >= 0.1 above.

A larger null run (``--part null``, 10,000 trials by default there) measures the histogram path's
false-alarm rate alone at n 200, 2,000 and 20,000 in both the token and the TTFT layout, with
its standard error: the 200-trial table cannot tell 1% from 2%.

Also timed: one check of 10 features at 1M vs 1M samples (every test; and KS alone, the
default) and one of 10 features on histograms.

    PYTHONPATH=operator .venv/bin/python benchmarks/drift_calibration.py [--quick] [--part null]
    (with Evidently: a venv holding evidently, numpy and scipy, same PYTHONPATH)
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from llmops_operator.statistics.drift import TESTS, SamplePair, TestName, judge_feature, judge_pair
from llmops_operator.statistics.histogram import Histogram


def one_two_five(max_value: float) -> np.ndarray:
    """vLLM's token-count bounds: 1, 2, 5, 10, 20, 50, ... up to max_model_len, then +Inf."""
    bounds, exponent = [], 0
    while True:
        for mantissa in (1, 2, 5):
            value = mantissa * 10**exponent
            if value > max_value:
                return np.array([*bounds, np.inf], dtype=float)
            bounds.append(value)
        exponent += 1


# vLLM's time_to_first_token_seconds bounds; older releases stopped at 10 s
OLD_TTFT_BOUNDS = np.array(
    [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, np.inf]
)
TTFT_BOUNDS = np.concatenate([OLD_TTFT_BOUNDS[:-1], [20.0, 40.0, 80.0, 160.0, 640.0, 2560.0, np.inf]])

Draw = Callable[[np.random.Generator, int], np.ndarray]


def bimodal(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.asarray(rng.choice([-0.8, 0.8], n) + 0.6 * rng.normal(size=n))


CASES: dict[str, Draw] = {
    "no change": lambda rng, n: rng.normal(size=n),
    "no change, 2 layouts": lambda rng, n: rng.normal(size=n),
    "shift 0.2 sd": lambda rng, n: rng.normal(size=n) + 0.2,
    "sd x1.25": lambda rng, n: 1.25 * rng.normal(size=n),
    "shape (same mean, sd)": bimodal,
    "trivial 0.01 sd": lambda rng, n: rng.normal(size=n) + 0.01,
}


def evidently_rates(baselines: list[np.ndarray], currents: list[np.ndarray]) -> float | None:
    """Share of trials Evidently's DataDriftPreset calls drifted, every trial a column."""
    try:
        import pandas as pd
        from evidently import Report
        from evidently.presets import DataDriftPreset
    except ImportError:
        return None
    reference = pd.DataFrame({f"t{i}": b for i, b in enumerate(baselines)})
    current = pd.DataFrame({f"t{i}": c for i, c in enumerate(currents)})
    snapshot = Report([DataDriftPreset()]).run(current, reference).dict()
    rows = len(reference)
    drifted = []
    for metric in snapshot["metrics"]:
        config = metric["config"]
        if config.get("type", "").endswith("ValueDrift"):
            score = float(metric["value"])
            drifted.append(score < 0.05 if rows <= 1000 else score >= 0.1)
    return float(np.mean(drifted)) if drifted else None


def calibrate(
    sizes: list[int], trials: int, latency: bool, evidently: bool, evidently_rows: int | None
) -> None:
    """``evidently_rows``: above this many rows per window Evidently runs on the no-change case
    only (a report of 200 columns of 200,000 rows takes minutes)."""
    if latency:
        layout, other = TTFT_BOUNDS, OLD_TTFT_BOUNDS

        def feature(z: np.ndarray) -> np.ndarray:
            return np.asarray(np.exp(np.log(0.3) + 0.8 * z))
    else:
        layout, other = one_two_five(4096), one_two_five(8192)

        def feature(z: np.ndarray) -> np.ndarray:
            return np.asarray(np.exp(np.log(200.0) + z))

    header = f"{'n':>7}  {'case':<22} {'path':<10}" + "".join(f"{t:>14}" for t in TESTS)
    print(f"calibration: share of {trials} trials called drift (alpha 0.01, default floors)")
    print(header + (f"{'Evidently':>11}" if evidently else ""))
    for n in sizes:
        for number, (case, draw) in enumerate(CASES.items()):
            rng = np.random.default_rng([n, number])
            baselines = [rng.normal(size=n) for _ in range(trials)]
            currents = [draw(rng, n) for _ in range(trials)]
            for path in ("samples", "histogram"):
                if path == "samples" and case.endswith("2 layouts"):
                    continue
                hits = {test: 0 for test in TESTS}
                for base, cur in zip(baselines, currents, strict=True):
                    if path == "samples":
                        pair = SamplePair(base, cur)
                        for test in TESTS:
                            hits[test] += judge_pair(test, pair).drifted
                        continue
                    current_bounds = other if case.endswith("2 layouts") else layout
                    base_h = Histogram.from_samples(feature(base), layout)
                    cur_h = Histogram.from_samples(feature(cur), current_bounds)
                    for test in TESTS:
                        hits[test] += judge_feature(test, base_h, cur_h).drifted
                cells = "".join(f"{hits[t] / trials:>14.1%}" for t in TESTS)
                extra = ""
                large = evidently_rows is not None and n > evidently_rows and number > 0
                if evidently and path == "samples" and not large:
                    rate = evidently_rates(baselines, currents)
                    extra = f"{rate:>11.1%}" if rate is not None else f"{'-':>11}"
                print(f"{n:>7}  {case:<22} {path:<10}{cells}{extra}", flush=True)


NULL_LAYOUTS: dict[str, tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]] = {
    "tokens": (one_two_five(4096), lambda z: np.asarray(np.exp(np.log(200.0) + z))),
    "ttft": (TTFT_BOUNDS, lambda z: np.asarray(np.exp(np.log(0.3) + 0.8 * z))),
}


def null_rates(sizes: list[int], trials: int) -> None:
    """False-alarm rate of every test on histograms of identical traffic, with its standard error
    at a true rate of 1%."""
    error = (0.01 * 0.99 / trials) ** 0.5
    print(f"null, histograms: share of {trials} trials called drift (standard error at 1%: {error:.2%})")
    print(f"{'layout':<8}{'n':>7}" + "".join(f"{t:>14}" for t in TESTS))
    for number, (name, (bounds, feature)) in enumerate(NULL_LAYOUTS.items()):
        for n in sizes:
            rng = np.random.default_rng([7, n, number])
            hits = {test: 0 for test in TESTS}
            for _ in range(trials):
                base = Histogram.from_samples(feature(rng.normal(size=n)), bounds)
                cur = Histogram.from_samples(feature(rng.normal(size=n)), bounds)
                for test in TESTS:
                    hits[test] += judge_feature(test, base, cur).drifted
            cells = "".join(f"{hits[t] / trials:>14.2%}" for t in TESTS)
            print(f"{name:<8}{n:>7}{cells}", flush=True)


def _timed(run: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds): on shared cores the CPU time is the steadier."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def speed(rows: int, features: int) -> None:
    rng = np.random.default_rng(0)
    baseline = [rng.normal(size=rows) for _ in range(features)]
    current = [rng.normal(loc=0.05 * i, size=rows) for i in range(features)]
    alpha = 0.01 / features

    def every_test() -> None:
        for base, cur in zip(baseline, current, strict=True):
            pair = SamplePair(base, cur)  # sorted once for the five tests
            for test in TESTS:
                judge_pair(test, pair, alpha=alpha)

    def ks_only() -> None:
        for base, cur in zip(baseline, current, strict=True):
            judge_feature("ks", base, cur, alpha=alpha)

    bounds = one_two_five(4096)
    histograms = [
        (Histogram.from_samples(np.exp(5 + b), bounds), Histogram.from_samples(np.exp(5 + c), bounds))
        for b, c in zip(baseline, current, strict=True)
    ]

    def on_histograms(test: TestName) -> Callable[[], None]:
        def run() -> None:
            for base_h, cur_h in histograms:
                judge_feature(test, base_h, cur_h, alpha=alpha)

        return run

    print(f"speed: {features} features, {rows:,} vs {rows:,} samples (wall, CPU)")
    wall, cpu = _timed(every_test)
    print(f"  samples, all five tests per feature   {wall:8.2f} s {cpu:8.2f} s")
    wall, cpu = _timed(ks_only)
    print(f"  samples, KS (the default)             {wall:8.2f} s {cpu:8.2f} s")
    for test in TESTS:
        wall, cpu = _timed(on_histograms(test))
        print(f"  histograms, {test:<14} 10 features  {wall * 1000:8.2f} ms{cpu * 1000:8.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, help="per cell (default 200; 10,000 for --part null)")
    parser.add_argument("--sizes", type=int, nargs="+", help="default 200 2000 200000 (null: 20000)")
    parser.add_argument("--quick", action="store_true", help="n 200 and 2000 only, no timing")
    parser.add_argument("--latency", action="store_true", help="histograms: TTFT layouts")
    parser.add_argument("--no-evidently", action="store_true")
    parser.add_argument("--evidently-rows", type=int, help="above these rows: Evidently on no change only")
    parser.add_argument("--part", choices=["calibration", "speed", "both", "null"], default="both")
    args = parser.parse_args()
    if args.part == "null":
        null_rates(args.sizes or [200, 2000, 20_000], args.trials or 10_000)
        return
    sizes = args.sizes or [200, 2000, 200_000]
    sizes = [n for n in sizes if n <= 2000] if args.quick else sizes
    if args.part in ("calibration", "both"):
        calibrate(sizes, args.trials or 200, args.latency, not args.no_evidently, args.evidently_rows)
    if args.part in ("speed", "both") and not args.quick:
        speed(1_000_000, 10)


if __name__ == "__main__":
    main()
