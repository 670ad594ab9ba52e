"""No router: canary and stable pods sit behind the stable Service; the split is their ratio."""

from __future__ import annotations

from ..rollout.progress import canary_replicas, stable_replicas
from .base import NO_RULES, RouteNotUsable, Sides, TrafficRules


class ReplicaRatioRouter:
    shares_service = True

    def stable_replicas(self, weight: int, sides: Sides) -> int | None:
        return stable_replicas(sides.full, weight, sides.canary_ready)

    def set_weight(self, weight: int, sides: Sides, rules: TrafficRules = NO_RULES) -> bool:
        """Verified when the canary has its pods Ready and the stable side has shrunk to match.
        A Service splits by pods only: no mirror, no header match (the CRD rejects asking for them)."""
        if rules != NO_RULES:
            raise RouteNotUsable("replica-ratio routing can neither mirror nor route by header")
        wanted_canary = canary_replicas(sides.full, weight)
        wanted_stable = stable_replicas(sides.full, weight, sides.canary_ready)
        return sides.canary_ready >= wanted_canary and sides.stable_pods == wanted_stable

    def describe(self) -> str:
        return "replica ratio behind the stable Service"
