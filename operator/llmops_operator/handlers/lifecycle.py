"""Operator-wide kopf settings applied at startup."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from .. import GROUP

KOPF_STATUS_FIELD = "status.kopf"


def register() -> None:
    kopf.on.startup()(configure)


def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Progress and the last-handled spec live in status.kopf, never in annotations: Git (Argo CD,
    # Flux) owns the metadata and spec of these objects, the operator writes only their status.
    settings.persistence.progress_storage = kopf.StatusProgressStorage(field=f"{KOPF_STATUS_FIELD}.progress")
    settings.persistence.diffbase_storage = kopf.StatusDiffBaseStorage(
        field=f"{KOPF_STATUS_FIELD}.lastHandled"
    )
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    # kopf posts an Event per handler run; humans need only warnings from it (ours are explicit).
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    # Handlers are synchronous (the Kubernetes and MLflow clients are); give them room.
    settings.execution.max_workers = 16
    settings.networking.request_timeout = 60
