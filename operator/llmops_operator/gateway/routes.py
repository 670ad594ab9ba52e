"""Where each LLMGateway route goes and what it costs: pure over what the controller read.

A route to an external provider goes there; a self-hosted one goes to its LLMDeployment's Service,
priced from the spec, else from the GPU-hour price over the measured throughput (pricing), kept
from the route's last status while that price is younger than pricing.refreshInterval.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from ..api.llmdeployment import LLMDeploymentSpec
from ..api.llmgateway import LLMGatewaySpec, Route, RouteStatus
from ..conditions import find_condition
from ..durations import parse_duration
from ..names import NO_THROUGHPUT, READY
from ..rendering import llmdeployment as deployment_rendering
from ..rendering import llmgateway as rendering
from ..timestamps import format_time, now, parse_time
from . import pricing

Measured = Callable[[str], float | None]  # served model name -> tokens/s, None when unknown


def resolve_route(
    route: Route,
    spec: LLMGatewaySpec,
    backend: dict[str, Any] | None,
    namespace: str,
    measured: Measured,
    previous: dict[str, Any] | None = None,
    moment: datetime | None = None,
) -> tuple[rendering.ResolvedRoute | None, RouteStatus]:
    """Where a route goes and its price; ``measured(served_model) -> tokens/s | None`` asks
    Prometheus, unless ``previous`` (the route's last status) holds a derived price younger than
    pricing.refreshInterval: a price that moved at every pass would roll the pods at every pass.
    None when the route cannot be served (its LLMDeployment is missing)."""
    if route.external is not None:
        return _external_route(route)
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
    ready = find_condition((backend.get("status") or {}).get("conditions") or [], READY) or {}
    healthy = ready.get("status") == "True"
    status = RouteStatus(
        name=route.name,
        healthy=healthy,
        message=f"LLMDeployment {target} serves {served}" + ("" if healthy else " (not Ready)"),
        price_source="none",
    )
    inputs: tuple[float | None, float | None]
    if route.price is not None:
        status.price_source = "spec"
        status.input_cost_per_token, status.output_cost_per_token = route.price.input, route.price.output
        inputs = (float(route.price.input), float(route.price.output))
    else:
        cost = _derived_price(route, spec, deployment, served, measured, previous, moment or now(), status)
        inputs = (cost, cost)
    owner = deployment_rendering.Owner(name=target, namespace=namespace, uid="")
    api_base = deployment_rendering.endpoint_url(owner)
    return rendering.ResolvedRoute(route.name, api_base, f"openai/{served}", *inputs), status


def _external_route(route: Route) -> tuple[rendering.ResolvedRoute, RouteStatus]:
    """An external provider's route: the spec's price when it has one, else LiteLLM's bundled one."""
    assert route.external is not None
    prefix = rendering.PROVIDER_PREFIX[route.external.provider]
    model = f"{prefix}/{route.external.model}"
    status = RouteStatus(name=route.name, healthy=True, message="external provider", price_source="bundled")
    if route.price is None:
        return rendering.ResolvedRoute(route.name, route.external.base_url, model), status
    status.price_source = "spec"
    status.input_cost_per_token, status.output_cost_per_token = route.price.input, route.price.output
    resolved = rendering.ResolvedRoute(
        route.name, route.external.base_url, model, float(route.price.input), float(route.price.output)
    )
    return resolved, status


def _derived_price(
    route: Route,
    spec: LLMGatewaySpec,
    deployment: LLMDeploymentSpec,
    served: str,
    measured: Measured,
    previous: dict[str, Any] | None,
    moment: datetime,
    status: RouteStatus,
) -> float | None:
    """A self-hosted route's price per token from its GPU-hours (written into ``status``), or None
    when it has no GPU-hour price or served no tokens. Prometheus is asked only when the last
    derived price is stale."""
    hour = pricing.gpu_hour_price(route, spec.pricing, deployment)
    kept = fresh_price(previous, moment, parse_duration(spec.pricing.refresh_interval))
    measured_at = (previous or {}).get("priceMeasuredAt", "") if kept is not None else format_time(moment)
    cost: float | None = kept
    if kept is None and hour is not None:
        rate = measured(served)
        if rate is not None:
            cost = pricing.price_per_token(hour, pricing.gpus(deployment), rate)
    if cost is not None:
        status.price_source = "derived"
        status.input_cost_per_token = status.output_cost_per_token = f"{cost:.6g}"
        status.price_measured_at = measured_at
        return float(status.input_cost_per_token)  # the config carries what status says
    if hour is not None:
        status.message += f"; {NO_THROUGHPUT}: no tokens measured over {spec.pricing.throughput_window}"
    return None


def fresh_price(previous: dict[str, Any] | None, moment: datetime, refresh_seconds: float) -> float | None:
    """The derived price of the route's last status while it is younger than the refresh interval."""
    if not previous or previous.get("priceSource") != "derived" or not previous.get("priceMeasuredAt"):
        return None
    measured = parse_time(previous["priceMeasuredAt"])
    if (moment - measured).total_seconds() >= refresh_seconds:
        return None
    return float(previous["inputCostPerToken"])


def previous_route(status: dict[str, Any], name: str) -> dict[str, Any] | None:
    """The route's entry in the gateway's last status, if it had one."""
    return next((r for r in status.get("routes") or [] if r.get("name") == name), None)
