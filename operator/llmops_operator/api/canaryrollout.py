"""CanaryRollout: move traffic to a new model step by step, judged from Prometheus."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from .common import (
    ConditionList,
    Decimal,
    DNSLabel,
    Duration,
    EnvVar,
    K8sModel,
    KindInfo,
    LocalObjectReference,
    PositiveDuration,
    Probability,
    PrometheusEndpoint,
    Resource,
    ResourceName,
    StatusModel,
    age_column,
    cel_rules,
    condition_column,
    exactly_one_of,
)
from .evaluation import EvaluationSpec, EvaluationStatus
from .llmdeployment import MODEL_URI_PATTERN

MetricPreset = Literal[
    "errorRate",
    "e2eLatencyP95",
    "timeToFirstTokenP95",
    "interTokenLatencyP95",
    "clientErrorShare",
    "truncationShare",
]


class ModelOverlay(K8sModel):
    uri: str = Field(pattern=MODEL_URI_PATTERN, max_length=1024)
    revision: str | None = Field(default=None, max_length=256)


class EngineOverlay(K8sModel):
    image: str | None = Field(default=None, max_length=512)
    extra_args: list[str] | None = Field(default=None, max_length=64)
    max_model_len: int | None = Field(default=None, ge=1)
    env: list[EnvVar] | None = Field(default=None, max_length=64)


class CanarySpec(K8sModel):
    """What the canary changes, as an overlay of the target LLMDeployment's spec."""

    model: ModelOverlay | None = None
    engine: EngineOverlay | None = None


class PauseStep(K8sModel):
    duration: Duration | None = Field(default=None, description="Without a duration: wait for a promote.")


class AnalysisStep(K8sModel):
    metrics: list[DNSLabel] = Field(
        default_factory=list, max_length=16, description="Metric names to run; empty means all."
    )


class MirrorStep(K8sModel):
    """Shadow traffic: a copy of this share of live requests goes to the canary, whose answers are
    dropped; users keep getting the stable's. Stays until a later setMirror or the rollout's end."""

    percent: int = Field(ge=0, le=100, description="Share of requests mirrored; 0 ends the mirror.")


class HeaderRouteStep(K8sModel):
    """Requests carrying this header go to the canary, the rest by weight, through an extra
    HTTPRoute rule the operator owns and removes when the rollout ends."""

    name: str = Field(
        pattern=r"^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$", max_length=256, description="e.g. X-Experiment-ID."
    )
    value: str = Field(min_length=1, max_length=4096)
    match: Literal["Exact", "RegularExpression"] = "Exact"


class RateQuery(K8sModel):
    """A rate as two counters over a window: ``successes`` out of ``trials`` (PromQL templates
    with {{canary}}, {{namespace}}, {{interval}}; {{canary}} becomes the stable for its side)."""

    successes: str = Field(
        max_length=4096, description="e.g. sum(increase(feedback_positive_total{...}[{{interval}}]))"
    )
    trials: str = Field(max_length=4096, description="e.g. sum(increase(feedback_total{...}[{{interval}}]))")


class ExperimentMetric(K8sModel):
    name: DNSLabel
    rate: RateQuery
    direction: Literal["higherIsBetter", "lowerIsBetter"] = "higherIsBetter"


class BanditSpec(K8sModel):
    """Thompson sampling on a reward rate: the canary's weight becomes the posterior probability
    that it has the higher reward, clamped to [minWeight, maxWeight], changed at most once per interval."""

    reward: RateQuery
    min_weight: int = Field(default=5, ge=0, le=100)
    max_weight: int = Field(default=95, ge=0, le=100)
    interval: PositiveDuration = "1m"

    model_config = cel_rules(
        {
            "rule": "self.minWeight <= self.maxWeight",
            "message": "minWeight must not exceed maxWeight",
            "fieldPath": ".minWeight",
        }
    )


