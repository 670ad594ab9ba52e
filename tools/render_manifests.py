"""Renders the kustomize manifests from the Helm chart, so the two install paths cannot drift
apart (an integration test re-renders and compares):

    manifests/crds/crds.yaml                     crds/, in one file for kustomize
    manifests/base/operator.yaml                 cluster-wide: ClusterRole, two peered replicas
    manifests/overlays/namespaced/operator.yaml  one namespace (llm-serving) with a Role in it

    python tools/render_manifests.py [--check] [--crds-only]
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
VERSIONS = dict(
    line.split("=", 1)
    for line in (ROOT / "tools" / "versions.env").read_text().splitlines()
    if "=" in line and not line.startswith("#")
)
HELM = ROOT / ".tools" / f"helm-{VERSIONS['HELM_VERSION']}" / "helm"
NAMESPACE = "llmops-system"
HELM_ONLY_LABELS = ("helm.sh/chart", "app.kubernetes.io/managed-by")
TARGETS = {
    ROOT / "manifests" / "base" / "operator.yaml": [],
    ROOT / "manifests" / "overlays" / "namespaced" / "operator.yaml": [
        "--set",
        "watchNamespaces={llm-serving}",
    ],
}


def _strip(node: object) -> None:
    """Helm's own labels say Helm manages the object; under kustomize it does not."""
    if isinstance(node, dict):
        labels = node.get("labels")
        if isinstance(labels, dict):
            for key in HELM_ONLY_LABELS:
                labels.pop(key, None)
        for value in node.values():
            _strip(value)
    elif isinstance(node, list):
        for value in node:
            _strip(value)


def render(values: list[str]) -> str:
    command = [str(HELM), "template", "llmops", str(ROOT / "charts" / "llmops-operator"), "-n", NAMESPACE]
    command += ["--kube-version", VERSIONS["KUBERNETES_VERSION"].lstrip("v"), *values]
    text = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    docs = [doc for doc in yaml.safe_load_all(text) if doc]
    for doc in docs:
        _strip(doc)
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": NAMESPACE, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
    }
    header = "# Rendered from charts/llmops-operator by tools/render_manifests.py; do not edit.\n"
    return header + yaml.safe_dump_all([namespace, *docs], sort_keys=False, width=120)


def crds() -> str:
    header = "# crds/ in one file, copied by tools/render_manifests.py; do not edit.\n"
    return header + "---\n".join(path.read_text() for path in sorted((ROOT / "crds").glob("*.yaml")))


def main(argv: list[str]) -> int:
    stale = []
    outputs = {ROOT / "manifests" / "crds" / "crds.yaml": crds()}
    if "--crds-only" not in argv:  # the rest needs helm (make tools)
        outputs.update({path: render(values) for path, values in TARGETS.items()})
    for path, text in outputs.items():
        if "--check" in argv:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path.relative_to(ROOT)))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print("stale, run python tools/render_manifests.py: " + ", ".join(stale), file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
