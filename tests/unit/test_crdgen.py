import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmops_operator import crdgen
from llmops_operator.api import KINDS, Resource

ROOT = Path(__file__).resolve().parents[2]


def test_crds_directory_matches_the_models() -> None:
    assert crdgen.main(["--check", str(ROOT / "crds")]) == 0, "crds/ is stale: run `make crds`"


def test_check_reports_a_hand_edited_crd(tmp_path: Path) -> None:
    assert crdgen.main([str(tmp_path)]) == 0
    target = tmp_path / f"llmops.dev_{KINDS[0].kind_info.plural}.yaml"
    target.write_text(target.read_text().replace("maxLength: 1024", "maxLength: 2048", 1))
    assert crdgen.main(["--check", str(tmp_path)]) == 1


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        found.append((path, node))
        for key in ("properties",):
            for name, child in node.get(key, {}).items():
                found.extend(_walk(child, f"{path}.{name}"))
        if isinstance(node.get("items"), dict):
            found.extend(_walk(node["items"], f"{path}[]"))
        if isinstance(node.get("additionalProperties"), dict):
            found.extend(_walk(node["additionalProperties"], f"{path}{{}}"))
    return found


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind_info.kind)
def test_schema_is_structural(kind: type[Resource]) -> None:
    schema = crdgen.crd_for(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        for forbidden in (
            "$ref",
            "$defs",
            "anyOf",
            "oneOf",
            "const",
            "uniqueItems",
            "discriminator",
            "title",
        ):
            assert forbidden not in node, f"{path} has {forbidden}"
        assert "type" in node or node.get("x-kubernetes-int-or-string"), f"{path} has no type"
        if "properties" in node:
            assert "additionalProperties" not in node, f"{path} mixes properties and additionalProperties"
        assert node.get("default", 0) is not None, f"{path} defaults to null"


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind_info.kind)
def test_spec_has_no_floats(kind: type[Resource]) -> None:
    spec = crdgen.crd_for(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    floats = [path for path, node in _walk(spec) if node.get("type") == "number"]
    assert floats == []


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.kind_info.kind)
def test_status_conditions_are_a_map_keyed_by_type(kind: type[Resource]) -> None:
    version = crdgen.crd_for(kind)["spec"]["versions"][0]
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
    conditions = status["properties"]["conditions"]
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    assert set(conditions["items"]["required"]) >= {"type", "status", "reason", "lastTransitionTime"}
    assert "observedGeneration" in status["properties"]
    assert "status" in version["subresources"]


def test_crd_names_categories_and_scale() -> None:
    crds = {kind.kind_info.kind: crdgen.crd_for(kind) for kind in KINDS}
    for crd in crds.values():
        assert crd["spec"]["group"] == "llmops.dev"
        assert crd["spec"]["names"]["categories"] == ["llmops"]
        assert crd["spec"]["names"]["shortNames"]
    scale = crds["LLMDeployment"]["spec"]["versions"][0]["subresources"]["scale"]
    assert scale["specReplicasPath"] == ".spec.replicas"
    assert scale["labelSelectorPath"] == ".status.selector"


def test_generated_yaml_round_trips() -> None:
    documents = crdgen.documents()
    for kind in KINDS:
        assert yaml.safe_load(documents[f"llmops.dev_{kind.kind_info.plural}.yaml"]) == crdgen.crd_for(kind)
    peerings = {
        yaml.safe_load(text)["spec"]["names"]["kind"] for name, text in documents.items() if "kopf" in name
    }
    assert peerings == {"ClusterKopfPeering", "KopfPeering"}


def test_the_chart_ships_exactly_these_crds() -> None:
    chart = ROOT / "charts" / "llmops-operator" / "crds"
    ours = {path.name: path.read_text() for path in (ROOT / "crds").glob("*.yaml")}
    assert {path.name: path.read_text() for path in chart.glob("*.yaml")} == ours, "run `make crds`"


def test_the_kustomize_manifests_carry_exactly_these_crds() -> None:
    check = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "render_manifests.py"), "--check", "--crds-only"],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr
