"""Per-answer scores, one function per scorer type, each from a library of the field:
ROUGE-L from Google's ``rouge-score``, BLEU and chrF from ``sacrebleu`` (sentence level, 0..100),
JSON Schema from ``jsonschema``. Every score is a number, 1/0 for the yes-or-no scorers, so a
scorer's value is the mean over the prompts and the paired comparison reads the differences.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from typing import Any

from ..api.evaluation import ScorerSpec, ScorerType
from .dataset import Record

# What refusals look like when a scorer gives no pattern of its own.
REFUSAL_PATTERN = (
    r"(?i)\b(i can(no|')t|i am unable|i'm unable|i am not able|i won't|as an ai|"
    r"i'm sorry, but|i cannot help|i must decline)\b"
)

Scorer = Callable[[str, Record, ScorerSpec], float]


def _exact_match(answer: str, record: Record, _: ScorerSpec) -> float:
    return float(answer.strip() == record.reference.strip())


def _contains(answer: str, _: Record, spec: ScorerSpec) -> float:
    return float((spec.pattern or "") in answer)


def _regex(answer: str, _: Record, spec: ScorerSpec) -> float:
    return float(re.search(spec.pattern or "", answer) is not None)


def _json_valid(answer: str, _: Record, __: ScorerSpec) -> float:
    try:
        json.loads(answer)
    except json.JSONDecodeError:
        return 0.0
    return 1.0


def _json_schema(answer: str, _: Record, spec: ScorerSpec) -> float:
    import jsonschema

    try:
        jsonschema.validate(json.loads(answer), spec.schema_ or {})
    except (json.JSONDecodeError, jsonschema.ValidationError):
        return 0.0
    return 1.0


@functools.cache
def _rouge() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def _rouge_l(answer: str, record: Record, _: ScorerSpec) -> float:
    return float(_rouge().score(record.reference, answer)["rougeL"].fmeasure)


def _bleu(answer: str, record: Record, _: ScorerSpec) -> float:
    import sacrebleu

    return float(sacrebleu.sentence_bleu(answer, [record.reference]).score)


def _chrf(answer: str, record: Record, _: ScorerSpec) -> float:
    import sacrebleu

    return float(sacrebleu.sentence_chrf(answer, [record.reference]).score)


def _length_ratio(answer: str, record: Record, _: ScorerSpec) -> float:
    """Words of the answer over words of the reference."""
    return len(answer.split()) / max(1, len(record.reference.split()))


def _refusal(answer: str, _: Record, spec: ScorerSpec) -> float:
    return float(re.search(spec.pattern or REFUSAL_PATTERN, answer) is not None)


SCORERS: dict[ScorerType, Scorer] = {
    "exactMatch": _exact_match,
    "contains": _contains,
    "regex": _regex,
    "jsonValid": _json_valid,
    "jsonSchema": _json_schema,
    "rougeL": _rouge_l,
    "bleu": _bleu,
    "chrF": _chrf,
    "lengthRatio": _length_ratio,
    "refusalRate": _refusal,
}
# Lower is better only for refusals; every other score is better higher.
LOWER_IS_BETTER: frozenset[ScorerType] = frozenset({"refusalRate"})


def score(spec: ScorerSpec, answer: str, record: Record) -> float:
    """One answer's score by a deterministic scorer (``llmJudge`` is scored by ``judge.py``)."""
    return SCORERS[spec.type](answer, record, spec)
