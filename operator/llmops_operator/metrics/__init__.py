"""Metrics providers: where analysis reads its numbers from, one module per backend."""

from .provider import MetricsProvider, MetricsUnavailable, QueryFailed

__all__ = ["MetricsProvider", "MetricsUnavailable", "QueryFailed"]
