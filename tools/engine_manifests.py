"""Prints what tools/engines.sh applies for one retraining engine run as a host process: its CRDs
and its webhook configurations from its Go module, with every webhook (and Kueue's CRD conversion
webhook) pointed at https://127.0.0.1:PORT and trusting the given CA.

    engine_manifests.py crds kueue|jobset MODULE_DIR PORT CA_FILE
    engine_manifests.py webhooks kueue|jobset MODULE_DIR PORT CA_FILE

Only the webhook entries of what is enabled are kept: Kueue's own kinds, batch Jobs and JobSets
(Kueue serves its pod and deployment webhooks regardless, and would otherwise intercept every pod);
JobSet's pod webhooks only for JobSet pods, as its kustomize patches do.
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Any

import yaml

CRD_DIR = {
    "kueue": "config/components/crd/bases",
    "jobset": "config/components/crd/bases",
}
WEBHOOKS = "config/components/webhook/manifests.yaml"
KEPT_PATHS = {
    "kueue": ("kueue-x-k8s-io", "-batch-v1-job", "-jobset-x-k8s-io-"),
    "jobset": ("-jobset-x-k8s-io-", "--v1-pod"),
}
# Kueue's certificate rotator injects the CA into these CRDs' conversion webhooks and waits for
# them; kustomize's patches/webhook_in_*.yaml enable the same five.
KUEUE_CONVERTED = {"localqueues", "clusterqueues", "workloads", "cohorts", "multikueueclusters"}
JOBSET_POD_SELECTOR = {"matchExpressions": [{"key": "jobset.sigs.k8s.io/jobset-name", "operator": "Exists"}]}


def crds(engine: str, module: Path, url: str, ca: str) -> list[dict[str, Any]]:
    found = []
    for path in sorted((module / CRD_DIR[engine]).glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        if engine == "kueue" and crd["spec"]["names"]["plural"] in KUEUE_CONVERTED:
            crd["spec"]["conversion"] = {
                "strategy": "Webhook",
                "webhook": {
                    "clientConfig": {"url": f"{url}/convert", "caBundle": ca},
                    "conversionReviewVersions": ["v1"],
                },
            }
        found.append(crd)
    return found


def webhooks(engine: str, module: Path, url: str, ca: str) -> list[dict[str, Any]]:
    configurations = []
    for doc in yaml.safe_load_all((module / WEBHOOKS).read_text()):
        if not doc:
            continue
        kind = "mutating" if doc["kind"] == "MutatingWebhookConfiguration" else "validating"
        # The names Kueue's rotator looks for (<service base>-<kind>-webhook-configuration).
        doc["metadata"] = {"name": f"{engine}-{kind}-webhook-configuration"}
        kept = []
        for hook in doc["webhooks"]:
            path = hook["clientConfig"]["service"]["path"]
            if not any(part in path for part in KEPT_PATHS[engine]):
                continue
            hook["clientConfig"] = {"url": f"{url}{path}", "caBundle": ca}
            if engine == "jobset" and path.endswith("--v1-pod"):
                hook["objectSelector"] = JOBSET_POD_SELECTOR
            kept.append(hook)
        doc["webhooks"] = kept
        configurations.append(doc)
    return configurations


def main() -> None:
    what, engine, module, port, ca_file = sys.argv[1:6]
    url = f"https://127.0.0.1:{port}"
    ca = base64.b64encode(Path(ca_file).read_bytes()).decode()
    build = crds if what == "crds" else webhooks
    print(yaml.safe_dump_all(build(engine, Path(module), url, ca), sort_keys=False))


if __name__ == "__main__":
    main()
