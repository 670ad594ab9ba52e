"""LLMGateway: LiteLLM's proxy in front of LLMDeployments and external providers, declared.

Routes (model names clients send), fallback chains, tenants with keys, limits and budgets,
prices (bundled for providers, derived from a GPU-hour price for self-hosted models), an exact
Redis cache and the content-filter guardrail, rendered into one LiteLLM ``config.yaml``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .common import (
    ConditionList,
    DNSLabel,
    K8sModel,
    KindInfo,
    LocalObjectReference,
    PositiveDuration,
    PrometheusEndpoint,
    Quantity,
    Resource,
    SecretKeyReference,
    StatusModel,
    age_column,
    cel_rules,
    condition_column,
    exactly_one_of,
)

DEFAULT_LITELLM_IMAGE = "litellm/litellm:v1.108.7"
# Names clients send as ``model``: LiteLLM's own names may carry slashes and colons.
RouteName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][-A-Za-z0-9_.:/]*$", max_length=128)]
# A USD amount, never negative: a negative budget or price is refused at apply.
Amount = Annotated[
    str,
    Field(
        pattern=r"^[0-9]+(\.[0-9]+)?([eE]-?[0-9]+)?$",
        max_length=32,
        description="USD, a non-negative decimal as a string.",
    ),
]
MAX_ROUTES, MAX_CHAIN, MAX_TENANTS = 32, 8, 64
FallbackTrigger = Literal["error", "contextWindow"]


class ExternalProvider(K8sModel):
    """An API outside the cluster: OpenAI, Anthropic, Google, or any OpenAI-compatible base URL."""

    provider: Literal["openai", "anthropic", "gemini", "openai-compatible"] = Field(
        default="openai-compatible", description="LiteLLM's provider; openai-compatible needs baseURL."
    )
    model: str = Field(max_length=256, description="The provider's model name, e.g. gpt-4o-mini.")
    base_url: str | None = Field(default=None, alias="baseURL", pattern=r"^https?://", max_length=2048)
    api_key: SecretKeyReference | None = Field(default=None, description="The provider's key, by reference.")

    model_config = cel_rules(
        {
            "rule": "self.provider != 'openai-compatible' || has(self.baseURL)",
            "message": "an openai-compatible provider needs baseURL",
            "fieldPath": ".baseURL",
        }
    )


class TokenPrice(K8sModel):
    """USD per token; overrides the bundled price map, or the price derived for a self-hosted route."""

    input: Amount
    output: Amount


class Route(K8sModel):
    """A model name clients send, served by one LLMDeployment or one external provider."""

    name: RouteName
    llm_deployment: LocalObjectReference | None = Field(
        default=None, alias="llmDeployment", description="An LLMDeployment in this namespace."
    )
    external: ExternalProvider | None = None
    rpm: int | None = Field(default=None, ge=1, description="Requests per minute the route takes.")
    tpm: int | None = Field(default=None, ge=1, description="Tokens per minute the route takes.")
    timeout: PositiveDuration | None = Field(default=None, description="Per request; a timeout falls back.")
    retries: int = Field(default=0, ge=0, le=10)
    price: TokenPrice | None = None
    gpu_hour_price: Amount | None = Field(
        default=None, description="USD per GPU-hour of this route's LLMDeployment (self-hosted only)."
    )

    model_config = cel_rules(
        exactly_one_of("a route", "llmDeployment", "external"),
        {
            "rule": "!has(self.gpuHourPrice) || has(self.llmDeployment)",
            "message": "gpuHourPrice applies to llmDeployment routes only",
            "fieldPath": ".gpuHourPrice",
        },
    )


class Fallback(K8sModel):
    """When ``route`` fails (an error, a timeout or, with contextWindow, a prompt too long for
    it), try the routes of ``to`` in order: tiers such as premium -> standard -> budget. (Not
    named ``on``: YAML 1.1 reads that key as the boolean true.)"""

    route: RouteName
    to: list[RouteName] = Field(min_length=1, max_length=MAX_CHAIN)
    triggers: list[FallbackTrigger] = Field(
        default_factory=lambda: list[FallbackTrigger](["error"]), max_length=2
    )


class Budget(K8sModel):
    usd: Amount
    period: Literal["day", "month"] = "month"


class Tenant(K8sModel):
    """An application or team: its API key, limits and budget, shared by every gateway replica."""

    name: DNSLabel
    key_secret: SecretKeyReference = Field(description="The Secret key holding the tenant's API key.")
    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)
    budget: Budget | None = None
    routes: list[RouteName] = Field(
        default_factory=list, max_length=MAX_ROUTES, description="Routes it may use; empty: all."
    )


class RedisSpec(K8sModel):
    """The Redis every replica shares: the exact cache, and tenants' counters and spend."""

    host: str = Field(max_length=253)
    port: int = Field(default=6379, ge=1, le=65535)
    password: SecretKeyReference | None = None


