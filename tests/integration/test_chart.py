"""The Helm chart as users install it, against the real API server: lint, every rendered manifest
accepted by server-side dry run, an install into a namespace that enforces Pod Security
`restricted`, and the operator reconciling with nothing but the chart's ServiceAccount and RBAC.
Its alerts go through promtool and its dashboard's PromQL through a real Prometheus."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import (
    KUBECONFIG,
    ROOT,
    VERSIONS,
    Cluster,
    OperatorProcess,
    PrometheusServer,
    established,
    release_finalizers,
    wait_for,
)

CHART = ROOT / "charts" / "llmops-operator"
FULL_VALUES = CHART / "ci" / "full-values.yaml"
HELM = ROOT / ".tools" / f"helm-{VERSIONS['HELM_VERSION']}" / "helm"
PROMTOOL = ROOT / ".tools" / f"prometheus-{VERSIONS['PROMETHEUS_VERSION']}" / "promtool"
MONITORING_CRDS = ROOT / ".tools" / f"prometheus-operator-{VERSIONS['PROMETHEUS_OPERATOR_VERSION']}"
ARGOCD_CRDS = ROOT / ".tools" / f"argocd-{VERSIONS['ARGOCD_VERSION']}"
KUBE_VERSION = VERSIONS["KUBERNETES_VERSION"].lstrip("v")
SAMPLES = ROOT / "manifests" / "samples"


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(HELM), "--kubeconfig", str(KUBECONFIG), *args], capture_output=True, text=True, timeout=300
    )
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed: {result.stderr}")
    return result


def render(namespace: str, *values: str) -> list[dict[str, Any]]:
    text = helm(
        "template", "llmops", str(CHART), "-n", namespace, "--kube-version", KUBE_VERSION, *values
    ).stdout
    return [doc for doc in yaml.safe_load_all(text) if doc]


@pytest.fixture(scope="module")
def monitoring_crds(cluster: Cluster) -> Iterator[None]:
    """ServiceMonitor and PrometheusRule, as the Prometheus Operator publishes them; removed after,
    so later tests see a cluster without them again."""
    files = [
        f"--filename={MONITORING_CRDS / name}" for name in ("servicemonitors.yaml", "prometheusrules.yaml")
    ]
    cluster.kubectl("apply", "--server-side", *files)
    established(cluster, "servicemonitors.monitoring.coreos.com")
    established(cluster, "prometheusrules.monitoring.coreos.com")
    yield
    cluster.kubectl("delete", "--wait", *files)


def test_helm_lint_and_the_values_schema() -> None:
    for values in ([], ["-f", str(FULL_VALUES)]):
        result = helm("lint", str(CHART), *values)
        assert "0 chart(s) failed" in result.stdout
    # The schema turns a typo or a bad value into an error naming it, before anything is applied.
    bad = helm("lint", str(CHART), "--set", "replicaCount=0", check=False)
    assert bad.returncode != 0 and "replicaCount" in bad.stdout + bad.stderr
    typo = helm("template", "x", str(CHART), "--set", "watchNamespace=llm", check=False)
    assert typo.returncode != 0 and "watchNamespace" in typo.stderr


def test_rbac_is_least_privilege_without_wildcards() -> None:
    for values in ([], ["-f", str(FULL_VALUES)]):
        for doc in render("llmops-system", *values):
            if doc["kind"] in ("ClusterRole", "Role"):
                for rule in doc["rules"]:
                    for key in ("apiGroups", "resources", "verbs"):
                        assert "*" not in rule[key], (doc["metadata"]["name"], rule)
                    assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"]), rule
                    # Secrets: only get, for the resourceVersion of those an LLMGateway references
                    # (a rotated key rolls the gateway's pods); never listed or watched.
                    if "secrets" in rule["resources"]:
                        assert rule["resources"] == ["secrets"] and rule["verbs"] == ["get"], rule


def engine_rules(*values: str) -> dict[str, list[str]]:
    """The operator's verbs on the retraining engines' kinds, as the chart renders them."""
    role = next(
        doc
        for doc in render("llmops-system", *values)
        if doc["kind"] == "ClusterRole" and doc["metadata"]["name"] == "llmops-llmops-operator"
    )
    engine_kinds = {"jobs", "jobsets", "workloads"}
    return {
        f"{resource}.{rule['apiGroups'][0]}": rule["verbs"]
        for rule in role["rules"]
        for resource in rule["resources"]
        if resource in engine_kinds
    }


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], {"jobs.batch": ["get", "create", "delete"]}),
        (
            ["--set", "retraining.engines={Job,JobSet}"],
            {
                "jobs.batch": ["get", "create", "delete"],
                "jobsets.jobset.x-k8s.io": ["get", "create", "delete"],
            },
        ),
        (
            ["--set", "retraining.engines={JobSet}", "--set", "retraining.kueue=true"],
            {"jobsets.jobset.x-k8s.io": ["get", "create", "delete"], "workloads.kueue.x-k8s.io": ["list"]},
        ),
        (["--set", "retraining.engines=null"], {}),
    ],
)
def test_rbac_grants_exactly_the_verbs_of_the_enabled_engines(
    values: list[str], expected: dict[str, list[str]]
) -> None:
    assert engine_rules(*values) == expected
    unknown = helm(
        "template",
        "x",
        str(CHART),
        "--kube-version",
        KUBE_VERSION,
        "--set",
        "retraining.engines={RayJob}",
        check=False,
    )
    assert unknown.returncode != 0 and "retraining/engines" in unknown.stderr


@pytest.mark.parametrize("values", ["default", "full"])
def test_every_rendered_manifest_is_accepted_by_the_api_server(
    cluster: Cluster, namespace: str, monitoring_crds: None, values: str
) -> None:
    extra = ["-f", str(FULL_VALUES)] if values == "full" else []
    docs = render(namespace, *extra)
    for watched in yaml.safe_load(FULL_VALUES.read_text())["watchNamespaces"] if values == "full" else []:
        manifest = cluster.kubectl("create", "namespace", watched, "--dry-run=client", "-o", "yaml").stdout
        cluster.kubectl("apply", "-f", "-", input=manifest)
    text = yaml.safe_dump_all(docs)
    result = cluster.kubectl(
        "apply", "--dry-run=server", "-f", "-", input=text, check=False
    )  # namespaces set
    assert result.returncode == 0, result.stderr
    accepted = [line for line in result.stdout.splitlines() if "(server dry run)" in line]
    assert len(accepted) == len(docs), result.stdout
    kinds = {doc["kind"] for doc in docs}
    if values == "full":
        assert {
            "ServiceMonitor",
            "PrometheusRule",
            "NetworkPolicy",
            "ConfigMap",
            "Role",
            "KopfPeering",
        } <= kinds
    else:
        assert {"Deployment", "ClusterRole", "ClusterKopfPeering", "PodDisruptionBudget"} <= kinds


def peering_state(logs: str) -> str:
    """'acting' or 'paused' from a replica's last peering message (a replica starts paused)."""
    state = "paused"
    for line in logs.splitlines():
        if "Resuming operations" in line:
            state = "acting"
        elif "Pausing operations" in line or "Pausing all operators" in line:
            state = "paused"
    return state


