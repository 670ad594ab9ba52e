"""The Argo CD health checks, run in a real Lua 5.1 runtime on the fixtures laid out as Argo CD
lays out its own (health.lua, health_test.yaml, testdata/)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from tools.argocd_cm import SNIPPET, render

from tests.argocd_health import CUSTOMIZATIONS, health

CASES = [
    pytest.param(
        test_file.parent / case["inputPath"],
        case["healthStatus"],
        id=f"{test_file.parent.name}-{Path(case['inputPath']).stem}",
    )
    for test_file in sorted(CUSTOMIZATIONS.glob("*/*/health_test.yaml"))
    for case in yaml.safe_load(test_file.read_text())["tests"]
]


def test_every_kind_has_a_health_check_with_cases() -> None:
    kinds = {path.parent.name for path in CUSTOMIZATIONS.glob("llmops.dev/*/health.lua")}
    assert kinds == {"LLMDeployment", "CanaryRollout", "DriftMonitor", "LLMGateway"}
    covered = {param.values[1]["status"] for param in CASES}  # type: ignore[index]
    assert covered == {"Healthy", "Progressing", "Degraded", "Suspended"}


@pytest.mark.parametrize(("fixture", "expected"), CASES)
def test_health(fixture: Path, expected: dict[str, str]) -> None:
    assert health(yaml.safe_load(fixture.read_text())) == expected


def test_the_argocd_cm_snippet_carries_exactly_these_scripts() -> None:
    assert SNIPPET.read_text() == render(), "stale: run python tools/argocd_cm.py"


def test_argocd_applications_sync_the_operator_before_the_models() -> None:
    root = CUSTOMIZATIONS.parents[2]
    apps = {
        doc["metadata"]["name"]: doc
        for doc in (
            yaml.safe_load(path.read_text()) for path in (root / "manifests" / "argocd").glob("*.yaml")
        )
        if doc["kind"] == "Application"
    }
    wave = {
        name: int(app["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"])
        for name, app in apps.items()
    }
    assert wave["llmops-operator"] < wave["llm-models"]
    for app in apps.values():
        assert (root / app["spec"]["source"]["path"]).is_dir(), app["spec"]["source"]["path"]
        assert "ServerSideApply=true" in app["spec"]["syncPolicy"]["syncOptions"]
