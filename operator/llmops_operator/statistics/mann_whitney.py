"""A one-sided Mann-Whitney U test whose p-value is right for small and tied samples.

scipy's ``method="auto"`` takes the normal approximation as soon as there are ties, which at 3 vs
3 gives two equally strong samples different verdicts depending on ties. Here small or tied
samples get the permutation distribution of the rank sum (midranks for ties): exact, by
enumerating every split, when there are at most ``EXACT_SPLITS`` of them, else from a fixed
number of seeded random splits, so the same data always gives the same verdict. Past a few
thousand values the tie-corrected normal approximation is as good and much cheaper.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from .. import lazy

EXACT_SPLITS = 10_000  # C(14, 7) = 3,432 and C(15, 5) = 3,003 are enumerated; C(20, 10) is not
RANDOM_SPLITS = 10_000
LARGE_SAMPLE = 50  # both sides at least this and no ties: the normal approximation is fine
PERMUTATION_LIMIT = 2_000  # tied samples larger than this together: the tie-corrected normal one is
SEED = 20260301


@dataclass(frozen=True)
class RankTest:
    """``effect`` is the rank-biserial correlation, positive when the first sample is larger."""

    u_statistic: float
    p_value: float
    effect: float
    method: Literal["exact", "permutation", "asymptotic"]


def mann_whitney(
    first: Sequence[float], second: Sequence[float], alternative: Literal["greater", "less"]
) -> RankTest:
    """Is ``first`` stochastically greater (or less) than ``second``?"""
    stats = lazy.load("scipy.stats")  # with numpy: loaded by the first baseline comparison only
    import numpy as np

    x, y = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    n, m = x.size, y.size
    pooled = np.concatenate([x, y])
    ranks = stats.rankdata(pooled)
    tied = np.unique(pooled).size < pooled.size
    u = float(ranks[:n].sum() - n * (n + 1) / 2)
    effect = 2.0 * u / (n * m) - 1.0
    if min(n, m) >= LARGE_SAMPLE and (not tied or n + m > PERMUTATION_LIMIT):
        result = stats.mannwhitneyu(x, y, alternative=alternative, method="asymptotic")
        return RankTest(u, float(result.pvalue), effect, "asymptotic")
    splits = math.comb(n + m, n)
    exact = splits <= EXACT_SPLITS

    def rank_sum(first_ranks: np.ndarray, _second_ranks: np.ndarray, axis: int) -> np.ndarray:
        return np.asarray(np.sum(first_ranks, axis=axis))

    result = stats.permutation_test(
        (ranks[:n], ranks[n:]),
        rank_sum,
        permutation_type="independent",
        vectorized=True,
        n_resamples=math.inf if exact else RANDOM_SPLITS,
        alternative=alternative,
        rng=np.random.default_rng(SEED),
    )
    return RankTest(u, float(result.pvalue), effect, "exact" if exact else "permutation")
