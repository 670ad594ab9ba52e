"""Gateway API: weights on the backendRefs of an HTTPRoute (stable and canary Services, or their
InferencePools: the canary's backendRef copies the stable's group and kind).

The route is the user's; the operator writes only the ``weight`` of the two backendRefs (adding a
missing canary backendRef next to the stable one), a RequestMirror filter to the canary on the rules
that serve the stable while a setMirror step asks for one, and, while a setHeaderRoute step asks for
one, extra rules named ``llmops-canary-header-<n>`` sending the header's requests to the canary.
Mirror and header rules go when the rollout ends. With Argo CD, ignore differences on
``/spec/rules`` for routes under a CanaryRollout.
"""

from __future__ import annotations

import copy
from typing import Any

from ..api.canaryrollout import GatewayAPIRouting
from ..kube import Kube
from ..names import HEADER_RULE_PREFIX
from ..rollout.progress import canary_replicas
from .base import NO_RULES, RouteNotUsable, Sides, TrafficRules

MIRROR = "RequestMirror"


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


def _serves(rule: dict[str, Any], backend: str) -> dict[str, Any] | None:
    return next((ref for ref in rule.get("backendRefs") or [] if ref.get("name") == backend), None)


def _reference(stable_ref: dict[str, Any], name: str) -> dict[str, Any]:
    """A backendRef like the stable's (group, kind, namespace, port) to ``name``, without weight."""
    keys = ("group", "kind", "namespace", "port")
    return {**{key: stable_ref[key] for key in keys if key in stable_ref}, "name": name}


def _is_ours(rule: dict[str, Any]) -> bool:
    return str(rule.get("name", "")).startswith(HEADER_RULE_PREFIX)


def _mirrors_to(item: dict[str, Any], canary: str) -> bool:
    target = (item.get("requestMirror") or {}).get("backendRef") or {}
    return item.get("type") == MIRROR and target.get("name") == canary


def routed(
    route: dict[str, Any], stable: str, canary: str, weight: int, rules: TrafficRules
) -> dict[str, Any]:
    """The route as the rollout wants it: ``weight`` on the canary, the mirror filter and the header
    rules as ``rules`` asks, everything else of the user's left as it is. Applying it to its own
    result changes nothing, which is how a write is verified after reading the route back."""
    updated = copy.deepcopy(route)
    spec = updated.setdefault("spec", {})
    spec["rules"] = [rule for rule in spec.get("rules") or [] if not _is_ours(rule)]
    updated = weighted_rules(updated, stable, canary, weight)
    serving = [rule for rule in updated["spec"]["rules"] if _serves(rule, stable) is not None]
    header_rules = []
    for index, rule in enumerate(serving):
        stable_ref = _serves(rule, stable)
        assert stable_ref is not None
        filters = [item for item in rule.get("filters") or [] if not _mirrors_to(item, canary)]
        if rules.mirror_percent > 0:
            mirror = {"backendRef": _reference(stable_ref, canary), "percent": rules.mirror_percent}
            filters.append({"type": MIRROR, "requestMirror": mirror})
        if filters:
            rule["filters"] = filters
        else:
            rule.pop("filters", None)
        if rules.header is not None:
            header = {"type": rules.header.match, "name": rules.header.name, "value": rules.header.value}
            matches = [
                {**match, "headers": [*(match.get("headers") or []), header]}
                for match in rule.get("matches") or [{}]
            ]
            others = [item for item in filters if item.get("type") != MIRROR]
            extra: dict[str, Any] = {
                "name": f"{HEADER_RULE_PREFIX}-{index}",
                "matches": matches,
                "backendRefs": [{**_reference(stable_ref, canary), "weight": 1}],  # 1: the API's default
            }
            if others:
                extra["filters"] = others
            header_rules.append(extra)
    updated["spec"]["rules"] = [*updated["spec"]["rules"], *header_rules]
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

    def set_weight(self, weight: int, sides: Sides, rules: TrafficRules = NO_RULES) -> bool:
        """Scale first, shift after: no weight, mirrored copy or header request reaches a canary
        whose pods are not Ready."""
        wanted = canary_replicas(sides.full, max(weight, 1 if rules != NO_RULES else 0))
        if wanted > 0 and sides.canary_ready < wanted:
            return False
        route = self._read()
        if routed(route, self.stable, self.canary, weight, rules) != route:
            self.kube.replace(routed(route, self.stable, self.canary, weight, rules))
            route = self._read()  # verified by reading it back, not by trusting the write
        return routed(route, self.stable, self.canary, weight, rules) == route

    def describe(self) -> str:
        return f"HTTPRoute {self.route}"


def from_spec(
    routing: GatewayAPIRouting, kube: Kube, namespace: str, stable: str, canary: str
) -> GatewayAPIRouter:
    return GatewayAPIRouter(kube, namespace, routing.http_route, stable, canary)
