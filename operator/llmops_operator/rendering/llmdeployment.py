"""LLMDeployment -> Deployment, Service, PodDisruptionBudget, HPA, PVC and ServiceMonitor.

Everything here is a pure function of the spec and the resolved model, so it is tested with golden
files and no cluster. The choices that make vLLM survive on GPUs live here:
- a startupProbe whose budget is ``startupTimeout`` so liveness never kills a loading pod;
- a memory-backed ``/dev/shm`` sized for tensor parallelism (NCCL needs it);
- ``maxSurge: 0`` by default, so a rollout never needs a spare GPU;
- the nvidia.com/gpu toleration and a node affinity on the GPU product.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from .. import API_VERSION, FIELD_MANAGER
from ..api.llmdeployment import CredentialsSpec, LLMDeploymentSpec, ResolvedModel
from ..durations import parse_duration
from ..model_uris import source_kind
from ..names import (
    APP_VERSION_LABEL,
    COMPONENT_LABEL,
    GPU_PRODUCT_LABEL,
    INSTANCE_LABEL,
    MANAGED_BY_LABEL,
    MODEL_VERSION_LABEL,
    NAME_LABEL,
    OWNER_LABEL,
    PART_OF_LABEL,
    SCRAPE_ANNOTATION,
    SCRAPE_PATH_ANNOTATION,
    SCRAPE_PORT_ANNOTATION,
    SERVES_LABEL,
)

SERVING_PORT = 8000
GPU_RESOURCE = "nvidia.com/gpu"
MODELS_MOUNT = "/models"
CACHE_MOUNT = f"{MODELS_MOUNT}/cache"
FETCH_MOUNT = f"{MODELS_MOUNT}/fetched"
STARTUP_PERIOD_SECONDS = 10
SHM_GIB_PER_GPU = 2


@dataclass(frozen=True)
class Owner:
    """The LLMDeployment the children belong to."""

    name: str
    namespace: str
    uid: str
    serves: str = ""  # the Service whose traffic the pods take; empty means their own

    @property
    def traffic_group(self) -> str:
        return self.serves or self.name


def label_value(text: str) -> str:
    """A string squeezed into a valid label value (63 chars, alphanumerics at both ends)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "-", text)[:63]
    return cleaned.strip("-_.")


def selector_labels(owner: Owner) -> dict[str, str]:
    return {OWNER_LABEL: owner.name}


def common_labels(owner: Owner, resolved: ResolvedModel) -> dict[str, str]:
    labels = {
        NAME_LABEL: "vllm",
        INSTANCE_LABEL: owner.name,
        COMPONENT_LABEL: "inference-server",
        PART_OF_LABEL: "llmops",
        MANAGED_BY_LABEL: FIELD_MANAGER,
        **selector_labels(owner),
    }
    if resolved.version:
        labels[MODEL_VERSION_LABEL] = label_value(resolved.version)
        labels[APP_VERSION_LABEL] = label_value(resolved.version)
    return labels


def owner_reference(owner: Owner) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "LLMDeployment",
        "name": owner.name,
        "uid": owner.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def metadata(name: str, owner: Owner, labels: dict[str, str], owned: bool = True) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": owner.namespace, "labels": labels}
    if owned:
        meta["ownerReferences"] = [owner_reference(owner)]
    return meta


def cache_claim_name(owner: Owner) -> str:
    return f"{owner.name}-model-cache"


def endpoint_url(owner: Owner) -> str:
    return f"http://{owner.name}.{owner.namespace}.svc.cluster.local:{SERVING_PORT}/v1"


def model_argument(spec: LLMDeploymentSpec, resolved: ResolvedModel) -> tuple[str, list[str]]:
    """The positional model for ``vllm serve`` and any flags its storage needs."""
    location = resolved.source or spec.model.uri
    kind = source_kind(location)
    if kind == "hf":
        flags = ["--revision", spec.model.revision] if spec.model.revision else []
        return location.removeprefix("hf://"), flags
    if kind == "pvc":
        claim, _, path = location.removeprefix("pvc://").partition("/")
        return f"{MODELS_MOUNT}/pvc/{claim}/{path}".rstrip("/"), []
    if kind == "s3":
        return location, ["--load-format", "runai_streamer"]
    return FETCH_MOUNT, []


