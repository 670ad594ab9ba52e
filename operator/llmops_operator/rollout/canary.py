"""The canary LLMDeployment a rollout applies, and the changes promotion makes to its target, as
pure functions of the rollout and the target."""

from __future__ import annotations

import copy
from typing import Any

from .. import API_VERSION
from ..api.canaryrollout import CanaryRolloutSpec
from ..model_uris import parse_registry_uri
from ..names import CANARY_OF_LABEL, ROLLOUT_LABEL, SERVES_FOR_ANNOTATION, canary_name


def canary_overlay(spec: CanaryRolloutSpec, target_spec: dict[str, Any]) -> dict[str, Any]:
    """The canary's changes as a partial LLMDeployment spec.

    A new model URI replaces the target's model identity: a pinned version cannot follow an alias,
    so ``followAlias`` goes off with it (the alias itself moves at promotion).
    """
    overlay = dict(spec.canary.model_dump(mode="json", by_alias=True, exclude_none=True))
    model = overlay.get("model")
    target_model = target_spec.get("model") or {}
    if isinstance(model, dict) and "uri" in model and target_model.get("followAlias"):
        ref = parse_registry_uri(model["uri"])
        if ref is None or ref.alias is None:
            model["followAlias"] = False
    return overlay


def merged(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """``overlay`` laid over ``base``: maps merge, everything else is replaced."""
    result = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def desired_canary(
    rollout: dict[str, Any],
    target: dict[str, Any],
    spec: CanaryRolloutSpec,
    replicas: int,
    shares_service: bool,
) -> dict[str, Any]:
    """The canary LLMDeployment: the target's spec with the overlay, owned by the rollout."""
    target_name = target["metadata"]["name"]
    canary_spec = merged(target.get("spec") or {}, canary_overlay(spec, target.get("spec") or {}))
    canary_spec["replicas"] = replicas
    canary_spec.pop("autoscaling", None)  # the rollout sizes the canary
    meta = rollout["metadata"]
    return {
        "apiVersion": API_VERSION,
        "kind": "LLMDeployment",
        "metadata": {
            "name": canary_name(target_name),
            "namespace": meta["namespace"],
            "labels": {CANARY_OF_LABEL: target_name, ROLLOUT_LABEL: meta["name"]},
            "annotations": {SERVES_FOR_ANNOTATION: target_name} if shares_service else {},
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": "CanaryRollout",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": canary_spec,
    }


def leaves(tree: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted path, value) of every leaf: the changes GitOps promotion lists."""
    found: list[tuple[str, Any]] = []
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            found.extend(leaves(value, f"{path}."))
        else:
            found.append((path, value))
    return found
