"""No router: canary and stable pods sit behind the stable Service; the split is their ratio."""

from __future__ import annotations

from ..rollout.progress import canary_replicas, stable_replicas
from .base import Sides


class ReplicaRatioRouter:
    shares_service = True

    def stable_replicas(self, weight: int, sides: Sides) -> int | None:
        return stable_replicas(sides.full, weight, sides.canary_ready)

    def set_weight(self, weight: int, sides: Sides) -> bool:
        """Verified when the canary has its pods Ready and the stable side has shrunk to match."""
        wanted_canary = canary_replicas(sides.full, weight)
        wanted_stable = stable_replicas(sides.full, weight, sides.canary_ready)
        return sides.canary_ready >= wanted_canary and sides.stable_pods == wanted_stable

    def describe(self) -> str:
        return "replica ratio behind the stable Service"
