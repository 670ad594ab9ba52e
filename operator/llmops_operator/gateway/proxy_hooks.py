"""Tenants for LiteLLM's proxy without its database: keys, rpm, tpm and budgets, state in Redis.

This module runs inside the gateway's proxy, not in the operator: the operator ships its source in
the gateway's ConfigMap beside ``config.yaml``, and the config names ``proxy_hooks.authenticate``
as LiteLLM's ``custom_auth`` and ``proxy_hooks.spend_tracker`` as a callback. LiteLLM keeps doing
the proxying, routing, pricing (``response_cost``) and metrics; this adds only what its database
mode would (virtual keys, budgets), which cannot run here.

Counters live in Redis so that every replica sees the same ones and a restart forgets nothing:
``rpm`` and ``tpm`` are fixed one-minute windows, spend is summed per UTC day or month. A request
over a limit is refused with 429 and ``Retry-After`` (seconds to the next window); a tenant whose
budget is spent gets 429 with a message that says when the budget resets. The spend of a request
is known only when it ends, so requests already in flight when the budget runs out still finish
(benchmarks/gateway_overhead.py measures that lag).
"""

from __future__ import annotations

import hmac
import json
import math
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import redis.asyncio as aioredis
from litellm.integrations.custom_logger import CustomLogger
from litellm.proxy._types import ProxyException, UserAPIKeyAuth
from litellm.proxy.common_utils.http_parsing_utils import read_request_body

TENANTS_FILE = Path(os.environ.get("LLMOPS_GATEWAY_TENANTS", Path(__file__).with_name("tenants.json")))
PREFIX = "llmops:gateway:"
WINDOW_SECONDS = 60
SPEND_TTL_SECONDS = 40 * 86400  # a month and some: a period's spend is read only while it lasts


class Tenant(NamedTuple):
    """One tenant (a NamedTuple: LiteLLM loads this file without registering it as a module,
    which dataclasses need)."""

    name: str
    key: str
    rpm: int | None
    tpm: int | None
    budget: float | None
    period: str  # "day" or "month"
    routes: tuple[str, ...]  # empty: every route


def load_tenants(path: Path = TENANTS_FILE) -> list[Tenant]:
    """The tenants the operator rendered; each key is read from the env var the file names."""
    entries = json.loads(path.read_text()) if path.exists() else []
    return [
        Tenant(
            name=entry["name"],
            key=os.environ.get(entry["keyEnv"], ""),
            rpm=entry.get("rpm"),
            tpm=entry.get("tpm"),
            budget=float(entry["budgetUSD"]) if entry.get("budgetUSD") is not None else None,
            period=entry.get("period", "month"),
            routes=tuple(entry.get("routes") or ()),
        )
        for entry in entries
    ]


def period_bounds(period: str, moment: datetime) -> tuple[str, datetime]:
    """The id of the budget period holding ``moment`` (UTC) and when the next one starts."""
    if period == "day":
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        following = datetime.fromtimestamp(start.timestamp() + 86400, UTC)
        return start.strftime("%Y-%m-%d"), following
    start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    following = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start.strftime("%Y-%m"), following


