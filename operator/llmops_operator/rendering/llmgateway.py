"""LLMGateway -> LiteLLM's ``config.yaml`` (a ConfigMap), its Deployment, Service, optional
ServiceMonitor and PodDisruptionBudget. Pure functions of the spec and what the controller found
(each route's address and price, the versions of the Secrets referenced), so golden-file testable.

Secrets never enter the ConfigMap: every key is an environment variable from a ``secretKeyRef``
and the config names it as ``os.environ/NAME``, LiteLLM's own indirection. The pod template
carries a hash of the config and of the Secrets' resourceVersions, so an edit of either rolls
the pods (environment variables from Secrets are read only when a container starts).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from .. import API_VERSION, FIELD_MANAGER
from ..api.llmgateway import LLMGatewaySpec, Route
from ..durations import parse_duration
from ..names import (
    COMPONENT_LABEL,
    CONFIG_HASH_ANNOTATION,
    GATEWAY_LABEL,
    INSTANCE_LABEL,
    MANAGED_BY_LABEL,
    NAME_LABEL,
    PART_OF_LABEL,
    SCRAPE_ANNOTATION,
    SCRAPE_PATH_ANNOTATION,
    SCRAPE_PORT_ANNOTATION,
)
from .llmdeployment import restricted_security_context

GATEWAY_PORT = 4000
CONFIG_MOUNT = "/etc/litellm"
CONFIG_FILE = "config.yaml"
TENANTS_FILE = "tenants.json"
HOOKS_MODULE = "proxy_hooks"  # LiteLLM imports <module>.py from the config file's directory
PROVIDER_PREFIX = {
    "openai": "openai",
    "openai-compatible": "openai",
    "anthropic": "anthropic",
    "gemini": "gemini",
}
MASTER_KEY_ENV = "LITELLM_MASTER_KEY"


@dataclass(frozen=True)
class Owner:
    """The LLMGateway the children belong to."""

    name: str
    namespace: str
    uid: str


@dataclass(frozen=True)
class ResolvedRoute:
    """What the controller found for a route: where it goes and what a token costs there."""

    name: str
    api_base: str | None  # None: the provider's default
    model: str  # LiteLLM's provider/model
    input_cost: float | None = None  # USD per token; None: LiteLLM's bundled price map
    output_cost: float | None = None


def child_name(owner: Owner) -> str:
    return f"{owner.name}-gateway"


def endpoint_url(owner: Owner) -> str:
    return f"http://{child_name(owner)}.{owner.namespace}.svc.cluster.local:{GATEWAY_PORT}/v1"


def selector_labels(owner: Owner) -> dict[str, str]:
    return {GATEWAY_LABEL: owner.name}


def labels(owner: Owner) -> dict[str, str]:
    return {
        NAME_LABEL: "litellm",
        INSTANCE_LABEL: owner.name,
        COMPONENT_LABEL: "gateway",
        PART_OF_LABEL: "llmops",
        MANAGED_BY_LABEL: FIELD_MANAGER,
        **selector_labels(owner),
    }


def metadata(name: str, owner: Owner) -> dict[str, Any]:
    reference = {
        "apiVersion": API_VERSION,
        "kind": "LLMGateway",
        "name": owner.name,
        "uid": owner.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
    return {
        "name": name,
        "namespace": owner.namespace,
        "labels": labels(owner),
        "ownerReferences": [reference],
    }


def route_key_env(index: int) -> str:
    return f"LLMOPS_ROUTE_{index}_API_KEY"


def tenant_key_env(index: int) -> str:
    return f"LLMOPS_TENANT_{index}_KEY"


def secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def referenced_secrets(spec: LLMGatewaySpec) -> list[str]:
    """Every Secret the pods read, once each, in spec order."""
    names = [spec.master_key.name]
    names += [r.external.api_key.name for r in spec.routes if r.external and r.external.api_key]
    names += [tenant.key_secret.name for tenant in spec.tenants]
    if spec.redis is not None and spec.redis.password is not None:
        names.append(spec.redis.password.name)
    return list(dict.fromkeys(names))


def _model_entry(index: int, route: Route, resolved: ResolvedRoute) -> dict[str, Any]:
    params: dict[str, Any] = {"model": resolved.model}
    if resolved.api_base:
        params["api_base"] = resolved.api_base
    if route.external is not None and route.external.api_key is not None:
        params["api_key"] = f"os.environ/{route_key_env(index)}"
    else:
        params["api_key"] = "unused"  # vLLM (or a keyless server) asks for none; the client insists
    for field in ("rpm", "tpm"):
        if getattr(route, field) is not None:
            params[field] = getattr(route, field)
    if route.timeout is not None:
        params["timeout"] = parse_duration(route.timeout)
    if route.retries:
        params["num_retries"] = route.retries
    if resolved.input_cost is not None and resolved.output_cost is not None:
        params["input_cost_per_token"] = resolved.input_cost
        params["output_cost_per_token"] = resolved.output_cost
    return {"model_name": route.name, "litellm_params": params}


def litellm_config(spec: LLMGatewaySpec, resolved: dict[str, ResolvedRoute]) -> dict[str, Any]:
    """LiteLLM's config.yaml as a dict; only routes in ``resolved`` are served."""
    model_list = [
        _model_entry(index, route, resolved[route.name])
        for index, route in enumerate(spec.routes)
        if route.name in resolved
    ]
    router: dict[str, Any] = {"num_retries": 0}
    errors = [{f.route: f.to} for f in spec.fallbacks if "error" in f.triggers]
    context = [{f.route: f.to} for f in spec.fallbacks if "contextWindow" in f.triggers]
    if errors:
        router["fallbacks"] = errors
    if context:
        router["context_window_fallbacks"] = context
    if any(route.tpm is not None or route.rpm is not None for route in spec.routes):
        router["optional_pre_call_checks"] = ["enforce_model_rate_limits"]
    callbacks = ["prometheus"]
    general: dict[str, Any] = {"master_key": f"os.environ/{MASTER_KEY_ENV}"}
    if spec.tenants:
        callbacks.append(f"{HOOKS_MODULE}.spend_tracker")
        general["custom_auth"] = f"{HOOKS_MODULE}.authenticate"
    settings: dict[str, Any] = {"callbacks": callbacks, "require_auth_for_metrics_endpoint": False}
    if spec.cache is not None:
        # Redis host, port and password come from REDIS_HOST/REDIS_PORT/REDIS_PASSWORD.
        params: dict[str, Any] = {"type": "redis", "ttl": parse_duration(spec.cache.ttl)}
        if spec.cache.mode == "semantic":
            params["type"] = "redis-semantic"
            params["similarity_threshold"] = float(spec.cache.similarity_threshold)
            params["redis_semantic_cache_embedding_model"] = spec.cache.embeddings_route
        settings["cache"] = True
        settings["cache_params"] = params
    config: dict[str, Any] = {
        "model_list": model_list,
        "router_settings": router,
        "litellm_settings": settings,
        "general_settings": general,
    }
    guardrails = _guardrails(spec)
    if guardrails:
        config["guardrails"] = guardrails
    return config


