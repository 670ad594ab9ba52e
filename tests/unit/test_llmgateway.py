"""LLMGateway's pure parts: LiteLLM's config, the children, the config hash and the prices."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from llmops_operator.api.llmgateway import LLMGatewaySpec
from llmops_operator.gateway import pricing
from llmops_operator.gateway.routes import fresh_price, resolve_route
from llmops_operator.rendering import llmgateway as rendering

OWNER = rendering.Owner("gw", "llm", "uid-1")


def spec(**changes: Any) -> LLMGatewaySpec:
    base: dict[str, Any] = {
        "masterKey": {"name": "admin", "key": "key"},
        "routes": [
            {
                "name": "premium",
                "external": {"provider": "openai", "model": "gpt-4o", "apiKey": {"name": "oa", "key": "k"}},
            },
            {"name": "budget", "llmDeployment": {"name": "llama"}, "gpuHourPrice": "3.6", "tpm": 1000},
        ],
        "fallbacks": [
            {"route": "premium", "to": ["budget"]},
            {"route": "budget", "to": ["premium"], "triggers": ["contextWindow"]},
        ],
        "tenants": [
            {
                "name": "team-a",
                "keySecret": {"name": "team-a", "key": "key"},
                "budget": {"usd": "5", "period": "day"},
            }
        ],
        "redis": {"host": "redis", "password": {"name": "redis", "key": "password"}},
        "cache": {"ttl": "5m"},
        "guardrails": {
            "contentFilter": {"patterns": [{"prebuilt": "email"}], "keywords": [{"keyword": "secret"}]}
        },
    }
    base.update(changes)
    return LLMGatewaySpec.model_validate(base)


RESOLVED = {
    "premium": rendering.ResolvedRoute("premium", None, "openai/gpt-4o"),
    "budget": rendering.ResolvedRoute(
        "budget", "http://llama.llm.svc.cluster.local:8000/v1", "openai/llama", 1e-6, 1e-6
    ),
}


def test_config_routes_fallbacks_limits_prices_cache_and_filter() -> None:
    config = rendering.litellm_config(spec(), RESOLVED)
    models = {entry["model_name"]: entry["litellm_params"] for entry in config["model_list"]}
    assert models["premium"] == {"model": "openai/gpt-4o", "api_key": "os.environ/LLMOPS_ROUTE_0_API_KEY"}
    assert models["budget"]["input_cost_per_token"] == 1e-6 and models["budget"]["tpm"] == 1000
    router = config["router_settings"]
    assert router["fallbacks"] == [{"premium": ["budget"]}]
    assert router["context_window_fallbacks"] == [{"budget": ["premium"]}]
    assert router["optional_pre_call_checks"] == ["enforce_model_rate_limits"]
    settings = config["litellm_settings"]
    assert settings["cache_params"] == {"type": "redis", "ttl": 300.0}
    assert settings["require_auth_for_metrics_endpoint"] is False
    assert "proxy_hooks.spend_tracker" in settings["callbacks"]
    assert config["general_settings"]["custom_auth"] == "proxy_hooks.authenticate"
    guard = config["guardrails"][0]["litellm_params"]
    assert guard["patterns"] == [{"pattern_type": "prebuilt", "pattern_name": "email", "action": "MASK"}]
    assert guard["blocked_words"] == [{"keyword": "secret", "action": "BLOCK"}]


def test_a_route_without_a_backend_is_left_out() -> None:
    config = rendering.litellm_config(spec(), {"premium": RESOLVED["premium"]})
    assert [entry["model_name"] for entry in config["model_list"]] == ["premium"]


def test_secrets_are_env_references_and_the_hooks_ship_in_the_config_map() -> None:
    children, digest = rendering.render(spec(), OWNER, RESOLVED, {"admin": "1"}, with_service_monitor=False)
    config_map, deployment = children[0], children[1]
    assert set(config_map["data"]) == {"config.yaml", "tenants.json", "proxy_hooks.py"}
    assert "async def authenticate" in config_map["data"]["proxy_hooks.py"]
    env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["LITELLM_MASTER_KEY"]["valueFrom"] == {"secretKeyRef": {"name": "admin", "key": "key"}}
    assert env["LLMOPS_TENANT_0_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "team-a"
    assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "redis", "key": "password"}
    assert deployment["spec"]["template"]["metadata"]["annotations"]["llmops.dev/config-hash"] == digest
    assert yaml.safe_load(config_map["data"]["config.yaml"])["general_settings"]["master_key"] == (
        "os.environ/LITELLM_MASTER_KEY"
    )


def test_config_hash_moves_with_a_secret_version_and_the_config() -> None:
    files = rendering.config_files(spec(), RESOLVED)
    digest = rendering.config_hash(files, {"team-a": "10"})
    assert rendering.config_hash(files, {"team-a": "10"}) == digest
    assert rendering.config_hash(files, {"team-a": "11"}) != digest
    other = rendering.config_files(spec(replicas=2, cache=None), RESOLVED)
    assert rendering.config_hash(other, {"team-a": "10"}) != digest


def test_optional_children() -> None:
    children, _ = rendering.render(
        spec(minAvailable=1, serviceMonitor={"enabled": True}), OWNER, RESOLVED, {}, with_service_monitor=True
    )
    assert [c["kind"] for c in children] == [
        "ConfigMap",
        "Deployment",
        "Service",
        "ServiceMonitor",
        "PodDisruptionBudget",
    ]
    assert rendering.referenced_secrets(spec()) == ["admin", "oa", "team-a", "redis"]


def test_price_per_token_from_gpu_hours_and_throughput() -> None:
    # 2 GPUs at 3.6 USD/h = 0.002 USD/s; at 100 tokens/s a token costs 0.00002 USD.
    assert pricing.price_per_token(3.6, 2, 100.0) == pytest.approx(2e-5)
    assert pricing.price_per_token(3.6, 2, 0.0) is None


def backend(gpus: int = 0, product: str | None = None) -> dict[str, Any]:
    resources: dict[str, Any] = {"gpus": gpus}
    if product:
        resources["gpuProduct"] = product
    ready = {
        "type": "Ready",
        "status": "True",
        "reason": "Available",
        "lastTransitionTime": "2026-12-01T00:00:00Z",
    }
    return {
        "spec": {
            "model": {"uri": "hf://org/llama", "servedModelName": "served"},
            "resources": resources,
            "replicas": 2,
        },
        "status": {"conditions": [ready]},
    }


def test_self_hosted_route_is_priced_from_measured_throughput() -> None:
    gateway = spec()
    asked = []

    def measured(served: str) -> float:
        asked.append(served)
        return 10.0

    resolved, status = resolve_route(gateway.routes[1], gateway, backend(), "llm", measured)
    assert asked == ["served"]
    assert resolved is not None and resolved.model == "openai/served"
    assert resolved.api_base == "http://llama.llm.svc.cluster.local:8000/v1"
    # A CPU-served model counts as one GPU per replica: 2 x 3.6 USD/h over 10 tokens/s.
    assert resolved.input_cost == pytest.approx(2 * 3.6 / 36000)
    assert status.price_source == "derived" and status.healthy


def test_gpu_product_price_and_missing_backend() -> None:
    gateway = spec(
        routes=[{"name": "budget", "llmDeployment": {"name": "llama"}}],
        fallbacks=[],
        tenants=[],
        pricing={"gpuProducts": {"H100": "4"}, "gpuHourPrice": "1"},
    )
    route = gateway.routes[0]
    assert pricing.gpu_hour_price(route, gateway.pricing, pricing_spec(backend(1, "H100"))) == 4.0
    assert pricing.gpu_hour_price(route, gateway.pricing, pricing_spec(backend(1, "L4"))) == 1.0
    resolved, status = resolve_route(route, gateway, None, "llm", lambda _: 1.0)
    assert resolved is None and "not found" in status.message and not status.healthy


def pricing_spec(body: dict[str, Any]) -> Any:
    from llmops_operator.api.llmdeployment import LLMDeploymentSpec

    return LLMDeploymentSpec.model_validate(body["spec"])


def test_a_derived_price_is_kept_until_the_refresh_interval() -> None:
    moment = datetime(2026, 12, 1, 12, tzinfo=UTC)
    previous = {
        "priceSource": "derived",
        "priceMeasuredAt": "2026-12-01T11:30:00Z",
        "inputCostPerToken": "2e-05",
    }
    assert fresh_price(previous, moment, 3600) == 2e-5
    assert fresh_price(previous, moment + timedelta(minutes=30), 3600) is None
    assert fresh_price({"priceSource": "spec"}, moment, 3600) is None
