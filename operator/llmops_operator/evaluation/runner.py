"""``llmops-operator evaluate --run-id RUN``: the evaluation Job's process.

It reads its inputs from the MLflow run the operator prepared (``evaluation.json``: the spec and
the endpoints; ``dataset.jsonl``: the sampled prompts), asks the canary (and, for scorers that
compare, the stable) every prompt with bounded concurrency, a timeout and retries per request,
scores the answers, and logs to the same run: per-scorer metrics, the per-prompt table
(``evaluation_table.json``), ``verdict.json``, and the tag ``llmops.dev/evaluation``; the canary's
model version gets the same tag (passed or failed) and a link to the run. The verdict is data:
the process exits 0 whether the canary passed or failed, and non-zero only when it could not
evaluate at all.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..api.evaluation import EvaluationSpec, ScorerResult, ScorerSpec
from ..durations import parse_duration
from ..names import EVALUATION_RUN_TAG, EVALUATION_TAG
from . import judge as judging
from .dataset import Record, parse_records
from .job import judge_key_env
from .scorers import score
from .verdict import failure_summary, judge_scorer, overall

log = logging.getLogger("llmops_operator.evaluate")
CONFIG_ARTIFACT = "evaluation.json"
DATASET_ARTIFACT = "dataset.jsonl"
VERDICT_ARTIFACT = "verdict.json"
TABLE_ARTIFACT = "evaluation_table.json"
RETRIED_STATUSES = {429, 500, 502, 503, 504}


class Unreachable(Exception):
    """No answer after every retry: a connection refused, a timeout, a 5xx."""


@dataclass(frozen=True)
class Endpoint:
    """An OpenAI-compatible server and how patiently to ask it."""

    url: str
    timeout: float
    retries: int
    api_key: str = ""
    model: str = ""

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any] | None:
        """The JSON answer; None for a refusal (4xx other than 429), which is the model's answer
        to that prompt, not an outage. Raises Unreachable after the retries."""
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        data = json.dumps(body).encode()
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(0.5 * 2 ** (attempt - 1), 8.0))
            request = urllib.request.Request(f"{self.url}{path}", data=data, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                    return dict(json.load(answer))
            except urllib.error.HTTPError as error:
                if error.code not in RETRIED_STATUSES:
                    return None
                last = f"HTTP {error.code}"
            except (urllib.error.URLError, OSError, json.JSONDecodeError) as error:
                last = str(getattr(error, "reason", error))
        raise Unreachable(f"{self.url}: {last}")

    def served_model(self) -> str:
        if self.model:
            return self.model
        request = urllib.request.Request(f"{self.url}/v1/models")
        if self.api_key:
            request.add_header("Authorization", f"Bearer {self.api_key}")
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(0.5 * 2 ** (attempt - 1), 8.0))
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                    return str(json.load(answer)["data"][0]["id"])
            except (urllib.error.URLError, OSError, KeyError, IndexError, json.JSONDecodeError) as error:
                last = str(error)
        raise Unreachable(f"{self.url}/v1/models: {last}")


def ask(endpoint: Endpoint, model: str, record: Record, max_tokens: int) -> str | None:
    """The model's answer to one record ("" when it refused the request); None when unreachable."""
    common: dict[str, Any] = {"model": model, "max_tokens": max_tokens, "temperature": 0}
    try:
        if record.messages:
            answer = endpoint.post("/v1/chat/completions", {**common, "messages": list(record.messages)})
            return "" if answer is None else str(answer["choices"][0]["message"]["content"] or "")
        answer = endpoint.post("/v1/completions", {**common, "prompt": record.prompt})
        return "" if answer is None else str(answer["choices"][0]["text"] or "")
    except Unreachable:
        return None
    except (KeyError, IndexError, TypeError):
        return ""


def answers_of(endpoint: Endpoint, records: list[Record], spec: EvaluationSpec) -> list[str | None]:
    model = endpoint.served_model()
    with ThreadPoolExecutor(max_workers=spec.concurrency) as pool:
        return list(pool.map(lambda record: ask(endpoint, model, record, spec.max_tokens), records))


def judged(
    endpoint: Endpoint, rubric: str, records: list[Record], answers: list[str | None], concurrency: int
) -> tuple[list[float | None], int]:
    """The judge's score per answer, and how many answers it could not be asked about."""
    try:
        model = endpoint.served_model()
    except Unreachable:
        return [None] * len(records), len(records)
    unreachable = 0

    def one(pair: tuple[Record, str | None]) -> float | None:
        nonlocal unreachable
        record, answer = pair
        if answer is None:
            return None
        prompt = judging.judge_prompt(rubric, record, answer)
        body = {"model": model, "max_tokens": 8, "temperature": 0}
        body["messages"] = [{"role": "user", "content": prompt}]
        try:
            reply = endpoint.post("/v1/chat/completions", body)
        except Unreachable:
            unreachable += 1
            return None
        if reply is None:
            return None
        return judging.parse_grade(str(reply["choices"][0]["message"]["content"] or ""))

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(one, zip(records, answers, strict=True))), unreachable


