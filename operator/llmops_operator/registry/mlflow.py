"""Resolution of ``models:/name@alias`` and ``models:/name/version`` through the MLflow client."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .. import lazy
from ..model_uris import RegistryRef

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

# The MLflow client retries for minutes by default; the operator retries on its own schedule.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")


class RegistryUnavailable(Exception):
    """The registry could not be asked (down, unreachable, or answering with a server error)."""


class ModelNotFound(Exception):
    """The registry answered, and has no such model, alias or version."""


class ArtifactNotFound(Exception):
    """The registry answered, and the run or its artifact does not exist."""


@dataclass(frozen=True)
class ResolvedVersion:
    name: str
    version: str
    source: str
    run_id: str


def resolve(ref: RegistryRef, tracking_uri: str) -> ResolvedVersion:

    client = _client(tracking_uri)
    from mlflow.exceptions import MlflowException, RestException

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


def _client(tracking_uri: str) -> MlflowClient:
    """A client; the first call loads mlflow (every function here calls this before naming it)."""
    lazy.load("mlflow")
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def _unavailable(tracking_uri: str, error: Exception) -> RegistryUnavailable:
    return RegistryUnavailable(f"MLflow at {tracking_uri} is unreachable: {_summary(error)}")


def set_alias(name: str, alias: str, version: str, tracking_uri: str) -> bool:
    """Point ``alias`` at ``version``; False when it already does (nothing written)."""

    client = _client(tracking_uri)
    from mlflow.exceptions import MlflowException

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

    query = f"name = '{name}' and tags.`{key}` = '{value}'"
    client = _client(tracking_uri)
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(filter_string=query)
    except (MlflowException, OSError) as error:
        raise _unavailable(tracking_uri, error) from error
    numbers = [int(version.version) for version in versions]
    return str(max(numbers)) if numbers else None


def tag_version(name: str, version: str, key: str, value: str, tracking_uri: str) -> None:

    client = _client(tracking_uri)
    from mlflow.exceptions import MlflowException

    try:
        client.set_model_version_tag(name, version, key, value)
    except (MlflowException, OSError) as error:
        raise _unavailable(tracking_uri, error) from error


def log_run(
    tracking_uri: str,
    experiment: str,
    run_name: str,
    *,
    tags: dict[str, str],
    params: dict[str, str],
    metrics: dict[str, float],
    texts: dict[str, str],
    key: tuple[str, str] | None = None,
) -> str:
    """One finished run in ``experiment`` (created when missing); returns its id.

    With ``key`` (a tag and its value) the run is one act's: a finished one is answered as is, and
    one a crash left unfinished is logged into again (the same params), never a second run."""

    client = _client(tracking_uri)
    from mlflow.entities import Metric, Param
    from mlflow.exceptions import MlflowException

    try:
        experiment_id = _experiment_id(client, experiment)
        found = _keyed_runs(client, experiment_id, key) if key is not None else []
        if found and _finished(found[0]):
            return str(found[0].info.run_id)
        run_tags = {**tags, key[0]: key[1]} if key is not None else tags
        run = found[0] if found else client.create_run(experiment_id, run_name=run_name, tags=run_tags)
        run_id = str(run.info.run_id)
        stamp = int(run.info.start_time)
        client.log_batch(
            run_id,
            metrics=[Metric(key, value, stamp, 0) for key, value in metrics.items()],
            params=[Param(key, value) for key, value in params.items()],
        )
        for path, text in texts.items():
            client.log_text(run_id, text, path)
        client.set_terminated(run_id)
    except (MlflowException, OSError) as error:
        raise _unavailable(tracking_uri, error) from error
    return run_id


def finished_run(tracking_uri: str, experiment: str, key: tuple[str, str]) -> str | None:
    """The id of the finished run ``log_run`` logged with ``key``, or None while there is none."""

    client = _client(tracking_uri)
    from mlflow.exceptions import MlflowException

    try:
        found = client.get_experiment_by_name(experiment)
        runs = _keyed_runs(client, found.experiment_id, key) if found is not None else []
    except (MlflowException, OSError) as error:
        raise _unavailable(tracking_uri, error) from error
    return str(runs[0].info.run_id) if runs and _finished(runs[0]) else None


def _experiment_id(client: MlflowClient, experiment: str) -> str:
    found = client.get_experiment_by_name(experiment)
    return str(found.experiment_id) if found is not None else client.create_experiment(experiment)


def _keyed_runs(client: MlflowClient, experiment_id: str, key: tuple[str, str]) -> list[Run]:
    return list(client.search_runs([experiment_id], filter_string=f"tags.`{key[0]}` = '{key[1]}'"))


def _finished(run: Run) -> bool:
    from mlflow.entities import RunStatus

    return bool(run.info.status == RunStatus.to_string(RunStatus.FINISHED))


def download_text(tracking_uri: str, run_id: str, path: str) -> str:
    """An artifact of a run, as text (a reference dataset)."""

    client = _client(tracking_uri)
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory() as directory:
        try:
            local = client.download_artifacts(run_id, path, directory)
        except (MlflowException, OSError) as error:
            text = str(error)
            if getattr(error, "error_code", "") == "RESOURCE_DOES_NOT_EXIST" or "404" in text:
                raise ArtifactNotFound(f"MLflow run {run_id} has no artifact {path!r}") from error
            raise _unavailable(tracking_uri, error) from error
        return Path(local).read_text()


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


def prepare_run(
    tracking_uri: str,
    experiment: str,
    run_name: str,
    key_tag: str,
    key: str,
    ready_tag: str,
    texts: dict[str, str],
) -> str:
    """The run tagged ``key_tag=key`` in ``experiment``, created with ``texts`` as artifacts when
    missing; a run left without them by a crash gets them again. Returns its id."""

    client = _client(tracking_uri)
    from mlflow.exceptions import MlflowException

    try:
        experiment_id = _experiment_id(client, experiment)
        runs = _keyed_runs(client, experiment_id, (key_tag, key))
        run = runs[0] if runs else client.create_run(experiment_id, run_name=run_name, tags={key_tag: key})
        run_id = str(run.info.run_id)
        if run.data.tags.get(ready_tag) != "true":
            for path, text in texts.items():
                client.log_text(run_id, text, path)
            client.set_tag(run_id, ready_tag, "true")
    except (MlflowException, OSError) as error:
        raise _unavailable(tracking_uri, error) from error
    return run_id


def run_tag(tracking_uri: str, run_id: str, key: str) -> str | None:
    """A tag of a run, or None when it has none (yet)."""

    client = _client(tracking_uri)
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id).data.tags.get(key)
    except (MlflowException, OSError) as error:
        raise _unavailable(tracking_uri, error) from error