class CacheSpec(K8sModel):
    """``exact``: an identical request is answered from Redis. ``semantic`` needs a Redis with
    vector search (Redis Stack) and an embeddings route; Debian's Redis 7.0 has none, so it is
    rendered but not tested here."""

    mode: Literal["exact", "semantic"] = "exact"
    ttl: PositiveDuration = "10m"
    similarity_threshold: str = Field(default="0.8", pattern=r"^(0(\.[0-9]+)?|1(\.0+)?)$", max_length=16)
    embeddings_route: RouteName | None = None

    model_config = cel_rules(
        {
            "rule": "self.mode != 'semantic' || has(self.embeddingsRoute)",
            "message": "a semantic cache needs embeddingsRoute",
            "fieldPath": ".embeddingsRoute",
        }
    )


class FilterPattern(K8sModel):
    """A prebuilt pattern of LiteLLM's content filter (email, us_ssn, credit_card, ...) or a regex."""

    prebuilt: str | None = Field(default=None, pattern=r"^[a-z0-9_]+$", max_length=64)
    regex: str | None = Field(default=None, max_length=1024)
    action: Literal["Block", "Mask"] = "Mask"

    model_config = cel_rules(exactly_one_of("a pattern", "prebuilt", "regex"))


class FilterKeyword(K8sModel):
    keyword: str = Field(min_length=1, max_length=256)
    action: Literal["Block", "Mask"] = "Block"


class ContentFilter(K8sModel):
    """LiteLLM's built-in content filter, on every request (input) and, with output, answers."""

    patterns: list[FilterPattern] = Field(default_factory=list, max_length=64)
    keywords: list[FilterKeyword] = Field(default_factory=list, max_length=256)
    output: bool = Field(default=False, description="Also filter answers (post-call).")


class GuardrailsSpec(K8sModel):
    content_filter: ContentFilter | None = None


class PricingSpec(K8sModel):
    """Self-hosted routes cost GPU-hours: the price per token is the hourly price of the
    LLMDeployment's GPUs over the tokens it served per hour, measured from vLLM's counters."""

    gpu_hour_price: Amount | None = Field(default=None, description="USD per GPU-hour, any product.")
    gpu_products: dict[str, Amount] = Field(
        default_factory=dict, description="USD per GPU-hour by nvidia.com/gpu.product."
    )
    throughput_window: PositiveDuration = "1h"
    refresh_interval: PositiveDuration = Field(
        default="1h", description="How long a derived price holds before it is measured again."
    )
    prometheus: PrometheusEndpoint | None = None


class ServiceMonitorSpec(K8sModel):
    enabled: bool = False
    interval: PositiveDuration = "30s"


class GatewayPodSpec(K8sModel):
    image: str = Field(default=DEFAULT_LITELLM_IMAGE, max_length=512)
    workers: int = Field(default=1, ge=1, le=64, description="Proxy worker processes per replica.")
    cpu: Quantity | None = None
    memory: Quantity | None = None


