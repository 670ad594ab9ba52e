"""The local control plane behaves like a real GPU cluster for what the operator relies on."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path
from typing import Any

import yaml

from .conftest import ROOT, VERSIONS, Cluster, wait_for

GPU_TOLERATION = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def deployment(name: str, gpus: int, replicas: int = 1) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": "example/server:1"}
    if gpus:
        container["resources"] = {"limits": {"nvidia.com/gpu": str(gpus)}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [container], "tolerations": GPU_TOLERATION},
            },
        },
    }


def test_server_version_is_stamped(cluster: Cluster) -> None:
    version = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == VERSIONS["KUBERNETES_VERSION"]
    assert version["clientVersion"]["gitVersion"] == VERSIONS["KUBERNETES_VERSION"]


def test_gpu_and_cpu_nodes_are_ready(cluster: Cluster) -> None:
    nodes = {n["metadata"]["name"]: n for n in cluster.get("nodes")["items"]}
    gpu_nodes = [n for n in nodes.values() if "nvidia.com/gpu" in n["status"]["allocatable"]]
    cpu_nodes = [n for n in nodes.values() if "nvidia.com/gpu" not in n["status"]["allocatable"]]
    assert len(gpu_nodes) >= 2 and len(cpu_nodes) >= 1
    for node in gpu_nodes:
        assert node["status"]["allocatable"]["nvidia.com/gpu"] == "8"
        assert node["metadata"]["labels"]["nvidia.com/gpu.product"].startswith("NVIDIA-H100")
    for node in nodes.values():
        ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "True", node["metadata"]["name"]


def test_gpu_deployment_pods_run_ready_on_gpu_nodes(cluster: Cluster, namespace: str) -> None:
    cluster.apply(deployment("gpu-app", gpus=1, replicas=2), namespace)
    cluster.kubectl("rollout", "status", "deployment/gpu-app", "-n", namespace, "--timeout=90s")
    pods = cluster.get("pods", "-n", namespace, "-l", "app=gpu-app")["items"]
    assert len(pods) == 2
    for pod in pods:
        assert pod["status"]["phase"] == "Running"
        assert pod["spec"]["nodeName"].startswith("gpu-node-")


def test_pod_asking_more_gpus_than_a_node_has_stays_pending(cluster: Cluster, namespace: str) -> None:
    cluster.apply(deployment("too-big", gpus=16), namespace)

    def unschedulable_event() -> str:
        events = cluster.get("events", "-n", namespace, "--field-selector", "reason=FailedScheduling")[
            "items"
        ]
        return " ".join(e["message"] for e in events)

    message = wait_for(unschedulable_event, timeout=60, what="a FailedScheduling event")
    assert "nvidia.com/gpu" in message
    pods = cluster.get("pods", "-n", namespace, "-l", "app=too-big")["items"]
    assert [p["status"]["phase"] for p in pods] == ["Pending"]


def test_job_pods_run_to_completion(cluster: Cluster, namespace: str) -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "train"},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "train", "image": "example/train:1"}],
                }
            },
        },
    }
    cluster.apply(job, namespace)
    cluster.kubectl("wait", "--for=condition=Complete", "job/train", "-n", namespace, "--timeout=90s")
    assert cluster.get("job", "train", "-n", namespace)["status"]["succeeded"] == 1


def test_owner_reference_garbage_collection(cluster: Cluster, namespace: str) -> None:
    cluster.apply(deployment("collected", gpus=0), namespace)
    wait_for(lambda: cluster.get("rs", "-n", namespace, "-l", "app=collected")["items"], what="a ReplicaSet")
    cluster.kubectl("delete", "deployment", "collected", "-n", namespace, "--cascade=background")
    wait_for(
        lambda: not cluster.get("rs,pods", "-n", namespace, "-l", "app=collected")["items"],
        timeout=60,
        what="the ReplicaSet and Pods to be collected",
    )


def token_cluster(cluster: Cluster, token: str, directory: Path) -> Cluster:
    """The same API server reached with a bearer token only, as a pod would reach it."""
    config = yaml.safe_load(cluster.kubectl("config", "view", "--raw", "--minify").stdout)
    config["users"][0]["user"] = {"token": token}
    path = directory / "token-kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return Cluster(path)


def test_rbac_is_enforced_and_service_account_tokens_authenticate(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    subject = f"system:serviceaccount:{namespace}:default"
    denied = cluster.kubectl(
        "auth", "can-i", "list", "secrets", "-n", namespace, "--as", subject, check=False
    )
    assert denied.stdout.strip() == "no"
    cluster.kubectl("create", "role", "reader", "--verb=list", "--resource=pods", "-n", namespace)
    cluster.kubectl(
        "create",
        "rolebinding",
        "reader",
        "--role=reader",
        f"--serviceaccount={namespace}:default",
        "-n",
        namespace,
    )
    token = cluster.kubectl("create", "token", "default", "-n", namespace).stdout.strip()
    as_service_account = token_cluster(cluster, token, tmp_path)
    who = as_service_account.kubectl("auth", "whoami", "-o", "json")
    assert json.loads(who.stdout)["status"]["userInfo"]["username"] == subject
    allowed = as_service_account.kubectl("get", "pods", "-n", namespace, check=False)
    assert allowed.returncode == 0, allowed.stderr
    forbidden = as_service_account.kubectl("get", "secrets", "-n", namespace, check=False)
    assert "Forbidden" in forbidden.stderr


PROCESS_NAME = Path(f"/proc/{os.getpid()}/comm").read_text().strip()


def test_a_taken_port_is_named_with_its_holder(cluster: Cluster, tmp_path: Path) -> None:
    """A second cluster whose API server port is held says which port, which variable and by what."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = subprocess.run(
            [str(ROOT / "tools" / "cluster.sh"), "up"],
            env={
                **os.environ,
                "LLMOPS_CLUSTER_DIR": str(tmp_path / "second"),
                "LLMOPS_APISERVER_PORT": str(port),
            },
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert result.returncode == 1, result.stderr
    # Our own API server's port is taken by this test; the running cluster holds etcd's and kwok's.
    said = [line for line in result.stderr.splitlines() if f"port {port} " in line]
    assert said == [
        f"[cluster] port {port} (LLMOPS_APISERVER_PORT) is taken by {PROCESS_NAME} (pid {os.getpid()})"
    ]
    assert "(LLMOPS_ETCD_PORT) is taken by etcd (pid" in result.stderr
    assert not (tmp_path / "second" / "kubeconfig").exists()
