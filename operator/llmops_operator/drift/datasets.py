"""Reference datasets: baseline samples per column, from CSV (header row) or JSON text.

JSON is either records (``[{"prompt_tokens": 12, ...}, ...]``) or columns
(``{"prompt_tokens": [12, ...]}``). Non-numeric cells are an error naming the column, not a
silently shorter sample.
"""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
from numpy.typing import NDArray

Columns = dict[str, NDArray[np.float64]]


class DatasetNotFound(Exception):
    """The ConfigMap or key named as the reference dataset does not exist (yet)."""


class DatasetError(ValueError):
    """The dataset cannot be read as numeric columns."""


def parse_dataset(text: str) -> Columns:
    stripped = text.lstrip()
    if not stripped:
        raise DatasetError("the dataset is empty")
    if stripped[0] in "[{":
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as error:
            raise DatasetError(f"not valid JSON: {error}") from error
        raw = _json_columns(data)
    else:
        rows = list(csv.reader(io.StringIO(stripped)))
        header, body = rows[0], [row for row in rows[1:] if row]
        raw = {
            name.strip(): [row[i] if i < len(row) else "" for row in body] for i, name in enumerate(header)
        }
    return {name: _numeric(name, values) for name, values in raw.items()}


def _json_columns(data: object) -> dict[str, list[object]]:
    if isinstance(data, dict):
        if not all(isinstance(values, list) for values in data.values()):
            raise DatasetError("a JSON object dataset maps each column to a list of values")
        return {str(name): list(values) for name, values in data.items()}
    if isinstance(data, list) and all(isinstance(row, dict) for row in data):
        columns: dict[str, list[object]] = {}
        for row in data:
            for name, value in row.items():
                columns.setdefault(str(name), []).append(value)
        return columns
    raise DatasetError("a JSON dataset is a list of records or an object of columns")


def _numeric(name: str, values: list[object]) -> NDArray[np.float64]:
    numbers = []
    for index, value in enumerate(values):
        if value is None or value == "":
            continue  # a missing cell is not a sample
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise DatasetError(f"column {name!r} row {index + 1}: {value!r} is not a number") from None
        if not math.isnan(number):
            numbers.append(number)
    return np.asarray(numbers, dtype=float)


def column(columns: Columns, name: str) -> NDArray[np.float64]:
    if name not in columns:
        raise DatasetError(f"no column {name!r} in the dataset (it has {', '.join(sorted(columns))})")
    return columns[name]
