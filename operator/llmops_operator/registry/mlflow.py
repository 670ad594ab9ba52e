"""Resolution of ``models:/name@alias`` and ``models:/name/version`` through the MLflow client."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..models import RegistryRef

# The MLflow client retries for minutes by default; the operator retries on its own schedule.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")


class RegistryUnavailable(Exception):
    """The registry could not be asked (down, unreachable, or answering with a server error)."""


class ModelNotFound(Exception):
    """The registry answered, and has no such model, alias or version."""


@dataclass(frozen=True)
class ResolvedVersion:
    name: str
    version: str
    source: str
    run_id: str


def resolve(ref: RegistryRef, tracking_uri: str) -> ResolvedVersion:
    from mlflow.exceptions import MlflowException, RestException

    client = _client(tracking_uri)
    try:
        if ref.alias is not None:
            version = client.get_model_version_by_alias(ref.name, ref.alias)
        else:
            version = client.get_model_version(ref.name, str(ref.version))
        source = client.get_model_version_download_uri(ref.name, version.version)
    except RestException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            what = f"alias {ref.alias!r}" if ref.alias is not None else f"version {ref.version}"
            raise ModelNotFound(f"registered model {ref.name!r} has no {what} ({error.message})") from error
        raise RegistryUnavailable(f"MLflow at {tracking_uri} failed: {error.message}") from error
    except (MlflowException, OSError) as error:
        raise _unavailable(tracking_uri, error) from error
    return ResolvedVersion(ref.name, str(version.version), str(source), str(version.run_id or ""))


def _client(tracking_uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _unavailable(tracking_uri: str, error: Exception) -> RegistryUnavailable:
    return RegistryUnavailable(f"MLflow at {tracking_uri} is unreachable: {_summary(error)}")


def set_alias(name: str, alias: str, version: str, tracking_uri: str) -> bool:
    """Point ``alias`` at ``version``; False when it already does (nothing written)."""
    from mlflow.exceptions import MlflowException

    client = _client(tracking_uri)
    try:
        try:
            if str(client.get_model_version_by_alias(name, alias).version) == version:
                return False
        except MlflowException as error:
            if getattr(error, "error_code", "") not in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise
        client.set_registered_model_alias(name, alias, version)
    except (MlflowException, OSError) as error:
        raise _unavailable(tracking_uri, error) from error
    return True


def find_version_by_tag(name: str, key: str, value: str, tracking_uri: str) -> str | None:
    """The newest version of ``name`` carrying tag ``key=value`` (a trainer's drift-event tag)."""
    from mlflow.exceptions import MlflowException

    query = f"name = '{name}' and tags.`{key}` = '{value}'"
    try:
        versions = _client(tracking_uri).search_model_versions(filter_string=query)
    except (MlflowException, OSError) as error:
        raise _unavailable(tracking_uri, error) from error
    numbers = [int(version.version) for version in versions]
    return str(max(numbers)) if numbers else None


def tag_version(name: str, version: str, key: str, value: str, tracking_uri: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        _client(tracking_uri).set_model_version_tag(name, version, key, value)
    except (MlflowException, OSError) as error:
        raise _unavailable(tracking_uri, error) from error


def _summary(error: Exception) -> str:
    """One short line: the client's messages embed whole urllib3 retry traces."""
    text = str(error)
    for marker, summary in (
        ("Connection refused", "connection refused"),
        ("NewConnectionError", "connection refused"),
        ("timed out", "timed out"),
        ("Name or service not known", "host not found"),
    ):
        if marker in text:
            return summary
    first = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    return first[:200]