def keys(tenant: str, now: float) -> tuple[str, str]:
    """The Redis keys of this minute's request and token counters."""
    window = int(now // WINDOW_SECONDS)
    return f"{PREFIX}rpm:{tenant}:{window}", f"{PREFIX}tpm:{tenant}:{window}"


def spend_key(tenant: str, period_id: str) -> str:
    return f"{PREFIX}spend:{tenant}:{period_id}"


class Store:
    """One Redis client per event loop (the proxy may run several workers)."""

    def __init__(self) -> None:
        self._client: aioredis.Redis | None = None

    def client(self) -> aioredis.Redis:
        if self._client is None:
            # The variables LiteLLM's own Redis cache reads, so one Redis serves both.
            self._client = aioredis.Redis(
                host=os.environ.get("REDIS_HOST", "127.0.0.1"),
                port=int(os.environ.get("REDIS_PORT", "6379")),
                password=os.environ.get("REDIS_PASSWORD") or None,
                decode_responses=True,
            )
        return self._client


STORE = Store()
TENANTS = load_tenants()


def refuse(code: int, message: str, retry_after: float | None = None) -> ProxyException:
    headers = {"Retry-After": str(max(1, math.ceil(retry_after)))} if retry_after is not None else None
    kind = "rate_limit_error" if code == 429 else "auth_error"
    return ProxyException(message=message, type=kind, param="api_key", code=code, headers=headers)


def find_tenant(api_key: str) -> Tenant | None:
    for tenant in TENANTS:
        if tenant.key and hmac.compare_digest(tenant.key.encode(), api_key.encode()):
            return tenant
    return None


async def authenticate(request: Any, api_key: str) -> UserAPIKeyAuth:
    """LiteLLM's ``custom_auth``: who is calling, and may they, now?"""
    tenant = find_tenant(api_key.removeprefix("Bearer ").strip())
    if tenant is None:
        raise refuse(401, "unknown API key")
    if tenant.routes and request.url.path.endswith("completions"):
        model = (await read_request_body(request)).get("model")
        if model not in tenant.routes:
            raise refuse(403, f"tenant {tenant.name} may not use model {model!r}")
    now = time.time()
    moment = datetime.fromtimestamp(now, UTC)
    period_id, resets = period_bounds(tenant.period, moment)
    rpm_key, tpm_key = keys(tenant.name, now)
    pipe = STORE.client().pipeline(transaction=False)
    pipe.incr(rpm_key)
    pipe.expire(rpm_key, 2 * WINDOW_SECONDS)
    pipe.get(tpm_key)
    pipe.get(spend_key(tenant.name, period_id))
    requests, _, tokens, spent = await pipe.execute()
    next_window = WINDOW_SECONDS - now % WINDOW_SECONDS
    if tenant.budget is not None and float(spent or 0) >= tenant.budget:
        raise refuse(
            429,
            f"tenant {tenant.name} has spent its budget of {tenant.budget:g} USD per {tenant.period} "
            f"({float(spent):.6f} USD); it resets at {resets.strftime('%Y-%m-%dT%H:%M:%SZ')}",
            resets.timestamp() - now,
        )
    if tenant.rpm is not None and int(requests) > tenant.rpm:
        raise refuse(429, f"tenant {tenant.name} is over its {tenant.rpm} requests per minute", next_window)
    if tenant.tpm is not None and int(tokens or 0) >= tenant.tpm:
        raise refuse(429, f"tenant {tenant.name} is over its {tenant.tpm} tokens per minute", next_window)
    return UserAPIKeyAuth(api_key=api_key, user_id=tenant.name, key_alias=tenant.name)


class TenantSpend(CustomLogger):  # type: ignore[misc]
    """Adds each answered request's tokens and cost (LiteLLM's ``response_cost``: tokens x price)
    to its tenant's counters."""

    async def async_log_success_event(
        self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any
    ) -> None:
        logged = kwargs.get("standard_logging_object") or {}
        tenant_name = (logged.get("metadata") or {}).get("user_api_key_user_id")
        tenant = next((t for t in TENANTS if t.name == tenant_name), None)
        if tenant is None:
            return
        now = time.time()
        period_id, _ = period_bounds(tenant.period, datetime.fromtimestamp(now, UTC))
        _, tpm_key = keys(tenant.name, now)
        cost = float(kwargs.get("response_cost") or 0.0)
        tokens = int(logged.get("total_tokens") or 0)
        pipe = STORE.client().pipeline(transaction=False)
        pipe.incrby(tpm_key, tokens)
        pipe.expire(tpm_key, 2 * WINDOW_SECONDS)
        if cost:
            pipe.incrbyfloat(spend_key(tenant.name, period_id), cost)
            pipe.expire(spend_key(tenant.name, period_id), SPEND_TTL_SECONDS)
        await pipe.execute()


spend_tracker = TenantSpend()
