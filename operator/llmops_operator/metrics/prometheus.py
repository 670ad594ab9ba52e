"""Prometheus through prometheus-api-client, with failures sorted into unreachable and refused."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from ..timestamps import now
from .provider import MetricsUnavailable, QueryFailed

QUERY_TIMEOUT_SECONDS = 10


class PrometheusProvider:
    def __init__(self, url: str) -> None:
        self.url = url
        # No client-side retries: a failed query is an Error measurement, and the next analysis
        # interval is the retry (the library's default backoff would stall a tick for seconds).
        self._client = PrometheusConnect(
            url=url, disable_ssl=True, timeout=QUERY_TIMEOUT_SECONDS, retry=Retry(total=0)
        )

    def _call(self, function: Any, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        try:
            return list(function(*args, **kwargs))
        except requests.exceptions.RequestException as error:
            reason = type(error).__name__
            raise MetricsUnavailable(f"Prometheus at {self.url} is unreachable: {reason}") from error
        except PrometheusApiClientException as error:
            text = str(error)
            if "HTTP Status Code 5" in text and "bad_data" not in text:
                raise MetricsUnavailable(f"Prometheus at {self.url} failed: {text[:200]}") from error
            raise QueryFailed(text[:300]) from error

    def instant(self, query: str, at: datetime | None = None) -> list[float]:
        params = {} if at is None else {"time": f"{at.timestamp():.3f}"}
        result = self._call(self._client.custom_query, query=query, params=params)
        return [float(series["value"][1]) for series in result if "value" in series]

    def range(
        self, query: str, seconds: float, step_seconds: float, end: datetime | None = None
    ) -> list[float]:
        end = end or now()
        result = self._call(
            self._client.custom_query_range,
            query=query,
            start_time=end - timedelta(seconds=seconds),
            end_time=end,
            step=f"{max(step_seconds, 1.0):.0f}s",
        )
        return [float(value) for series in result for _, value in series.get("values", [])]

    def buckets(self, query: str, at: datetime) -> dict[float, float]:
        """Prometheus histograms are cumulative already: the query is grouped ``by (le)``, and each
        series' ``le`` label is the bucket's upper bound."""
        result = self._call(self._client.custom_query, query=query, params={"time": f"{at.timestamp():.3f}"})
        return {
            float(series["metric"]["le"]): float(series["value"][1])
            for series in result
            if "le" in series["metric"]
        }
