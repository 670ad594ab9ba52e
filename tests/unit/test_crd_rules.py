"""The generated CRDs carry the rules that refuse objects the operator could not act on; the API
server evaluates them (tests/integration/invalid_objects.yaml), pydantic the patterns as well."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from llmops_operator import crdgen
from llmops_operator.api import KINDS
from llmops_operator.api.canaryrollout import BaselineComparison
from llmops_operator.api.driftmonitor import RelativeWindow
from llmops_operator.api.llmdeployment import LLMDeployment
from llmops_operator.handlers.canaryrollout import canary_name


def schema(kind: str) -> dict[str, Any]:
    crd = crdgen.crd_for(next(k for k in KINDS if k.kind_info.kind == kind))
    root: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return root


def node(root: dict[str, Any], path: str) -> dict[str, Any]:
    for part in path.split("."):
        root = root["items"] if part == "[]" else root["properties"][part]
    return root


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("LLMDeployment", "spec.startupTimeout"),
        ("LLMDeployment", "spec.model.aliasPollInterval"),
        ("LLMDeployment", "spec.monitoring.serviceMonitor.interval"),
        ("CanaryRollout", "spec.analysis.interval"),
        ("DriftMonitor", "spec.interval"),
        ("DriftMonitor", "spec.currentWindow"),
        ("DriftMonitor", "spec.baseline.relative.duration"),
        ("DriftMonitor", "spec.features.[].source.query.step"),
    ],
)
def test_periods_and_windows_must_be_positive(kind: str, path: str) -> None:
    pattern = node(schema(kind), path)["pattern"]
    assert pattern == crdgen.schema_for(RelativeWindow)["properties"]["duration"]["pattern"]


@pytest.mark.parametrize("duration", ["1s", "90s", "1h30m", "0h1m", "100ms", "10m0s"])
def test_a_positive_duration_is_accepted(duration: str) -> None:
    assert RelativeWindow(offset="0s", duration=duration).duration == duration


@pytest.mark.parametrize("duration", ["0s", "0m0s", "00h", "0ms", "", "5", "1d"])
def test_a_zero_or_malformed_duration_is_refused(duration: str) -> None:
    with pytest.raises(ValidationError, match="duration"):
        RelativeWindow(offset="1h", duration=duration)


@pytest.mark.parametrize("alpha", ["0.05", "0.5", "0.999", "0.0001"])
def test_a_significance_level_strictly_between_0_and_1_is_accepted(alpha: str) -> None:
    assert BaselineComparison(alpha=alpha).alpha == alpha


@pytest.mark.parametrize("alpha", ["0", "0.0", "1", "1.0", "1.5", "-0.05", "5"])
def test_a_significance_level_of_0_1_or_beyond_is_refused(alpha: str) -> None:
    with pytest.raises(ValidationError, match="alpha"):
        BaselineComparison(alpha=alpha)


def rules(kind: str, path: str = "") -> dict[str, dict[str, str]]:
    at = node(schema(kind), path) if path else schema(kind)
    return {rule["fieldPath"]: rule for rule in at.get("x-kubernetes-validations", [])}


def test_a_fixed_window_must_end_after_it_starts() -> None:
    rule = rules("DriftMonitor", "spec.baseline.fixed")[".end"]
    assert rule["rule"] == "timestamp(self.end) > timestamp(self.start)"


def test_a_relative_baseline_must_end_before_the_current_window_starts() -> None:
    rule = rules("DriftMonitor", "spec")[".baseline.relative.offset"]
    assert "duration(self.baseline.relative.offset) >= duration(self.currentWindow)" in rule["rule"]


def test_p_value_thresholds_must_be_strictly_between_0_and_1() -> None:
    rule = rules("DriftMonitor", "spec.features.[]")[".threshold"]
    assert "['ks', 'chiSquare']" in rule["rule"]
    assert "double(self.threshold) > 0.0 && double(self.threshold) < 1.0" in rule["rule"]
    assert "has(self.source.query) ? 'ks' : 'psi'" in rule["rule"]  # the default test per source


@pytest.mark.parametrize(
    ("kind", "limit"), [("LLMDeployment", 56), ("CanaryRollout", 63), ("DriftMonitor", 63)]
)
def test_each_kind_bounds_its_name_by_what_is_derived_from_it(kind: str, limit: int) -> None:
    rule = rules(kind)[".metadata.name"]
    assert rule["rule"] == f"self.metadata.name.size() <= {limit}"
    assert f"at most {limit} characters" in rule["message"]
    assert schema(kind)["properties"]["metadata"]["properties"]["name"] == {"type": "string"}


def test_the_longest_llmdeployment_name_leaves_its_canary_service_a_dns_label() -> None:
    longest = "a" * LLMDeployment.kind_info.name_max_length
    assert len(canary_name(longest)) == 63