def _guardrails(spec: LLMGatewaySpec) -> list[dict[str, Any]]:
    found = spec.guardrails.content_filter
    if found is None:
        return []
    patterns = [
        {"pattern_type": "prebuilt", "pattern_name": p.prebuilt, "action": p.action.upper()}
        if p.prebuilt
        else {"pattern_type": "regex", "pattern": p.regex, "name": f"pattern-{i}", "action": p.action.upper()}
        for i, p in enumerate(found.patterns)
    ]
    words = [{"keyword": k.keyword, "action": k.action.upper()} for k in found.keywords]
    modes = ["pre_call", "post_call"] if found.output else ["pre_call"]
    return [
        {
            "guardrail_name": f"content-filter-{mode.replace('_', '-')}",
            "litellm_params": {
                "guardrail": "litellm_content_filter",
                "mode": mode,
                "default_on": True,
                "patterns": patterns,
                "blocked_words": words,
            },
        }
        for mode in modes
    ]


def tenants_file(spec: LLMGatewaySpec) -> list[dict[str, Any]]:
    """What proxy_hooks reads: each tenant's limits and the env var holding its key."""
    return [
        {
            "name": tenant.name,
            "keyEnv": tenant_key_env(index),
            "rpm": tenant.rpm,
            "tpm": tenant.tpm,
            "budgetUSD": tenant.budget.usd if tenant.budget else None,
            "period": tenant.budget.period if tenant.budget else "month",
            "routes": tenant.routes,
        }
        for index, tenant in enumerate(spec.tenants)
    ]


def config_files(spec: LLMGatewaySpec, resolved: dict[str, ResolvedRoute]) -> dict[str, str]:
    """The ConfigMap's data: config.yaml, the tenants and, with tenants, the hooks' source."""
    files = {CONFIG_FILE: yaml.safe_dump(litellm_config(spec, resolved), sort_keys=False)}
    if spec.tenants:
        files[TENANTS_FILE] = json.dumps(tenants_file(spec), indent=1)
        source = resources.files("llmops_operator.gateway").joinpath(f"{HOOKS_MODULE}.py")
        files[f"{HOOKS_MODULE}.py"] = source.read_text()
    return files


def config_hash(files: dict[str, str], secret_versions: dict[str, str]) -> str:
    """What the pods run: the files and the version of every Secret they read."""
    digest = hashlib.sha256(json.dumps([files, secret_versions], sort_keys=True).encode())
    return digest.hexdigest()[:16]


