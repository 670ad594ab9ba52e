"""Every child an LLMDeployment owns besides its Deployment and Service (PodDisruptionBudget, HPA,
model-cache claim, ServiceMonitor) is put back after a hand edit or a deletion, from its own watch
event, as README promises."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from .conftest import ROOT, VERSIONS, Cluster, OperatorProcess, established, wait_for
from .test_llmdeployment import exists, llmd

MONITORING_CRDS = ROOT / ".tools" / f"prometheus-operator-{VERSIONS['PROMETHEUS_OPERATOR_VERSION']}"
SERVICE_MONITORS = MONITORING_CRDS / "servicemonitors.yaml"


@dataclass(frozen=True)
class Child:
    """One kind of child: the spec that asks for it, a hand edit, and how to read the edited field."""

    kind: str
    name_suffix: str
    spec: dict[str, Any]
    edit: dict[str, Any]
    field: Callable[[dict[str, Any]], Any]


CHILDREN = [
    Child(
        "poddisruptionbudget",
        "",
        {"replicas": 2},
        {"spec": {"maxUnavailable": 2}},
        lambda obj: obj["spec"]["maxUnavailable"],
    ),
    Child(
        "horizontalpodautoscaler",
        "",
        {"autoscaling": {"minReplicas": 1, "maxReplicas": 4, "target": "5"}},
        {"spec": {"maxReplicas": 40}},
        lambda obj: obj["spec"]["maxReplicas"],
    ),
    # No replicas, so no pod holds the claim and a deletion completes (kubernetes.io/pvc-protection).
    Child(
        "persistentvolumeclaim",
        "-model-cache",
        {"replicas": 0, "cache": {"size": "10Gi", "retainOnDelete": False}},
        {"metadata": {"labels": {"app.kubernetes.io/component": "edited"}}},
        lambda obj: obj["metadata"]["labels"]["app.kubernetes.io/component"],
    ),
    Child(
        "servicemonitor",
        "",
        {"replicas": 0, "monitoring": {"serviceMonitor": {"enabled": True, "interval": "15s"}}},
        {"spec": {"endpoints": [{"port": "http", "path": "/metrics", "interval": "5m"}]}},
        lambda obj: obj["spec"]["endpoints"][0]["interval"],
    ),
]


@pytest.fixture
def service_monitor_crd(cluster: Cluster) -> Iterator[None]:
    """The Prometheus Operator's ServiceMonitor CRD, there before the operator starts; removed after,
    so later tests see a cluster without it again."""
    cluster.kubectl("apply", "--server-side", f"--filename={SERVICE_MONITORS}")
    established(cluster, "servicemonitors.monitoring.coreos.com")
    yield
    cluster.kubectl("delete", "--wait", f"--filename={SERVICE_MONITORS}")


@pytest.mark.parametrize("child", CHILDREN, ids=[child.kind for child in CHILDREN])
def test_hand_edited_or_deleted_child_is_put_back(
    request: pytest.FixtureRequest, cluster: Cluster, namespace: str, child: Child
) -> None:
    if child.kind == "servicemonitor":
        request.getfixturevalue("service_monitor_crd")
    operator: OperatorProcess = request.getfixturevalue("operator")
    assert operator.process is not None
    cluster.apply(llmd("kept", "hf://org/model", **child.spec), namespace)
    name = f"kept{child.name_suffix}"
    wait_for(lambda: exists(cluster, namespace, child.kind, name), what=f"the {child.kind}")
    rendered = child.field(cluster.get(child.kind, name, "-n", namespace))

    cluster.kubectl("patch", child.kind, name, "-n", namespace, "--type=merge", "-p", json.dumps(child.edit))
    wait_for(
        lambda: child.field(cluster.get(child.kind, name, "-n", namespace)) == rendered,
        timeout=30,
        what=f"the {child.kind}'s edited field to be put back to {rendered!r}",
    )

    before = cluster.get(child.kind, name, "-n", namespace)["metadata"]["uid"]
    # Not --wait: kubectl would wait on the name, which the operator gives to the new object at once.
    cluster.kubectl("delete", child.kind, name, "-n", namespace, "--wait=false")
    wait_for(
        lambda: (
            exists(cluster, namespace, child.kind, name)
            and cluster.get(child.kind, name, "-n", namespace)["metadata"]["uid"] != before
        ),
        timeout=30,
        what=f"the {child.kind} to be created again",
    )
    assert child.field(cluster.get(child.kind, name, "-n", namespace)) == rendered