def vllm_args(spec: LLMDeploymentSpec, resolved: ResolvedModel, owner: Owner) -> list[str]:
    """Clients ask for the served name, which defaults to the LLMDeployment's name: it stays the
    same across model versions, so a canary and its stable answer to the same name."""
    model, storage_flags = model_argument(spec, resolved)
    engine = spec.engine
    args = [
        model,
        "--host=0.0.0.0",
        f"--port={SERVING_PORT}",
        f"--served-model-name={spec.model.served_model_name or owner.name}",
        f"--tensor-parallel-size={engine.tensor_parallel_size}",
        f"--pipeline-parallel-size={engine.pipeline_parallel_size}",
        f"--gpu-memory-utilization={engine.gpu_memory_utilization}",
    ]
    if engine.max_model_len is not None:
        args.append(f"--max-model-len={engine.max_model_len}")
    if engine.dtype is not None:
        args.append(f"--dtype={engine.dtype}")
    if engine.quantization is not None:
        args.append(f"--quantization={engine.quantization}")
    return [*args, *storage_flags, *engine.extra_args]


def shm_size(spec: LLMDeploymentSpec) -> str:
    return f"{max(1, SHM_GIB_PER_GPU * spec.gpus_per_replica())}Gi"


def container_env(spec: LLMDeploymentSpec) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = []
    if spec.cache is not None:
        env.append({"name": "HF_HOME", "value": f"{CACHE_MOUNT}/huggingface"})
    credentials = spec.credentials
    if credentials is not None and credentials.hugging_face_token is not None:
        ref = credentials.hugging_face_token
        env.append({"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}})
    env.extend(var.model_dump(exclude_none=True) for var in spec.engine.env)
    return env


def resources(spec: LLMDeploymentSpec) -> dict[str, Any]:
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if spec.resources.cpu is not None:
        requests["cpu"] = spec.resources.cpu
    if spec.resources.memory is not None:
        requests["memory"] = limits["memory"] = spec.resources.memory
    gpus = spec.gpus_per_replica()
    if gpus:
        requests[GPU_RESOURCE] = limits[GPU_RESOURCE] = str(gpus)
    out: dict[str, Any] = {}
    if requests:
        out["requests"] = requests
    if limits:
        out["limits"] = limits
    return out


def probes(spec: LLMDeploymentSpec) -> dict[str, Any]:
    """Startup gets the whole load budget; liveness only starts after it and is lenient."""

    def health(period: int, failures: int) -> dict[str, Any]:
        return {
            "httpGet": {"path": "/health", "port": "http"},
            "periodSeconds": period,
            "timeoutSeconds": 5,
            "failureThreshold": failures,
        }

    budget = parse_duration(spec.startup_timeout)
    return {
        "startupProbe": health(STARTUP_PERIOD_SECONDS, max(1, math.ceil(budget / STARTUP_PERIOD_SECONDS))),
        "readinessProbe": health(5, 3),
        "livenessProbe": health(10, 6),
    }


def affinity(spec: LLMDeploymentSpec) -> dict[str, Any] | None:
    """The user's affinity with the GPU product required in every node selector term."""
    result: dict[str, Any] = dict(spec.affinity or {})
    product = spec.resources.gpu_product
    if product is None:
        return result or None
    requirement = {"key": GPU_PRODUCT_LABEL, "operator": "In", "values": [product]}
    node_affinity = dict(result.get("nodeAffinity") or {})
    required = dict(node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = list(required.get("nodeSelectorTerms") or [{}])
    required["nodeSelectorTerms"] = [
        {**term, "matchExpressions": [*(term.get("matchExpressions") or []), requirement]} for term in terms
    ]
    node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = required
    result["nodeAffinity"] = node_affinity
    return result


def tolerations(spec: LLMDeploymentSpec) -> list[dict[str, Any]]:
    tolerations = list(spec.tolerations)
    if spec.gpus_per_replica() and not any(t.get("key") == GPU_RESOURCE for t in tolerations):
        tolerations.append({"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"})
    return tolerations


def volumes_and_mounts(
    spec: LLMDeploymentSpec, resolved: ResolvedModel, owner: Owner
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    volumes: list[dict[str, Any]] = [
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": shm_size(spec)}},
    ]
    mounts: list[dict[str, Any]] = [{"name": "dshm", "mountPath": "/dev/shm"}]
    if spec.cache is not None:
        volumes.append(
            {"name": "model-cache", "persistentVolumeClaim": {"claimName": cache_claim_name(owner)}}
        )
        mounts.append({"name": "model-cache", "mountPath": CACHE_MOUNT})
    location = resolved.source or spec.model.uri
    kind = source_kind(location)
    if kind == "pvc":
        claim = location.removeprefix("pvc://").partition("/")[0]
        volumes.append({"name": "model-pvc", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}})
        mounts.append({"name": "model-pvc", "mountPath": f"{MODELS_MOUNT}/pvc/{claim}", "readOnly": True})
    elif kind == "artifact":
        volumes.append({"name": "model-fetched", "emptyDir": {}})
        mounts.append({"name": "model-fetched", "mountPath": FETCH_MOUNT})
    return volumes, mounts


def fetch_init_container(
    spec: LLMDeploymentSpec, resolved: ResolvedModel, fetcher_image: str, tracking_uri: str
) -> dict[str, Any] | None:
    """Registry artifacts vLLM cannot read itself are downloaded by MLflow before it starts."""
    if source_kind(resolved.source or spec.model.uri) != "artifact":
        return None
    container: dict[str, Any] = {
        "name": "model-fetch",
        "image": fetcher_image,
        "command": ["mlflow", "artifacts", "download"],
        "args": [f"--artifact-uri={resolved.source}", f"--dst-path={FETCH_MOUNT}"],
        "env": [{"name": "MLFLOW_TRACKING_URI", "value": tracking_uri}],
        "volumeMounts": [{"name": "model-fetched", "mountPath": FETCH_MOUNT}],
        "securityContext": restricted_security_context(),
    }
    env_from = registry_env_from(spec.credentials)
    if env_from:
        container["envFrom"] = env_from
    return container


def registry_env_from(credentials: CredentialsSpec | None) -> list[dict[str, Any]]:
    """MLflow's credentials and those of its artifact store, as whole Secrets by reference: what a
    container that talks to the registry for this model needs (which keys each holds is the
    user's: MLFLOW_TRACKING_USERNAME / PASSWORD or TOKEN, AWS_*)."""
    names = [credentials.mlflow_secret, credentials.s3_secret] if credentials is not None else []
    return [{"secretRef": {"name": name}} for name in names if name]


def restricted_security_context() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def deployment(
    spec: LLMDeploymentSpec,
    resolved: ResolvedModel,
    owner: Owner,
    fetcher_image: str,
    tracking_uri: str,
    replicas_override: int | None = None,
) -> dict[str, Any]:
    labels = common_labels(owner, resolved)
    volumes, mounts = volumes_and_mounts(spec, resolved, owner)
    container: dict[str, Any] = {
        "name": "vllm",
        "image": spec.engine.image,
        "command": ["vllm", "serve"],
        "args": vllm_args(spec, resolved, owner),
        "ports": [{"name": "http", "containerPort": SERVING_PORT, "protocol": "TCP"}],
        # vLLM writes no termination file: its last log lines (an unknown flag's argparse error,
        # a load failure's traceback) become the termination message that Degraded quotes.
        "terminationMessagePolicy": "FallbackToLogsOnError",
        **probes(spec),
        "volumeMounts": mounts,
        "securityContext": restricted_security_context(),
    }
    if env := container_env(spec):
        container["env"] = env
    if spec.credentials is not None and spec.credentials.s3_secret:
        container["envFrom"] = [{"secretRef": {"name": spec.credentials.s3_secret}}]
    if res := resources(spec):
        container["resources"] = res
    pod_spec: dict[str, Any] = {
        "containers": [container],
        "volumes": volumes,
        "terminationGracePeriodSeconds": 60,
        "enableServiceLinks": False,
    }
    if init := fetch_init_container(spec, resolved, fetcher_image, tracking_uri):
        pod_spec["initContainers"] = [init]
    if node_affinity := affinity(spec):
        pod_spec["affinity"] = node_affinity
    if tol := tolerations(spec):
        pod_spec["tolerations"] = tol
    if spec.node_selector:
        pod_spec["nodeSelector"] = dict(spec.node_selector)
    if spec.priority_class_name:
        pod_spec["priorityClassName"] = spec.priority_class_name
    deployment_spec: dict[str, Any] = {
        "selector": {"matchLabels": selector_labels(owner)},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {
                "maxSurge": spec.rollout.max_surge,
                "maxUnavailable": spec.rollout.max_unavailable,
            },
        },
        # Kubernetes must not call a rollout stuck while a model is still loading.
        "progressDeadlineSeconds": int(parse_duration(spec.startup_timeout)) + 600,
        "template": {"metadata": {"labels": {**labels, SERVES_LABEL: owner.traffic_group}}, "spec": pod_spec},
    }
    if replicas_override is not None:  # a CanaryRollout shifting traffic by replica ratio
        deployment_spec["replicas"] = replicas_override
    elif spec.autoscaling is None:  # with an HPA the replica count is the HPA's, not ours
        deployment_spec["replicas"] = spec.replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(owner.name, owner, labels),
        "spec": deployment_spec,
    }


def service(resolved: ResolvedModel, owner: Owner) -> dict[str, Any]:
    meta = metadata(owner.name, owner, common_labels(owner, resolved))
    meta["annotations"] = {
        SCRAPE_ANNOTATION: "true",
        SCRAPE_PORT_ANNOTATION: str(SERVING_PORT),
        SCRAPE_PATH_ANNOTATION: "/metrics",
    }
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "selector": {SERVES_LABEL: owner.name},
            "ports": [{"name": "http", "port": SERVING_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def pod_disruption_budget(
    spec: LLMDeploymentSpec, resolved: ResolvedModel, owner: Owner
) -> dict[str, Any] | None:
    floor = spec.autoscaling.min_replicas if spec.autoscaling is not None else spec.replicas
    if floor <= 1:
        return None
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(owner.name, owner, common_labels(owner, resolved)),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector_labels(owner)}},
    }