class LLMGatewaySpec(K8sModel):
    master_key: SecretKeyReference = Field(
        description="LiteLLM's admin key; the proxy refuses to start without."
    )
    routes: list[Route] = Field(min_length=1, max_length=MAX_ROUTES)
    fallbacks: list[Fallback] = Field(default_factory=list, max_length=MAX_ROUTES)
    tenants: list[Tenant] = Field(default_factory=list, max_length=MAX_TENANTS)
    redis: RedisSpec | None = None
    cache: CacheSpec | None = None
    guardrails: GuardrailsSpec = Field(default_factory=GuardrailsSpec, json_schema_extra={"default": {}})
    pricing: PricingSpec = Field(default_factory=PricingSpec, json_schema_extra={"default": {}})
    replicas: int = Field(default=1, ge=0, le=100)
    pod: GatewayPodSpec = Field(default_factory=GatewayPodSpec, json_schema_extra={"default": {}})
    service_monitor: ServiceMonitorSpec = Field(
        default_factory=ServiceMonitorSpec, json_schema_extra={"default": {}}
    )
    min_available: int | None = Field(default=None, ge=0, description="A PodDisruptionBudget when set.")


def _known(expression: str) -> str:
    return f"self.routes.exists(r, r.name == {expression})"


class RouteStatus(StatusModel):
    name: str
    healthy: bool = False
    message: str = ""
    input_cost_per_token: str = ""
    output_cost_per_token: str = ""
    price_source: str = Field(default="", description="bundled, spec, derived, or none.")
    price_measured_at: str = ""


class LLMGatewayStatus(StatusModel):
    observed_generation: int = 0
    conditions: ConditionList
    config_hash: str = ""
    endpoint: str = ""
    replicas: int = 0
    ready_replicas: int = 0
    routes: list[RouteStatus] = Field(default_factory=list)


class LLMGateway(Resource):
    kind_info = KindInfo(
        kind="LLMGateway",
        plural="llmgateways",
        singular="llmgateway",
        short_names=["llmgw"],
        printer_columns=[
            {"name": "Ready-Replicas", "type": "integer", "jsonPath": ".status.readyReplicas"},
            condition_column("Ready", "Ready"),
            condition_column("Reason", "Ready", "reason"),
            condition_column("Config", "ConfigApplied"),
            {"name": "Config-Hash", "type": "string", "jsonPath": ".status.configHash", "priority": 1},
            {"name": "Endpoint", "type": "string", "jsonPath": ".status.endpoint", "priority": 1},
            age_column(),
        ],
        # Its Deployment, Service and ConfigMap are named <name>-gateway.
        name_max_length=63 - len("-gateway"),
        name_limited_by="its Service (<name>-gateway) is a DNS label of at most 63 characters",
        schema_rules=[
            {
                "rule": "!has(self.fallbacks) || self.fallbacks.all(f, "
                + _known("f.route")
                + " && f.to.all(t, "
                + _known("t")
                + "))",
                "message": "every route of a fallback chain (fallbacks[].route and fallbacks[].to) must be "
                "one of routes[].name",
                "fieldPath": ".fallbacks",
            },
            {
                "rule": "!has(self.tenants) || self.tenants.all(t, !has(t.routes) || t.routes.all(n, "
                + _known("n")
                + "))",
                "message": "tenants[].routes must name routes of routes[].name",
                "fieldPath": ".tenants",
            },
            {
                "rule": "self.routes.all(r, self.routes.exists_one(s, s.name == r.name))",
                "message": "routes[].name must be unique",
                "fieldPath": ".routes",
            },
            {
                "rule": "!has(self.tenants) || "
                "self.tenants.all(t, self.tenants.exists_one(u, u.name == t.name))",
                "message": "tenants[].name must be unique",
                "fieldPath": ".tenants",
            },
            {
                "rule": "((!has(self.tenants) || size(self.tenants) == 0) && !has(self.cache)) "
                "|| has(self.redis)",
                "message": "tenants and the cache keep their state in Redis: set redis",
                "fieldPath": ".redis",
            },
            {
                "rule": "!has(self.cache) || !has(self.cache.embeddingsRoute) || "
                + _known("self.cache.embeddingsRoute"),
                "message": "cache.embeddingsRoute must be one of routes[].name",
                "fieldPath": ".cache.embeddingsRoute",
            },
        ],
    )

    spec: LLMGatewaySpec
    status: LLMGatewayStatus = Field(default_factory=LLMGatewayStatus)
