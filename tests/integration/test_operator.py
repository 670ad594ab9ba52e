"""The operator process against the real API server: first sight, spec changes, restarts."""

from __future__ import annotations

import urllib.request
from typing import Any

import yaml

from .conftest import ROOT, Cluster, OperatorProcess, wait_for

SAMPLES = {p.stem: yaml.safe_load(p.read_text()) for p in (ROOT / "manifests" / "samples").glob("*.yaml")}
EXPECTED_CONDITIONS = {
    "LLMDeployment": {"Ready", "Progressing", "Degraded", "ModelResolved"},
    "CanaryRollout": {"Ready", "Progressing", "Promoted", "Paused", "RolledBack"},
    "DriftMonitor": {"Ready", "Drifted"},
    "LLMGateway": {"Ready", "ConfigApplied", "RoutesReady"},
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
        # kopf's bookkeeping lives in the operator's own annotations, never in status.
        annotations = obj["metadata"].get("annotations") or {}
        assert not [key for key in annotations if key.startswith("kopf.zalando.org")], annotations
        assert "kopf" not in obj["status"], "kopf progress must live in annotations"


GIT = "argocd-controller"


def owned_fields(obj: dict[str, Any], manager: str) -> list[dict[str, Any]]:
    return [entry for entry in obj["metadata"].get("managedFields") or [] if entry["manager"] == manager]


def test_gitops_git_keeps_every_field_it_applied_and_a_second_apply_changes_nothing(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    """What Argo CD sees: it applies the samples with server-side apply under its own field manager,
    the operator works on them, and Git still owns exactly what it applied. The operator writes
    status, its finalizer (its timers stop, and a rollout gives traffic back, before the object
    goes) and, on rollouts and monitors, kopf's bookkeeping under its own annotation prefix, keys
    Git never sets; the in-place promotion, the one documented spec write, does not happen here."""
    for sample in SAMPLES.values():
        cluster.apply(sample, namespace, f"--field-manager={GIT}")
    applied = {}
    for sample in SAMPLES.values():
        kind, name = sample["kind"], sample["metadata"]["name"]
        obj = cluster.get(kind.lower(), name, "-n", namespace, "--show-managed-fields")
        applied[(kind, name)] = owned_fields(obj, GIT)
        assert applied[(kind, name)], f"{kind}/{name} has no fields of {GIT}"
    for kind, name in applied:
        wait_for(lambda k=kind, n=name: observed(cluster, namespace, k, n), what=f"{kind}/{name} observed")
    # Rollout ticks, drift checks and a registry resync (slow here: no MLflow answers) go by.
    for kind, passes in {"CanaryRollout": 3, "DriftMonitor": 3, "LLMDeployment": 1}.items():
        operator.wait_reconciles(kind, passes, timeout=120)
    for kind, name in applied:
        obj = cluster.get(kind.lower(), name, "-n", namespace, "--show-managed-fields")
        git = owned_fields(obj, GIT)
        assert [e["fieldsV1"] for e in git] == [e["fieldsV1"] for e in applied[(kind, name)]], (
            f"{kind}/{name}"
        )
        for entry in obj["metadata"]["managedFields"]:
            if entry["manager"] == GIT:
                continue
            fields = set(entry.get("fieldsV1") or {})
            allowed = {"f:status"} if entry.get("subresource") == "status" else {"f:metadata"}
            assert fields <= allowed, f"{kind}/{name}: {entry['manager']} owns {sorted(fields)}"
            if "f:metadata" in fields:
                metadata = entry["fieldsV1"]["f:metadata"]
                assert set(metadata) <= {"f:finalizers", "f:annotations"}, (kind, entry)
                assert set(metadata.get("f:finalizers", {})) <= {".", 'v:"llmops.dev/finalizer"'}, entry
                keys = set(metadata.get("f:annotations", {})) - {"."}
                assert all(key.startswith("f:llmops.dev/") for key in keys), (kind, keys)
                assert not (kind == "LLMDeployment" and keys), f"{name}: no bookkeeping, only status"
    # Applying the same manifests again would change nothing: nothing for Argo CD to fight over.
    for sample in SAMPLES.values():
        diff = cluster.kubectl(
            "diff",
            "--server-side",
            f"--field-manager={GIT}",
            "-n",
            namespace,
            "-f",
            "-",
            input=yaml.safe_dump(sample),
            check=False,
        )
        assert diff.returncode == 0 and diff.stdout == "", diff.stdout + diff.stderr


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
    settled: list[str] = []

    def unchanged_by_a_check() -> bool:
        operator.wait_reconciles("DriftMonitor", 1)
        settled.append(cluster.get("dm", "llama-8b-drift", "-n", namespace)["metadata"]["resourceVersion"])
        return len(settled) >= 2 and settled[-1] == settled[-2]

    wait_for(unchanged_by_a_check, timeout=60, interval=0, what="a check that writes nothing")
    before = settled[-1]
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
