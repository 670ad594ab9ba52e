"""The evaluation stage of a CanaryRollout tick: the canary at 0% traffic, one MLflow run and
one Job per evaluation, and the run's verdict read back.

The evaluation's identity (``evaluation_key``) comes from the rollout's uid, its retry and its
attempt, so a restarted operator finds the same run (by tag) and the same Job (by name: a second
create is AlreadyExists) and never evaluates twice; the verdict lives in the run and in status.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from kubernetes.client import ApiException

from ..api.evaluation import EvaluationStatus, ScorerResult
from ..api.llmdeployment import CredentialsSpec
from ..evaluation.dataset import DatasetError, parse_records, sample, to_jsonl
from ..evaluation.job import evaluation_job, evaluation_key, job_name, service_url
from ..evaluation.runner import CONFIG_ARTIFACT, DATASET_ARTIFACT, VERDICT_ARTIFACT
from ..kube import api_error_text
from ..model_uris import parse_registry_uri
from ..names import (
    EVALUATION_INCONCLUSIVE,
    EVALUATION_KEY_TAG,
    EVALUATION_PASSED,
    EVALUATION_READY_TAG,
    EVALUATION_STARTED,
    EVALUATION_TAG,
    INVALID_EVALUATION,
    READY,
    canary_name,
)
from ..registry.mlflow import ArtifactNotFound, RegistryUnavailable, download_text, prepare_run, run_tag
from ..retraining.job import JobEngine
from ..rollout import evaluation as gate
from ..rollout import gates
from ..timestamps import format_time

if TYPE_CHECKING:
    from .canaryrollout import _Tick

JOBS = JobEngine()


def _ready(obj: dict[str, Any] | None) -> bool:
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == READY and c.get("status") == "True" for c in conditions)


class EvaluationStage:
    """Carries out one tick's share of the evaluation; ``run`` answers None once it passed."""

    def __init__(self, tick: _Tick) -> None:
        self.tick = tick
        assert tick.spec.evaluation is not None
        self.spec = tick.spec.evaluation

    def run(self, target: dict[str, Any], full: int) -> str | None:
        from .canaryrollout import apply_canary

        tick, status = self.tick, self.tick.status
        evaluation = status.evaluation or EvaluationStatus()
        status.evaluation = evaluation
        if evaluation.phase == "Passed":
            return None
        if evaluation.phase == "Inconclusive":
            if status.paused_reason:
                status.phase = "Paused"
                return f"evaluation inconclusive: {evaluation.message}"
            # resumed by request: a new attempt
            evaluation = EvaluationStatus(attempt=evaluation.attempt + 1)
            status.evaluation = evaluation
        status.canary_weight, status.stable_weight = 0, 100
        # One canary pod on its own Service: the evaluation reaches it, users do not.
        desired = canary_desired(tick, target)
        canary = apply_canary(tick.kube, desired, tick.body["metadata"]["uid"])
        if canary is None:
            return f"waiting for the previous canary {canary_name(tick.target)} to be deleted"
        status.canary_version = str((canary.get("status") or {}).get("model", {}).get("version", ""))
        if not _ready(canary):
            evaluation.phase = evaluation.phase or "Pending"
            return f"waiting for the canary {canary_name(tick.target)} to be Ready for its evaluation"
        if not evaluation.job_name:
            # the canary's own registry credentials (the target's, unless the canary changes them)
            return self._start(
                evaluation, CredentialsSpec.model_validate(desired["spec"].get("credentials") or {})
            )
        return self._follow(evaluation, full)

    def _start(self, evaluation: EvaluationStatus, credentials: CredentialsSpec) -> str:
        tick, status = self.tick, self.tick.status
        meta = tick.body["metadata"]
        key = evaluation_key(meta["uid"], status.handled_request, evaluation.attempt)
        try:
            records = sample(self._records(), self.spec.dataset.sample_size, self.spec.dataset.seed)
        except (DatasetError, ArtifactNotFound) as error:
            tick.waiting_reason = INVALID_EVALUATION
            return f"evaluation.dataset: {error}"
        except RegistryUnavailable as error:
            return f"cannot prepare the evaluation yet: {error}"
        ref = parse_registry_uri(tick.spec.canary.model.uri) if tick.spec.canary.model else None
        judges = {}
        for scorer in self.spec.scorers:
            if scorer.judge is not None:
                judge = scorer.judge
                judges[scorer.name] = judge.url or service_url(
                    judge.llm_deployment.name if judge.llm_deployment else "", tick.namespace
                )
        config = {
            "spec": self.spec.model_dump(mode="json", by_alias=True, exclude_none=True),
            "canaryUrl": service_url(canary_name(tick.target), tick.namespace),
            "stableUrl": service_url(tick.target, tick.namespace),
            "judgeUrls": judges,
            "modelName": ref.name if ref is not None else "",
            "modelVersion": status.canary_version,
            "seed": self.spec.dataset.seed,
        }
        tracking = tick.settings.mlflow_tracking_uri
        experiment = f"canaryrollout/{tick.namespace}/{tick.name}"
        try:
            run_id = prepare_run(
                tracking,
                experiment,
                f"evaluation-{key}",
                EVALUATION_KEY_TAG,
                key,
                EVALUATION_READY_TAG,
                {CONFIG_ARTIFACT: json.dumps(config, indent=2), DATASET_ARTIFACT: to_jsonl(records)},
            )
        except RegistryUnavailable as error:
            return f"cannot prepare the evaluation yet: {error}"
        name = job_name(tick.name, key)
        image = tick.settings.evaluator_image
        job = evaluation_job(tick.body, self.spec, name, run_id, image, tracking, credentials)
        try:
            tick.kube.create(job)  # an existing Job of this name is this evaluation's, kept
        except ApiException as error:
            return f"cannot create the evaluation Job {name}: {api_error_text(error)}"
        evaluation.phase, evaluation.job_name, evaluation.run_id = "Running", name, run_id
        evaluation.model_version, evaluation.prompts = status.canary_version, len(records)
        evaluation.started_at = format_time(tick.now)
        version = f" version {status.canary_version}" if status.canary_version else ""
        tick.events.append(
            gates.normal(
                EVALUATION_STARTED,
                f"evaluating the canary{version} on {len(records)} prompts (Job {name}, MLflow run {run_id})",
            )
        )
        return f"evaluating the canary (Job {name})"

    def _records(self) -> list[Any]:
        dataset, tick = self.spec.dataset, self.tick
        if dataset.config_map is not None:
            found = tick.kube.get("ConfigMap", tick.namespace, dataset.config_map.name)
            text = ((found or {}).get("data") or {}).get(dataset.config_map.key)
            if text is None:
                what = f"ConfigMap {dataset.config_map.name}"
                raise DatasetError(
                    f"{what} not found" if found is None else f"{what} has no key {dataset.config_map.key!r}"
                )
        else:
            assert dataset.mlflow_artifact is not None
            artifact = dataset.mlflow_artifact
            text = download_text(tick.settings.mlflow_tracking_uri, artifact.run_id, artifact.path)
        return parse_records(str(text), dataset.format)

    def _follow(self, evaluation: EvaluationStatus, full: int) -> str | None:
        tick, status = self.tick, self.tick.status
        tracking = tick.settings.mlflow_tracking_uri
        try:
            progress = JOBS.progress(tick.kube.get(JOBS.kind, tick.namespace, evaluation.job_name))
            verdict = run_tag(tracking, evaluation.run_id, EVALUATION_TAG)
            document: dict[str, Any] = {}
            if verdict is not None:
                document = json.loads(download_text(tracking, evaluation.run_id, VERDICT_ARTIFACT))
        except (RegistryUnavailable, ArtifactNotFound) as error:
            return f"waiting for the evaluation's verdict: {error}"
        scorers = [ScorerResult.model_validate(item) for item in document.get("scorers") or []]
        decision = gate.decide(
            evaluation,
            progress.result,
            progress.message,
            verdict if verdict in ("passed", "failed", "inconclusive") else None,  # type: ignore[arg-type]
            str(document.get("message", "")),
            scorers,
            self.spec.timeout,
            tick.now,
        )
        if scorers:
            evaluation.scorers = scorers
        evaluation.message = decision.message
        if decision.phase == "Running":
            return decision.message
        evaluation.phase = decision.phase
        if decision.phase == "Passed":
            tick.events.append(gates.normal(EVALUATION_PASSED, f"evaluation passed: {gate.summary(scorers)}"))
            return None
        if decision.phase == "Failed":
            return tick._rollback(full, gates.Fail(f"evaluation failed: {decision.message}"))
        status.paused_reason = EVALUATION_INCONCLUSIVE
        status.phase = "Paused"
        tick.events.append(
            gates.warning(EVALUATION_INCONCLUSIVE, f"evaluation inconclusive: {decision.message}")
        )
        return f"evaluation inconclusive: {decision.message}; `kubectl llmops rollout resume` evaluates again"


def canary_desired(tick: _Tick, target: dict[str, Any]) -> dict[str, Any]:
    from ..rollout.canary import desired_canary

    return desired_canary(tick.body, target, tick.spec, 1, shares_service=False)
