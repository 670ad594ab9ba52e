"""Mirror filters and header rules on the user's HTTPRoute: written as the rollout asks, left
alone when already there, removed when the rollout sends everything back to the stable, and
routed by the load generator's gateway as a gateway would."""

from __future__ import annotations

import copy
import random
from typing import Any, cast

import pytest

from llmops_operator.kube import Kube
from llmops_operator.routing import (
    NO_RULES,
    GatewayAPIRouter,
    HeaderMatch,
    ReplicaRatioRouter,
    Sides,
    TrafficRules,
)
from llmops_operator.routing.base import RouteNotUsable
from llmops_operator.routing.gateway_api import routed
from tests.simulator.gateway import route_request

POOL = {"group": "inference.networking.k8s.io", "kind": "InferencePool"}


def route(stable: dict[str, Any], filters: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "matches": [{"path": {"type": "PathPrefix", "value": "/v1"}}],
        "backendRefs": [stable],
    }
    if filters:
        rule["filters"] = filters
    return {"metadata": {"name": "chat"}, "spec": {"rules": [rule, {"backendRefs": [{"name": "other"}]}]}}


REWRITE = {"type": "URLRewrite", "urlRewrite": {"hostname": "llm.internal"}}
HEADER = HeaderMatch("X-Experiment-ID", "b.*", "RegularExpression")


def test_a_mirror_copies_the_stable_reference_and_keeps_the_users_filters() -> None:
    updated = routed(
        route({"name": "llama", "port": 8000}, [REWRITE]), "llama", "llama-canary", 0, TrafficRules(30)
    )
    rule = updated["spec"]["rules"][0]
    assert rule["filters"] == [
        REWRITE,
        {
            "type": "RequestMirror",
            "requestMirror": {"backendRef": {"port": 8000, "name": "llama-canary"}, "percent": 30},
        },
    ]
    assert rule["backendRefs"] == [
        {"name": "llama", "port": 8000, "weight": 100},
        {"name": "llama-canary", "port": 8000, "weight": 0},
    ]
    assert updated["spec"]["rules"][1] == {"backendRefs": [{"name": "other"}]}  # not the stable's: untouched


def test_a_header_rule_per_stable_rule_with_the_users_matches_and_filters() -> None:
    updated = routed(
        route({"name": "llama", **POOL}, [REWRITE]), "llama", "llama-canary", 10, TrafficRules(0, HEADER)
    )
    extra = updated["spec"]["rules"][-1]
    assert extra == {
        "name": "llmops-canary-header-0",
        "matches": [
            {
                "path": {"type": "PathPrefix", "value": "/v1"},
                "headers": [{"type": "RegularExpression", "name": "X-Experiment-ID", "value": "b.*"}],
            }
        ],
        "backendRefs": [{**POOL, "name": "llama-canary", "weight": 1}],
        "filters": [REWRITE],
    }
    assert len(updated["spec"]["rules"]) == 3


def test_routing_is_idempotent_and_no_rules_removes_what_the_operator_added() -> None:
    original = route({"name": "llama", "port": 8000}, [REWRITE])
    rules = TrafficRules(50, HEADER)
    once = routed(original, "llama", "llama-canary", 20, rules)
    assert routed(once, "llama", "llama-canary", 20, rules) == once
    back = routed(once, "llama", "llama-canary", 0, NO_RULES)
    assert back["spec"]["rules"][0]["filters"] == [REWRITE]
    assert [r.get("name") for r in back["spec"]["rules"]] == [None, None]


class FakeKube:
    def __init__(self, stored: dict[str, Any]) -> None:
        self.stored = stored
        self.puts = 0

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.stored)

    def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.puts += 1
        self.stored = copy.deepcopy(obj)
        return obj


def test_the_router_waits_for_a_canary_pod_before_mirroring_and_writes_once() -> None:
    kube = FakeKube(route({"name": "llama"}))
    router = GatewayAPIRouter(cast(Kube, kube), "team", "chat", "llama", "llama-canary")
    mirror = TrafficRules(40)
    assert router.set_weight(0, Sides(full=4, canary_ready=0, stable_ready=4, stable_pods=4), mirror) is False
    assert kube.puts == 0
    ready = Sides(full=4, canary_ready=2, stable_ready=4, stable_pods=4)
    assert router.set_weight(0, ready, mirror) is True
    assert router.set_weight(0, ready, mirror) is True
    assert kube.puts == 1


