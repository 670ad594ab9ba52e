"""The experiment's rate comparison and the bandit's Thompson sampling on fixed counts."""

from __future__ import annotations

import math

import pytest

from llmops_operator.statistics.proportions import MIN_TRIALS, compare_rates
from llmops_operator.statistics.thompson import bandit_step, probability_better


def test_equal_rates_show_no_difference_and_the_interval_covers_zero() -> None:
    result = compare_rates((100, 1000), (102, 1000), alpha=0.05)
    assert result.decision == "NoDifference"
    assert result.low < 0 < result.high
    assert result.difference == pytest.approx(-0.002)
    assert result.p_value > 0.5


def test_direction_decides_better_or_worse() -> None:
    higher = compare_rates((300, 1000), (200, 1000), alpha=0.05)
    assert higher.decision == "CanaryBetter" and higher.low > 0 and higher.p_value < 1e-4
    assert compare_rates((300, 1000), (200, 1000), 0.05, higher_is_better=False).decision == "CanaryWorse"
    assert compare_rates((200, 1000), (300, 1000), 0.05).decision == "CanaryWorse"


def test_the_interval_matches_agresti_caffo_by_hand() -> None:
    result = compare_rates((9, 40), (3, 40), alpha=0.05)
    pc, ps = 10 / 42, 4 / 42
    se = math.sqrt(pc * (1 - pc) / 42 + ps * (1 - ps) / 42)
    assert result.low == pytest.approx(pc - ps - 1.959964 * se, abs=1e-6)
    assert result.high == pytest.approx(pc - ps + 1.959964 * se, abs=1e-6)


def test_too_few_trials_decide_nothing() -> None:
    result = compare_rates((5, MIN_TRIALS - 1), (500, 1000), alpha=0.05)
    assert result.decision == "Inconclusive" and math.isnan(result.p_value)


def test_thompson_probability_is_seeded_and_follows_the_evidence() -> None:
    assert probability_better((90, 100), (70, 100), seed=3) == probability_better(
        (90, 100), (70, 100), seed=3
    )
    assert probability_better((90, 100), (70, 100), seed=3) > 0.99
    assert probability_better((70, 100), (90, 100), seed=3) < 0.01
    assert 0.4 < probability_better((0, 0), (0, 0), seed=3) < 0.6  # no data: a coin


def test_the_bandit_weight_stays_within_its_bounds() -> None:
    assert bandit_step((90, 100), (70, 100), 10, 80, seed=1).weight == 80
    assert bandit_step((70, 100), (90, 100), 10, 80, seed=1).weight == 10
    assert bandit_step((50, 100), (50, 100), 10, 80, seed=1).weight in range(40, 61)
