"""The evaluation gate: how fast the evaluator asks, and how often its paired comparison errs.

Throughput: the evaluator's own client (evaluation/runner.py: bounded concurrency, timeout and
retries per request) against the vLLM-compatible simulator answering from a fixture (TTFT 40 ms,
10 ms per token, answers of 3 tokens), prompts per second at concurrency 1, 8 and 32.

Statistics: seeded trials of 500 prompts scored by exact match, the stable right on 80% of them.
A retrained model does not make the same mistakes: on each prompt the stable got right the canary
is wrong with probability a, on each the stable got wrong it is right with probability b (the
churn). Equal: a = (1 - 0.8) b / 0.8, so both are right 80% of the time; 5-point drop: a raised
until the canary's mean is 5 points lower at the same b. The gate (compareWithStable,
maxRegression 0.02, alpha 0.05) rejects when p < alpha and the mean difference is below -0.02.
Targets: false rejection of an equal model <= 5%, detection of a 5-point drop >= 95%.

    PYTHONPATH=operator .venv/bin/python benchmarks/evaluation_gate.py [--trials 200]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.simulator.vllm_sim import Behaviour, VLLMSimulator

from llmops_operator.api.evaluation import EvaluationSpec, PairedComparison, ScorerSpec
from llmops_operator.evaluation.dataset import Record
from llmops_operator.evaluation.runner import Endpoint, answers_of
from llmops_operator.evaluation.verdict import judge_scorer

PROMPTS = 500
STABLE_ACCURACY = 0.8


def throughput(prompts: int) -> list[tuple[int, float]]:
    fixture = {f"What is {i} plus {i}?": json.dumps({"sum": 2 * i}) for i in range(prompts)}
    sim = VLLMSimulator("llama", 0, Behaviour(ttft_ms=40, itl_ms=10), answers=fixture).start()
    records = [Record(prompt=prompt, reference=answer) for prompt, answer in fixture.items()]
    endpoint = Endpoint(f"http://127.0.0.1:{sim.port}", timeout=30, retries=2)
    rows = []
    try:
        for concurrency in (1, 8, 32):
            spec = EvaluationSpec.model_validate(
                {
                    "dataset": {"configMap": {"name": "d", "key": "k"}},
                    "scorers": [{"name": "exact", "type": "exactMatch"}],
                    "concurrency": concurrency,
                }
            )
            started = time.monotonic()
            answers = answers_of(endpoint, records, spec)
            elapsed = time.monotonic() - started
            assert all(answer is not None for answer in answers)
            rows.append((concurrency, len(records) / elapsed))
    finally:
        sim.stop()
    return rows


def trial(
    rng: np.random.Generator, wrong_if_right: float, right_if_wrong: float
) -> tuple[list[float], list[float]]:
    stable = rng.random(PROMPTS) < STABLE_ACCURACY
    flip = rng.random(PROMPTS)
    canary = np.where(stable, flip >= wrong_if_right, flip < right_if_wrong)
    return [float(x) for x in canary], [float(x) for x in stable]


def rates(trials: int, churn_b: float, test: str) -> tuple[float, float]:
    """(false rejection of an equal model, detection of a 5-point drop)."""
    p = STABLE_ACCURACY
    equal_a = (1 - p) * churn_b / p  # as many newly wrong as newly right
    drop_a = ((1 - p) * churn_b + 0.05) / p  # 5 points more newly wrong
    scorer = ScorerSpec(
        name="exact",
        type="exactMatch",
        compare_with_stable=PairedComparison(test=test, max_regression="0.02"),  # type: ignore[arg-type]
    )
    outcome = {}
    for case, a in (("equal", equal_a), ("drop", drop_a)):
        rejected = 0
        for seed in range(trials):
            rng = np.random.default_rng([seed, int(churn_b * 1000), 0 if case == "equal" else 1])
            canary, stable = trial(rng, a, churn_b)
            if judge_scorer(scorer, list(canary), list(stable), seed=seed).phase == "Failed":
                rejected += 1
        outcome[case] = rejected / trials
    return outcome["equal"], outcome["drop"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--prompts", type=int, default=300, help="for the throughput runs")
    args = parser.parse_args()
    print(f"Evaluator throughput against the simulator ({args.prompts} prompts each):")
    print("  concurrency  prompts/s")
    for concurrency, rate in throughput(args.prompts):
        print(f"  {concurrency:>11}  {rate:9.1f}")
    print(
        f"\nGate statistics, {PROMPTS} prompts, {args.trials} seeded trials a cell, stable exact match 0.80,"
    )
    print("maxRegression 0.02, alpha 0.05 (targets: false rejection <= 5%, detection >= 95%):")
    print("  test             churn (prompts that change)  false rejection (equal)  detection (5-point drop)")
    for test in ("wilcoxon", "pairedBootstrap"):
        for churn_b in (0.1, 0.2, 0.4):
            false_rejection, detection = rates(args.trials, churn_b, test)
            changed = 2 * (1 - STABLE_ACCURACY) * churn_b
            print(f"  {test:<15}  {changed:>26.0%}  {false_rejection:>23.1%}  {detection:>24.1%}")


if __name__ == "__main__":
    main()
