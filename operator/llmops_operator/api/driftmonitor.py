"""DriftMonitor: compare live traffic with a baseline and start retraining when it drifts."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from .common import (
    ConditionList,
    ConfigMapKey,
    Decimal,
    DNSLabel,
    Duration,
    EnvVar,
    Fraction,
    K8sModel,
    KindInfo,
    LocalObjectReference,
    MLflowArtifact,
    PositiveDuration,
    PrometheusEndpoint,
    Quantity,
    Resource,
    ResourceName,
    StatusModel,
    age_column,
    cel_rules,
    condition_column,
    exactly_one_of,
)
from .evaluation import EvaluationSpec

DriftTest = Literal["ks", "psi", "wasserstein", "jensenShannon", "chiSquare"]
RFC3339 = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$"


class FixedWindow(K8sModel):
    start: str = Field(pattern=RFC3339, max_length=40)
    end: str = Field(pattern=RFC3339, max_length=40)

    model_config = cel_rules(
        {
            "rule": "timestamp(self.end) > timestamp(self.start)",
            "message": "a fixed window ends after it starts",
            "fieldPath": ".end",
        }
    )


class RelativeWindow(K8sModel):
    """The window ``duration`` long that ended ``offset`` ago (e.g. the same hour last week)."""

    offset: Duration
    duration: PositiveDuration


class ReferenceDataset(K8sModel):
    """Baseline samples per feature, as CSV with a header row or JSON (records or columns)."""

    mlflow_artifact: MLflowArtifact | None = None
    config_map: ConfigMapKey | None = None

    model_config = cel_rules(exactly_one_of("a dataset", "mlflowArtifact", "configMap"))


class BaselineSpec(K8sModel):
    fixed: FixedWindow | None = None
    relative: RelativeWindow | None = None
    dataset: ReferenceDataset | None = None

    model_config = cel_rules(exactly_one_of("baseline", "fixed", "relative", "dataset"))


class HistogramSource(K8sModel):
    metric: str = Field(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$", max_length=256, description="Without _bucket.")


class QuerySource(K8sModel):
    """Every value of every series the query returns over the window, at ``step``, is a sample.
    Values close in time are correlated: prefer a histogram where one exists."""

    promql: str = Field(
        max_length=4096, description="PromQL sampled over the window; variables {{namespace}}, {{target}}."
    )
    step: PositiveDuration = "1m"


class FeatureSource(K8sModel):
    histogram: HistogramSource | None = None
    query: QuerySource | None = None

    model_config = cel_rules(exactly_one_of("a feature source", "histogram", "query"))


class FeatureSpec(K8sModel):
    name: DNSLabel
    source: FeatureSource
    baseline_column: str | None = Field(
        default=None,
        max_length=256,
        description="The reference dataset's column holding this feature (default: the feature name).",
    )
    test: DriftTest | None = Field(default=None, description="Default: ks for samples, psi for histograms.")
    threshold: Decimal | None = Field(
        default=None,
        description=(
            "ks and chiSquare: the significance level (default policy.alpha); psi, wasserstein, "
            "jensenShannon: the effect-size floor, a distance (default: the test's own floor)."
        ),
    )

    model_config = cel_rules(
        {
            "rule": (
                "!has(self.threshold) || !((has(self.test) ? self.test : "
                "(has(self.source.query) ? 'ks' : 'psi')) in ['ks', 'chiSquare']) || "
                "(double(self.threshold) > 0.0 && double(self.threshold) < 1.0)"
            ),
            "message": "threshold is a significance level for ks and chiSquare: strictly between 0 and 1",
            "fieldPath": ".threshold",
        }
    )


class DriftPolicy(K8sModel):
    min_drifted_features: int = Field(default=1, ge=1, le=64)
    bonferroni: bool = True
    min_samples: int = Field(default=100, ge=1, description="Fewer samples in a window: NoData, never drift.")
    alpha: Fraction = Field(
        default="0.01",
        description="False-alarm rate of one feature per check under no change (before Bonferroni).",
    )
    min_effect_size: Decimal | None = Field(
        default=None,
        description="Floor of ks (KS statistic D) and chiSquare (Cramér's V); default: each test's own.",
    )


class JobResources(K8sModel):
    cpu: Quantity | None = None
    memory: Quantity | None = None
    gpus: int = Field(default=0, ge=0, le=64)


class RetrainingTemplate(K8sModel):
    image: str = Field(max_length=512)
    command: list[str] = Field(default_factory=list, max_length=64)
    args: list[str] = Field(default_factory=list, max_length=64)
    env: list[EnvVar] = Field(default_factory=list, max_length=64)
    resources: JobResources = Field(default_factory=JobResources, json_schema_extra={"default": {}})
    service_account_name: ResourceName | None = None


RetrainingEngine = Literal["Job", "JobSet"]


class RetrainingSpec(K8sModel):
    """Either the short template (one trainer container) or the chosen engine's full
    workloadTemplate; the short form is rendered into the engine's long form."""

    engine: RetrainingEngine = "Job"
    template: RetrainingTemplate | None = Field(default=None, description="The short form.")
    workload_template: dict[str, Any] | None = Field(
        default=None,
        description=(
            "The engine's full template, kept verbatim: for Job a batch/v1 JobTemplateSpec, for "
            "JobSet a JobSet's metadata and spec. Validated by the API server when the workload "
            "is created (a rejection is Ready=False, InvalidSpec, with the server's message)."
        ),
        json_schema_extra={"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    )
    queue_name: DNSLabel | None = Field(
        default=None,
        description="A Kueue LocalQueue: the workload is created suspended and Kueue admits it.",
    )
    cooldown: Duration = "6h"
    concurrency_policy: Literal["Forbid", "Replace"] = "Forbid"
    backoff_limit: int = Field(default=1, ge=0, le=20, description="Short form only.")
    ttl_seconds_after_finished: int = Field(default=86400, ge=0, description="Short form only.")

    model_config = cel_rules(exactly_one_of("retraining", "template", "workloadTemplate"))


class OnRetrainedSpec(K8sModel):
    auto_rollout: bool = Field(default=False, description="Open a CanaryRollout for the retrained version.")
    evaluation: EvaluationSpec | None = Field(
        default=None, description="The evaluation gate of that CanaryRollout (its spec.evaluation)."
    )


class DriftMonitorSpec(K8sModel):
    target_ref: LocalObjectReference
    interval: PositiveDuration = "10m"
    current_window: PositiveDuration = "1h"
    baseline: BaselineSpec
    features: list[FeatureSpec] = Field(
        min_length=1,
        max_length=32,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    policy: DriftPolicy = Field(default_factory=DriftPolicy, json_schema_extra={"default": {}})
    retraining: RetrainingSpec | None = None
    on_retrained: OnRetrainedSpec = Field(default_factory=OnRetrainedSpec, json_schema_extra={"default": {}})
    prometheus: PrometheusEndpoint | None = None


class FeatureCheck(StatusModel):
    """One past check of a feature: what the drift pattern (sudden, gradual, recurring) is read from."""

    time: str
    statistic: float | None = None
    threshold: float | None = None
    drifted: bool = False
    drift_change: str = ""
    location_shift: float = 0.0


class FeatureResult(StatusModel):
    name: str
    test: str = ""
    threshold: str = Field(
        default="",
        description="The smallest statistic that drifts at these window sizes: max(floor, critical value).",
    )
    floor: str = ""
    alpha: str = Field(default="", description="The significance level after Bonferroni.")
    statistic: float | None = None
    p_value: float | None = None
    drifted: bool = False
    drift_type: str = Field(default="", description="<change>/<pattern> of a drifted feature, else none.")
    drift_change: str = Field(default="", description="location, scaleUp, scaleDown or shape.")
    drift_pattern: str = Field(default="", description="sudden, gradual or recurring.")
    location_shift: float | None = Field(default=None, description="Median shift, in baseline sds.")
    scale_ratio: float | None = Field(default=None, description="Current 10-90% range over the baseline's.")
    baseline_samples: int = 0
    current_samples: int = 0
    message: str = ""
    history: list[FeatureCheck] = Field(default_factory=list, description="The last checks, oldest first.")


class RetrainingRun(StatusModel):
    job_name: str
    drift_event_id: str = ""
    start_time: str | None = None
    completion_time: str | None = None
    result: str = ""
    model_version: str = Field(default="", description="The version the trainer registered (autoRollout).")
    rollout_name: str = Field(default="", description="The CanaryRollout opened for that version.")


class DriftMonitorStatus(StatusModel):
    observed_generation: int = 0
    conditions: ConditionList
    last_check_time: str | None = None
    features: list[FeatureResult] = Field(default_factory=list)
    drift_event_id: str = ""
    last_retraining: RetrainingRun | None = None
    report_uri: str = ""


class DriftMonitor(Resource):
    kind_info = KindInfo(
        kind="DriftMonitor",
        plural="driftmonitors",
        singular="driftmonitor",
        short_names=["dm", "drift"],
        printer_columns=[
            {"name": "Target", "type": "string", "jsonPath": ".spec.targetRef.name"},
            condition_column("Drifted", "Drifted"),
            condition_column("Reason", "Drifted", "reason"),
            {"name": "Last-Check", "type": "date", "jsonPath": ".status.lastCheckTime"},
            {
                "name": "Retraining",
                "type": "string",
                "jsonPath": ".status.lastRetraining.jobName",
                "priority": 1,
            },
            age_column(),
        ],
        schema_rules=[
            {
                "rule": "has(self.baseline.dataset) || self.features.all(f, !has(f.baselineColumn))",
                "message": "baselineColumn needs a baseline.dataset",
                "fieldPath": ".features",
            },
            {
                "rule": "self.policy.minDriftedFeatures <= size(self.features)",
                "message": "policy.minDriftedFeatures cannot exceed the number of features",
                "fieldPath": ".policy.minDriftedFeatures",
            },
            {
                "rule": (
                    "!has(self.baseline.relative) || "
                    "duration(self.baseline.relative.offset) >= duration(self.currentWindow)"
                ),
                "message": "baseline.relative.offset must be at least currentWindow, or the baseline "
                "overlaps the window it is compared with",
                "fieldPath": ".baseline.relative.offset",
            },
        ],
    )

    spec: DriftMonitorSpec
    status: DriftMonitorStatus = Field(default_factory=DriftMonitorStatus)
