"""Turns the pydantic API models into structural CustomResourceDefinitions.

pydantic's JSON Schema is close to what the API server wants but not structural: it uses $ref,
``null`` branches in anyOf, titles and ``additionalProperties`` beside ``properties``. This module
rewrites it into the subset Kubernetes accepts; ``python -m llmops_operator.crdgen DIR`` writes one
file per kind and ``--check`` fails when the files differ from the models.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from . import FIELD_MANAGER, GROUP, VERSION
from .api import KINDS, Resource
from .api.common import KindInfo
from .names import NAME_LABEL, PART_OF_LABEL

JSONSchema = dict[str, Any]

_DROPPED_KEYS = {"title", "$defs", "additionalProperties", "discriminator"}


def _resolve(schema: Any, defs: dict[str, JSONSchema]) -> Any:
    if isinstance(schema, list):
        return [_resolve(item, defs) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        target = defs[schema["$ref"].split("/")[-1]]
        merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return _resolve(merged, defs)
    return {key: _resolve(value, defs) for key, value in schema.items()}


def _structural(schema: JSONSchema) -> JSONSchema:
    """Rewrite one resolved pydantic schema node (and its children) into structural form."""
    node = dict(schema)
    if node.get("x-kubernetes-int-or-string"):
        node.pop("anyOf", None)
        node.pop("type", None)
    elif "anyOf" in node:
        branches = [b for b in node.pop("anyOf") if b.get("type") != "null"]
        if len(branches) != 1:
            raise ValueError(f"cannot express union {branches} structurally")
        node = {**branches[0], **node}
    if node.get("default", 0) is None:
        del node["default"]
    if "const" in node:  # a one-value Literal
        node["enum"] = [node.pop("const")]

    extra = node.get("additionalProperties")
    out: JSONSchema = {k: v for k, v in node.items() if k not in _DROPPED_KEYS}
    if "properties" in node:
        out["properties"] = {name: _structural(sub) for name, sub in node["properties"].items()}
        out["type"] = "object"
    elif extra is True or (node.get("type") == "object" and not extra):
        out["type"] = "object"
        out["x-kubernetes-preserve-unknown-fields"] = True
    elif isinstance(extra, dict):
        out["additionalProperties"] = _structural(extra)
    if "items" in node:
        out["items"] = _structural(node["items"])
    if out.get("x-kubernetes-preserve-unknown-fields") and "type" not in out:
        out["type"] = "object"
    return out


def _without_defaults(schema: Any) -> Any:
    """Status is written by the operator alone; API-server defaults there would only invent values."""
    if isinstance(schema, list):
        return [_without_defaults(item) for item in schema]
    if isinstance(schema, dict):
        return {k: _without_defaults(v) for k, v in schema.items() if k != "default"}
    return schema


def schema_for(model: type[Any]) -> JSONSchema:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return _structural(_resolve(raw, raw.get("$defs", {})))


def name_rule(info: KindInfo) -> dict[str, str]:
    """A name too long for the children derived from it is refused at create, not at the first
    reconcile, where the child would fail instead."""
    limit = info.name_max_length
    return {
        "rule": f"self.metadata.name.size() <= {limit}",
        "message": f"metadata.name must be at most {limit} characters: {info.name_limited_by}",
        "fieldPath": ".metadata.name",
    }


def crd_for(kind: type[Resource]) -> JSONSchema:
    info = kind.kind_info
    fields = kind.model_fields
    spec = schema_for(fields["spec"].annotation)  # type: ignore[arg-type]
    spec.pop("description", None)
    if info.schema_rules:
        spec["x-kubernetes-validations"] = info.schema_rules
    status = _without_defaults(schema_for(fields["status"].annotation))  # type: ignore[arg-type]
    status.pop("description", None)
    description = (kind.__doc__ or "").strip() or (kind.__module__ and sys.modules[kind.__module__].__doc__)
    subresources: JSONSchema = {"status": {}}
    if info.scale:
        subresources["scale"] = info.scale
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{info.plural}.{GROUP}",
            "labels": {NAME_LABEL: FIELD_MANAGER, PART_OF_LABEL: "llmops"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": info.kind,
                "listKind": f"{info.kind}List",
                "plural": info.plural,
                "singular": info.singular,
                "shortNames": info.short_names,
                "categories": ["llmops"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": subresources,
                    "additionalPrinterColumns": info.printer_columns,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": (description or "").strip().splitlines()[0],
                            "x-kubernetes-validations": [name_rule(info)],
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object", "properties": {"name": {"type": "string"}}},
                                "spec": spec,
                                "status": status,
                            },
                        }
                    },
                }
            ],
        },
    }


def peering_crd(scope: str) -> dict[str, Any]:
    """kopf's peering kinds: the replicas of the operator agree through them which one acts
    (ClusterKopfPeering when it watches the cluster, KopfPeering per watched namespace)."""
    kind = "ClusterKopfPeering" if scope == "Cluster" else "KopfPeering"
    plural = kind.lower() + "s"
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.kopf.dev", "labels": {NAME_LABEL: FIELD_MANAGER}},
        "spec": {
            "group": "kopf.dev",
            "scope": scope,
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


def _document(crd: dict[str, Any]) -> str:
    header = "# Generated from operator/llmops_operator by `make crds`; do not edit.\n"
    return header + yaml.safe_dump(crd, sort_keys=False, width=120)


def documents() -> dict[str, str]:
    """File name to content: the three kinds, and kopf's peering kinds the replicas need."""
    files = {f"{GROUP}_{kind.kind_info.plural}.yaml": _document(crd_for(kind)) for kind in KINDS}
    for scope in ("Cluster", "Namespaced"):
        crd = peering_crd(scope)
        files[f"kopf.dev_{crd['spec']['names']['plural']}.yaml"] = _document(crd)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("directories", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="fail when the files differ from the models")
    args = parser.parse_args(argv)
    stale = []
    for directory in args.directories:
        for name, text in documents().items():
            path = directory / name
            if args.check:
                if not path.exists() or path.read_text() != text:
                    stale.append(str(path))
            else:
                directory.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
    if stale:
        print("out of date, run `make crds`: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
