"""Two rates compared: the difference of two binomial proportions with the Agresti-Caffo interval.

An A/B experiment counts, per side, successes out of trials (positive feedback out of rated
answers, errors out of requests). Agresti and Caffo (2000) add one success and one failure to each
side before the Wald interval; its coverage stays near the nominal level down to a few dozen trials
per side, where the plain Wald interval does not. The p-value is the matching two-sided z-test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from .. import lazy

MIN_TRIALS = 30  # per side: fewer and no decision is taken
Decision = Literal["CanaryBetter", "CanaryWorse", "NoDifference", "Inconclusive"]


@dataclass(frozen=True)
class RateComparison:
    difference: float  # canary rate minus stable rate, from the raw counts
    low: float  # the interval on the difference, at 1 - alpha
    high: float
    p_value: float
    decision: Decision


def compare_rates(
    canary: tuple[int, int],
    stable: tuple[int, int],
    alpha: float,
    higher_is_better: bool = True,
) -> RateComparison:
    """``canary`` and ``stable`` are (successes, trials). Better or worse only when the interval
    excludes 0; Inconclusive below ``MIN_TRIALS`` trials on either side."""
    (cs, cn), (ss, sn) = canary, stable
    if cn < MIN_TRIALS or sn < MIN_TRIALS:
        return RateComparison(math.nan, math.nan, math.nan, math.nan, "Inconclusive")
    raw = cs / cn - ss / sn
    pc, ps = (cs + 1) / (cn + 2), (ss + 1) / (sn + 2)
    se = math.sqrt(pc * (1 - pc) / (cn + 2) + ps * (1 - ps) / (sn + 2))
    norm = lazy.load("scipy.stats").norm
    z = float(norm.ppf(1 - alpha / 2))
    adjusted = pc - ps
    low, high = adjusted - z * se, adjusted + z * se
    p_value = float(2 * norm.sf(abs(adjusted) / se))  # se > 0: both sides got a success and a failure
    decision: Decision = "NoDifference"
    if low > 0 or high < 0:
        canary_higher = low > 0
        decision = "CanaryBetter" if canary_higher == higher_is_better else "CanaryWorse"
    return RateComparison(raw, low, high, p_value, decision)
