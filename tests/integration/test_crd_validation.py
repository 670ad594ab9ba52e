"""The CRDs as users meet them: samples accepted, bad objects rejected with the field named."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import ROOT, Cluster

CORPUS = yaml.safe_load((Path(__file__).parent / "invalid_objects.yaml").read_text())
SAMPLES = sorted(
    [*(ROOT / "manifests" / "samples").glob("*.yaml"), *(ROOT / "manifests" / "demo").glob("*.yaml")]
)


def _set(obj: Any, path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        obj = obj[int(part)] if isinstance(obj, list) else obj.setdefault(part, {})
    if isinstance(obj, list):
        index = int(last)
        obj.extend([None] * (index + 1 - len(obj)))
        obj[index] = value
    else:
        obj[last] = value


def _unset(obj: Any, path: str) -> None:
    *parents, last = path.split(".")
    for part in parents:
        obj = obj[int(part)] if isinstance(obj, list) else obj[part]
    del obj[last]


def build_case(case: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(CORPUS["bases"][case["base"]])
    for path, value in (case.get("set") or {}).items():
        _set(obj, path, value)
    for path in case.get("unset") or []:
        _unset(obj, path)
    return obj


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS["cases"]) >= 30
    assert {case["base"] for case in CORPUS["cases"]} == set(CORPUS["bases"])


@pytest.mark.parametrize("base", sorted(CORPUS["bases"]))
def test_corpus_bases_are_valid(cluster: Cluster, namespace: str, base: str) -> None:
    text = yaml.safe_dump(CORPUS["bases"][base])
    cluster.kubectl("create", "--dry-run=server", "--validate=strict", "-n", namespace, "-f", "-", input=text)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_sample_is_accepted(cluster: Cluster, namespace: str, sample: Path) -> None:
    cluster.kubectl("create", "--dry-run=server", "--validate=strict", "-n", namespace, "-f", str(sample))


@pytest.mark.parametrize("case", CORPUS["cases"], ids=lambda c: c["name"])
def test_invalid_object_is_rejected_naming_the_field(
    cluster: Cluster, namespace: str, case: dict[str, Any]
) -> None:
    text = yaml.safe_dump(build_case(case))
    result = cluster.kubectl(
        "create", "--dry-run=server", "--validate=strict", "-n", namespace, "-f", "-", input=text, check=False
    )
    assert result.returncode != 0, f"{case['name']} was accepted"
    for fragment in case["expect"]:
        assert fragment in result.stderr, f"{case['name']}: {fragment!r} not in {result.stderr!r}"


def test_defaults_are_applied_by_the_api_server(cluster: Cluster, namespace: str) -> None:
    cluster.apply(CORPUS["bases"]["llmdeployment"], namespace)
    spec = cluster.get("llmdeployment", "bad", "-n", namespace)["spec"]
    assert spec["engine"]["gpuMemoryUtilization"] == "0.90"
    assert spec["engine"]["image"].startswith("vllm/vllm-openai:")
    assert spec["startupTimeout"] == "30m"
    assert spec["rollout"] == {"maxSurge": 0, "maxUnavailable": 1}
    assert spec["replicas"] == 1


def test_kubectl_get_shows_useful_columns_short_names_and_category(cluster: Cluster, namespace: str) -> None:
    for sample in SAMPLES:
        cluster.kubectl("apply", "--server-side", "-n", namespace, "-f", str(sample))
    table = cluster.kubectl("get", "llmd", "-n", namespace).stdout
    header = table.splitlines()[0].split()
    assert header[:4] == ["NAME", "MODEL", "VERSION", "REPLICAS"]
    assert "models:/llama-3-8b-instruct@champion" in table
    everything = cluster.kubectl("get", "llmops", "-n", namespace, "-o", "name").stdout.split()
    assert sorted(everything) == sorted(
        [
            "llmdeployment.llmops.dev/llama-8b",
            "llmdeployment.llmops.dev/llama-70b",
            "canaryrollout.llmops.dev/llama-8b-v2",
            "driftmonitor.llmops.dev/llama-8b-drift",
            "driftmonitor.llmops.dev/llama-8b-live",
            "llmgateway.llmops.dev/llm",
        ]
    )
    gateways = cluster.kubectl("get", "llmgw", "-n", namespace).stdout
    assert gateways.splitlines()[0].split()[:4] == ["NAME", "READY-REPLICAS", "READY", "REASON"]
    assert "llama-8b-v2" in cluster.kubectl("get", "canary", "-n", namespace).stdout
    assert "llama-8b-drift" in cluster.kubectl("get", "dm", "-n", namespace).stdout


def test_scale_subresource(cluster: Cluster, namespace: str) -> None:
    sample = ROOT / "manifests" / "samples" / "llmdeployment-llama-8b.yaml"
    cluster.kubectl("apply", "--server-side", "-n", namespace, "-f", str(sample))
    cluster.kubectl("scale", "llmdeployment/llama-8b", "--replicas=3", "-n", namespace)
    assert cluster.get("llmdeployment", "llama-8b", "-n", namespace)["spec"]["replicas"] == 3
