"""Statistics at edges the other tests leave open: MIN_TRIALS on its own value, a p-value's
bounds, the bandit's weight in percent, the rank test's splits, quantiles of one observation or in
the +Inf bucket, and pooling of a window with a single count."""

from __future__ import annotations

import numpy as np
import pytest

from llmops_operator.statistics.histogram import Histogram, pool_sparse
from llmops_operator.statistics.mann_whitney import RANDOM_SPLITS, mann_whitney
from llmops_operator.statistics.proportions import MIN_TRIALS, compare_rates
from llmops_operator.statistics.thompson import bandit_step, probability_better

INF = float("inf")


def test_min_trials_on_either_side_is_enough_to_decide() -> None:
    assert compare_rates((3, MIN_TRIALS), (27, MIN_TRIALS), alpha=0.05).decision == "CanaryWorse"
    assert compare_rates((3, MIN_TRIALS - 1), (27, MIN_TRIALS), alpha=0.05).decision == "Inconclusive"
    assert compare_rates((3, MIN_TRIALS), (27, MIN_TRIALS - 1), alpha=0.05).decision == "Inconclusive"


def test_equal_rates_have_a_p_value_of_one() -> None:
    assert compare_rates((10, 100), (10, 100), alpha=0.05).p_value == pytest.approx(1.0)


def test_the_p_value_is_below_alpha_exactly_when_the_interval_excludes_zero() -> None:
    # the interval and the z-test share one standard error: one decides as the other
    for canary in range(20, 56):
        result = compare_rates((canary, 200), (35, 200), alpha=0.05)
        assert (result.p_value < 0.05) == (result.decision != "NoDifference"), canary


def test_the_bandit_asks_for_the_canarys_chance_of_being_better_in_percent() -> None:
    probability = probability_better((75, 100), (70, 100), seed=1)
    assert 0.65 < probability < 0.85
    step = bandit_step((75, 100), (70, 100), min_weight=0, max_weight=100, seed=1)
    assert step.weight == round(100 * probability) and step.probability == probability


def test_one_observation_is_interpolated_within_its_bucket() -> None:
    single = Histogram.from_cumulative([1, 2, 5, INF], [0, 1, 1, 1])
    assert single.quantiles([0.5]).tolist() == [1.5]


def test_a_quantile_in_the_inf_bucket_is_the_highest_finite_bound() -> None:
    tail = Histogram.from_cumulative([1, 2, 5, INF], [1, 1, 1, 4])
    assert tail.quantiles([0.9]).tolist() == [5.0]


def test_the_zero_quantile_behind_empty_first_buckets_is_the_first_lower_edge() -> None:
    late = Histogram.from_cumulative([1, 2, INF], [0, 3, 3])
    assert late.quantiles([0.0]).tolist() == [0.0]


def test_a_single_count_is_pooled_into_one_bucket() -> None:
    a, b = pool_sparse(np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 0.0]))
    assert a.tolist() == [1.0] and b.tolist() == [0.0]


def test_a_small_rank_test_enumerates_every_split() -> None:
    # 5 against 5 is C(10, 5) = 252 splits; only one puts all five highest ranks first
    result = mann_whitney([6, 7, 8, 9, 10], [1, 2, 3, 4, 5], "greater")
    assert result.method == "exact" and result.p_value == pytest.approx(1 / 252, rel=1e-12)


def test_a_larger_rank_test_counts_ten_thousand_seeded_random_splits() -> None:
    first = [float(v) for v in range(3, 23)]
    second = [float(v) + 0.5 for v in range(0, 20)]
    result = mann_whitney(first, second, "greater")
    assert result.method == "permutation" and 0 < result.p_value < 1
    # (splits at least as extreme + 1) / (RANDOM_SPLITS + 1): a whole count of random splits
    count = result.p_value * (RANDOM_SPLITS + 1)
    assert count == pytest.approx(round(count), abs=1e-6)
    assert mann_whitney(first, second, "greater").p_value == result.p_value  # the same splits each time
