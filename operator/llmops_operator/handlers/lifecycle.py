"""Operator-wide kopf settings applied at startup."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from .. import GROUP

PERSISTENCE_PREFIX = GROUP


def register() -> None:
    kopf.on.startup()(configure)


def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Progress and the last-handled spec live in our own annotations, never in status (which is
    # the users' view). Git's field manager does not own those keys, so Argo CD sees no diff.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PERSISTENCE_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=PERSISTENCE_PREFIX)
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    # kopf posts an Event per handler run; humans need only warnings from it (ours are explicit).
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    # Handlers are synchronous (the Kubernetes and MLflow clients are); give them room.
    settings.execution.max_workers = 16
    settings.networking.request_timeout = 60
