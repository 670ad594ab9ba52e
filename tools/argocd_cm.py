"""Writes manifests/argocd/argocd-cm-health.yaml: the argocd-cm keys that install the health checks
in manifests/argocd/resource_customizations (a unit test keeps the two identical).

    python tools/argocd_cm.py
"""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CUSTOMIZATIONS = ROOT / "manifests" / "argocd" / "resource_customizations"
SNIPPET = ROOT / "manifests" / "argocd" / "argocd-cm-health.yaml"


class _Literal(str):
    """Dumped as a YAML block scalar, so the Lua stays readable in the ConfigMap."""


yaml.SafeDumper.add_representer(
    _Literal, lambda dumper, text: dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|")
)


def health_keys() -> dict[str, str]:
    return {
        f"resource.customizations.health.{script.parent.parent.name}_{script.parent.name}": script.read_text()
        for script in sorted(CUSTOMIZATIONS.glob("*/*/health.lua"))
    }


def render() -> str:
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "argocd-cm",
            "namespace": "argocd",
            "labels": {"app.kubernetes.io/name": "argocd-cm", "app.kubernetes.io/part-of": "argocd"},
        },
        "data": {key: _Literal(text) for key, text in health_keys().items()},
    }
    header = "# Merge into argocd-cm (kubectl -n argocd patch configmap argocd-cm --patch-file ...).\n"
    header += "# Generated from resource_customizations/ by tools/argocd_cm.py.\n"
    return header + yaml.safe_dump(config_map, sort_keys=False, width=200)


if __name__ == "__main__":
    SNIPPET.write_text(render())
    print(f"wrote {SNIPPET.relative_to(ROOT)}")