def test_replica_ratio_routing_refuses_mirrors_and_headers() -> None:
    sides = Sides(full=2, canary_ready=1, stable_ready=1, stable_pods=1)
    with pytest.raises(RouteNotUsable, match="neither mirror nor route by header"):
        ReplicaRatioRouter().set_weight(50, sides, TrafficRules(10))


def test_the_test_gateway_prefers_header_rules_and_mirrors_by_percent() -> None:
    written = routed(route({"name": "llama"}), "llama", "llama-canary", 0, TrafficRules(25, HEADER))
    rng = random.Random(1)
    plain = [route_request(written, {}, rng) for _ in range(4000)]
    assert {r.backend for r in plain} == {"llama"}
    share = sum("llama-canary" in r.mirrors for r in plain) / len(plain)
    assert 0.22 < share < 0.28
    tagged = route_request(written, {"x-experiment-id": "beta"}, rng)
    assert (tagged.backend, tagged.rule) == ("llama-canary", "llmops-canary-header-0")
    assert route_request(written, {"X-Experiment-ID": "a"}, rng).backend == "llama"


def test_the_cli_shows_the_mirror_the_header_route_and_experiment_results() -> None:
    from llmops_operator.cli import render_rollout

    rollout = {
        "metadata": {"name": "upgrade", "namespace": "team"},
        "spec": {
            "targetRef": {"name": "llama"},
            "canary": {"model": {"uri": "models:/m/2"}},
            "trafficRouting": {"gatewayAPI": {"httpRoute": "chat"}},
            "steps": [
                {"setMirror": {"percent": 20}},
                {"setHeaderRoute": {"name": "X-Experiment-ID", "value": "b"}},
                {
                    "experiment": {
                        "duration": "1h",
                        "metrics": [{"name": "fb", "rate": {"successes": "a", "trials": "b"}}],
                    }
                },
            ],
        },
        "status": {
            "phase": "Progressing",
            "currentStepIndex": 2,
            "mirrorPercent": 20,
            "headerRoute": {"name": "X-Experiment-ID", "value": "b", "match": "Exact"},
            "experiments": [
                {
                    "step": 2,
                    "metric": "fb",
                    "decision": "NoDifference",
                    "canary": "5/50",
                    "stable": "6/50",
                    "difference": "-0.02",
                    "interval": "[-0.1, 0.1]",
                }
            ],
        },
    }
    view = render_rollout(rollout)
    assert "mirrored 20%  header X-Experiment-ID Exact b -> canary" in view
    assert "1. setMirror 20%" in view and "2. setHeaderRoute X-Experiment-ID Exact b" in view
    assert "3. experiment fixed from 50% for 3600s" in view
    assert "step 3 fb: NoDifference  canary 5/50 stable 6/50  difference -0.02 in [-0.1, 0.1]" in view


class DefaultingKube(FakeKube):
    """Stores what the API server would: backendRefs with group, kind and weight defaulted."""

    def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        stored = copy.deepcopy(obj)
        for rule in stored["spec"]["rules"]:
            refs = [*(rule.get("backendRefs") or [])]
            refs += [
                f["requestMirror"]["backendRef"] for f in rule.get("filters") or [] if "requestMirror" in f
            ]
            for ref in refs:
                ref.setdefault("group", "")
                ref.setdefault("kind", "Service")
            for ref in rule.get("backendRefs") or []:
                ref.setdefault("weight", 1)
        return super().replace(stored)


def test_a_route_the_api_server_defaulted_is_verified_and_not_written_again() -> None:
    kube = DefaultingKube(route({"name": "llama", "port": 8000}))
    router = GatewayAPIRouter(cast(Kube, kube), "team", "chat", "llama", "llama-canary")
    ready = Sides(full=2, canary_ready=2, stable_ready=2, stable_pods=2)
    rules = TrafficRules(30, HEADER)
    assert router.set_weight(10, ready, rules) is True
    assert router.set_weight(10, ready, rules) is True
    assert kube.puts == 1