def horizontal_pod_autoscaler(
    spec: LLMDeploymentSpec, resolved: ResolvedModel, owner: Owner
) -> dict[str, Any] | None:
    """Needs a custom-metrics adapter serving the vLLM gauge as a Pods metric (``:`` becomes ``_``)."""
    scaling = spec.autoscaling
    if scaling is None:
        return None
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(owner.name, owner, common_labels(owner, resolved)),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": owner.name},
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": [
                {
                    "type": "Pods",
                    "pods": {
                        "metric": {"name": scaling.metric.replace(":", "_")},
                        "target": {"type": "AverageValue", "averageValue": scaling.target},
                    },
                }
            ],
        },
    }


def cache_claim(spec: LLMDeploymentSpec, owner: Owner) -> dict[str, Any] | None:
    """The model cache; without an owner reference when it must outlive the LLMDeployment."""
    cache = spec.cache
    if cache is None:
        return None
    labels = {**common_labels(owner, ResolvedModel()), COMPONENT_LABEL: "model-cache"}
    claim_spec: dict[str, Any] = {
        "accessModes": [cache.access_mode],
        "resources": {"requests": {"storage": cache.size}},
    }
    if cache.storage_class_name is not None:
        claim_spec["storageClassName"] = cache.storage_class_name
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata(cache_claim_name(owner), owner, labels, owned=not cache.retain_on_delete),
        "spec": claim_spec,
    }


