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


@dataclass(frozen=True)
class HeaderMatch:
    name: str
    value: str
    match: str = "Exact"  # or RegularExpression, as HTTPRoute spells them


@dataclass(frozen=True)
class TrafficRules:
    """What a rollout asks of the route beyond the weight: a mirrored share (shadow traffic) and a
    header whose requests go to the canary. The default asks for neither, so every call that sends
    traffic back to the stable (rollback, promotion, release) also removes both."""

    mirror_percent: int = 0
    header: HeaderMatch | None = None


NO_RULES = TrafficRules()


class TrafficRouter(Protocol):
    shares_service: bool
    """True when canary pods join the stable Service (the split is the ratio of Ready pods)."""

    def stable_replicas(self, weight: int, sides: Sides) -> int | None:
        """Stable replicas this router needs at ``weight``; None leaves them to the LLMDeployment."""
        ...

    def set_weight(self, weight: int, sides: Sides, rules: TrafficRules = NO_RULES) -> bool:
        """Send ``weight`` percent to the canary, with ``rules``; True once verified in the cluster.
        Raises RouteNotUsable when the router cannot carry out ``rules``."""
        ...

    def describe(self) -> str: ...
