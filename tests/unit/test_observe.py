from pathlib import Path
from typing import Any

import pytest
import yaml

from llmops_operator.api import DriftMonitor, Resource
from llmops_operator.handlers.observe import CONDITIONS, desired_status

SAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "samples"
KIND_BY_NAME: dict[str, type[Resource]] = {k.kind_info.kind: k for k in CONDITIONS}


def load_samples() -> list[dict[str, Any]]:
    samples = [yaml.safe_load(path.read_text()) for path in sorted(SAMPLES.glob("*.yaml"))]
    return [sample for sample in samples if sample["kind"] in KIND_BY_NAME]


@pytest.mark.parametrize("sample", load_samples(), ids=lambda s: s["metadata"]["name"])
def test_samples_parse_and_get_every_condition_unknown(sample: dict[str, Any]) -> None:
    kind = KIND_BY_NAME[sample["kind"]]
    body = {**sample, "metadata": {**sample["metadata"], "generation": 4}}
    status = desired_status(kind, body)
    assert status["observedGeneration"] == 4
    assert sorted(c["type"] for c in status["conditions"]) == sorted(CONDITIONS[kind])
    for condition in status["conditions"]:
        assert condition["status"] == "Unknown"
        assert condition["reason"] == "ControllerPending"
        assert condition["observedGeneration"] == 4


def test_invalid_spec_gives_a_ready_false_condition_with_the_field() -> None:
    body = {
        "apiVersion": "llmops.dev/v1alpha1",
        "kind": "DriftMonitor",
        "metadata": {"name": "x", "generation": 1},
        "spec": {"targetRef": {"name": "m"}, "baseline": {"relative": {"offset": "1d", "duration": "1h"}}},
    }
    status = desired_status(DriftMonitor, body)
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"
    assert ready["reason"] == "InvalidSpec"
    assert ready["message"].startswith("spec.")


def test_second_pass_changes_nothing() -> None:
    sample = load_samples()[0]
    body = {**sample, "metadata": {**sample["metadata"], "generation": 1}}
    first = desired_status(KIND_BY_NAME[sample["kind"]], body)
    again = desired_status(KIND_BY_NAME[sample["kind"]], {**body, "status": first})
    assert again == first
