"""The evaluation gate of a CanaryRollout: a dataset, scorers with thresholds, and a paired
comparison with the stable, judged by a Job before any user traffic reaches the canary."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from .common import (
    ConfigMapKey,
    Decimal,
    DNSLabel,
    K8sModel,
    LocalObjectReference,
    MLflowArtifact,
    PositiveDuration,
    Probability,
    SecretKeyReference,
    StatusModel,
    cel_rules,
    exactly_one_of,
)

ScorerType = Literal[
    "exactMatch",
    "contains",
    "regex",
    "jsonValid",
    "jsonSchema",
    "rougeL",
    "bleu",
    "chrF",
    "lengthRatio",
    "refusalRate",
    "llmJudge",
]


class EvaluationDataset(K8sModel):
    """Records with ``prompt`` (or ``messages``), optional ``reference`` and ``tags``."""

    config_map: ConfigMapKey | None = None
    mlflow_artifact: MLflowArtifact | None = None
    format: Literal["JSONLines", "CSV"] = "JSONLines"
    sample_size: int | None = Field(
        default=None, ge=1, le=100000, description="Evaluate a seeded random subset of this many records."
    )
    seed: int = Field(default=0, ge=0)

    model_config = cel_rules(exactly_one_of("a dataset", "configMap", "mlflowArtifact"))


class JudgeSpec(K8sModel):
    """An OpenAI-compatible judge: another LLMDeployment's Service, or a URL with a key by reference."""

    llm_deployment: LocalObjectReference | None = None
    url: str | None = Field(default=None, pattern=r"^https?://", max_length=1024)
    model: str | None = Field(default=None, max_length=256, description="Default: the first in /v1/models.")
    api_key_secret: SecretKeyReference | None = None
    rubric: str = Field(max_length=4096, description="What a good answer is, in the judge's prompt.")

    model_config = cel_rules(exactly_one_of("a judge", "llmDeployment", "url"))


class PairedComparison(K8sModel):
    """The same prompts to the stable; a paired one-sided test on the per-prompt differences."""

    test: Literal["wilcoxon", "pairedBootstrap"] = "wilcoxon"
    alpha: Probability = "0.05"
    max_regression: Decimal = Field(
        default="0",
        description="Largest tolerated drop of the mean score (in the scorer's units) below the stable's.",
    )


class ScorerSpec(K8sModel):
    name: DNSLabel
    type: ScorerType
    pattern: str | None = Field(
        default=None, max_length=1024, description="contains: the text; regex and refusalRate: a regex."
    )
    schema_: dict[str, Any] | None = Field(
        default=None,
        alias="schema",
        description="jsonSchema: the JSON Schema each answer must satisfy.",
        json_schema_extra={"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    )
    judge: JudgeSpec | None = None
    min: Decimal | None = None
    max: Decimal | None = None
    compare_with_stable: PairedComparison | None = None

    model_config = cel_rules(
        {
            "rule": "self.type != 'llmJudge' || has(self.judge)",
            "message": "an llmJudge scorer needs judge",
            "fieldPath": ".judge",
        },
        {
            "rule": "!(self.type in ['contains', 'regex']) || has(self.pattern)",
            "message": "a contains or regex scorer needs pattern",
            "fieldPath": ".pattern",
        },
        {
            "rule": "self.type != 'jsonSchema' || has(self.schema)",
            "message": "a jsonSchema scorer needs schema",
            "fieldPath": ".schema",
        },
    )


class EvaluationSpec(K8sModel):
    dataset: EvaluationDataset
    scorers: list[ScorerSpec] = Field(
        min_length=1,
        max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    concurrency: int = Field(default=8, ge=1, le=256, description="Requests in flight per side.")
    request_timeout: PositiveDuration = "60s"
    retries: int = Field(default=2, ge=0, le=10, description="Per request, on a timeout, 429 or 5xx.")
    max_tokens: int = Field(default=256, ge=1, le=32768)
    timeout: PositiveDuration = Field(default="1h", description="The whole evaluation; then Inconclusive.")


EvaluationPhase = Literal["", "Pending", "Running", "Passed", "Failed", "Inconclusive"]


class ScorerResult(StatusModel):
    name: str
    phase: Literal["Passed", "Failed", "Inconclusive"]
    value: str = ""
    threshold: str = ""
    stable_value: str = ""
    difference: str = ""
    interval: str = Field(default="", description="The difference's confidence interval, [low, high].")
    p_value: str = ""
    message: str = ""


class EvaluationStatus(StatusModel):
    phase: EvaluationPhase = ""
    attempt: int = 0
    job_name: str = ""
    run_id: str = Field(default="", description="The MLflow run holding the scores, table and verdict.")
    model_version: str = ""
    started_at: str | None = None
    message: str = ""
    prompts: int = 0
    scorers: list[ScorerResult] = Field(default_factory=list)
