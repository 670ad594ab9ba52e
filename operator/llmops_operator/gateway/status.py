"""What an LLMGateway's status says, decided from what the controller read and did."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..api.llmgateway import LLMGatewaySpec, RouteStatus
from ..names import (
    APPLIED,
    AVAILABLE,
    BACKEND_NOT_FOUND,
    BACKEND_NOT_READY,
    CREATING,
    PENDING,
    SCALED_TO_ZERO,
    SECRET_NOT_FOUND,
)
from ..serving_status import ConditionState


def config_not_applied(missing: Sequence[str]) -> ConditionState:
    """ConfigApplied while a Secret the pods read is missing: the last config stays."""
    message = f"Secret {', '.join(missing)} not found; the gateway keeps its last config"
    return ConditionState("False", SECRET_NOT_FOUND, message)


def config_applied(digest: str, served: int, routes: int) -> ConditionState:
    return ConditionState("True", APPLIED, f"config {digest} with {served} of {routes} routes")


def routes_ready(routes: Sequence[RouteStatus], resolved: Mapping[str, Any]) -> ConditionState:
    """RoutesReady: False naming each unhealthy route; BackendNotFound when one has no backend."""
    unhealthy = [r for r in routes if not r.healthy]
    if not unhealthy:
        return ConditionState("True", AVAILABLE, "every route has a backend")
    reason = BACKEND_NOT_FOUND if any(r.name not in resolved for r in unhealthy) else BACKEND_NOT_READY
    return ConditionState("False", reason, "; ".join(f"{r.name}: {r.message}" for r in unhealthy))


def ready(
    spec: LLMGatewaySpec,
    live: dict[str, Any] | None,
    ready_replicas: int,
    secrets_missing: bool,
    endpoint: str,
) -> ConditionState:
    """Ready: the proxy's Deployment has every replica ready on a config whose Secrets exist."""
    if spec.replicas == 0:
        return ConditionState("False", SCALED_TO_ZERO, "replicas is 0")
    if live is None:
        return ConditionState("False", CREATING, "the gateway's Deployment does not exist yet")
    if ready_replicas >= spec.replicas and not secrets_missing:
        return ConditionState("True", AVAILABLE, f"{ready_replicas} replicas serve {endpoint}")
    return ConditionState("False", PENDING, f"{ready_replicas} of {spec.replicas} replicas ready")


def ready_replicas(live: dict[str, Any] | None) -> int:
    return int(((live or {}).get("status") or {}).get("readyReplicas") or 0)
