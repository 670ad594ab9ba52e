"""metav1.Condition bookkeeping as pure functions over lists of dicts (the status wire format)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ValidationError

from .api.common import validation_message
from .names import INVALID_SPEC, READY
from .timestamps import now_text

ConditionStatus = Literal["True", "False", "Unknown"]


def set_condition(
    conditions: list[dict[str, Any]],
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    generation: int,
    now: str | None = None,
) -> list[dict[str, Any]]:
    """Return a new list with ``type_`` set; lastTransitionTime moves only when status changes."""
    previous = next((c for c in conditions if c.get("type") == type_), None)
    transition = (
        previous["lastTransitionTime"]
        if previous is not None and previous.get("status") == status and previous.get("lastTransitionTime")
        else (now or now_text())
    )
    updated = {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": transition,
    }
    others = [c for c in conditions if c.get("type") != type_]
    return sorted([*others, updated], key=lambda c: str(c["type"]))


def find_condition(conditions: list[dict[str, Any]], type_: str) -> dict[str, Any] | None:
    return next((c for c in conditions if c.get("type") == type_), None)


def status_changes(current: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    """The top-level status keys whose values differ: an empty result means write nothing."""
    return {key: value for key, value in desired.items() if current.get(key) != value}


def invalid_spec_status(current: dict[str, Any], generation: int, error: ValidationError) -> dict[str, Any]:
    """The status of an object whose spec does not parse: Ready False, InvalidSpec, and the
    fields the API server's schema let through; everything else in status is left as it is."""
    conditions = set_condition(
        current.get("conditions") or [], READY, "False", INVALID_SPEC, validation_message(error), generation
    )
    return {"observedGeneration": generation, "conditions": conditions}
