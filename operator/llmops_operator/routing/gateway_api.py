"""Gateway API: weights on the backendRefs of an HTTPRoute (stable and canary Services).

The route is the user's; only the ``weight`` of the two backendRefs is written, and a missing
canary backendRef is added next to the stable one. With Argo CD, ignore differences on
``/spec/rules/*/backendRefs`` for routes under a CanaryRollout.
"""

from __future__ import annotations

import copy
from typing import Any

from ..api.canaryrollout import GatewayAPIRouting
from ..kube import Kube
from ..rollout.progress import canary_replicas
from .base import RouteNotUsable, Sides


def weighted_rules(route: dict[str, Any], stable: str, canary: str, weight: int) -> dict[str, Any]:
    """The route with ``weight`` on the canary backend of every rule that serves the stable one."""
    updated = copy.deepcopy(route)
    found = False
    for rule in updated.get("spec", {}).get("rules") or []:
        refs = rule.get("backendRefs") or []
        stable_ref = next((ref for ref in refs if ref.get("name") == stable and not ref.get("kind")), None)
        stable_ref = stable_ref or next((ref for ref in refs if ref.get("name") == stable), None)
        if stable_ref is None:
            continue
        found = True
        canary_ref = next((ref for ref in refs if ref.get("name") == canary), None)
        if canary_ref is None:
            canary_ref = {key: value for key, value in stable_ref.items() if key != "weight"}
            canary_ref["name"] = canary
            refs.append(canary_ref)
        stable_ref["weight"] = 100 - weight
        canary_ref["weight"] = weight
        rule["backendRefs"] = refs
    if not found:
        raise RouteNotUsable(f"no rule of HTTPRoute {route['metadata']['name']} sends traffic to {stable}")
    return updated


def route_weight(route: dict[str, Any], canary: str) -> int | None:
    """The canary weight the route carries, when every rule agrees."""
    weights = {
        int(ref.get("weight", 1))
        for rule in route.get("spec", {}).get("rules") or []
        for ref in rule.get("backendRefs") or []
        if ref.get("name") == canary
    }
    return weights.pop() if len(weights) == 1 else None


class GatewayAPIRouter:
    shares_service = False

    def __init__(self, kube: Kube, namespace: str, route: str, stable: str, canary: str) -> None:
        self.kube = kube
        self.namespace = namespace
        self.route, self.stable, self.canary = route, stable, canary

    def stable_replicas(self, weight: int, sides: Sides) -> int | None:
        return None  # the stable side keeps its capacity until promotion

    def _read(self) -> dict[str, Any]:
        route = self.kube.get("HTTPRoute", self.namespace, self.route)
        if route is None:
            raise RouteNotUsable(f"HTTPRoute {self.route} not found")
        return route

    def set_weight(self, weight: int, sides: Sides) -> bool:
        """Scale first, shift after: no weight reaches a canary whose pods are not Ready."""
        if weight > 0 and sides.canary_ready < canary_replicas(sides.full, weight):
            return False
        route = self._read()
        if route_weight(route, self.canary) != weight or route_weight(route, self.stable) != 100 - weight:
            self.kube.replace(weighted_rules(route, self.stable, self.canary, weight))
            route = self._read()  # verified by reading it back, not by trusting the write
        return route_weight(route, self.canary) == weight

    def describe(self) -> str:
        return f"HTTPRoute {self.route}"


def from_spec(
    routing: GatewayAPIRouting, kube: Kube, namespace: str, stable: str, canary: str
) -> GatewayAPIRouter:
    return GatewayAPIRouter(kube, namespace, routing.http_route, stable, canary)
