"""Traffic routers: how a canary weight becomes real traffic, one module per mechanism behind the
``TrafficRouter`` interface, chosen by ``router_for`` from ``ROUTERS``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..api.canaryrollout import CanaryRolloutSpec
from ..kube import Kube
from ..names import canary_name
from . import gateway_api
from .base import NO_RULES, HeaderMatch, RouteNotUsable, Sides, TrafficRouter, TrafficRules
from .gateway_api import GatewayAPIRouter
from .replica_ratio import ReplicaRatioRouter

# (the router's trafficRouting field, kube, namespace, stable name, canary name) -> the router
RouterFactory = Callable[[Any, Kube, str, str, str], TrafficRouter]
# trafficRouting field (snake_case) -> its router. No field set: replica ratio, which needs nothing.
ROUTERS: dict[str, RouterFactory] = {"gateway_api": gateway_api.from_spec}


def router_for(spec: CanaryRolloutSpec, kube: Kube, namespace: str) -> TrafficRouter:
    """The router the rollout's ``trafficRouting`` names; replica ratio when it names none."""
    stable = spec.target_ref.name
    for field, build in ROUTERS.items():
        chosen = getattr(spec.traffic_routing, field, None) if spec.traffic_routing is not None else None
        if chosen is not None:
            return build(chosen, kube, namespace, stable, canary_name(stable))
    return ReplicaRatioRouter()


__all__ = [
    "NO_RULES",
    "ROUTERS",
    "GatewayAPIRouter",
    "HeaderMatch",
    "ReplicaRatioRouter",
    "RouteNotUsable",
    "Sides",
    "TrafficRouter",
    "TrafficRules",
    "router_for",
]
