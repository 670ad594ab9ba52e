"""LLMGateway controller: find each route's backend and price, apply LiteLLM's children, report.

A timer pass per object (the resync interval): it reads the routes' LLMDeployments, the
resourceVersions of the Secrets the pods read, and, for self-hosted routes priced by the GPU-hour,
their measured throughput from Prometheus; rendering is pure (rendering/llmgateway.py). A Secret
rotated in place changes its resourceVersion, so the pods' config hash, so the pods roll: no
restart of the operator. Children are applied only when they differ from the live ones.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import kopf
from pydantic import ValidationError

from .. import GROUP, VERSION
from ..api.llmdeployment import LLMDeploymentSpec
from ..api.llmgateway import LLMGatewaySpec, Route, RouteStatus
from ..conditions import find_condition, invalid_spec_status, set_condition
from ..config import Settings
from ..durations import parse_duration
from ..gateway import pricing
from ..kube import Kube, contains
from ..metrics.prometheus import PrometheusProvider
from ..metrics.provider import MetricsUnavailable, QueryFailed
from ..names import (
    APPLIED,
    AVAILABLE,
    BACKEND_NOT_FOUND,
    BACKEND_NOT_READY,
    CONFIG_APPLIED,
    CREATING,
    NO_THROUGHPUT,
    PENDING,
    READY,
    ROUTES_READY,
    SCALED_TO_ZERO,
    SECRET_NOT_FOUND,
)
from ..rendering import llmdeployment as deployment_rendering
from ..rendering import llmgateway as rendering
from ..timestamps import format_time, now, parse_time

SERVICE_MONITOR_CRD = "servicemonitors.monitoring.coreos.com"
logger = logging.getLogger(__name__)


def resolve_route(
    route: Route,
    spec: LLMGatewaySpec,
    backend: dict[str, Any] | None,
    namespace: str,
    measured: Any,
    previous: dict[str, Any] | None = None,
    moment: datetime | None = None,
) -> tuple[rendering.ResolvedRoute | None, RouteStatus]:
    """Where a route goes and its price; ``measured(served_model) -> tokens/s | None`` asks
    Prometheus, unless ``previous`` (the route's last status) holds a derived price younger than
    pricing.refreshInterval: a price that moved at every pass would roll the pods at every pass.
    None when the route cannot be served (its LLMDeployment is missing)."""
    price = route.price
    if route.external is not None:
        prefix = rendering.PROVIDER_PREFIX[route.external.provider]
        resolved = rendering.ResolvedRoute(
            route.name, route.external.base_url, f"{prefix}/{route.external.model}"
        )
        status = RouteStatus(
            name=route.name, healthy=True, message="external provider", price_source="bundled"
        )
        if price is not None:
            resolved = rendering.ResolvedRoute(
                resolved.name, resolved.api_base, resolved.model, float(price.input), float(price.output)
            )
            status.price_source = "spec"
            status.input_cost_per_token, status.output_cost_per_token = price.input, price.output
        return resolved, status
    assert route.llm_deployment is not None
    target = route.llm_deployment.name
    if backend is None:
        message = f"LLMDeployment {target} not found"
        return None, RouteStatus(name=route.name, message=message, price_source="none")
    try:
        deployment = LLMDeploymentSpec.model_validate(backend.get("spec") or {})
    except ValidationError:
        return None, RouteStatus(name=route.name, message=f"LLMDeployment {target} is invalid")
    served = deployment.model.served_model_name or target
    owner = deployment_rendering.Owner(name=target, namespace=namespace, uid="")
    ready = find_condition((backend.get("status") or {}).get("conditions") or [], READY) or {}
    healthy = ready.get("status") == "True"
    status = RouteStatus(
        name=route.name,
        healthy=healthy,
        message=f"LLMDeployment {target} serves {served}" + ("" if healthy else " (not Ready)"),
        price_source="none",
    )
    cost: float | None = None
    inputs: tuple[float | None, float | None]
    if price is not None:
        status.price_source = "spec"
        status.input_cost_per_token, status.output_cost_per_token = price.input, price.output
        inputs = (float(price.input), float(price.output))
    else:
        hour = pricing.gpu_hour_price(route, spec.pricing, deployment)
        moment = moment or now()
        kept = fresh_price(previous, moment, parse_duration(spec.pricing.refresh_interval))
        measured_at = (previous or {}).get("priceMeasuredAt", "") if kept is not None else format_time(moment)
        if kept is not None:
            cost = kept
        elif hour is not None:
            rate = measured(served)
            if rate is not None:
                cost = pricing.price_per_token(hour, pricing.gpus(deployment), rate)
        if cost is not None:
            status.price_source = "derived"
            status.input_cost_per_token = status.output_cost_per_token = f"{cost:.6g}"
            status.price_measured_at = measured_at
            cost = float(status.input_cost_per_token)  # the config carries what status says
        elif hour is not None:
            status.message += f"; {NO_THROUGHPUT}: no tokens measured over {spec.pricing.throughput_window}"
        inputs = (cost, cost) if cost is not None else (None, None)
    api_base = deployment_rendering.endpoint_url(owner)
    return rendering.ResolvedRoute(route.name, api_base, f"openai/{served}", *inputs), status


def fresh_price(previous: dict[str, Any] | None, moment: datetime, refresh_seconds: float) -> float | None:
    """The derived price of the route's last status while it is younger than the refresh interval."""
    if not previous or previous.get("priceSource") != "derived" or not previous.get("priceMeasuredAt"):
        return None
    measured = parse_time(previous["priceMeasuredAt"])
    if (moment - measured).total_seconds() >= refresh_seconds:
        return None
    return float(previous["inputCostPerToken"])


class LLMGatewayController:
    def __init__(self, settings: Settings, kube: Kube) -> None:
        self.settings = settings
        self.kube = kube

    def _throughput(self, spec: LLMGatewaySpec, previous: dict[str, float]) -> Any:
        url = spec.pricing.prometheus.address if spec.pricing.prometheus else self.settings.prometheus_url
        provider = PrometheusProvider(url)

        def measured(served: str) -> float | None:
            try:
                values = provider.instant(pricing.throughput_query(served, spec.pricing.throughput_window))
            except (MetricsUnavailable, QueryFailed) as error:
                logger.warning("throughput of %s unknown: %s", served, error)
                return previous.get(served)  # keep the last price while Prometheus is away
            return values[0] if values else None

        return measured

    def reconcile(self, body: dict[str, Any]) -> None:
        meta = body["metadata"]
        namespace, generation = meta["namespace"], int(meta.get("generation") or 0)
        current = dict(body.get("status") or {})
        try:
            spec = LLMGatewaySpec.model_validate(body.get("spec") or {})
        except ValidationError as error:
            self.kube.write_status(body, current, invalid_spec_status(current, generation, error))
            return
        owner = rendering.Owner(meta["name"], namespace, meta["uid"])
        measured = self._throughput(spec, {})
        resolved: dict[str, rendering.ResolvedRoute] = {}
        routes: list[RouteStatus] = []
        for route in spec.routes:
            backend = (
                self.kube.get("LLMDeployment", namespace, route.llm_deployment.name)
                if route.llm_deployment is not None
                else None
            )
            previous = next((r for r in current.get("routes") or [] if r.get("name") == route.name), None)
            found, route_status = resolve_route(route, spec, backend, namespace, measured, previous)
            if found is not None:
                resolved[route.name] = found
            routes.append(route_status)
        conditions = list(current.get("conditions") or [])
        versions: dict[str, str] = {}
        missing = []
        for name in rendering.referenced_secrets(spec):
            secret = self.kube.get("Secret", namespace, name)
            if secret is None:
                missing.append(name)
            else:
                versions[name] = str(secret["metadata"].get("resourceVersion", ""))
        digest = current.get("configHash", "")
        if missing:
            message = f"Secret {', '.join(missing)} not found; the gateway keeps its last config"
            conditions = set_condition(
                conditions, CONFIG_APPLIED, "False", SECRET_NOT_FOUND, message, generation
            )
        else:
            monitor = spec.service_monitor.enabled and self.kube.crd_exists(SERVICE_MONITOR_CRD)
            children, digest = rendering.render(spec, owner, resolved, versions, monitor)
            self._apply(body, children)
            message = f"config {digest} with {len(resolved)} of {len(spec.routes)} routes"
            conditions = set_condition(conditions, CONFIG_APPLIED, "True", APPLIED, message, generation)
        unhealthy = [r for r in routes if not r.healthy]
        if unhealthy:
            reason = (
                BACKEND_NOT_FOUND if any(r.name not in resolved for r in unhealthy) else BACKEND_NOT_READY
            )
            text = "; ".join(f"{r.name}: {r.message}" for r in unhealthy)
            conditions = set_condition(conditions, ROUTES_READY, "False", reason, text, generation)
        else:
            conditions = set_condition(
                conditions, ROUTES_READY, "True", AVAILABLE, "every route has a backend", generation
            )
        live = self.kube.get("Deployment", namespace, rendering.child_name(owner))
        ready_replicas = int(((live or {}).get("status") or {}).get("readyReplicas") or 0)
        if spec.replicas == 0:
            state = ("False", SCALED_TO_ZERO, "replicas is 0")
        elif live is None:
            state = ("False", CREATING, "the gateway's Deployment does not exist yet")
        elif ready_replicas >= spec.replicas and not missing:
            state = ("True", AVAILABLE, f"{ready_replicas} replicas serve {rendering.endpoint_url(owner)}")
        else:
            state = ("False", PENDING, f"{ready_replicas} of {spec.replicas} replicas ready")
        conditions = set_condition(conditions, READY, *state, generation)  # type: ignore[arg-type]
        desired = {
            "observedGeneration": generation,
            "conditions": conditions,
            "configHash": digest,
            "endpoint": rendering.endpoint_url(owner),
            "replicas": spec.replicas,
            "readyReplicas": ready_replicas,
            "routes": [r.model_dump(exclude_defaults=False) for r in routes],
        }
        self.kube.write_status(body, current, desired)

    def _apply(self, body: dict[str, Any], children: list[dict[str, Any]]) -> None:
        applied = []
        for child in children:
            meta = child["metadata"]
            live = self.kube.get(child["kind"], meta["namespace"], meta["name"])
            if live is None or not contains(live, child):
                self.kube.apply(child)
                applied.append(f"{child['kind']}/{meta['name']}" + (" (created)" if live is None else ""))
        if applied:
            self.kube.post_event(body, "Normal", APPLIED, ", ".join(applied))


def register(settings: Settings) -> None:
    controller = LLMGatewayController(settings, Kube())

    @kopf.on.timer(GROUP, VERSION, "llmgateways", id="reconcile", interval=settings.resync_seconds)
    def reconcile(body: kopf.Body, **_: Any) -> None:
        controller.reconcile(dict(body))
