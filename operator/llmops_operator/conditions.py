"""metav1.Condition bookkeeping as pure functions over lists of dicts (the status wire format)."""

from __future__ import annotations

from typing import Any, Literal

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
