"""Operator configuration: flags override environment variables (prefix LLMOPS_) override defaults."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LLMOPS_", extra="ignore")

    namespaces: list[str] = Field(
        default_factory=list, description="Namespaces to watch; empty means the whole cluster."
    )
    health_port: int = Field(default=8080, ge=1, le=65535)
    health_host: str = "0.0.0.0"
    metrics_port: int = Field(
        default=8081, ge=0, le=65535, description="The operator's /metrics; 0 turns it off."
    )
    log_format: Literal["json", "plain"] = "json"
    verbose: bool = False
    peering: str | None = Field(default=None, description="kopf peering name; unset runs standalone.")
    peering_lifetime_seconds: int = Field(
        default=20,
        ge=5,
        le=600,
        description="How long a silent peer counts as alive: a killed leader's standby takes over "
        "within about this long.",
    )
    peering_priority: int | None = Field(
        default=None,
        ge=1,
        description="Among peers the highest acts; unset draws a random one, as peers of equal "
        "priority would all pause.",
    )
    prometheus_url: str = "http://prometheus-operated.monitoring.svc:9090"
    mlflow_tracking_uri: str = "http://mlflow.mlflow.svc:5000"
    resync_seconds: int = Field(
        default=60, ge=1, description="How often LLMDeployments with a registry model ask the registry again."
    )
    rollout_tick_seconds: float = Field(
        default=2.0, gt=0, description="How often each CanaryRollout is looked at (its steps, its analysis)."
    )
    drift_tick_seconds: float = Field(
        default=10.0,
        gt=0,
        description="How often each DriftMonitor is looked at; checks run every spec.interval.",
    )
    evaluator_image: str = Field(
        default="llmops-operator:0.1.0",
        description="The operator's own image, which evaluation Jobs run (`llmops-operator evaluate`).",
    )
    model_fetcher_image: str = Field(
        default="ghcr.io/mlflow/mlflow:v3.6.0",
        description="Image with the mlflow CLI that downloads registry artifacts vLLM cannot read itself.",
    )
