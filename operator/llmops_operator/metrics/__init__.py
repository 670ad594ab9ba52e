"""Metrics providers: where analysis and drift checks read their numbers from, one module per
backend behind the ``MetricsProvider`` interface, chosen by ``provider_for`` from ``PROVIDERS``."""

from __future__ import annotations

from collections.abc import Callable

from ..api.common import PrometheusEndpoint
from .provider import MetricsProvider, MetricsUnavailable, QueryFailed


def _prometheus(url: str) -> MetricsProvider:
    # Imported on use: prometheus-api-client (and pandas under it) take a second to import, and
    # the CLI and the pure layers import this package without ever querying.
    from .prometheus import PrometheusProvider

    return PrometheusProvider(url)


# kind of backend -> how to build a provider from its address. A resource names its backend by
# the field it sets (today only ``prometheus``); a resource without one uses the operator's.
PROVIDERS: dict[str, Callable[[str], MetricsProvider]] = {"prometheus": _prometheus}


def provider_for(
    endpoint: PrometheusEndpoint | None, default_url: str, kind: str = "prometheus"
) -> MetricsProvider:
    """The provider a resource asks for: its own endpoint's address, else the operator-wide one."""
    return PROVIDERS[kind](endpoint.address if endpoint is not None else default_url)


__all__ = ["PROVIDERS", "MetricsProvider", "MetricsUnavailable", "QueryFailed", "provider_for"]