class ExperimentStep(K8sModel):
    """An A/B test: ``weight`` held for ``duration`` (or bandit-steered), then canary against stable
    on each metric: the difference of the rates with its interval and a decision."""

    duration: PositiveDuration
    weight: int = Field(default=50, ge=1, le=99, description="Canary weight of the fixed split.")
    metrics: list[ExperimentMetric] = Field(
        min_length=1,
        max_length=8,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    alpha: Probability = Field(default="0.05", description="Two-sided level of each comparison.")
    strategy: Literal["fixed", "bandit"] = "fixed"
    bandit: BanditSpec | None = None

    model_config = cel_rules(
        {
            "rule": "(self.strategy == 'bandit') == has(self.bandit)",
            "message": "bandit is set exactly when strategy is bandit",
            "fieldPath": ".bandit",
        }
    )


class RolloutStep(K8sModel):
    set_weight: int | None = Field(default=None, ge=0, le=100)
    pause: PauseStep | None = None
    analysis: AnalysisStep | None = None
    set_mirror: MirrorStep | None = None
    set_header_route: HeaderRouteStep | None = None
    experiment: ExperimentStep | None = None

    model_config = cel_rules(
        exactly_one_of(
            "each step", "setWeight", "pause", "analysis", "setMirror", "setHeaderRoute", "experiment"
        )
    )


class GatewayAPIRouting(K8sModel):
    http_route: ResourceName = Field(description="HTTPRoute whose backendRefs get the weights.")


class TrafficRoutingSpec(K8sModel):
    gateway_api: GatewayAPIRouting | None = Field(default=None, alias="gatewayAPI")


class BaselineComparison(K8sModel):
    """Canary against stable: Mann-Whitney U plus an effect-size bound (Kayenta's judge)."""

    test: Literal["mannWhitneyU"] = "mannWhitneyU"
    alpha: Probability = "0.05"
    max_effect_size: Decimal = Field(default="0.2", description="Largest tolerated rank-biserial effect.")
    direction: Literal["lowerIsBetter", "higherIsBetter"] = "lowerIsBetter"
    mean_ratio: Decimal | None = Field(
        default=None,
        description=(
            "Canary mean over stable mean that must also be crossed to fail (Kayenta's effect size): "
            "the largest tolerated for lowerIsBetter (e.g. 1.1), the smallest for higherIsBetter."
        ),
    )


class MetricCheck(K8sModel):
    name: DNSLabel
    preset: MetricPreset | None = None
    query: str | None = Field(
        default=None,
        max_length=4096,
        description="PromQL template with {{canary}}, {{stable}}, {{namespace}}, {{interval}}.",
    )
    max: Decimal | None = None
    min: Decimal | None = None
    baseline: BaselineComparison | None = None

    model_config = cel_rules(
        exactly_one_of("a metric", "preset", "query"),
        {
            "rule": "!has(self.query) || has(self.max) || has(self.min) || has(self.baseline)",
            "message": "a query metric needs max, min or baseline",
            "fieldPath": ".query",
        },
    )


class FailFastSpec(K8sModel):
    """A watch of each metric's failure side between measurements, by a sequential test that may
    look as often as it likes; it can only roll back, never promote."""

    enabled: bool = True
    interval: PositiveDuration | None = Field(
        default=None,
        description="How often to look; default interval/6, never below scrapeInterval.",
    )


class AnalysisSpec(K8sModel):
    interval: PositiveDuration = "1m"
    scrape_interval: PositiveDuration = Field(
        default="15s", description="Prometheus' scrape interval for these metrics: the shortest useful look."
    )
    fail_fast: FailFastSpec = Field(default_factory=FailFastSpec, json_schema_extra={"default": {}})
    metrics: list[MetricCheck] = Field(
        default_factory=list,
        max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
        description=(
            "Empty means the presets errorRate (<= 1%), e2eLatencyP95 (<= 2000 ms), and "
            "clientErrorShare and truncationShare judged against the stable."
        ),
    )
    failure_limit: int = Field(default=2, ge=0, le=100)
    inconclusive_limit: int = Field(default=3, ge=0, le=100)
    consecutive_error_limit: int = Field(default=4, ge=0, le=100)
    min_successful_measurements: int = Field(
        default=1, ge=1, le=100, description="Successful measurements at the final weight before promotion."
    )
    prometheus: PrometheusEndpoint | None = None

    model_config = cel_rules(
        {
            "rule": "!has(self.failFast) || !has(self.failFast.interval) || "
            "!has(self.interval) || duration(self.failFast.interval) < duration(self.interval)",
            "message": "failFast.interval must be shorter than interval",
            "fieldPath": ".failFast.interval",
        },
        {
            "rule": "!has(self.failFast) || !has(self.failFast.interval) || "
            "!has(self.scrapeInterval) || duration(self.failFast.interval) >= duration(self.scrapeInterval)",
            "message": "failFast.interval must not be shorter than scrapeInterval",
            "fieldPath": ".failFast.interval",
        },
    )


CanaryTraffic = Literal["RemoveAtOnce", "KeepUntilStableReady", "Auto"]


class RollbackSpec(K8sModel):
    canary_traffic: CanaryTraffic = Field(
        default="Auto",
        description=(
            "RemoveAtOnce: the canary loses its traffic at once (capacity is short until the stable "
            "side is Ready again). KeepUntilStableReady: it serves until the stable side has its "
            "replicas Ready. Auto: at once for error and custom metrics and aborts, kept for "
            "latency-only failures."
        ),
    )


class PromotionSpec(K8sModel):
    mode: Literal["InPlace", "GitOps"] = "InPlace"
    registry_alias: str | None = Field(
        default="champion", pattern=r"^[A-Za-z0-9_-]+$", max_length=256, description="MLflow alias to move."
    )


class CanaryRolloutSpec(K8sModel):
    target_ref: LocalObjectReference
    canary: CanarySpec
    steps: list[RolloutStep] = Field(
        default_factory=list, max_length=32, description="Empty means 10%, analysis, 50%, analysis, 100%."
    )
    traffic_routing: TrafficRoutingSpec | None = None
    analysis: AnalysisSpec = Field(default_factory=AnalysisSpec, json_schema_extra={"default": {}})
    promotion: PromotionSpec = Field(default_factory=PromotionSpec, json_schema_extra={"default": {}})
    rollback: RollbackSpec = Field(default_factory=RollbackSpec, json_schema_extra={"default": {}})
    scale_down_delay: Duration = Field(default="30s", description="Canary kept this long after a rollback.")
    evaluation: EvaluationSpec | None = Field(
        default=None,
        description="Score the canary on a dataset at 0% traffic before the first step; failing rolls back.",
    )


class MeasurementStatus(StatusModel):
    metric: str
    phase: Literal["Successful", "Failed", "Inconclusive", "Error"]
    value: str = ""
    threshold: str = ""
    message: str = ""
    measured_at: str = ""


class MetricTally(StatusModel):
    """Counters of one metric: successes in the current step, the rest over the whole rollout."""

    name: str
    successful: int = 0
    failed: int = 0
    inconclusive: int = 0
    errors: int = 0
    consecutive_inconclusive: int = 0
    consecutive_errors: int = 0


class FailFastEvidence(StatusModel):
    """One metric's sequential test so far: the sufficient statistics and the last window consumed
    (``lastSampleAt``), so a restarted operator goes on from there, neither losing nor counting a
    window twice."""

    metric: str
    test: str = "mSPRT"
    side: Literal["threshold", "baseline"] = "threshold"
    weight: int = Field(default=0, description="The canary weight the samples were taken at.")
    restarts: int = Field(
        default=0,
        description="Tests dropped at this weight, each at a full measurement, as they leaned healthy.",
    )
    samples: int = Field(default=0, description="Looks with data in the current test.")
    sum: float = 0.0
    sum_squares: float = 0.0
    last_sample_at: str | None = None
    last_value: str = ""
    statistic: float = 0.0
    boundary: float = 0.0
    fired: bool = False


RollbackOrder = Literal["RemovedAtOnce", "KeptUntilStableReady"]


class RollbackStatus(StatusModel):
    order: RollbackOrder
    reason: str = ""
    started_at: str = ""
    canary_removed_at: str | None = None
    stable_ready_at: str | None = None
    capacity_short_seconds: float | None = Field(
        default=None, description="From the canary losing its traffic to the stable side Ready (to a tick)."
    )


class ExperimentResult(StatusModel):
    """One metric of an experiment step: canary rate minus stable rate, its interval, the decision."""

    step: int
    metric: str
    canary: str = ""  # successes/trials
    stable: str = ""
    difference: str = ""
    interval: str = ""  # [low, high] at 1 - alpha
    p_value: str = ""
    decision: Literal["CanaryBetter", "CanaryWorse", "NoDifference", "Inconclusive"] = "Inconclusive"
    decided_at: str = ""
    mlflow_run_id: str = ""


class BanditChange(StatusModel):
    """One weight change of a bandit: when, to what, and the posterior behind it."""

    at: str
    weight: int
    probability: str = Field(default="", description="P(canary has the higher reward).")
    canary: str = ""  # successes/trials the posterior saw
    stable: str = ""


class HeaderRouteStatus(StatusModel):
    name: str
    value: str
    match: str = "Exact"


RolloutPhase = Literal["", "Waiting", "Progressing", "Paused", "Promoting", "Promoted", "RolledBack"]


class CanaryRolloutStatus(StatusModel):
    observed_generation: int = 0
    conditions: ConditionList
    phase: RolloutPhase = Field(default="", description="Informational; the conditions are the API.")
    paused_reason: str = ""
    current_step_index: int = 0
    canary_weight: int = 0
    stable_weight: int = 100
    step_started_at: str | None = None
    weight_verified_at: str | None = None
    last_measured_at: str | None = None
    canary_name: str = ""
    stable_version: str = ""
    canary_version: str = ""
    stable_replicas: int | None = Field(
        default=None, description="Replicas the stable Deployment runs while replica-ratio routing owns them."
    )
    handled_request: str = ""
    finished_at: str | None = None
    measurements: list[MeasurementStatus] = Field(default_factory=list)
    tallies: list[MetricTally] = Field(default_factory=list)
    fail_fast: list[FailFastEvidence] = Field(default_factory=list)
    rollback: RollbackStatus | None = None
    evaluation: EvaluationStatus | None = None
    mirror_percent: int = Field(default=0, description="Share of requests mirrored to the canary.")
    experiment_started_at: str | None = Field(
        default=None, description="When the current experiment step's split was first verified."
    )
    header_route: HeaderRouteStatus | None = Field(
        default=None, description="The header whose requests go to the canary."
    )
    experiments: list[ExperimentResult] = Field(default_factory=list)
    bandit_changes: list[BanditChange] = Field(default_factory=list)
    gitops_changes: list[dict[str, Any]] = Field(
        default_factory=list,
        json_schema_extra={"items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
    )


class CanaryRollout(Resource):
    kind_info = KindInfo(
        kind="CanaryRollout",
        plural="canaryrollouts",
        singular="canaryrollout",
        short_names=["cr", "canary"],
        printer_columns=[
            {"name": "Target", "type": "string", "jsonPath": ".spec.targetRef.name"},
            {"name": "Status", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Step", "type": "integer", "jsonPath": ".status.currentStepIndex"},
            {"name": "Weight", "type": "integer", "jsonPath": ".status.canaryWeight"},
            condition_column("Progressing", "Progressing", "reason"),
            condition_column("Message", "Progressing", "message", priority=1),
            age_column(),
        ],
        schema_rules=[
            {
                "rule": "has(self.canary.model) || has(self.canary.engine)",
                "message": "canary must change the model or the engine",
                "fieldPath": ".canary",
            },
            {
                "rule": (
                    "!has(self.steps) || "
                    "self.steps.filter(s, has(s.setWeight)).map(s, s.setWeight).isSorted()"
                ),
                "message": "steps[].setWeight must be non-decreasing",
                "fieldPath": ".steps",
            },
            {
                "rule": (
                    "!has(self.steps) || !self.steps.exists(s, has(s.setMirror) || has(s.setHeaderRoute)) "
                    "|| (has(self.trafficRouting) && has(self.trafficRouting.gatewayAPI))"
                ),
                "message": (
                    "setMirror and setHeaderRoute steps need trafficRouting.gatewayAPI "
                    "(replica-ratio routing can neither mirror nor match headers)"
                ),
                "fieldPath": ".trafficRouting",
            },
            {
                "rule": (
                    "!has(self.steps) "
                    "|| !self.steps.exists(s, has(s.experiment) && s.experiment.strategy == 'bandit') "
                    "|| (has(self.trafficRouting) && has(self.trafficRouting.gatewayAPI))"
                ),
                "message": "a bandit experiment needs trafficRouting.gatewayAPI (its weights change often)",
                "fieldPath": ".trafficRouting",
            },
        ],
    )

    spec: CanaryRolloutSpec
    status: CanaryRolloutStatus = Field(default_factory=CanaryRolloutStatus)