def environment(spec: LLMGatewaySpec) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "PORT", "value": str(GATEWAY_PORT)},
        {"name": "HOST", "value": "0.0.0.0"},
        {"name": "NUM_WORKERS", "value": str(spec.pod.workers)},
        {"name": "LITELLM_LOCAL_MODEL_COST_MAP", "value": "True"},  # the bundled prices, no fetch
        {"name": "LITELLM_TELEMETRY", "value": "False"},
        secret_env(MASTER_KEY_ENV, spec.master_key.name, spec.master_key.key),
    ]
    if spec.redis is not None:
        env += [
            {"name": "REDIS_HOST", "value": spec.redis.host},
            {"name": "REDIS_PORT", "value": str(spec.redis.port)},
        ]
        if spec.redis.password is not None:
            env.append(secret_env("REDIS_PASSWORD", spec.redis.password.name, spec.redis.password.key))
    for index, route in enumerate(spec.routes):
        if route.external is not None and route.external.api_key is not None:
            ref = route.external.api_key
            env.append(secret_env(route_key_env(index), ref.name, ref.key))
    if spec.tenants:
        env.append({"name": "LLMOPS_GATEWAY_TENANTS", "value": f"{CONFIG_MOUNT}/{TENANTS_FILE}"})
    for index, tenant in enumerate(spec.tenants):
        env.append(secret_env(tenant_key_env(index), tenant.key_secret.name, tenant.key_secret.key))
    return env


def config_map(owner: Owner, files: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(child_name(owner), owner),
        "data": files,
    }


def deployment(spec: LLMGatewaySpec, owner: Owner, digest: str) -> dict[str, Any]:
    resources_: dict[str, Any] = {}
    requests = {k: v for k, v in (("cpu", spec.pod.cpu), ("memory", spec.pod.memory)) if v}
    if requests:
        resources_ = {"requests": requests, "limits": {k: v for k, v in requests.items() if k == "memory"}}
    probe = {"httpGet": {"path": "/health/liveliness", "port": "http"}, "periodSeconds": 10}
    container = {
        "name": "litellm",
        "image": spec.pod.image,
        "command": ["litellm"],
        "args": ["--config", f"{CONFIG_MOUNT}/{CONFIG_FILE}"],
        "env": environment(spec),
        "ports": [{"name": "http", "containerPort": GATEWAY_PORT, "protocol": "TCP"}],
        "volumeMounts": [{"name": "config", "mountPath": CONFIG_MOUNT, "readOnly": True}],
        "startupProbe": {**probe, "periodSeconds": 2, "failureThreshold": 90},
        "livenessProbe": probe,
        "readinessProbe": {**probe, "httpGet": {"path": "/health/readiness", "port": "http"}},
        "securityContext": restricted_security_context(),
        "resources": resources_,
    }
    pod_labels = labels(owner)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(child_name(owner), owner),
        "spec": {
            "replicas": spec.replicas,
            "selector": {"matchLabels": selector_labels(owner)},
            "template": {
                "metadata": {"labels": pod_labels, "annotations": {CONFIG_HASH_ANNOTATION: digest}},
                "spec": {
                    "containers": [container],
                    "volumes": [{"name": "config", "configMap": {"name": child_name(owner)}}],
                    "automountServiceAccountToken": False,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 1000},
                },
            },
        },
    }


def service(owner: Owner) -> dict[str, Any]:
    meta = metadata(child_name(owner), owner)
    meta["annotations"] = {
        SCRAPE_ANNOTATION: "true",
        SCRAPE_PORT_ANNOTATION: str(GATEWAY_PORT),
        SCRAPE_PATH_ANNOTATION: "/metrics",
    }
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "selector": selector_labels(owner),
            "ports": [{"name": "http", "port": GATEWAY_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def service_monitor(spec: LLMGatewaySpec, owner: Owner) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": metadata(child_name(owner), owner),
        "spec": {
            "selector": {"matchLabels": selector_labels(owner)},
            "endpoints": [{"port": "http", "path": "/metrics", "interval": spec.service_monitor.interval}],
        },
    }


def pod_disruption_budget(spec: LLMGatewaySpec, owner: Owner) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(child_name(owner), owner),
        "spec": {"minAvailable": spec.min_available, "selector": {"matchLabels": selector_labels(owner)}},
    }


def render(
    spec: LLMGatewaySpec,
    owner: Owner,
    resolved: dict[str, ResolvedRoute],
    secret_versions: dict[str, str],
    with_service_monitor: bool,
) -> tuple[list[dict[str, Any]], str]:
    """Every child, ConfigMap first (the pods mount it), and the config hash they carry."""
    files = config_files(spec, resolved)
    digest = config_hash(files, secret_versions)
    children = [config_map(owner, files), deployment(spec, owner, digest), service(owner)]
    if spec.service_monitor.enabled and with_service_monitor:
        children.append(service_monitor(spec, owner))
    if spec.min_available is not None:
        children.append(pod_disruption_budget(spec, owner))
    return children, digest
