"""The operator process against the real API server: first sight, spec changes, restarts."""

from __future__ import annotations

import time
import urllib.request
from typing import Any

import yaml

from .conftest import ROOT, Cluster, OperatorProcess, wait_for

SAMPLES = {p.stem: yaml.safe_load(p.read_text()) for p in (ROOT / "manifests" / "samples").glob("*.yaml")}
EXPECTED_CONDITIONS = {
    "LLMDeployment": {"Ready", "Progressing", "Degraded", "ModelResolved"},
    "CanaryRollout": {"Ready", "Progressing", "Promoted", "Paused", "RolledBack"},
    "DriftMonitor": {"Ready", "Drifted"},
}


def observed(cluster: Cluster, namespace: str, kind: str, name: str) -> dict[str, Any] | None:
    obj = cluster.get(kind.lower(), name, "-n", namespace)
    status = obj.get("status") or {}
    if status.get("observedGeneration") == obj["metadata"]["generation"]:
        return obj
    return None


def test_every_kind_gets_observed_generation_and_conditions(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    for sample in SAMPLES.values():
        cluster.apply(sample, namespace)
    for sample in SAMPLES.values():
        kind, name = sample["kind"], sample["metadata"]["name"]
        obj = wait_for(
            lambda k=kind, n=name: observed(cluster, namespace, k, n), what=f"{kind}/{name} observed"
        )
        conditions = obj["status"]["conditions"]
        assert {c["type"] for c in conditions} == EXPECTED_CONDITIONS[kind]
        for condition in conditions:
            assert set(condition) == {
                "type",
                "status",
                "reason",
                "message",
                "observedGeneration",
                "lastTransitionTime",
            }
            assert condition["observedGeneration"] == obj["metadata"]["generation"]
        annotations = obj["metadata"].get("annotations") or {}
        assert not [key for key in annotations if key.startswith("kopf.zalando.org")], annotations
        assert "kopf" not in obj["status"], "kopf progress must live in annotations"


def test_spec_change_moves_observed_generation(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    sample = SAMPLES["llmdeployment-llama-8b"]
    cluster.apply(sample, namespace)
    wait_for(lambda: observed(cluster, namespace, "LLMDeployment", "llama-8b"), what="first observation")
    cluster.kubectl("scale", "llmdeployment/llama-8b", "--replicas=4", "-n", namespace)
    obj = wait_for(
        lambda: observed(cluster, namespace, "LLMDeployment", "llama-8b"), what="second observation"
    )
    assert obj["metadata"]["generation"] == 2
    assert all(c["observedGeneration"] == 2 for c in obj["status"]["conditions"])


def test_restart_writes_nothing_when_nothing_changed(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    sample = SAMPLES["driftmonitor-llama-8b"]
    cluster.apply(sample, namespace)
    wait_for(lambda: observed(cluster, namespace, "DriftMonitor", "llama-8b-drift"), what="observation")
    # Let the first check (Prometheus is absent here) and kopf's bookkeeping settle.
    wait_for(
        lambda: (cluster.get("dm", "llama-8b-drift", "-n", namespace).get("status") or {}).get(
            "lastCheckTime"
        ),
        what="the first check",
    )
    time.sleep(2)
    before = cluster.get("dm", "llama-8b-drift", "-n", namespace)["metadata"]["resourceVersion"]
    operator.stop()
    checks_before = operator.logs().count("Timer 'check' succeeded")
    operator.start()
    wait_for(
        lambda: operator.logs().count("Timer 'check' succeeded") >= checks_before + 2,
        timeout=60,
        what="the restarted operator to look at the monitor twice",
    )
    after = cluster.get("dm", "llama-8b-drift", "-n", namespace)["metadata"]["resourceVersion"]
    assert after == before


def test_object_in_another_namespace_is_left_alone(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    other = f"{namespace}-x"[:63]
    cluster.kubectl("create", "namespace", other)
    try:
        cluster.apply(SAMPLES["canaryrollout-llama-8b"], other)
        cluster.apply(SAMPLES["canaryrollout-llama-8b"], namespace)
        wait_for(lambda: observed(cluster, namespace, "CanaryRollout", "llama-8b-v2"), what="observation")
        assert "status" not in cluster.get("canaryrollout", "llama-8b-v2", "-n", other)
    finally:
        cluster.kubectl("delete", "namespace", other, "--wait=false", check=False)


def test_liveness_endpoint_answers(cluster: Cluster, namespace: str, operator: OperatorProcess) -> None:
    def healthy() -> bool:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{operator.health_port}/healthz", timeout=2
            ) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    wait_for(healthy, timeout=30, what="/healthz to answer")