def service_monitor(spec: LLMDeploymentSpec, resolved: ResolvedModel, owner: Owner) -> dict[str, Any] | None:
    monitor = spec.monitoring.service_monitor
    if not monitor.enabled:
        return None
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": metadata(owner.name, owner, common_labels(owner, resolved)),
        "spec": {
            "selector": {"matchLabels": selector_labels(owner)},
            "endpoints": [{"port": "http", "path": "/metrics", "interval": monitor.interval}],
            # Series carry the pod's LLMDeployment and model version (as llmops_dev_llmdeployment
            # and llmops_dev_model_version): what CanaryRollout queries tell canary and stable by.
            "podTargetLabels": [OWNER_LABEL, MODEL_VERSION_LABEL],
        },
    }


INFERENCE_POOL_API_VERSION = "inference.networking.k8s.io/v1"


def inference_pool(spec: LLMDeploymentSpec, resolved: ResolvedModel, owner: Owner) -> dict[str, Any] | None:
    """The InferencePool over this LLMDeployment's own pods (a canary's pool holds only the canary)."""
    pool = spec.inference_pool
    if pool is None:
        return None
    picker = pool.endpoint_picker_ref
    return {
        "apiVersion": INFERENCE_POOL_API_VERSION,
        "kind": "InferencePool",
        "metadata": metadata(owner.name, owner, common_labels(owner, resolved)),
        "spec": {
            "selector": {"matchLabels": selector_labels(owner)},
            "targetPorts": [{"number": SERVING_PORT}],
            "endpointPickerRef": {
                "name": picker.name,
                "port": {"number": picker.port},
                "failureMode": picker.failure_mode,
            },
        },
    }


def render(
    spec: LLMDeploymentSpec,
    resolved: ResolvedModel,
    owner: Owner,
    fetcher_image: str,
    tracking_uri: str,
    replicas_override: int | None = None,
) -> list[dict[str, Any]]:
    """Every child, in apply order (the claim before the pods that mount it)."""
    children = [
        cache_claim(spec, owner),
        deployment(spec, resolved, owner, fetcher_image, tracking_uri, replicas_override),
        service(resolved, owner),
        pod_disruption_budget(spec, resolved, owner),
        horizontal_pod_autoscaler(spec, resolved, owner),
        service_monitor(spec, resolved, owner),
        inference_pool(spec, resolved, owner),
    ]
    return [child for child in children if child is not None]
