"""The evaluation Job a rollout creates: the operator's own image running ``llmops-operator
evaluate --run-id RUN``, owned by the rollout. Everything the evaluator needs (the sampled
prompts, the scorers, the endpoints) is in the MLflow run, so the Job needs no Kubernetes API
access; a judge's API key reaches it only as an env var from the Secret the spec names, and the
MLflow credentials as the canary LLMDeployment's own Secrets (``credentials.mlflowSecret`` and
``s3Secret``, the ones its model download uses), by reference."""

from __future__ import annotations

import hashlib
from typing import Any

from .. import API_VERSION, FIELD_MANAGER
from ..api.evaluation import EvaluationSpec
from ..api.llmdeployment import CredentialsSpec
from ..names import EVALUATION_OF_LABEL, MANAGED_BY_LABEL, NAME_LABEL
from ..rendering.llmdeployment import registry_env_from, restricted_security_context

SERVICE_PORT = 8000  # the LLMDeployment Service's port


def judge_key_env(scorer: str) -> str:
    """The env var holding an llmJudge scorer's API key."""
    return "LLMOPS_JUDGE_API_KEY_" + scorer.upper().replace("-", "_")


def service_url(name: str, namespace: str) -> str:
    return f"http://{name}.{namespace}.svc:{SERVICE_PORT}"


def evaluation_key(uid: str, handled_request: str, attempt: int) -> str:
    """One evaluation: a rollout, the retry it belongs to, and its attempt (a resume after an
    inconclusive one is a new attempt)."""
    return hashlib.sha256(f"{uid}/{handled_request}/{attempt}".encode()).hexdigest()[:10]


def job_name(rollout: str, key: str) -> str:
    return f"{rollout[:46].rstrip('-')}-eval-{key}"


def evaluation_job(
    rollout: dict[str, Any],
    spec: EvaluationSpec,
    name: str,
    run_id: str,
    image: str,
    tracking_uri: str,
    credentials: CredentialsSpec | None,
) -> dict[str, Any]:
    meta = rollout["metadata"]
    labels = {
        NAME_LABEL: "evaluation",
        MANAGED_BY_LABEL: FIELD_MANAGER,
        EVALUATION_OF_LABEL: meta["name"],
    }
    env: list[dict[str, Any]] = [{"name": "MLFLOW_TRACKING_URI", "value": tracking_uri}]
    for scorer in spec.scorers:
        secret = scorer.judge.api_key_secret if scorer.judge is not None else None
        if secret is not None:
            reference = {"name": secret.name, "key": secret.key}
            env.append({"name": judge_key_env(scorer.name), "valueFrom": {"secretKeyRef": reference}})
    container: dict[str, Any] = {
        "name": "evaluate",
        "image": image,
        "command": ["llmops-operator"],
        "args": ["evaluate", "--run-id", run_id],
        "env": env,
        "securityContext": restricted_security_context(),
        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}},
    }
    env_from = registry_env_from(credentials)
    if env_from:
        container["envFrom"] = env_from
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": "CanaryRollout",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "backoffLimit": 1,
            "ttlSecondsAfterFinished": 86400,
            "template": {
                "metadata": {"labels": labels},
                "spec": {"restartPolicy": "Never", "containers": [container]},
            },
        },
    }
