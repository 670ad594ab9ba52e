"""What changed in a drifted feature, and how the change arrived.

*What* comes from robust estimates: the median (location), the 10-90% decile range (scale, which
stays put when a shape changes at equal variance) and the standardised quartiles and deciles
(shape). On histograms the quantiles are interpolated within buckets, as PromQL's
``histogram_quantile`` does. *How* comes from the feature's recent checks, kept in status.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

Change = Literal["location", "scaleUp", "scaleDown", "shape"]
Pattern = Literal["sudden", "gradual", "recurring"]
PROBABILITIES = (0.1, 0.25, 0.5, 0.75, 0.9)
NORMAL_DECILE_RANGE = 2.5631  # q90 - q10 of a standard normal: decile range -> sd
OUTER_DECILE = 1.2816  # q90 of a standard normal, in sd
ELEVATED = 0.5  # a check at half its threshold or more counts towards a gradual rise


@dataclass(frozen=True)
class ChangeMeasure:
    """``location_shift``: median shift in baseline sds (the decile range read as a normal's);
    ``scale_ratio``: current decile range over the baseline's; ``shape_gap``: the largest move of
    a standardised quartile or decile, in baseline sds."""

    location_shift: float
    scale_ratio: float
    shape_gap: float

    @property
    def change(self) -> Change:
        """The component that moved the deciles furthest, each in baseline sds: the median for
        location, the outer deciles for scale, the standardised quantiles for shape. When none
        moved (quantiles too coarse to tell), the distributions differ in shape."""
        scale_move = (
            abs(self.scale_ratio - 1.0) * OUTER_DECILE if math.isfinite(self.scale_ratio) else math.inf
        )
        moves = {"location": abs(self.location_shift), "scale": scale_move, "shape": self.shape_gap}
        largest = max(moves, key=lambda key: moves[key])
        if moves[largest] <= 0 or largest == "shape":
            return "shape"
        if largest == "location":
            return "location"
        return "scaleUp" if self.scale_ratio > 1 else "scaleDown"


def measure(baseline: NDArray[np.float64], current: NDArray[np.float64]) -> ChangeMeasure:
    """From each window's quantiles at ``PROBABILITIES``."""
    base_range, cur_range = baseline[-1] - baseline[0], current[-1] - current[0]
    unit = base_range if base_range > 0 else cur_range if cur_range > 0 else 1.0
    sd = unit / NORMAL_DECILE_RANGE
    shift = float((current[2] - baseline[2]) / sd)
    ratio = float(cur_range / base_range) if base_range > 0 else math.inf if cur_range > 0 else 1.0
    base_shape = (baseline - baseline[2]) / unit
    cur_shape = (current - current[2]) / (cur_range if cur_range > 0 else unit)
    gap = float(np.max(np.abs(cur_shape - base_shape)) * NORMAL_DECILE_RANGE)
    return ChangeMeasure(shift, ratio, gap)


@dataclass(frozen=True)
class PastCheck:
    """One earlier check of a feature, as status keeps it."""

    seconds_ago: float
    ratio: float  # statistic over the threshold used then
    drifted: bool
    change: str
    direction: int  # sign of the location shift


def pattern(
    history: Sequence[PastCheck],
    ratio: float,
    change: Change,
    direction: int,
    window_seconds: float,
    ongoing: Pattern | None,
) -> Pattern:
    """How this drift arrived, from the checks before it (oldest first).

    Continuing episode: its pattern stays. Recurring: the same change in the same direction
    drifted earlier in the history, with quiet checks since. Gradual: the statistic rose at every
    check of a run of at least three (this one included), each earlier one at half its threshold
    or more, over longer than one current window (a window filling with a sudden change rises
    for one window length). Sudden: otherwise.
    """
    if history and history[-1].drifted and ongoing is not None:
        return ongoing
    quiet_since = False
    for past in reversed(history):
        if not past.drifted:
            quiet_since = True
        elif quiet_since and past.change == change and past.direction == direction:
            return "recurring"
    run_start, latest = None, ratio
    for past in reversed(history):
        if past.drifted or past.ratio >= latest or past.ratio < ELEVATED:
            break
        run_start, latest = past, past.ratio
    rising = sum(1 for past in history if run_start is not None and past.seconds_ago <= run_start.seconds_ago)
    if run_start is not None and rising >= 2 and run_start.seconds_ago > window_seconds:
        return "gradual"
    return "sudden"
