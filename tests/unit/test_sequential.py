"""The mixture SPRT of statistics/sequential.py on seeded series: its false-alarm rate stays under
alpha however many looks it takes, it finds large shifts in a few looks, and its edges."""

from __future__ import annotations

import math

import numpy as np
import pytest

from llmops_operator.statistics import sequential
from llmops_operator.statistics.sequential import Evidence, log_ratio, msprt


def fired_within(series: np.ndarray, margin: float = 0.0) -> int | None:
    evidence = Evidence()
    for index, y in enumerate(series):
        evidence = evidence.add(float(y))
        if msprt(evidence, margin).fired:
            return index + 1
    return None


@pytest.mark.parametrize("sd", [0.1, 0.25])
def test_under_the_null_false_alarms_stay_under_alpha_over_many_looks(sd: float) -> None:
    """1,000 series of 200 looks each at mean exactly the margin (the hardest null), noise at or
    under the variance floor: Ville's bound alpha holds however long one watches."""
    rng = np.random.default_rng(7)
    alarms = sum(fired_within(rng.normal(0.0, sd, 200)) is not None for _ in range(1000))
    assert alarms / 1000 <= sequential.ALPHA + 0.005  # alpha plus Monte Carlo slack (sd ~0.0022)


def test_noise_above_the_floor_is_estimated_and_keeps_false_alarms_low() -> None:
    rng = np.random.default_rng(11)
    alarms = sum(fired_within(rng.normal(0.0, 0.6, 100)) is not None for _ in range(1000))
    assert alarms / 1000 <= 0.03  # measured 1.9%: the plug-in variance is not exact at 3 samples


def test_a_mean_below_the_margin_fires_less_than_one_at_it() -> None:
    rng = np.random.default_rng(3)
    assert sum(fired_within(rng.normal(-0.2, 0.25, 200)) is not None for _ in range(500)) == 0


def test_a_severe_shift_fires_within_one_interval_and_a_mild_one_much_later() -> None:
    rng = np.random.default_rng(5)
    severe = [fired_within(rng.normal(1.1, 0.25, 30)) for _ in range(500)]  # 3x latency
    assert sum(f is not None and f <= 5 for f in severe) / 500 >= 0.99
    assert sum(f == sequential.MIN_SAMPLES for f in severe) / 500 >= 0.8
    mild = [fired_within(rng.normal(0.1, 0.25, 30)) for _ in range(500)]
    assert sum(f is not None and f <= 5 for f in mild) / 500 < 0.05  # not within one interval


def test_power_is_high_for_a_shift_twice_the_noise() -> None:
    rng = np.random.default_rng(9)
    found = [fired_within(rng.normal(0.5, 0.25, 30)) for _ in range(500)]
    assert sum(f is not None for f in found) / 500 >= 0.99


def test_nothing_fires_before_min_samples_or_below_the_margin() -> None:
    one = Evidence().add(3.0)
    assert not msprt(one).fired and msprt(one).statistic > msprt(one).boundary
    many_low = Evidence()
    for _ in range(50):
        many_low = many_low.add(-3.0)
    assert not msprt(many_low).fired  # far from the margin, but on the good side
    assert not msprt(Evidence().add(1.0).add(1.0).add(1.0), margin=1.0).fired
    assert msprt(Evidence()) == sequential.Verdict(0.0, math.log(1 / sequential.ALPHA), False)


def test_the_sufficient_statistics_give_the_sample_variance_with_a_floor() -> None:
    evidence = Evidence().add(1.0).add(3.0)
    assert (evidence.samples, evidence.total, evidence.total_squares) == (2, 4.0, 10.0)
    assert evidence.mean == 2.0 and evidence.variance == 2.0 * 3  # widened at two samples
    assert Evidence().add(1.0).add(1.0).variance == sequential.VARIANCE_FLOOR


def test_log_ratio_edges() -> None:
    assert log_ratio(800.0, 400.0) == pytest.approx(math.log(804 / 404))
    assert log_ratio(0.0, 1.0) == -sequential.CLIP  # no errors: clipped, not minus infinity
    assert log_ratio(1e9, 1.0) == sequential.CLIP
    assert log_ratio(0.0, 1.0, offset=1.0) == pytest.approx(math.log(0.5))
    assert log_ratio(1.0, 1.0, offset=1.0) == 0.0
    for value, reference in ((math.nan, 1.0), (math.inf, 1.0), (1.0, 0.0), (1.0, -2.0)):
        assert log_ratio(value, reference) is None


def watched_until_fired(series: np.ndarray, margin: float = 0.0, per_interval: int = 5) -> int | None:
    """The look the restarted tests fire at, with a full measurement (a restart point) after every
    ``per_interval`` looks."""
    watch = sequential.Watch()
    for index, y in enumerate(series):
        if index and index % per_interval == 0:
            watch = watch.restarted(margin)
        watch = watch.observe(float(y))
        if watch.verdict(margin).fired:
            return index + 1
    return None


def test_the_shares_of_alpha_of_restarted_tests_sum_to_alpha() -> None:
    shares = [sequential.alpha_of(j) for j in range(100_000)]
    assert shares[0] == pytest.approx(sequential.ALPHA * 6 / math.pi**2)
    assert shares == sorted(shares, reverse=True)  # later tests need more evidence
    assert sum(shares) == pytest.approx(sequential.ALPHA, rel=1e-4) and sum(shares) < sequential.ALPHA


@pytest.mark.parametrize("sd", [0.1, 0.25])
def test_restarted_tests_keep_false_alarms_under_alpha_over_many_looks(sd: float) -> None:
    """At the margin half the intervals end leaning healthy, so the watch restarts often: the union
    over its tests still holds alpha."""
    rng = np.random.default_rng(13)
    alarms = sum(watched_until_fired(rng.normal(0.0, sd, 200)) is not None for _ in range(1000))
    assert alarms / 1000 <= sequential.ALPHA + 0.005


def test_a_severe_shift_after_a_healthy_interval_fires_three_looks_into_the_next() -> None:
    """The blind spot of one test over the step: a healthy interval first weighs against the shift
    (measured: that single test fires 10 to 23 looks after the onset; the restarted one 3 to 7)."""
    rng = np.random.default_rng(17)
    onset, trials = 5, 500
    restarted, single = [], []
    for _ in range(trials):
        series = np.concatenate([rng.normal(-0.7, 0.25, onset), rng.normal(1.1, 0.25, 25)])
        restarted.append(watched_until_fired(series))
        single.append(fired_within(series))
    assert all(f is not None and onset + sequential.MIN_SAMPLES <= f for f in restarted)
    assert sum(f == onset + sequential.MIN_SAMPLES for f in restarted) / trials >= 0.5
    assert sum(f is not None and f <= onset + 5 for f in restarted) / trials >= 0.9
    assert sum(f is not None and f <= onset + 5 for f in single) / trials <= 0.05


def test_only_a_test_leaning_healthy_gives_way_at_a_restart_point() -> None:
    leaning_bad = sequential.Watch().observe(0.2).observe(-0.1)
    assert leaning_bad.restarted() == leaning_bad  # its evidence is kept
    assert sequential.Watch().restarted() == sequential.Watch()  # nothing to drop
    healthy = leaning_bad.observe(-1.0)  # the mean is now -0.3
    assert healthy.restarted() == sequential.Watch(Evidence(), 1)
    assert healthy.restarted(margin=-0.5) == healthy  # -0.3 is past a margin of -0.5
    assert sequential.Watch(Evidence(), 1).verdict().boundary == pytest.approx(
        math.log(1 / sequential.alpha_of(1))
    )
