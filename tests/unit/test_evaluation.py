"""The evaluation gate's pure parts: records, scorers, the paired verdict, the judge's parse rule,
the Job, and what a tick makes of a verdict."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from llmops_operator.api.evaluation import EvaluationSpec, EvaluationStatus, PairedComparison, ScorerSpec
from llmops_operator.api.llmdeployment import CredentialsSpec
from llmops_operator.evaluation.dataset import DatasetError, Record, parse_records, sample
from llmops_operator.evaluation.job import evaluation_job, judge_key_env
from llmops_operator.evaluation.judge import judge_prompt, parse_grade
from llmops_operator.evaluation.scorers import score
from llmops_operator.evaluation.verdict import judge_scorer, overall
from llmops_operator.rollout.evaluation import decide

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_records_from_json_lines_and_csv_and_a_seeded_sample() -> None:
    lines = (
        '{"prompt": "2+2?", "reference": "4", "tags": ["math"]}\n\n'
        '{"messages": [{"role": "user", "content": "hi"}]}\n'
    )
    records = parse_records(lines, "JSONLines")
    assert records[0] == Record(prompt="2+2?", reference="4", tags=("math",))
    assert records[1].text == "hi"
    assert parse_records("prompt,reference\nq,a\n", "CSV") == [Record(prompt="q", reference="a")]
    with pytest.raises(DatasetError, match="line 1"):
        parse_records('{"reference": "x"}\n', "JSONLines")
    many = [Record(prompt=str(i)) for i in range(100)]
    assert sample(many, 10, 7) == sample(many, 10, 7) != sample(many, 10, 8)
    assert len(sample(many, 10, 7)) == 10 and sample(many, None, 0) == many


@pytest.mark.parametrize(
    ("scorer", "answer", "reference", "expected"),
    [
        ({"type": "exactMatch"}, " Paris ", "Paris", 1.0),
        ({"type": "exactMatch"}, "paris", "Paris", 0.0),
        ({"type": "contains", "pattern": "Paris"}, "It is Paris.", "", 1.0),
        ({"type": "regex", "pattern": r"^\d+$"}, "42", "", 1.0),
        ({"type": "jsonValid"}, '{"a": 1}', "", 1.0),
        ({"type": "jsonValid"}, '}1 :"a"{', "", 0.0),
        ({"type": "jsonSchema", "schema": {"type": "object", "required": ["a"]}}, '{"b": 1}', "", 0.0),
        ({"type": "rougeL"}, "the cat sat", "the cat sat", 1.0),
        ({"type": "bleu"}, "the cat sat on the mat", "the cat sat on the mat", 100.0),
        ({"type": "chrF"}, "the cat sat on the mat", "the cat sat on the mat", 100.0),
        ({"type": "lengthRatio"}, "a b c d", "a b", 2.0),
        ({"type": "refusalRate"}, "I'm sorry, but I cannot help with that.", "", 1.0),
        ({"type": "refusalRate"}, "Paris.", "", 0.0),
    ],
)
def test_each_scorer(scorer: dict[str, object], answer: str, reference: str, expected: float) -> None:
    spec = ScorerSpec.model_validate({"name": "s", **scorer})
    assert score(spec, answer, Record(prompt="q", reference=reference)) == pytest.approx(expected)


def exact(min_: str | None = None, regression: str | None = "0.02") -> ScorerSpec:
    compare = None if regression is None else PairedComparison(max_regression=regression)
    return ScorerSpec(name="em", type="exactMatch", min=min_, compare_with_stable=compare)


def answers(accuracy: float, n: int = 500, seed: int = 1) -> list[float | None]:
    rng = random.Random(seed)
    return [1.0 if rng.random() < accuracy else 0.0 for _ in range(n)]


def test_a_worse_canary_fails_the_paired_comparison_and_an_equal_one_passes() -> None:
    stable = answers(0.8)
    worse = [0.0 if s == 1.0 and i % 16 == 0 else s for i, s in enumerate(stable)]  # ~5 points lower
    result = judge_scorer(exact(), worse, stable)
    assert result.phase == "Failed" and float(result.difference) < -0.02, result
    low, high = (float(x) for x in result.interval.strip("[]").split(","))
    assert low <= float(result.difference) <= high < 0
    assert judge_scorer(exact(), list(stable), stable).phase == "Passed"
    # Wilcoxon and the bootstrap agree on a clear case.
    bootstrap = exact().model_copy(
        update={"compare_with_stable": PairedComparison(test="pairedBootstrap", max_regression="0.02")}
    )
    assert judge_scorer(bootstrap, worse, stable).phase == "Failed"


def test_thresholds_and_too_few_scores() -> None:
    assert judge_scorer(exact(min_="0.9", regression=None), answers(0.8), None).phase == "Failed"
    assert judge_scorer(exact(min_="0.5", regression=None), answers(0.8), None).phase == "Passed"
    mostly_lost: list[float | None] = [None] * 400 + [1.0] * 100
    assert judge_scorer(exact(regression=None), mostly_lost, None).phase == "Inconclusive"
    assert overall([judge_scorer(exact(min_="0.9", regression=None), answers(0.8), None)]) == "failed"


def test_the_judge_prompt_and_parse_rule() -> None:
    prompt = judge_prompt("be exact", Record(prompt="2+2?", reference="4"), "4")
    assert "Rubric: be exact" in prompt and "Reference:\n4\n\nAnswer:\n4\n\nReply with" in prompt
    assert parse_grade("5") == 1.0 and parse_grade("Score: 3/5") == 0.5 and parse_grade("1") == 0.0
    assert parse_grade("none") is None and parse_grade("10") is None


def test_the_job_runs_the_operator_image_with_the_run_and_a_key_by_reference() -> None:
    spec = EvaluationSpec.model_validate(
        {
            "dataset": {"configMap": {"name": "d", "key": "k"}},
            "scorers": [
                {
                    "name": "judge",
                    "type": "llmJudge",
                    "judge": {"url": "http://j", "rubric": "r", "apiKeySecret": {"name": "s", "key": "t"}},
                }
            ],
        }
    )
    rollout = {"metadata": {"name": "r", "namespace": "ns", "uid": "u"}}
    job = evaluation_job(rollout, spec, "r-eval-1", "RUN", "img:1", "http://mlflow", CredentialsSpec())
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["llmops-operator"] and container["args"] == [
        "evaluate",
        "--run-id",
        "RUN",
    ]
    assert container["image"] == "img:1"
    env = {item["name"]: item for item in container["env"]}
    assert env[judge_key_env("judge")]["valueFrom"] == {"secretKeyRef": {"name": "s", "key": "t"}}
    assert job["metadata"]["ownerReferences"][0]["uid"] == "u"
    assert "envFrom" not in container  # no registry Secret named: none mounted
    with_mlflow = evaluation_job(
        rollout, spec, "r-eval-1", "RUN", "img:1", "http://mlflow", CredentialsSpec(mlflow_secret="creds")
    )
    assert with_mlflow["spec"]["template"]["spec"]["containers"][0]["envFrom"] == [
        {"secretRef": {"name": "creds"}}
    ]


def test_what_a_tick_makes_of_the_verdict() -> None:
    running = EvaluationStatus(phase="Running", job_name="j", started_at="2026-01-01T00:00:00Z")
    assert decide(running, "Running", "", None, "", [], "1h", T0).phase == "Running"
    assert decide(running, "Succeeded", "", "passed", "", [], "1h", T0).phase == "Passed"
    assert decide(running, "Succeeded", "", "failed", "em 0.7", [], "1h", T0).message == "em 0.7"
    assert decide(running, "Failed", "BackoffLimitExceeded", None, "", [], "1h", T0).phase == "Inconclusive"
    assert decide(running, "Running", "", None, "", [], "1h", T0 + timedelta(hours=2)).phase == "Inconclusive"
    # kwok ends a Job before its pod ran: the verdict in MLflow decides, not the Job.
    assert decide(running, "Succeeded", "", None, "", [], "1h", T0).phase == "Running"
