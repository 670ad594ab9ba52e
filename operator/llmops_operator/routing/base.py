"""The interface every traffic router implements (as Flagger's routers do)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class RouteNotUsable(Exception):
    """The router's object (an HTTPRoute, ...) is missing or does not send traffic to the stable:
    the rollout waits, and says this, until it is fixed."""


@dataclass(frozen=True)
class Sides:
    """Pods of both sides as the Deployments report them."""

    full: int  # replicas the stable LLMDeployment asks for
    canary_ready: int
    stable_ready: int
    stable_pods: int  # pods the stable Deployment runs now (status.replicas)


class TrafficRouter(Protocol):
    shares_service: bool
    """True when canary pods join the stable Service (the split is the ratio of Ready pods)."""

    def stable_replicas(self, weight: int, sides: Sides) -> int | None:
        """Stable replicas this router needs at ``weight``; None leaves them to the LLMDeployment."""
        ...

    def set_weight(self, weight: int, sides: Sides) -> bool:
        """Send ``weight`` percent to the canary; True once the split is verified in the cluster."""
        ...

    def describe(self) -> str: ...
