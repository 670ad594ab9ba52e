"""False alarms and power of the CanaryRollout fast-fail watch, over seeded simulated series.

Each trial is one rollout step of a canary watched by the operator's own code
(``rollout.failfast.sample_of`` and the restarted mSPRTs of ``statistics.sequential.Watch``):
looks over non-overlapping windows of ``failFast.interval`` (interval 10 s, so 1.67 s), five looks
per interval (the sixth window is the full measurement's), for ``INTERVALS`` intervals. Inside a
window, requests arrive as a Poisson stream, latencies are log-normal and bucketed with vLLM's e2e
buckets, and the p95 is Prometheus' ``histogram_quantile`` (linear inside the bucket); errors are
Bernoulli. A "today" column gives how often the full-interval measurement of the same series fails
at the interval the canary turns bad in (the verdict without fast fail). Looks to fire count from
the look the canary turns bad (the step's start unless the scenario says otherwise). Prints one
table row per scenario.

    PYTHONPATH=operator .venv/bin/python benchmarks/fail_fast_calibration.py [--trials 2000]
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

import numpy as np

from llmops_operator.api.canaryrollout import MetricCheck
from llmops_operator.rollout import failfast
from llmops_operator.statistics import sequential

BUCKETS = np.array([0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 60.0, np.inf])
WINDOW_SECONDS = 10 / 6
LOOKS_PER_INTERVAL = 5
INTERVALS = 6  # a step of six intervals: 30 looks
RATE = 10.0  # canary requests per second (half of 20 rps)
SPREAD = 0.35  # log-normal sigma of request latency


def p95_ms(latencies: np.ndarray) -> float:
    """Prometheus' histogram_quantile(0.95) over vLLM's buckets, in ms (NaN without requests)."""
    if latencies.size == 0:
        return math.nan
    counts = np.array([(latencies <= bound).sum() for bound in BUCKETS], dtype=float)
    rank = 0.95 * counts[-1]
    index = int(np.searchsorted(counts, rank))
    if index == len(BUCKETS) - 1:
        return float(BUCKETS[-2]) * 1000
    low = 0.0 if index == 0 else BUCKETS[index - 1]
    below = 0.0 if index == 0 else counts[index - 1]
    inside = counts[index] - below
    return float(low + (BUCKETS[index] - low) * (rank - below) / inside) * 1000


@dataclass(frozen=True)
class Scenario:
    name: str
    kind: str  # latency, errors, baseline
    median_ms: float = 150.0  # the canary's median latency
    stable_median_ms: float = 150.0
    error_rate: float = 0.002
    rate: float = RATE
    onset: int = 0  # healthy looks (the defaults above) before the canary turns as described


LATENCY = MetricCheck(name="latency", preset="e2eLatencyP95", max="400")
ERRORS = MetricCheck(name="errors", preset="errorRate", max="1")
BASELINE = MetricCheck(name="latency-vs-stable", preset="e2eLatencyP95", baseline={})
AT_BOUND_MEDIAN = 400 / math.exp(1.645 * SPREAD)  # a true p95 of exactly 400 ms

SCENARIOS = [
    Scenario("healthy latency (p95 ~270 ms, max 400)", "latency"),
    Scenario("healthy latency at the bound (p95 400 ms)", "latency", median_ms=AT_BOUND_MEDIAN),
    Scenario("healthy errors (0.2%, max 1%)", "errors"),
    Scenario("healthy errors at the bound (1%)", "errors", error_rate=0.01),
    Scenario("healthy errors at the bound, 2 req/s", "errors", error_rate=0.01, rate=2.0),
    Scenario("healthy baseline (canary = stable)", "baseline"),
    Scenario("healthy baseline, 2 req/s", "baseline", rate=2.0),
    Scenario("mild latency (p95 1.15x the bound)", "latency", median_ms=AT_BOUND_MEDIAN * 1.15),
    Scenario("mild latency 1.3x (baseline)", "baseline", median_ms=195),
    Scenario("severe latency 3x (threshold)", "latency", median_ms=450),
    Scenario("severe latency 3x (baseline)", "baseline", median_ms=450),
    Scenario("severe errors 20%", "errors", error_rate=0.2),
    Scenario("severe errors 20%, 2 req/s", "errors", error_rate=0.2, rate=2.0),
    # A canary that turns bad after the step's first look: the case benchmarks/argo_peer.py times;
    # and one that turns bad at the second interval, after a full interval of healthy looks.
    Scenario("severe latency 3x after 1 healthy look", "latency", median_ms=450, onset=1),
    Scenario("severe errors 20% after 1 healthy look", "errors", error_rate=0.2, onset=1),
    Scenario("severe latency 3x after 5 healthy looks", "latency", median_ms=450, onset=5),
    Scenario("severe errors 20% after 5 healthy looks", "errors", error_rate=0.2, onset=5),
]


def window(rng: np.random.Generator, median_ms: float, rate: float) -> np.ndarray:
    n = rng.poisson(rate * WINDOW_SECONDS)
    return np.exp(np.log(median_ms / 1000) + SPREAD * rng.standard_normal(n))


def trial(rng: np.random.Generator, s: Scenario) -> tuple[int | None, bool]:
    """(the look that fired, counted from the onset, or None; whether today's first full
    measurement fails)."""
    metric = {"latency": LATENCY, "errors": ERRORS, "baseline": BASELINE}[s.kind]
    side = failfast.side_of(metric)
    margin = failfast.margin_of(metric, side)
    floor = failfast.floor_of(metric, side)
    watch = sequential.Watch()
    fired: int | None = None
    first_interval: list[np.ndarray] = []
    errors = requests = 0
    healthy = Scenario("", s.kind)
    first = s.onset - s.onset % LOOKS_PER_INTERVAL  # the first look of the interval the onset is in
    measured = range(first, first + LOOKS_PER_INTERVAL)
    for look in range(LOOKS_PER_INTERVAL * INTERVALS):
        now = healthy if look < s.onset else s
        canary = window(rng, now.median_ms, now.rate)
        if look in measured:
            first_interval.append(canary)
        if s.kind == "errors":
            failed = int(rng.binomial(canary.size, now.error_rate))
            if look in measured:
                errors, requests = errors + failed, requests + canary.size
            values = [100.0 * failed / canary.size] if canary.size else []
        elif s.kind == "latency":
            values = [p95_ms(canary)]
        else:
            stable = window(rng, s.stable_median_ms, RATE)
            values = [p95_ms(canary) / p95_ms(stable)]
        if fired is not None:  # the looks left only complete today's measurement
            if look >= measured.stop:
                break
            continue
        if look and look % LOOKS_PER_INTERVAL == 0:  # a full measurement came before this look
            watch = watch.restarted(margin)
        y = failfast.sample_of(metric, side, values)
        if y is None:
            continue
        watch = watch.observe(y)
        if watch.verdict(margin, floor=floor).fired:
            fired = look + 1 - s.onset
    if s.kind == "errors":
        today = requests > 0 and 100.0 * errors / requests > 1.0
    elif s.kind == "latency":
        today = p95_ms(np.concatenate(first_interval)) > 400
    else:
        today = False  # the Mann-Whitney judge is not simulated here
    return fired, today


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=20261202)
    args = parser.parse_args()
    print(
        f"mSPRT alpha={sequential.ALPHA} tau={sequential.MIXTURE_SD} sigma_floor="
        f"{math.sqrt(sequential.VARIANCE_FLOOR):g} (errors {math.sqrt(failfast.RARE_EVENT_FLOOR):.2f}); "
        f"windows {WINDOW_SECONDS:.2f} s, "
        f"{LOOKS_PER_INTERVAL} looks per interval, {INTERVALS} intervals per step, "
        f"{RATE:g} req/s unless said, "
        f"{args.trials} trials per row"
    )
    header = (
        f"{'scenario':<44} {'fired':>7} {'<=1 interval':>13} {'median looks':>13} {'today 1st fails':>16}"
    )
    print(header)
    print("-" * len(header))
    for index, scenario in enumerate(SCENARIOS):
        rng = np.random.default_rng([args.seed, index])
        results = [trial(rng, scenario) for _ in range(args.trials)]
        looks = [f for f, _ in results if f is not None]
        fired = len(looks) / args.trials
        early = sum(1 for f in looks if f <= LOOKS_PER_INTERVAL) / args.trials
        median = f"{np.median(looks):.0f}" if looks else "-"
        today = sum(1 for _, t in results if t) / args.trials
        today_text = "-" if scenario.kind == "baseline" else f"{today:.1%}"
        print(f"{scenario.name:<44} {fired:>7.2%} {early:>13.2%} {median:>13} {today_text:>16}")


if __name__ == "__main__":
    main()
