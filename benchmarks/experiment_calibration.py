"""Calibration of CanaryRollout's experiment step and bandit, over seeded simulated trials.

Experiment (fixed split, the comparison ``statistics.proportions.compare_rates`` makes at the end):
each trial draws successes ~ Binomial(n, p) per side and records the decision at alpha 0.05.

    false alarm        equal rates: share of trials decided CanaryWorse (a needless rollback),
                       and share decided anything but NoDifference (two-sided level)
    power              canary rate lower by ``--drop`` (absolute): share decided CanaryWorse
    coverage           share of intervals that contain the true difference

Bandit (``statistics.thompson.bandit_step`` as the controller calls it each interval): per
interval ``--requests`` requests split by the current weight, Bernoulli rewards, the posterior over
everything since the start, weight clamped to [min, max]. Reported: the final weight, the share
of trials ending on the better side, the share of time spent on the better arm, bounds kept.

    PYTHONPATH=operator .venv/bin/python benchmarks/experiment_calibration.py [--trials 2000]
"""

from __future__ import annotations

import argparse

import numpy as np

from llmops_operator.statistics.proportions import compare_rates
from llmops_operator.statistics.thompson import bandit_step


def experiment(trials: int, n: int, stable_rate: float, canary_rate: float, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    worse = better = covered = 0
    for _ in range(trials):
        c, s = int(rng.binomial(n, canary_rate)), int(rng.binomial(n, stable_rate))
        result = compare_rates((c, n), (s, n), alpha=0.05)
        worse += result.decision == "CanaryWorse"
        better += result.decision == "CanaryBetter"
        covered += result.low <= canary_rate - stable_rate <= result.high
    return {"worse": worse / trials, "any": (worse + better) / trials, "coverage": covered / trials}


def bandit(
    trials: int,
    stable_rate: float,
    canary_rate: float,
    rounds: int,
    requests: int,
    bounds: tuple[int, int],
    seed: int,
) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    low, high = bounds
    finals, on_better, kept = [], [], True
    better_is_canary = canary_rate > stable_rate
    for trial in range(trials):
        weight, counts = 50, [[0, 0], [0, 0]]  # canary, stable: successes, trials
        share_better = 0.0
        for round_ in range(rounds):
            to_canary = int(rng.binomial(requests, weight / 100))
            for side, (sent, rate) in enumerate(
                ((to_canary, canary_rate), (requests - to_canary, stable_rate))
            ):
                counts[side][0] += int(rng.binomial(sent, rate))
                counts[side][1] += sent
            share_better += (weight if better_is_canary else 100 - weight) / 100 / rounds
            step = bandit_step(
                (counts[0][0], counts[0][1]),
                (counts[1][0], counts[1][1]),
                low,
                high,
                seed=trial * 1000 + round_,
            )
            weight = step.weight
            kept = kept and low <= weight <= high
        finals.append(weight)
        on_better.append(share_better)
    final = np.array(finals)
    ended_better = np.mean(final > 50) if better_is_canary else np.mean(final < 50)
    return {
        "final_mean": float(final.mean()),
        "final_sd": float(final.std()),
        "ended_on_better": float(ended_better) if canary_rate != stable_rate else float("nan"),
        "time_on_better": float(np.mean(on_better)),
        "bounds_kept": float(kept),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--bandit-trials", type=int, default=300)
    parser.add_argument("--rate", type=float, default=0.20, help="the stable's success rate")
    parser.add_argument("--drop", type=float, default=0.03)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--requests", type=int, default=200, help="requests per bandit interval")
    args = parser.parse_args()
    p = args.rate
    print(f"experiment: alpha 0.05, stable rate {p:.2f}, {args.trials} trials per row")
    print(
        f"{'n per side':>10} {'false CanaryWorse':>18} {'any decision':>13} {'coverage':>9} "
        f"{f'power (-{args.drop:.2f})':>14}"
    )
    for n in (100, 500, 2000, 5000):
        null = experiment(args.trials, n, p, p, seed=n)
        drop = experiment(args.trials, n, p, p - args.drop, seed=n + 1)
        print(
            f"{n:>10} {null['worse']:>18.3f} {null['any']:>13.3f} {null['coverage']:>9.3f} "
            f"{drop['worse']:>14.3f}"
        )
    print(
        f"\nbandit: Thompson sampling, {args.rounds} intervals of {args.requests} requests, "
        f"bounds [10, 90], start at 50, {args.bandit_trials} trials per row"
    )
    print(
        f"{'canary rate':>11} {'final mean':>10} {'final sd':>8} {'ended better':>12} {'time on better':>14} "
        f"{'bounds kept':>11}"
    )
    for canary in (p, p + 0.05, p - 0.05, p + 0.02):
        row = bandit(
            args.bandit_trials, p, canary, args.rounds, args.requests, (10, 90), seed=int(canary * 1000)
        )
        print(
            f"{canary:>11.2f} {row['final_mean']:>10.1f} {row['final_sd']:>8.1f} "
            f"{row['ended_on_better']:>12.3f} {row['time_on_better']:>14.3f} {row['bounds_kept']:>11.0f}"
        )


if __name__ == "__main__":
    main()
