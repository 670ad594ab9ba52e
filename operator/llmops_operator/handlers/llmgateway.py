"""LLMGateway controller: find each route's backend and price, apply LiteLLM's children, report.

A timer pass per object (the resync interval): it reads the routes' LLMDeployments, the
resourceVersions of the Secrets the pods read, and, for self-hosted routes priced by the GPU-hour,
their measured throughput from Prometheus; rendering is pure (rendering/llmgateway.py). A Secret
rotated in place changes its resourceVersion, so the pods' config hash, so the pods roll: no
restart of the operator. Children are applied only when they differ from the live ones.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf
from pydantic import ValidationError

from .. import GROUP, VERSION
from ..api.llmgateway import LLMGatewaySpec, RouteStatus
from ..conditions import invalid_spec_status, set_condition
from ..config import Settings
from ..gateway import pricing
from ..gateway import routes as gateway_routes
from ..gateway import status as gateway_status
from ..kube import Kube, contains
from ..metrics import MetricsUnavailable, QueryFailed, provider_for
from ..names import APPLIED, CONFIG_APPLIED, READY, ROUTES_READY
from ..rendering import llmgateway as rendering
from ..serving_status import SERVICE_MONITOR_CRD

logger = logging.getLogger(__name__)


class LLMGatewayController:
    def __init__(self, settings: Settings, kube: Kube) -> None:
        self.settings = settings
        self.kube = kube

    def _throughput(self, spec: LLMGatewaySpec, previous: dict[str, float]) -> gateway_routes.Measured:
        provider = provider_for(spec.pricing.prometheus, self.settings.prometheus_url)

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
        resolved, routes = self._resolve_routes(spec, namespace, current)
        versions, missing = self._secret_versions(spec, namespace)
        conditions = list(current.get("conditions") or [])
        digest = current.get("configHash", "")
        if missing:
            applied = gateway_status.config_not_applied(missing)
        else:
            monitor = spec.service_monitor.enabled and self.kube.crd_exists(SERVICE_MONITOR_CRD)
            children, digest = rendering.render(spec, owner, resolved, versions, monitor)
            self._apply(body, children)
            applied = gateway_status.config_applied(digest, len(resolved), len(spec.routes))
        live = self.kube.get("Deployment", namespace, rendering.child_name(owner))
        ready_replicas = gateway_status.ready_replicas(live)
        endpoint = rendering.endpoint_url(owner)
        for type_, state in (
            (CONFIG_APPLIED, applied),
            (ROUTES_READY, gateway_status.routes_ready(routes, resolved)),
            (READY, gateway_status.ready(spec, live, ready_replicas, bool(missing), endpoint)),
        ):
            conditions = set_condition(
                conditions, type_, state.status, state.reason, state.message, generation
            )
        desired = {
            "observedGeneration": generation,
            "conditions": conditions,
            "configHash": digest,
            "endpoint": endpoint,
            "replicas": spec.replicas,
            "readyReplicas": ready_replicas,
            "routes": [r.model_dump(exclude_defaults=False) for r in routes],
        }
        self.kube.write_status(body, current, desired)

    def _resolve_routes(
        self, spec: LLMGatewaySpec, namespace: str, current: dict[str, Any]
    ) -> tuple[dict[str, rendering.ResolvedRoute], list[RouteStatus]]:
        """Each route's backend read and resolved; the routes that can be served by name."""
        measured = self._throughput(spec, {})
        resolved: dict[str, rendering.ResolvedRoute] = {}
        routes: list[RouteStatus] = []
        for route in spec.routes:
            backend = (
                self.kube.get("LLMDeployment", namespace, route.llm_deployment.name)
                if route.llm_deployment is not None
                else None
            )
            previous = gateway_routes.previous_route(current, route.name)
            found, route_status = gateway_routes.resolve_route(
                route, spec, backend, namespace, measured, previous
            )
            if found is not None:
                resolved[route.name] = found
            routes.append(route_status)
        return resolved, routes

    def _secret_versions(self, spec: LLMGatewaySpec, namespace: str) -> tuple[dict[str, str], list[str]]:
        """The resourceVersion of each Secret the pods read, and the names of those missing."""
        versions: dict[str, str] = {}
        missing = []
        for name in rendering.referenced_secrets(spec):
            secret = self.kube.get("Secret", namespace, name)
            if secret is None:
                missing.append(name)
            else:
                versions[name] = str(secret["metadata"].get("resourceVersion", ""))
        return versions, missing

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
