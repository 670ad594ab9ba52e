"""The small interface every metrics backend implements (as Flagger's metrics providers do)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol


class MetricsUnavailable(Exception):
    """The backend could not be reached: measurements are ``Error``, never a verdict."""


class QueryFailed(Exception):
    """The backend answered but refused the query (a bad query, a timeout on its side)."""


class MetricsProvider(Protocol):
    """Queries are in the backend's own language (PromQL for Prometheus); a provider only runs
    them and hands back numbers in the shapes below, whatever the backend stores."""

    def instant(self, query: str, at: datetime | None = None) -> list[float]:
        """One value per series the query returns at ``at`` (default now); an empty list when it
        returns none."""
        ...

    def buckets(self, query: str, at: datetime) -> dict[float, float]:
        """A histogram as it stood at ``at``: each bucket's upper bound -> the count of observations
        at or below it (cumulative, the last bound ``inf``). A backend that keeps per-bucket counts
        or lower bounds converts them to this shape; one without histograms raises QueryFailed."""
        ...

    def range(
        self, query: str, seconds: float, step_seconds: float, end: datetime | None = None
    ) -> list[float]:
        """Every sample of every series over the ``seconds`` before ``end`` (default now): the
        input of a rank test."""
        ...