def sa_kubeconfig(cluster: Cluster, namespace: str, account: str, path: Path) -> Path:
    """A kubeconfig that is the chart's ServiceAccount and nothing more."""
    token = cluster.kubectl("create", "token", account, "-n", namespace, "--duration=1h").stdout.strip()
    admin = yaml.safe_load(KUBECONFIG.read_text())
    server = admin["clusters"][0]["cluster"]
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "local", "cluster": server}],
                "users": [{"name": account, "user": {"token": token}}],
                "contexts": [{"name": "sa", "context": {"cluster": "local", "user": account}}],
                "current-context": "sa",
            }
        )
    )
    return path


def test_install_into_a_restricted_namespace_and_reconcile_with_the_charts_rbac(
    cluster: Cluster, namespace: str, monitoring_crds: None, tmp_path: Path
) -> None:
    cluster.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    # The namespace really enforces: a privileged pod is refused.
    privileged = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "privileged"},
        "spec": {"containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": True}}]},
    }
    refused = cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(privileged), check=False)
    assert refused.returncode != 0 and "violates PodSecurity" in refused.stderr
    apps = f"{namespace[:50]}-apps"
    cluster.kubectl("create", "namespace", apps)
    try:
        helm(
            "install",
            "llmops",
            str(CHART),
            "-n",
            namespace,
            "--set",
            f"watchNamespaces={{{apps}}}",
            "--wait",
            "--timeout",
            "180s",
        )
        deployment = cluster.get("deployment", "llmops-llmops-operator", "-n", namespace)
        assert deployment["status"].get("readyReplicas") == 2, deployment["status"]
        pods = cluster.get("pods", "-n", namespace, "-l", "app.kubernetes.io/instance=llmops")["items"]
        assert len(pods) == 2 and all(p["status"]["phase"] == "Running" for p in pods)

        # kwok runs no containers: the two replicas run here, as the chart's ServiceAccount, peered.
        config = sa_kubeconfig(cluster, namespace, "llmops-llmops-operator", tmp_path / "sa-kubeconfig")
        env = {"KUBECONFIG": str(config), "LLMOPS_PEERING": "llmops-llmops-operator"}
        replicas = [OperatorProcess(apps, tmp_path / f"operator-{i}.log", env=env) for i in (0, 1)]
        for replica in replicas:
            replica.start()
        try:
            # Exactly one acts; the other pauses in its favour (kopf pauses all peers of equal
            # priority, so the replicas draw different ones). The last word of each says which.
            def acting() -> list[OperatorProcess]:
                return [r for r in replicas if peering_state(r.logs()) == "acting"]

            wait_for(lambda: len(acting()) == 1, timeout=60, what="one replica acting")
            time.sleep(3)
            assert len(acting()) == 1, [r.logs()[-2000:] for r in replicas]
            leader = acting()[0]
            standby = next(r for r in replicas if r is not leader)

            def handled(replica: OperatorProcess) -> int:
                """Lines of kopf's handlers and of LLMDeployment passes (their own queue)."""
                logs = replica.logs()
                return logs.count("kopf.objects") + logs.count(" reconciled")

            handled_before = handled(standby)
            for path in sorted(SAMPLES.glob("*.yaml")):
                sample = yaml.safe_load(path.read_text())
                if sample["metadata"]["name"] == "llama-70b":  # exercises the ServiceMonitor rules too
                    sample["spec"]["monitoring"] = {"serviceMonitor": {"enabled": True}}
                cluster.apply(sample, apps)

            def children_made() -> bool:
                obj = cluster.get("llmdeployment", "llama-70b", "-n", apps)
                conditions = {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}
                return conditions.get("ServiceMonitorReady", {}).get("status") == "True"

            # No storage provisioner here, so the model cache stays Pending and the pod unscheduled
            # (status says so); what matters is that every child was written under the chart's RBAC.
            wait_for(children_made, timeout=90, what="llama-70b's children under the chart's RBAC")
            for kind in ("deployment", "service", "servicemonitor"):
                child = cluster.get(kind, "llama-70b", "-n", apps)
                assert child["metadata"]["ownerReferences"][0]["kind"] == "LLMDeployment", kind
            cache = cluster.get("persistentvolumeclaim", "llama-70b-model-cache", "-n", apps)
            assert cache["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "llmops-operator"
            for kind in ("llmdeployment", "canaryrollout", "driftmonitor"):
                for obj in cluster.get(kind, "-n", apps)["items"]:
                    wait_for(
                        lambda k=kind, n=obj["metadata"]["name"]: (
                            cluster.get(k, n, "-n", apps).get("status") or {}
                        ).get("observedGeneration"),
                        timeout=60,
                        what=f"{kind}/{obj['metadata']['name']} observed",
                    )
            assert handled(standby) == handled_before, "the standby handled objects"
            # The leader dies without a word (SIGKILL, a lost node): the standby takes over once the
            # leader's peering entry expires, within its lifetime (20 s) of the last keepalive.
            killed = time.monotonic()
            leader.kill()
            wait_for(
                lambda: peering_state(standby.logs()) == "acting", timeout=45, what="the standby taking over"
            )
            print(f"takeover {time.monotonic() - killed:.1f}s after SIGKILL")
            late = yaml.safe_load((SAMPLES / "llmdeployment-llama-8b.yaml").read_text())
            late["metadata"]["name"] = "llama-8b-late"
            late["spec"]["model"] = {"uri": "hf://meta-llama/Llama-3.1-8B-Instruct"}
            cluster.apply(late, apps)
            wait_for(
                lambda: (cluster.get("llmdeployment", "llama-8b-late", "-n", apps).get("status") or {}).get(
                    "observedGeneration"
                ),
                timeout=60,
                what="the standby reconciling a new object",
            )
        finally:
            for replica in replicas:
                replica.stop()
        for replica in replicas:
            logs = replica.logs()
            assert "Forbidden" not in logs and " 403" not in logs, logs[-3000:]
            assert "Traceback" not in logs, logs[-3000:]
    finally:
        helm("uninstall", "llmops", "-n", namespace, "--wait", check=False)
        cluster.kubectl("delete", "namespace", apps, "--wait=false", check=False)
        release_finalizers(cluster, apps)


def test_kustomize_manifests_are_the_charts_and_accepted_by_the_api_server(cluster: Cluster) -> None:
    check = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "render_manifests.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr
    for directory in ("base", "overlays/namespaced"):
        built = cluster.kubectl("kustomize", str(ROOT / "manifests" / directory)).stdout
        docs = [doc for doc in yaml.safe_load_all(built) if doc]
        # A dry run cannot put objects into a namespace it only pretends to create.
        namespaces = yaml.safe_dump_all([doc for doc in docs if doc["kind"] == "Namespace"])
        cluster.kubectl("apply", "--server-side", "-f", "-", input=namespaces)
        result = cluster.kubectl(
            "apply", "--server-side", "--dry-run=server", "-f", "-", input=built, check=False
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.count("(server dry run)") == len(docs), result.stdout
        kinds = {doc["kind"] for doc in docs}
        assert {"CustomResourceDefinition", "Deployment", "ServiceAccount", "Namespace"} <= kinds
        assert ("Role" in kinds) == (directory != "base")


def test_argocd_manifests_are_accepted_by_the_api_server(cluster: Cluster) -> None:
    """The Applications against Argo CD's own CRD, and the argocd-cm health snippet."""
    crd = ARGOCD_CRDS / "applications.yaml"
    cluster.kubectl("apply", "--server-side", "-f", str(crd))
    try:
        wait_for(
            lambda: (
                cluster.kubectl(
                    "wait", "--for=condition=Established", "crd/applications.argoproj.io", check=False
                ).returncode
                == 0
            ),
            timeout=30,
            what="the Application CRD",
        )
        manifest = cluster.kubectl("create", "namespace", "argocd", "--dry-run=client", "-o", "yaml").stdout
        cluster.kubectl("apply", "-f", "-", input=manifest)
        for path in sorted((ROOT / "manifests" / "argocd").glob("*.yaml")):
            result = cluster.kubectl(
                "apply", "--server-side", "--dry-run=server", "-f", str(path), check=False
            )
            assert result.returncode == 0, (path.name, result.stderr)
            assert "(server dry run)" in result.stdout, path.name
    finally:
        cluster.kubectl("delete", "--wait", "-f", str(crd), check=False)


def test_alerts_pass_promtool_and_each_has_a_unit_test() -> None:
    files = CHART / "files"
    check = subprocess.run(
        [str(PROMTOOL), "check", "rules", "prometheus-rules.yaml"], cwd=files, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    tested = subprocess.run(
        [str(PROMTOOL), "test", "rules", "prometheus-rules.test.yaml"],
        cwd=files,
        capture_output=True,
        text=True,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    alerts = {
        rule["alert"]
        for group in yaml.safe_load((files / "prometheus-rules.yaml").read_text())["groups"]
        for rule in group["rules"]
    }
    cases = yaml.safe_load((files / "prometheus-rules.test.yaml").read_text())["tests"]
    covered = {
        check["alertname"] for case in cases for check in case["alert_rule_test"] if check["exp_alerts"]
    }
    assert covered == alerts


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    dashboard = json.loads((CHART / "files" / "dashboard.json").read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    assert len(expressions) >= 12
    prometheus = PrometheusServer(tmp_path / "prometheus", {"global": {"scrape_interval": "15s"}})
    prometheus.start()
    try:
        for expr in expressions:
            query = expr.replace("$llmdeployment", ".*")
            url = f"{prometheus.url}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
            with urllib.request.urlopen(url, timeout=10) as answer:
                assert json.load(answer)["status"] == "success", expr
    finally:
        prometheus.stop()
