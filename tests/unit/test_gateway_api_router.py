"""Gateway API routing: the weights land on the backendRefs of the user's HTTPRoute, and a weight
counts as set only once the route read back carries it."""

from __future__ import annotations

import copy
from typing import Any, cast

import pytest
from kubernetes.client import ApiException

from llmops_operator.kube import Kube
from llmops_operator.routing import GatewayAPIRouter, Sides
from llmops_operator.routing.base import RouteNotUsable
from llmops_operator.routing.gateway_api import route_weight, weighted_rules


def route(*rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"metadata": {"name": "chat"}, "spec": {"rules": [{"backendRefs": refs} for refs in rules]}}


def test_the_canary_backend_is_added_beside_the_stable_one_in_every_rule_that_serves_it() -> None:
    original = route(
        [{"name": "other", "port": 80}],
        [{"name": "llama", "port": 8000, "weight": 1}],
        [{"name": "llama", "port": 8000}, {"name": "llama-canary", "port": 8000, "weight": 0}],
    )
    assert weighted_rules(original, "llama", "llama-canary", 10) == route(
        [{"name": "other", "port": 80}],
        [{"name": "llama", "port": 8000, "weight": 90}, {"name": "llama-canary", "port": 8000, "weight": 10}],
        [{"name": "llama", "port": 8000, "weight": 90}, {"name": "llama-canary", "port": 8000, "weight": 10}],
    )
    assert original["spec"]["rules"][1]["backendRefs"] == [{"name": "llama", "port": 8000, "weight": 1}]


def test_a_plain_service_backend_is_preferred_to_another_kind_of_the_same_name() -> None:
    imported = {"name": "llama", "kind": "ServiceImport", "group": "multicluster.x-k8s.io"}
    weighted = weighted_rules(route([imported, {"name": "llama"}]), "llama", "llama-canary", 30)
    assert weighted["spec"]["rules"][0]["backendRefs"] == [
        imported,
        {"name": "llama", "weight": 70},
        {"name": "llama-canary", "weight": 30},
    ]


def test_a_stable_backend_named_with_its_kind_is_still_found() -> None:
    stable = {"name": "llama", "kind": "Service", "group": "", "port": 8000}
    weighted = weighted_rules(route([stable]), "llama", "llama-canary", 50)
    assert weighted["spec"]["rules"][0]["backendRefs"] == [
        {**stable, "weight": 50},
        {"name": "llama-canary", "kind": "Service", "group": "", "port": 8000, "weight": 50},
    ]


def test_a_route_that_never_serves_the_stable_service_is_not_usable() -> None:
    with pytest.raises(RouteNotUsable, match="no rule of HTTPRoute chat sends traffic to llama"):
        weighted_rules(route([{"name": "other"}]), "llama", "llama-canary", 10)


def test_the_weight_a_route_carries_is_the_one_every_rule_agrees_on() -> None:
    assert route_weight(route([{"name": "c"}]), "c") == 1  # Gateway API's default weight
    assert route_weight(route([{"name": "c", "weight": 20}], [{"name": "c", "weight": 20}]), "c") == 20
    assert route_weight(route([{"name": "c", "weight": 20}], [{"name": "c", "weight": 30}]), "c") is None
    assert route_weight(route([{"name": "s"}]), "c") is None


class FakeKube:
    """The HTTPRoute as the API server holds it, and the writes made to it."""

    def __init__(self, stored: dict[str, Any] | None) -> None:
        self.stored = stored
        self.puts: list[dict[str, Any]] = []

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        assert (kind, namespace, name) == ("HTTPRoute", "team", "chat")
        return copy.deepcopy(self.stored)

    def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.puts.append(obj)
        self.stored = copy.deepcopy(obj)
        return copy.deepcopy(obj)


def router(kube: FakeKube) -> GatewayAPIRouter:
    return GatewayAPIRouter(cast(Kube, kube), "team", "chat", "llama", "llama-canary")


def sides(canary_ready: int) -> Sides:
    return Sides(full=4, canary_ready=canary_ready, stable_ready=4, stable_pods=4)


def test_no_weight_reaches_a_canary_whose_pods_are_not_ready() -> None:
    kube = FakeKube(route([{"name": "llama"}]))
    assert router(kube).set_weight(50, sides(canary_ready=1)) is False  # 2 pods needed for 50%
    assert kube.puts == []
    assert router(kube).set_weight(50, sides(canary_ready=2)) is True
    assert kube.stored is not None
    assert kube.stored["spec"]["rules"][0]["backendRefs"] == [
        {"name": "llama", "weight": 50},
        {"name": "llama-canary", "weight": 50},
    ]


def test_a_route_already_at_the_weight_is_not_written_again() -> None:
    kube = FakeKube(route([{"name": "llama", "weight": 90}, {"name": "llama-canary", "weight": 10}]))
    assert router(kube).set_weight(10, sides(canary_ready=1)) is True
    assert kube.puts == []
    assert router(kube).set_weight(0, sides(canary_ready=0)) is True  # back to the stable, pods or not
    assert len(kube.puts) == 1


def test_a_weight_the_route_does_not_carry_after_the_write_is_not_verified() -> None:
    class IgnoringWrites(FakeKube):
        def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
            self.puts.append(obj)
            return obj

    kube = IgnoringWrites(route([{"name": "llama"}]))
    assert router(kube).set_weight(10, sides(canary_ready=1)) is False
    assert len(kube.puts) == 1


def test_a_missing_route_is_reported_by_name_and_other_api_errors_pass_through() -> None:
    with pytest.raises(RouteNotUsable, match="HTTPRoute chat not found"):
        router(FakeKube(None)).set_weight(10, sides(canary_ready=1))

    class Forbidden(FakeKube):
        def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
            raise ApiException(status=403, reason="Forbidden")

    with pytest.raises(ApiException):
        router(Forbidden(None)).set_weight(10, sides(canary_ready=1))


def test_the_stable_side_keeps_its_capacity_and_the_router_names_its_route() -> None:
    gateway = router(FakeKube(None))
    assert gateway.shares_service is False
    assert gateway.stable_replicas(50, sides(canary_ready=2)) is None
    assert gateway.describe() == "HTTPRoute chat"
