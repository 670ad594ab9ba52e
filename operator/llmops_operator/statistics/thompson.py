"""Thompson sampling between two arms with Bernoulli rewards (Thompson 1933; Chapelle and Li 2011).

Each side's reward rate has a Beta(1 + successes, 1 + failures) posterior. Thompson sampling sends
each request to the arm whose posterior draw is highest, so in expectation an arm gets the share of
traffic equal to the posterior probability that it is the better one: the canary's weight is that
probability (estimated from seeded draws, so the same counts always give the same weight), kept
within the user's bounds so neither side is ever starved of the data that could change the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import lazy

DRAWS = 20_000


@dataclass(frozen=True)
class BanditStep:
    probability: float  # P(canary's reward rate > stable's)
    weight: int  # the canary weight the bandit asks for


def probability_better(canary: tuple[int, int], stable: tuple[int, int], seed: int) -> float:
    """P(canary rate > stable rate) under the Beta posteriors; each side is (successes, trials)."""
    np = lazy.load("numpy")  # loaded by the first bandit move, not at the operator's start
    rng = np.random.default_rng(seed)
    (cs, cn), (ss, sn) = canary, stable
    canary_draws = rng.beta(1 + cs, 1 + max(cn - cs, 0), DRAWS)
    stable_draws = rng.beta(1 + ss, 1 + max(sn - ss, 0), DRAWS)
    return float(np.mean(canary_draws > stable_draws))


def bandit_step(
    canary: tuple[int, int], stable: tuple[int, int], min_weight: int, max_weight: int, seed: int
) -> BanditStep:
    probability = probability_better(canary, stable, seed)
    weight = min(max_weight, max(min_weight, round(100 * probability)))
    return BanditStep(probability, weight)
