"""Rendering an LLMDeployment: golden files for whole specs, and the rules that keep vLLM alive."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmops_operator.api.llmdeployment import LLMDeploymentSpec, ResolvedModel
from llmops_operator.rendering.llmdeployment import Owner, render

GOLDEN = Path(__file__).parent / "golden"
OWNER = Owner(name="llama", namespace="serving", uid="0d5e6a52-0000-4000-8000-000000000001")
FETCHER = "ghcr.io/mlflow/mlflow:v3.6.0"
TRACKING = "http://mlflow.mlflow.svc:5000"

CASES: dict[str, tuple[dict[str, Any], ResolvedModel]] = {
    "tp1-hf": (
        {
            "model": {
                "uri": "hf://meta-llama/Llama-3.1-8B-Instruct",
                "revision": "main",
                "servedModelName": "llama",
            },
            "resources": {"gpuProduct": "NVIDIA-H100-80GB-HBM3", "cpu": "8", "memory": "48Gi"},
            "credentials": {"huggingFaceToken": {"name": "hf", "key": "token"}},
        },
        ResolvedModel(
            uri="hf://meta-llama/Llama-3.1-8B-Instruct",
            version="main",
            source="hf://meta-llama/Llama-3.1-8B-Instruct",
        ),
    ),
    "tp2-s3-registry": (
        {
            "model": {"uri": "models:/llama@champion", "followAlias": True},
            "engine": {"tensorParallelSize": 2, "maxModelLen": 8192, "dtype": "bfloat16"},
            "credentials": {"s3Secret": "s3-creds"},
            "replicas": 2,
        },
        ResolvedModel(uri="models:/llama@champion", version="7", source="s3://models/llama/7"),
    ),
    "tp4-cache": (
        {
            "model": {"uri": "hf://meta-llama/Llama-3.1-70B-Instruct"},
            "engine": {"tensorParallelSize": 4, "extraArgs": ["--enable-prefix-caching"]},
            "resources": {"gpus": 4, "gpuProduct": "NVIDIA-H100-80GB-HBM3"},
            "cache": {"size": "400Gi", "accessMode": "ReadWriteMany", "retainOnDelete": False},
            "startupTimeout": "45m",
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}
                        ]
                    }
                }
            },
        },
        ResolvedModel(
            uri="hf://meta-llama/Llama-3.1-70B-Instruct", source="hf://meta-llama/Llama-3.1-70B-Instruct"
        ),
    ),
    "tp8-pp2-mlflow-artifact": (
        {
            "model": {"uri": "models:/llama-405b/3"},
            "engine": {"tensorParallelSize": 8, "pipelineParallelSize": 2, "quantization": "fp8"},
            "credentials": {"mlflowSecret": "mlflow-creds"},
            "monitoring": {"serviceMonitor": {"enabled": True}},
        },
        ResolvedModel(
            uri="models:/llama-405b/3", version="3", source="mlflow-artifacts:/1/abc/artifacts/model"
        ),
    ),
    "autoscaling-pvc-source": (
        {
            "model": {"uri": "pvc://models/llama-8b"},
            "autoscaling": {"minReplicas": 2, "maxReplicas": 6, "target": "5"},
            "rollout": {"maxSurge": 1, "maxUnavailable": 0},
        },
        ResolvedModel(uri="pvc://models/llama-8b", source="pvc://models/llama-8b"),
    ),
}


def rendered(case: str) -> list[dict[str, Any]]:
    spec, resolved = CASES[case]
    return render(LLMDeploymentSpec.model_validate(spec), resolved, OWNER, FETCHER, TRACKING)


@pytest.mark.parametrize("case", sorted(CASES))
def test_matches_golden_file(case: str) -> None:
    text = yaml.safe_dump_all(rendered(case), sort_keys=True)
    path = GOLDEN / f"llmdeployment-{case}.yaml"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.read_text() == text, f"rendering changed; review and regenerate with UPDATE_GOLDEN=1 ({path})"


def by_kind(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {obj["kind"]: obj for obj in objects}


def server(case: str) -> dict[str, Any]:
    container: dict[str, Any] = by_kind(rendered(case))["Deployment"]["spec"]["template"]["spec"][
        "containers"
    ][0]
    return container


@pytest.mark.parametrize(
    ("case", "gpus"),
    [("tp1-hf", 1), ("tp2-s3-registry", 2), ("tp4-cache", 4), ("tp8-pp2-mlflow-artifact", 16)],
)
def test_gpu_requests_default_to_tensor_times_pipeline(case: str, gpus: int) -> None:
    resources = server(case)["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == str(gpus)
    assert resources["requests"]["nvidia.com/gpu"] == str(gpus)
    pod = by_kind(rendered(case))["Deployment"]["spec"]["template"]["spec"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    shm = next(v for v in pod["volumes"] if v["name"] == "dshm")
    assert shm["emptyDir"] == {"medium": "Memory", "sizeLimit": f"{2 * gpus}Gi"}


def test_startup_probe_budget_covers_the_startup_timeout_and_liveness_waits() -> None:
    container = server("tp4-cache")
    startup = container["startupProbe"]
    assert startup["httpGet"] == {"path": "/health", "port": "http"}
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 45 * 60
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    deployment = by_kind(rendered("tp4-cache"))["Deployment"]
    assert deployment["spec"]["progressDeadlineSeconds"] > 45 * 60


def test_vllm_flags_come_from_the_spec() -> None:
    args = server("tp2-s3-registry")["args"]
    assert args[0] == "s3://models/llama/7"
    assert "--tensor-parallel-size=2" in args
    assert "--gpu-memory-utilization=0.90" in args
    assert "--max-model-len=8192" in args
    assert "--dtype=bfloat16" in args
    assert args[-2:] == ["--load-format", "runai_streamer"]
    assert server("tp1-hf")["args"][0] == "meta-llama/Llama-3.1-8B-Instruct"
    assert "--revision" in server("tp1-hf")["args"]


def test_the_default_image_is_the_vllm_the_real_tests_run_and_its_exit_message_is_kept() -> None:
    versions = dict(
        line.split("=", 1)
        for line in (Path(__file__).parents[2] / "tools" / "versions.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    container = server("tp1-hf")
    assert container["image"] == f"vllm/vllm-openai:v{versions['VLLM_CPU_VERSION']}"
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_default_rollout_needs_no_spare_gpu() -> None:
    strategy = by_kind(rendered("tp1-hf"))["Deployment"]["spec"]["strategy"]
    assert strategy["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}


def test_gpu_product_is_required_in_every_user_node_selector_term() -> None:
    pod = by_kind(rendered("tp4-cache"))["Deployment"]["spec"]["template"]["spec"]
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert len(terms) == 1
    keys = [expression["key"] for expression in terms[0]["matchExpressions"]]
    assert keys == ["zone", "nvidia.com/gpu.product"]


def test_registry_artifacts_are_fetched_by_an_init_container() -> None:
    pod = by_kind(rendered("tp8-pp2-mlflow-artifact"))["Deployment"]["spec"]["template"]["spec"]
    fetch = pod["initContainers"][0]
    assert "--artifact-uri=mlflow-artifacts:/1/abc/artifacts/model" in fetch["args"]
    assert fetch["envFrom"] == [{"secretRef": {"name": "mlflow-creds"}}]
    assert pod["containers"][0]["args"][0] == "/models/fetched"


def test_autoscaling_leaves_replicas_to_the_hpa_and_keeps_a_pdb() -> None:
    objects = by_kind(rendered("autoscaling-pvc-source"))
    assert "replicas" not in objects["Deployment"]["spec"]
    hpa = objects["HorizontalPodAutoscaler"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 6)
    assert hpa["metrics"][0]["pods"]["metric"]["name"] == "vllm_num_requests_waiting"
    assert objects["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1


def test_pdb_only_with_more_than_one_replica() -> None:
    assert "PodDisruptionBudget" not in by_kind(rendered("tp1-hf"))
    assert "PodDisruptionBudget" in by_kind(rendered("tp2-s3-registry"))


def test_cache_claim_owned_only_when_not_retained() -> None:
    claim = by_kind(rendered("tp4-cache"))["PersistentVolumeClaim"]
    assert claim["metadata"]["ownerReferences"][0]["uid"] == OWNER.uid
    spec, resolved = CASES["tp4-cache"]
    retained = {**spec, "cache": {"size": "400Gi"}}
    objects = by_kind(render(LLMDeploymentSpec.model_validate(retained), resolved, OWNER, FETCHER, TRACKING))
    assert "ownerReferences" not in objects["PersistentVolumeClaim"]["metadata"]
    assert server("tp4-cache")["env"][0] == {"name": "HF_HOME", "value": "/models/cache/huggingface"}


def test_every_owned_child_points_at_its_owner_and_carries_the_version() -> None:
    for obj in rendered("tp2-s3-registry"):
        assert obj["metadata"]["ownerReferences"][0]["controller"] is True
        assert obj["metadata"]["labels"]["llmops.dev/model-version"] == "7"
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "llmops-operator"
    selector = by_kind(rendered("tp2-s3-registry"))["Deployment"]["spec"]["selector"]["matchLabels"]
    assert selector == {"llmops.dev/llmdeployment": "llama"}  # no version: selectors are immutable


def test_an_inference_pool_selects_the_deployments_own_pods_and_references_the_picker() -> None:
    spec = LLMDeploymentSpec.model_validate(
        {
            "model": {"uri": "hf://org/model"},
            "inferencePool": {"endpointPickerRef": {"name": "llama-epp", "port": 9002}},
        }
    )
    children = render(spec, ResolvedModel(uri="hf://org/model", version="main"), OWNER, FETCHER, TRACKING)
    pool = next(child for child in children if child["kind"] == "InferencePool")
    deployment = next(child for child in children if child["kind"] == "Deployment")
    assert pool["apiVersion"] == "inference.networking.k8s.io/v1"
    assert pool["metadata"]["name"] == "llama"
    assert pool["metadata"]["ownerReferences"][0]["uid"] == OWNER.uid
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert pool["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pool["spec"]["targetPorts"] == [{"number": 8000}]
    assert pool["spec"]["endpointPickerRef"] == {
        "name": "llama-epp",
        "port": {"number": 9002},
        "failureMode": "FailClose",
    }
    without = LLMDeploymentSpec.model_validate({"model": {"uri": "hf://org/model"}})
    assert all(
        c["kind"] != "InferencePool" for c in render(without, ResolvedModel(), OWNER, FETCHER, TRACKING)
    )
