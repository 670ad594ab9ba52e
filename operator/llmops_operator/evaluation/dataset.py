"""Evaluation records from JSON Lines or CSV text, and the seeded subset that is evaluated.

A record has ``prompt`` (or ``messages``, a chat), optional ``reference`` and ``tags``. A bad
record is an error naming its line, never a silently smaller dataset.
"""

from __future__ import annotations

import csv
import io
import json
import random
from dataclasses import dataclass, field
from typing import Any, Literal


class DatasetError(ValueError):
    """The dataset cannot be read as evaluation records."""


@dataclass(frozen=True)
class Record:
    prompt: str = ""
    messages: tuple[dict[str, str], ...] = ()
    reference: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def text(self) -> str:
        """The prompt as one text: a chat's last user message."""
        if self.messages:
            return str(self.messages[-1].get("content", ""))
        return self.prompt

    def to_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {"reference": self.reference, "tags": list(self.tags)}
        if self.messages:
            record["messages"] = [dict(message) for message in self.messages]
        else:
            record["prompt"] = self.prompt
        return record


def _record(raw: dict[str, Any], where: str) -> Record:
    messages = raw.get("messages")
    prompt = raw.get("prompt")
    if messages is None and (prompt is None or prompt == ""):
        raise DatasetError(f"{where}: a record needs prompt or messages")
    if messages is not None and not (
        isinstance(messages, list) and all(isinstance(m, dict) and "content" in m for m in messages)
    ):
        raise DatasetError(f"{where}: messages is a list of {{role, content}}")
    tags = raw.get("tags") or []
    if isinstance(tags, str):
        tags = [tag for tag in tags.split(",") if tag]
    reference = raw.get("reference")
    return Record(
        prompt=str(prompt or ""),
        messages=tuple({"role": str(m.get("role", "user")), "content": str(m["content"])} for m in messages)
        if messages
        else (),
        reference="" if reference is None else str(reference),
        tags=tuple(str(tag) for tag in tags),
    )


def parse_records(text: str, format: Literal["JSONLines", "CSV"]) -> list[Record]:
    if format == "CSV":
        rows = list(csv.DictReader(io.StringIO(text)))
        records = [_record(dict(row), f"row {index + 2}") for index, row in enumerate(rows)]
    else:
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as error:
                raise DatasetError(f"line {number}: not valid JSON: {error}") from error
            if not isinstance(raw, dict):
                raise DatasetError(f"line {number}: a record is a JSON object")
            records.append(_record(raw, f"line {number}"))
    if not records:
        raise DatasetError("the dataset has no records")
    return records


def sample(records: list[Record], size: int | None, seed: int) -> list[Record]:
    """``size`` records drawn without replacement by ``seed``, in the dataset's order; all when
    ``size`` is unset or not smaller than the dataset."""
    if size is None or size >= len(records):
        return list(records)
    chosen = sorted(random.Random(seed).sample(range(len(records)), size))
    return [records[index] for index in chosen]


def to_jsonl(records: list[Record]) -> str:
    return "".join(json.dumps(record.to_json()) + "\n" for record in records)
