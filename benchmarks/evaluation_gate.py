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

What any test can do: per prompt the difference is -1, 0 or 1, so a trial is the counts of
prompts that got worse and better. For the drop against the equal model whose same share of
prompts changes (or any other share: the smallest answer is kept), the Neyman-Pearson lemma gives
the most powerful 5%-level test of that null; its power, computed exactly over every pair of
counts, bounds the detection of *every* valid test, this gate's included. Beside it: the Wilcoxon
rule's own false rejection and detection, computed exactly, not sampled (on differences in {-1, 0,
1} scipy's Wilcoxon is the sign test's normal approximation on the changed prompts, checked here
against the gate's own code) and the exact sign (McNemar) test's, and how many prompts the bound
needs to reach 95% (normal approximation).

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


def counts_pmf(n: int, better: float, worse: float) -> np.ndarray:
    """P(changed = d, worse = w) at [d, w]: the trinomial of n prompts, as changed and its split."""
    from scipy import stats

    changed = better + worse
    table = np.zeros((n + 1, n + 1))
    by_changed = stats.binom.pmf(np.arange(n + 1), n, changed)
    for d in range(n + 1):
        table[d, : d + 1] = by_changed[d] * stats.binom.pmf(np.arange(d + 1), d, worse / changed)
    return table


def most_powerful(n: int, better: float, worse: float, alpha: float = 0.05) -> float:
    """The power of the Neyman-Pearson test of each equal null (better = worse = q / 2) against
    this alternative, least over q: no level-alpha test detects the alternative more often."""
    alternative = counts_pmf(n, better, worse).ravel()
    changed = better + worse
    bound = 1.0
    for q in np.linspace(0.5 * changed, 1.5 * changed, 21):
        null = counts_pmf(n, q / 2, q / 2).ravel()
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(null > 0, alternative / null, np.inf)
        order = np.argsort(-ratio, kind="stable")
        spent = np.cumsum(null[order])
        k = int(np.searchsorted(spent, alpha))  # the first outcome that would overspend alpha
        left = alpha - (spent[k - 1] if k else 0.0)
        power = alternative[order][:k].sum() + left / null[order][k] * alternative[order][k]
        bound = min(bound, float(power))
    return bound


def wilcoxon_rule(n: int, margin: float, alpha: float = 0.05) -> np.ndarray:
    """Where the gate rejects, at [changed, worse]: Wilcoxon's p < alpha (its normal approximation,
    here z = (better - worse) / sqrt(changed)) and the mean difference below -margin."""
    from scipy import stats

    changed = np.arange(n + 1)[:, None]
    worse = np.arange(n + 1)[None, :]
    better = changed - worse
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (better - worse) / np.sqrt(changed)
    rejects = (worse <= changed) & (changed > 0) & (z < stats.norm.ppf(alpha))
    return rejects & ((better - worse) / n < -margin)


def exact_sign_rule(n: int, margin: float, alpha: float = 0.05) -> np.ndarray:
    """The exact sign (McNemar) test instead: P(at least this many worse | changed, 1/2) < alpha."""
    from scipy import stats

    changed = np.arange(n + 1)[:, None]
    worse = np.arange(n + 1)[None, :]
    rejects = (worse <= changed) & (changed > 0) & (stats.binom.sf(worse - 1, changed, 0.5) < alpha)
    return rejects & ((changed - 2 * worse) / n < -margin)


def check_wilcoxon_rule(margin: float) -> None:
    """The exact figures are the gate's only if its code rejects where ``wilcoxon_rule`` does."""
    scorer = ScorerSpec(
        name="exact", type="exactMatch", compare_with_stable=PairedComparison(max_regression=str(margin))
    )
    rule = wilcoxon_rule(PROMPTS, margin)
    for changed, worse in ((5, 5), (60, 38), (105, 60), (105, 61), (110, 70), (40, 30), (200, 110)):
        canary = [0.0] * worse + [1.0] * (changed - worse) + [1.0] * (PROMPTS - changed)
        stable = [1.0] * worse + [0.0] * (changed - worse) + [1.0] * (PROMPTS - changed)
        failed = judge_scorer(scorer, list(canary), list(stable)).phase == "Failed"
        assert failed == bool(rule[changed, worse]), (changed, worse)


def prompts_for(better: float, worse: float, power: float = 0.95, alpha: float = 0.05) -> int:
    """Prompts a one-sided 5%-level test needs to detect the drop this often (normal approximation
    of the bound: the changed share q, the drop delta, the variance q under the null)."""
    from scipy import stats

    changed, drop = better + worse, worse - better
    spread = stats.norm.ppf(1 - alpha) * changed**0.5 + stats.norm.ppf(power) * (changed - drop**2) ** 0.5
    return int(np.ceil((spread / drop) ** 2))


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
    print("maxRegression 0.02, alpha 0.05 (targets: false rejection <= 5%, detection >= 95%);")
    print("'best possible': the detection no valid 5%-level test exceeds at 500 prompts (see the docstring):")
    print(
        "  test             churn (prompts that change)  false rejection (equal)  detection (5-point drop)"
        "  best possible"
    )
    bounds = {}
    for churn_b in (0.1, 0.2, 0.4):
        better = (1 - STABLE_ACCURACY) * churn_b
        bounds[churn_b] = most_powerful(PROMPTS, better, better + 0.05)
    for test in ("wilcoxon", "pairedBootstrap"):
        for churn_b in (0.1, 0.2, 0.4):
            false_rejection, detection = rates(args.trials, churn_b, test)
            changed = 2 * (1 - STABLE_ACCURACY) * churn_b
            print(
                f"  {test:<15}  {changed:>26.0%}  {false_rejection:>23.1%}  {detection:>24.1%}"
                f"  {bounds[churn_b]:>13.1%}"
            )
    check_wilcoxon_rule(0.02)
    print("\nExactly, over every pair of counts (no sampling): the Wilcoxon rule and the exact sign test")
    print(
        "  churn  rule             false rejection (equal)  detection (5-point drop)  best possible"
        "  prompts for 95%"
    )
    rules = {"wilcoxon": wilcoxon_rule(PROMPTS, 0.02), "exact sign test": exact_sign_rule(PROMPTS, 0.02)}
    for churn_b in (0.1, 0.2, 0.4):
        better = (1 - STABLE_ACCURACY) * churn_b
        equal, drop = counts_pmf(PROMPTS, better, better), counts_pmf(PROMPTS, better, better + 0.05)
        for name, rule in rules.items():
            print(
                f"  {2 * better:>5.0%}  {name:<15}  {float((equal * rule).sum()):>23.2%}"
                f"  {float((drop * rule).sum()):>24.1%}  {bounds[churn_b]:>13.1%}"
                f"  {prompts_for(better, better + 0.05):>15}"
            )


if __name__ == "__main__":
    main()
