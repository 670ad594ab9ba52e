"""Model URIs: what kind of source a URI names, and where vLLM finds the weights."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

SourceKind = Literal["hf", "pvc", "s3", "registry", "artifact"]

_REGISTRY = re.compile(r"^models:/(?P<name>[^/@\s]+)(@(?P<alias>[A-Za-z0-9_-]+)|/(?P<version>[0-9]+))$")


@dataclass(frozen=True)
class RegistryRef:
    """``models:/name@alias`` or ``models:/name/version``."""

    name: str
    alias: str | None
    version: str | None


def parse_registry_uri(uri: str) -> RegistryRef | None:
    match = _REGISTRY.match(uri)
    if match is None:
        return None
    return RegistryRef(match["name"], match["alias"], match["version"])


def source_kind(uri: str) -> SourceKind:
    """The kind of storage a (resolved) model location lives in."""
    if uri.startswith("hf://"):
        return "hf"
    if uri.startswith("pvc://"):
        return "pvc"
    if uri.startswith("s3://"):
        return "s3"
    if uri.startswith("models:/"):
        return "registry"
    # mlflow-artifacts:/, runs:/, file:, gs://, ... are fetched by an init container with MLflow.
    return "artifact"
