"""The least a controller can do per LLMDeployment, to show what the control plane allows.

It watches LLMDeployments in one namespace and, for each new one, server-side applies the same
Deployment and Service the operator renders, from 16 threads: no status, no Events, no kopf, no
child watches. ``llmdeployment_scale.py --floor`` runs it in place of the operator, so the
create-to-children figures of the two can be compared on the same machine.

Usage: .venv/bin/python benchmarks/floor_controller.py NAMESPACE   (KUBECONFIG in the environment)
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kubernetes import client, config, watch

from llmops_operator.api.llmdeployment import LLMDeploymentSpec, ResolvedModel
from llmops_operator.kube import Kube
from llmops_operator.rendering import llmdeployment as rendering


def apply_children(kube: Kube, body: dict[str, Any]) -> None:
    meta = body["metadata"]
    spec = LLMDeploymentSpec.model_validate(body["spec"])
    owner = rendering.Owner(name=meta["name"], namespace=meta["namespace"], uid=meta["uid"], serves="")
    resolved = ResolvedModel(uri=spec.model.uri, version="", source=spec.model.uri)
    kube.apply(rendering.deployment(spec, resolved, owner, "unused", ""))
    kube.apply(rendering.service(resolved, owner))


def main(namespace: str) -> None:
    config.load_kube_config()
    kube = Kube()
    custom = client.CustomObjectsApi()
    with ThreadPoolExecutor(16) as pool:
        for event in watch.Watch().stream(
            custom.list_namespaced_custom_object, "llmops.dev", "v1alpha1", namespace, "llmdeployments"
        ):
            if event["type"] == "ADDED":
                pool.submit(apply_children, kube, event["object"])


if __name__ == "__main__":
    main(sys.argv[1])
