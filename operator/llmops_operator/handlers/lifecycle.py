"""Operator-wide kopf settings applied at startup."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from ..config import Settings
from ..names import FINALIZER, KOPF_PREFIX


def register(config: Settings) -> None:
    @kopf.on.startup()
    def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure(settings, config)


def configure(settings: kopf.OperatorSettings, config: Settings) -> None:
    # Progress and the last-handled spec live in our own annotations, never in status (which is
    # the users' view). Git's field manager does not own those keys, so Argo CD sees no diff.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=KOPF_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=KOPF_PREFIX)
    settings.persistence.finalizer = FINALIZER
    # A standby takes over within one lifetime of the leader's last keepalive (kopf's default is 60 s).
    settings.peering.lifetime = config.peering_lifetime_seconds
    # kopf posts an Event per handler run; humans need only warnings from it (ours are explicit).
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    # Timers and rollout handlers are synchronous and run on kopf's threads; LLMDeployment passes
    # have thread pools of their own (handlers/llmdeployment.py).
    settings.execution.max_workers = 16
    # A timer's thread cannot be interrupted: an object deleted mid-tick keeps its finalizer
    # until kopf looks again, every 60 s by default. A rollout deleted while Prometheus was being
    # asked took longer than `kubectl delete --wait`'s minute.
    settings.background.cancellation_polling = 1
    settings.networking.request_timeout = 60
