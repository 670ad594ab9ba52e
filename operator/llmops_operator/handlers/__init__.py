"""kopf handlers: thin glue from Kubernetes events to the pure modules."""

from __future__ import annotations

from ..config import Settings
from . import canaryrollout, driftmonitor, lifecycle, llmdeployment, llmgateway


def register(settings: Settings) -> None:
    """Register every handler; called once by main before kopf starts."""
    lifecycle.register(settings)
    llmdeployment.register(settings)
    canaryrollout.register(settings)
    driftmonitor.register(settings)
    llmgateway.register(settings)
