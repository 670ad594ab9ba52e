"""CanaryRollout's rank judge: exact and permutation p-values for small or tied samples, and the
optional mean-ratio effect size."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from llmops_operator.api.canaryrollout import BaselineComparison
from llmops_operator.rollout.analysis import judge_baseline
from llmops_operator.statistics.mann_whitney import mann_whitney


def brute_force_p(first: list[float], second: list[float]) -> float:
    """Share of all splits of the pooled midranks whose first-sample rank sum is at least ours."""
    ranks = stats.rankdata(first + second)
    observed = ranks[: len(first)].sum()
    sums = [sum(ranks[list(c)]) for c in itertools.combinations(range(len(ranks)), len(first))]
    return float(np.mean([s >= observed - 1e-9 for s in sums]))


def test_three_against_three_is_exact_with_or_without_ties() -> None:
    untied = mann_whitney([4.0, 5.0, 6.0], [1.0, 2.0, 3.0], "greater")
    tied = mann_whitney([4.0, 4.0, 6.0], [1.0, 1.0, 3.0], "greater")
    assert untied.method == tied.method == "exact"
    assert untied.p_value == pytest.approx(1 / 20)  # one split of twenty is this extreme
    # Equally strong (complete separation): the same p-value, ties or not.
    assert tied.p_value == pytest.approx(untied.p_value)
    assert untied.effect == tied.effect == 1.0
    assert stats.mannwhitneyu([4, 4, 6], [1, 1, 3], alternative="greater").pvalue < 0.05  # scipy's normal one


def test_the_exact_p_value_is_the_share_of_splits() -> None:
    first, second = [3.0, 3.0, 5.0, 7.0, 7.0], [1.0, 3.0, 3.0, 4.0, 6.0, 2.0]
    assert mann_whitney(first, second, "greater").p_value == pytest.approx(brute_force_p(first, second))


def test_larger_tied_samples_use_seeded_permutations() -> None:
    rng = np.random.default_rng(3)
    first, second = list(rng.integers(0, 5, 40) + 1.0), list(rng.integers(0, 5, 40) * 1.0)
    once, again = mann_whitney(first, second, "greater"), mann_whitney(first, second, "greater")
    assert once.method == "permutation" and once.p_value == again.p_value
    assert once.p_value == pytest.approx(
        stats.mannwhitneyu(first, second, alternative="greater").pvalue, abs=0.01
    )


def test_a_tiny_tied_canary_that_is_clearly_worse_fails_like_an_untied_one() -> None:
    comparison = BaselineComparison(alpha="0.1")
    stable, worse, worse_tied = [100.0, 101.0, 102.0], [200.0, 201.0, 202.0], [200.0, 200.0, 202.0]
    assert judge_baseline("latency", worse, stable, comparison).phase == "Failed"
    assert judge_baseline("latency", worse_tied, stable, comparison).phase == "Failed"
    # at alpha 0.05 three against three can never be significant (the smallest p is 1/20)
    assert judge_baseline("latency", worse_tied, stable, BaselineComparison()).phase == "Successful"


def test_the_mean_ratio_must_also_be_crossed_when_set() -> None:
    stable = [100.0 + (i % 10) for i in range(60)]
    canary = [104.0 + (i % 10) for i in range(60)]  # ranks clearly higher, means 4% apart
    plain = judge_baseline("latency", canary, stable, BaselineComparison())
    assert plain.phase == "Failed" and "ratio" not in plain.value
    tolerant = judge_baseline("latency", canary, stable, BaselineComparison(mean_ratio="1.1"))
    assert tolerant.phase == "Successful" and "ratio=1.04" in tolerant.value
    strict = judge_baseline("latency", canary, stable, BaselineComparison(mean_ratio="1.02"))
    assert strict.phase == "Failed" and "ratio <= 1.02" in strict.threshold
    throughput = BaselineComparison(direction="higherIsBetter", mean_ratio="0.9")
    slower = [40.0 + i for i in range(20)]
    assert judge_baseline("tps", slower, [50.0 + i for i in range(20)], throughput).phase == "Failed"
