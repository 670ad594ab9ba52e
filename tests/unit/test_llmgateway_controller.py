"""The LLMGateway controller's decisions without a cluster: the pure status of gateway/status.py
and one pass of the controller against the recording fake of kube.py."""

from __future__ import annotations

from typing import Any

from llmops_operator import names
from llmops_operator.api.llmgateway import LLMGatewaySpec, RouteStatus
from llmops_operator.config import Settings
from llmops_operator.gateway import status
from llmops_operator.handlers.llmgateway import LLMGatewayController

from .fake_kube import FakeKube

NS = "llm"
ENDPOINT = "http://gw.llm.svc.cluster.local:4000"


def gateway(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "llmops.dev/v1alpha1",
        "kind": "LLMGateway",
        "metadata": {"name": "gw", "namespace": NS, "uid": "g1", "generation": 1},
        "spec": {
            "masterKey": {"name": "admin", "key": "key"},
            "routes": [
                {"name": "budget", "llmDeployment": {"name": "llama"}, "price": {"input": "1", "output": "2"}}
            ],
            **spec,
        },
    }


def llama(ready: str = "True") -> dict[str, Any]:
    return {
        "apiVersion": "llmops.dev/v1alpha1",
        "kind": "LLMDeployment",
        "metadata": {"name": "llama", "namespace": NS},
        "spec": {"model": {"uri": "hf://meta/llama"}},
        "status": {"conditions": [{"type": "Ready", "status": ready, "reason": "Available"}]},
    }


def secret(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NS}}


def condition(kube: FakeKube, type_: str) -> dict[str, Any]:
    conditions = kube.status_of("LLMGateway", NS, "gw")["conditions"]
    return next(c for c in conditions if c["type"] == type_)


def reconcile(kube: FakeKube) -> None:
    LLMGatewayController(Settings(), kube).reconcile(kube.stored("LLMGateway", NS, "gw"))


def test_routes_ready_names_each_unhealthy_route() -> None:
    healthy = RouteStatus(name="a", healthy=True, message="ok")
    sick = RouteStatus(name="b", healthy=False, message="LLMDeployment b serves b (not Ready)")
    assert status.routes_ready([healthy], {"a": 1}).reason == names.AVAILABLE
    not_ready = status.routes_ready([healthy, sick], {"a": 1, "b": 1})
    assert (not_ready.status, not_ready.reason) == ("False", names.BACKEND_NOT_READY)
    assert not_ready.message == "b: LLMDeployment b serves b (not Ready)"
    assert status.routes_ready([sick], {}).reason == names.BACKEND_NOT_FOUND


def test_ready_from_replicas_the_deployment_and_the_secrets() -> None:
    spec = LLMGatewaySpec.model_validate(gateway()["spec"])
    live = {"status": {"readyReplicas": 1}}
    assert status.ready(spec.model_copy(update={"replicas": 0}), live, 1, False, ENDPOINT).reason == (
        names.SCALED_TO_ZERO
    )
    assert status.ready(spec, None, 0, False, ENDPOINT).reason == names.CREATING
    served = status.ready(spec, live, 1, False, ENDPOINT)
    assert (served.status, served.reason, served.message) == (
        "True",
        names.AVAILABLE,
        f"1 replicas serve {ENDPOINT}",
    )
    assert status.ready(spec, live, 1, True, ENDPOINT).reason == names.PENDING
    assert status.ready_replicas(live) == 1 and status.ready_replicas(None) == 0


def test_a_missing_secret_keeps_the_last_config_and_applies_nothing() -> None:
    kube = FakeKube(gateway(), llama())
    reconcile(kube)
    applied = condition(kube, names.CONFIG_APPLIED)
    assert (applied["status"], applied["reason"]) == ("False", names.SECRET_NOT_FOUND)
    assert "Secret admin not found" in applied["message"]
    assert kube.verbs("Deployment") == [] and kube.events == []
    assert condition(kube, names.READY)["reason"] == names.CREATING


def test_a_pass_applies_the_children_once_and_reports_the_routes() -> None:
    kube = FakeKube(gateway(), llama(), secret("admin"))
    reconcile(kube)
    assert "apply" in kube.verbs("Deployment")
    assert [reason for _, reason, _ in kube.events] == [names.APPLIED]
    assert condition(kube, names.CONFIG_APPLIED)["reason"] == names.APPLIED
    assert condition(kube, names.ROUTES_READY)["status"] == "True"
    (route,) = kube.status_of("LLMGateway", NS, "gw")["routes"]
    assert (route["priceSource"], route["healthy"]) == ("spec", True)
    writes = len(kube.writes)
    reconcile(kube)  # nothing changed: nothing written, no Event
    assert len(kube.writes) == writes and len(kube.events) == 1


def test_an_unready_backend_is_named_in_routes_ready() -> None:
    kube = FakeKube(gateway(), llama(ready="False"), secret("admin"))
    reconcile(kube)
    routes = condition(kube, names.ROUTES_READY)
    assert (routes["status"], routes["reason"]) == ("False", names.BACKEND_NOT_READY)
    assert routes["message"] == "budget: LLMDeployment llama serves llama (not Ready)"
