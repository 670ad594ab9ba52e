"""The llmJudge scorer's prompt and parse rule, as documented in the README.

The judge is asked, in one user message, to grade the answer against the rubric and the
reference and to reply with one integer from 1 to 5. The first integer from 1 to 5 standing alone
in the reply is the grade; the score is (grade - 1) / 4, in 0..1. A reply without one is
unparsed: it counts in ``unparsed``, not as a zero.
"""

from __future__ import annotations

import re

from .dataset import Record

PROMPT = """You grade an answer to a question. Rubric: {rubric}

Question:
{question}

Reference:
{reference}

Answer:
{answer}

Reply with one integer from 1 (worst) to 5 (best) and nothing else."""

_GRADE = re.compile(r"(?<![0-9.])([1-5])(?![0-9.])")


def judge_prompt(rubric: str, record: Record, answer: str) -> str:
    return PROMPT.format(rubric=rubric, question=record.text, reference=record.reference, answer=answer)


def parse_grade(reply: str) -> float | None:
    """The score in 0..1, or None when the reply holds no grade."""
    found = _GRADE.search(reply)
    return None if found is None else (int(found.group(1)) - 1) / 4
