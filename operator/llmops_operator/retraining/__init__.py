"""Retraining engines: the workload kinds a drift episode's retraining is handed to.

Adding an engine is one module with a class like ``JobEngine`` and one entry in ``ENGINES``.
"""

from __future__ import annotations

from .base import Engine, Progress, TrainerContext, kueue_selector, queued_message, render
from .job import JobEngine
from .jobset import JobSetEngine

ENGINES: dict[str, Engine] = {"Job": JobEngine(), "JobSet": JobSetEngine()}


def engine_for(name: str) -> Engine:
    """The engine a monitor names (the CRD's enum allows only the keys of ``ENGINES``)."""
    return ENGINES[name]


__all__ = [
    "ENGINES",
    "Engine",
    "Progress",
    "TrainerContext",
    "engine_for",
    "kueue_selector",
    "queued_message",
    "render",
]
