"""Shadow traffic, header routes, bandit experiments and InferencePool backends, end to end: the
operator, the local control plane with the Gateway API and Inference Extension CRDs, a real
Prometheus and MLflow, and a load generator that routes every request by the HTTPRoute as a gateway
would (its header rules, weights and RequestMirror filters), so what the analysis sees is what the
route the operator wrote sends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import Cluster, MLflowServer, wait_for
from .test_canaryrollout import CANARY, GOOD, SLOW, STABLE, World, analysis, cli

INFERENCE_GROUP = "inference.networking.k8s.io"
HEADER = "X-Experiment-ID"
# 2xx answers out of all API answers: the reward and experiment metric of the bandit test.
_SIDE = 'namespace="{{namespace}}",llmops_dev_llmdeployment="{{canary}}",handler=~"/v1/.*"'
SUCCESS_RATE = {
    "successes": f'sum(increase(http_requests_total{{{_SIDE},status="2xx"}}[{{{{interval}}}}]))',
    "trials": f"sum(increase(http_requests_total{{{_SIDE}}}[{{{{interval}}}}]))",
}


@pytest.fixture
def world(
    cluster: Cluster,
    namespace: str,
    tmp_path: Path,
    mlflow_server: MLflowServer,
    request: pytest.FixtureRequest,
) -> Iterator[World]:
    handle = World(cluster, namespace, tmp_path, mlflow_server, "gateway-api", request.param)
    handle.route_rules = True
    try:
        yield handle
    finally:
        for what in (["canaryrollout", "-o", "yaml"], ["httproute,inferencepool", "-o", "yaml"]):
            print(cluster.kubectl("get", "-n", namespace, *what, check=False).stdout)
        handle.stop()
        assert "Traceback" not in handle.operator.logs(), handle.operator.logs()


def canary_behaviour(behaviour: Any) -> Any:
    return pytest.mark.parametrize("world", [behaviour], indirect=True, ids=[""])


def rules(world: World) -> list[dict[str, Any]]:
    return list(world.route()["spec"]["rules"])


def mirror_filters(world: World) -> list[dict[str, Any]]:
    return [f for rule in rules(world) for f in rule.get("filters") or [] if f["type"] == "RequestMirror"]


def header_rules(world: World) -> list[dict[str, Any]]:
    return [rule for rule in rules(world) if str(rule.get("name", "")).startswith("llmops-canary-header")]


def status(world: World) -> dict[str, Any]:
    return dict(world.rollout().get("status") or {})


@canary_behaviour(GOOD)
def test_mirror_then_header_route_are_written_judged_and_removed(world: World) -> None:
    world.headers = lambda: {HEADER: "b"} if world.load and sum(world.load.sent) % 5 == 0 else {}
    world.start(
        {
            "steps": [
                {"setMirror": {"percent": 50}},
                {"analysis": {}},
                {"setHeaderRoute": {"name": HEADER, "value": "b"}},
                {"pause": {}},
                {"setWeight": 100},
                {"analysis": {}},
            ],
            "analysis": analysis(),
        }
    )
    # Shadow: the route mirrors half the requests to the canary, users get only the stable's answers.
    wait_for(lambda: mirror_filters(world), timeout=90, what="the RequestMirror filter")
    [mirror] = mirror_filters(world)
    assert (
        mirror["requestMirror"]["percent"] == 50 and mirror["requestMirror"]["backendRef"]["name"] == CANARY
    )
    weights = {ref["name"]: ref.get("weight", 1) for ref in rules(world)[0]["backendRefs"]}
    assert weights == {STABLE: 100, CANARY: 0}
    # The analysis of the mirror step judged the canary on mirrored requests alone, against the stable.
    wait_for(lambda: status(world).get("currentStepIndex", 0) >= 2, timeout=90, what="the mirror step judged")
    measured = {m["metric"]: m for m in status(world)["measurements"]}
    assert {"error-rate", "latency", "response-length"} <= set(measured), measured
    assert all(m["phase"] == "Successful" for m in measured.values()), measured
    assert "p=" in measured["response-length"]["value"]  # a rank test against the stable's lengths
    assert world.load is not None and world.load.mirrored[1] > 0
    assert world.load.by_rule[("0", CANARY)] == 0, "a user got a canary answer by weight at 0%"
    # A/B by header: the operator's own rule sends X-Experiment-ID: b to the canary.
    wait_for(lambda: world.condition("Paused").get("reason") == "WaitingForPromote", timeout=60, what="pause")
    [rule] = header_rules(world)
    assert rule["backendRefs"][0]["name"] == CANARY
    assert {"type": "Exact", "name": HEADER, "value": "b"} in rule["matches"][0]["headers"]
    assert status(world)["headerRoute"] == {"name": HEADER, "value": "b", "match": "Exact"}
    wait_for(lambda: world.load and world.load.sent[1] > 0, timeout=20, what="header requests at the canary")
    assert world.load.by_rule[("llmops-canary-header-0", CANARY)] > 0
    assert world.load.by_rule[("0", CANARY)] == 0
    cli(world, "rollout", "promote", "upgrade")
    world.wait_phase("Promoted", timeout=120)
    # The rollout is over: no mirror, no header rule; the user's rule is as it was, plus weights.
    assert mirror_filters(world) == [] and header_rules(world) == []
    assert len(rules(world)) == 1
    assert status(world)["mirrorPercent"] == 0 and "headerRoute" not in status(world)


@canary_behaviour(SLOW)
def test_slower_canary_is_rolled_back_on_shadow_traffic_before_any_user_sees_it(world: World) -> None:
    world.start({"steps": [{"setMirror": {"percent": 100}}, {"analysis": {}}], "analysis": analysis()})
    world.wait_phase("RolledBack", timeout=120)
    assert "latency" in world.condition("RolledBack")["message"]
    assert world.load is not None and world.load.sent[1] == 0 and world.load.mirrored[1] > 0
    assert world.load.errors[0] == 0
    wait_for(lambda: not mirror_filters(world), timeout=10, what="the mirror removed")


@canary_behaviour(GOOD)
def test_bandit_moves_weight_toward_the_better_side_within_bounds(world: World) -> None:
    world.stable_sim.behaviour.failure_percent = 30  # the stable answers 30% of requests with a 5xx
    bandit = {"reward": SUCCESS_RATE, "minWeight": 10, "maxWeight": 80, "interval": "4s"}
    experiment = {
        "duration": "24s",
        "weight": 50,
        "metrics": [{"name": "success", "rate": SUCCESS_RATE}],
        "strategy": "bandit",
        "bandit": bandit,
    }
    world.start({"steps": [{"experiment": experiment}], "analysis": analysis(failureLimit=3)})
    done = world.wait_phase("Promoted", timeout=180)["status"]
    changes = done["banditChanges"]
    assert changes, done
    assert all(10 <= change["weight"] <= 80 for change in changes), changes
    assert changes[-1]["weight"] == 80 and float(changes[-1]["probability"]) > 0.9, changes
    times = [change["at"] for change in changes]
    assert len(set(times)) == len(times)  # at most one change per interval: never two at once
    [result] = done["experiments"]
    assert result["decision"] == "CanaryBetter" and result["metric"] == "success", result
    low, high = (float(x) for x in result["interval"].strip("[]").split(","))
    assert 0 < low < float(result["difference"]) < high + 0.05
    run = world.mlflow.client().get_run(result["mlflowRunId"])
    assert run.data.params["success/decision"] == "CanaryBetter"
    assert run.data.metrics["success/low"] == pytest.approx(low, abs=1e-3)


@canary_behaviour(GOOD)
def test_inference_pools_are_written_and_the_route_shifts_between_them(world: World) -> None:
    picker = {"name": "llama-epp", "port": 9002}
    world.stable_extra = {"inferencePool": {"endpointPickerRef": picker}}
    world.backend = {"group": INFERENCE_GROUP, "kind": "InferencePool", "name": STABLE}
    world.start(
        {
            "steps": [{"setMirror": {"percent": 20}}, {"setWeight": 50}, {"pause": {}}],
            "analysis": analysis(),
        }
    )
    wait_for(
        lambda: world.condition("Paused").get("reason") == "WaitingForPromote", timeout=120, what="pause"
    )
    for name in (STABLE, CANARY):
        pool = world.cluster.get("inferencepool", name, "-n", world.namespace)
        assert pool["spec"]["selector"]["matchLabels"] == {"llmops.dev/llmdeployment": name}
        assert pool["spec"]["targetPorts"] == [{"number": 8000}]
        assert pool["spec"]["endpointPickerRef"]["name"] == "llama-epp"
        assert pool["spec"]["endpointPickerRef"]["port"] == {"number": 9002}
        [owner] = pool["metadata"]["ownerReferences"]
        assert owner["kind"] == "LLMDeployment" and owner["name"] == name
        llmd = world.cluster.get("llmdeployment", name, "-n", world.namespace)
        ready = next(c for c in llmd["status"]["conditions"] if c["type"] == "InferencePoolReady")
        assert ready["status"] == "True", ready
    refs = {ref["name"]: ref for ref in rules(world)[0]["backendRefs"]}
    assert refs[CANARY]["kind"] == "InferencePool" and refs[CANARY]["group"] == INFERENCE_GROUP
    assert (refs[STABLE]["weight"], refs[CANARY]["weight"]) == (50, 50)
    [mirror] = mirror_filters(world)
    assert mirror["requestMirror"]["backendRef"]["kind"] == "InferencePool"
    assert world.load is not None and world.load.sent[1] > 0
    cli(world, "rollout", "abort", "upgrade")
    world.wait_phase("RolledBack", timeout=60)
    refs = {ref["name"]: ref for ref in rules(world)[0]["backendRefs"]}
    assert refs[CANARY]["weight"] == 0 and mirror_filters(world) == []
