"""Experiment steps: each side's counts of a rate, the comparison at the end of a fixed split, and
the bandit's weight moves in between. Pure over a metrics provider; the controller writes."""

from __future__ import annotations

import hashlib
import math
import zlib
from collections.abc import Mapping
from datetime import datetime

from ..api.canaryrollout import (
    BanditChange,
    BanditSpec,
    CanaryRolloutStatus,
    ExperimentResult,
    ExperimentStep,
    RateQuery,
)
from ..durations import parse_duration
from ..metrics import MetricsProvider, MetricsUnavailable, QueryFailed
from ..metrics.templates import TemplateError, render_query
from ..statistics.proportions import compare_rates
from ..statistics.thompson import bandit_step
from ..timestamps import format_time, seconds_since

Counts = tuple[int, int]  # (successes, trials)
MAX_BANDIT_CHANGES = 50  # kept in status: the latest ones
RESULTS_ARTIFACT = "experiment.json"  # in an experiment's MLflow run: its results, as status has them


class NotYet(Exception):
    """No decision this tick: counts missing, or the metrics backend away. The message says which."""


def _total(provider: MetricsProvider, template: str, variables: Mapping[str, str]) -> int:
    values = [v for v in provider.instant(render_query(template, variables)) if math.isfinite(v)]
    return round(sum(values))


def counts(provider: MetricsProvider, rate: RateQuery, variables: Mapping[str, str]) -> tuple[Counts, Counts]:
    """(canary, stable) counts of ``rate`` over ``variables['interval']``; raises NotYet."""
    stable_vars = {**variables, "canary": variables["stable"]}
    try:
        sides = [
            (_total(provider, rate.successes, side), _total(provider, rate.trials, side))
            for side in (variables, stable_vars)
        ]
    except (MetricsUnavailable, QueryFailed, TemplateError) as error:
        raise NotYet(str(error)) from error
    (cs, cn), (ss, sn) = sides
    return (min(cs, cn), cn), (min(ss, sn), sn)


def window_variables(variables: Mapping[str, str], seconds: float) -> dict[str, str]:
    """The query variables with {{interval}} spanning the experiment so far."""
    return {**variables, "interval": f"{max(1, int(seconds))}s"}


def experiment_key(uid: str, handled_request: str, index: int, started_at: str) -> str:
    """One experiment's decision: the rollout, its retry, the step, and when the split began (a
    pass through the same step after a retry starts at another instant). All of it is in status
    before the decision, so a restart that lost the decision's status write finds its run again."""
    return hashlib.sha256(f"{uid}/{handled_request}/{index}/{started_at}".encode()).hexdigest()[:10]


def _ratio(side: Counts) -> str:
    return f"{side[0]}/{side[1]}"


def compare(
    provider: MetricsProvider,
    step: ExperimentStep,
    index: int,
    variables: Mapping[str, str],
    elapsed: float,
    now: datetime,
) -> list[ExperimentResult]:
    """Canary against stable on every metric of the experiment over its whole split; NotYet when
    any metric has too few trials to decide."""
    alpha = float(step.alpha)
    window = window_variables(variables, elapsed)
    results = []
    for metric in step.metrics:
        canary, stable = counts(provider, metric.rate, window)
        result = compare_rates(canary, stable, alpha, metric.direction == "higherIsBetter")
        if result.decision == "Inconclusive":
            raise NotYet(
                f"experiment metric {metric.name}: {canary[1]} canary and {stable[1]} stable trials, too few"
            )
        results.append(
            ExperimentResult(
                step=index,
                metric=metric.name,
                canary=_ratio(canary),
                stable=_ratio(stable),
                difference=f"{result.difference:.4g}",
                interval=f"[{result.low:.4g}, {result.high:.4g}]",
                p_value=f"{result.p_value:.3g}",
                decision=result.decision,
                decided_at=format_time(now),
            )
        )
    return results


def bandit_due(status: CanaryRolloutStatus, bandit: BanditSpec, now: datetime) -> bool:
    """One change per interval at most, each judged on a split that has been in place."""
    if status.experiment_started_at is None or status.weight_verified_at is None:
        return False
    interval = parse_duration(bandit.interval)
    last = status.bandit_changes[-1].at if status.bandit_changes else status.experiment_started_at
    return seconds_since(last, now) >= interval and seconds_since(status.weight_verified_at, now) >= interval


def bandit_move(
    provider: MetricsProvider,
    bandit: BanditSpec,
    status: CanaryRolloutStatus,
    variables: Mapping[str, str],
    seed_text: str,
    now: datetime,
) -> BanditChange | None:
    """The bandit's next weight from the rewards since the experiment started; None when it stays."""
    assert status.experiment_started_at is not None
    window = window_variables(variables, seconds_since(status.experiment_started_at, now))
    canary, stable = counts(provider, bandit.reward, window)
    seed = zlib.crc32(f"{seed_text}/{len(status.bandit_changes)}".encode())
    move = bandit_step(canary, stable, bandit.min_weight, bandit.max_weight, seed)
    if move.weight == status.canary_weight:
        return None
    return BanditChange(
        at=format_time(now),
        weight=move.weight,
        probability=f"{move.probability:.3f}",
        canary=_ratio(canary),
        stable=_ratio(stable),
    )


def record_change(status: CanaryRolloutStatus, change: BanditChange) -> None:
    status.canary_weight, status.stable_weight = change.weight, 100 - change.weight
    status.weight_verified_at = None
    status.bandit_changes = [*status.bandit_changes, change][-MAX_BANDIT_CHANGES:]