def scores_of(
    scorer: ScorerSpec,
    records: list[Record],
    answers: list[str | None],
    judge: Endpoint | None,
    concurrency: int,
) -> tuple[list[float | None], int]:
    if scorer.type == "llmJudge":
        assert judge is not None and scorer.judge is not None
        return judged(judge, scorer.judge.rubric, records, answers, concurrency)
    return [
        None if answer is None else score(scorer, answer, record)
        for answer, record in zip(answers, records, strict=True)
    ], 0


def evaluate(
    config: dict[str, Any], records: list[Record]
) -> tuple[str, list[ScorerResult], dict[str, list[Any]]]:
    """The verdict, each scorer's result, and the per-prompt table."""
    spec = EvaluationSpec.model_validate(config["spec"])
    timeout, retries = parse_duration(spec.request_timeout), spec.retries
    canary = Endpoint(config["canaryUrl"], timeout, retries)
    compare = any(scorer.compare_with_stable is not None for scorer in spec.scorers)
    canary_answers = answers_of(canary, records, spec)
    stable_answers: list[str | None] | None = None
    if compare:
        stable_answers = answers_of(Endpoint(config["stableUrl"], timeout, retries), records, spec)
    table: dict[str, list[Any]] = {
        "prompt": [record.text for record in records],
        "reference": [record.reference for record in records],
        "canary_answer": canary_answers,
    }
    if stable_answers is not None:
        table["stable_answer"] = stable_answers
    results = []
    for scorer in spec.scorers:
        judge = None
        if scorer.judge is not None:
            judge = Endpoint(
                config["judgeUrls"][scorer.name],
                timeout,
                retries,
                os.environ.get(judge_key_env(scorer.name), ""),
                scorer.judge.model or "",
            )
        canary_scores, lost = scores_of(scorer, records, canary_answers, judge, spec.concurrency)
        stable_scores = None
        if scorer.compare_with_stable is not None and stable_answers is not None:
            stable_scores, lost_stable = scores_of(scorer, records, stable_answers, judge, spec.concurrency)
            lost += lost_stable
            table[f"{scorer.name}/stable"] = stable_scores
        table[f"{scorer.name}/canary"] = canary_scores
        result = judge_scorer(scorer, canary_scores, stable_scores, int(config.get("seed", 0)))
        if lost:
            result = result.model_copy(
                update={"phase": "Inconclusive", "message": f"the judge was unreachable for {lost} answers"}
            )
        results.append(result)
    return overall(results), results, table


def metrics_of(results: list[ScorerResult]) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for result in results:
        for key, text in (
            ("mean", result.value),
            ("stable_mean", result.stable_value),
            ("difference", result.difference),
            ("p_value", result.p_value),
        ):
            if text:
                metrics[f"{result.name}/{key}"] = float(text)
        if result.interval:
            low, high = result.interval.strip("[]").split(",")
            metrics[f"{result.name}/interval_low"] = float(low)
            metrics[f"{result.name}/interval_high"] = float(high)
        metrics[f"{result.name}/passed"] = float(result.phase == "Passed")
    return metrics


def main(run_id: str) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    tracking_uri = os.environ["MLFLOW_TRACKING_URI"]
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as directory:
        config = json.loads(Path(client.download_artifacts(run_id, CONFIG_ARTIFACT, directory)).read_text())
        text = Path(client.download_artifacts(run_id, DATASET_ARTIFACT, directory)).read_text()
    records = parse_records(text, "JSONLines")
    log.info("evaluating %d prompts against %s", len(records), config["canaryUrl"])
    try:
        verdict, results, table = evaluate(config, records)
    except Unreachable as error:
        verdict, results, table = "inconclusive", [], {}
        message = f"the model server was unreachable: {error}"
    else:
        message = failure_summary(results)
    stamp = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(k, v, stamp, 0) for k, v in metrics_of(results).items()])
    if table:
        client.log_table(run_id, data=table, artifact_file=TABLE_ARTIFACT)
    document = {
        "verdict": verdict,
        "message": message,
        "prompts": len(records),
        "scorers": [result.model_dump(mode="json", by_alias=True) for result in results],
    }
    client.log_text(run_id, json.dumps(document, indent=2), VERDICT_ARTIFACT)
    client.set_tag(run_id, EVALUATION_TAG, verdict)
    if verdict in ("passed", "failed") and config.get("modelName") and config.get("modelVersion"):
        client.set_model_version_tag(config["modelName"], config["modelVersion"], EVALUATION_TAG, verdict)
        client.set_model_version_tag(config["modelName"], config["modelVersion"], EVALUATION_RUN_TAG, run_id)
    client.set_terminated(run_id, "FINISHED")
    log.info("verdict %s %s", verdict, message)
    return 0
