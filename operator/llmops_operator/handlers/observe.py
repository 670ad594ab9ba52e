"""First-sight handling for the kinds whose controllers are still to come: validate the spec,
record observedGeneration and seed every condition the kind's controller owns, so ``kubectl get``
tells the truth from the start.

A condition no controller has judged yet stays ``Unknown`` with reason ``ControllerPending``.
"""

from __future__ import annotations

from typing import Any

import kopf
from pydantic import ValidationError

from .. import GROUP, VERSION
from ..api import DriftMonitor, Resource
from ..conditions import set_condition, status_changes

CONDITIONS: dict[type[Resource], tuple[str, ...]] = {
    DriftMonitor: ("Ready", "Drifted"),
}


def validation_message(error: ValidationError) -> str:
    first = error.errors()[0]
    path = ".".join(str(part) for part in first["loc"])
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{path}: {first['msg']}{more}"


def desired_status(kind: type[Resource], body: dict[str, Any]) -> dict[str, Any]:
    """observedGeneration plus the kind's conditions, given what the object's status holds now."""
    generation = int(body.get("metadata", {}).get("generation") or 0)
    conditions: list[dict[str, Any]] = list((body.get("status") or {}).get("conditions") or [])
    try:
        kind.model_validate(body)
    except ValidationError as error:
        conditions = set_condition(
            conditions, "Ready", "False", "InvalidSpec", validation_message(error), generation
        )
    else:
        for type_ in CONDITIONS[kind]:
            existing = next((c for c in conditions if c.get("type") == type_), None)
            if existing is None or existing.get("reason") == "InvalidSpec":
                message = f"the {kind.kind_info.kind} controller has not judged this yet"
                conditions = set_condition(
                    conditions, type_, "Unknown", "ControllerPending", message, generation
                )
    conditions = [
        {**c, "observedGeneration": generation} if c["type"] in CONDITIONS[kind] else c for c in conditions
    ]
    return {"observedGeneration": generation, "conditions": conditions}


def _register(kind: type[Resource]) -> None:
    plural = kind.kind_info.plural

    def observe(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        current = dict(body.get("status") or {})
        changes = status_changes(current, desired_status(kind, dict(body)))
        if changes:
            patch.status.update(changes)

    observe.__name__ = f"observe_{kind.kind_info.singular}"
    for decorator in (kopf.on.resume, kopf.on.create):
        decorator(GROUP, VERSION, plural, id="observe")(observe)
    kopf.on.update(GROUP, VERSION, plural, id="observe", field="spec")(observe)


def register() -> None:
    for kind in CONDITIONS:
        _register(kind)
