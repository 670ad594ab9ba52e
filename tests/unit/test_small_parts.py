import ast
import subprocess
import sys

import pytest

from llmops_operator.durations import parse_duration
from llmops_operator.kube import contains
from llmops_operator.model_uris import RegistryRef, parse_registry_uri, source_kind


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("5m", 300), ("1h30m", 5400), ("250ms", 0.25)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5", "5 m", "m5", "1d"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_registry_uris() -> None:
    assert parse_registry_uri("models:/llama@champion") == RegistryRef("llama", "champion", None)
    assert parse_registry_uri("models:/llama/7") == RegistryRef("llama", None, "7")
    assert parse_registry_uri("hf://org/llama") is None
    assert [
        source_kind(u) for u in ("hf://a/b", "pvc://c/p", "s3://b/k", "models:/m/1", "runs:/x/model")
    ] == [
        "hf",
        "pvc",
        "s3",
        "registry",
        "artifact",
    ]


def test_contains_ignores_server_added_fields_but_not_changed_ones() -> None:
    desired = {"spec": {"ports": [{"name": "http", "port": 8000}], "replicas": 2}}
    live = {"spec": {"ports": [{"name": "http", "port": 8000, "protocol": "TCP"}], "replicas": 2, "x": 1}}
    assert contains(live, desired)
    assert not contains({"spec": {**live["spec"], "replicas": 3}}, desired)
    assert not contains({"spec": {**live["spec"], "ports": []}}, desired)
    assert not contains({}, desired)


def test_the_operator_starts_without_its_heavy_libraries() -> None:
    """mlflow, matplotlib and scipy (about 200 MiB together) load only when a registry model,
    a drift report or a statistical test first needs them."""
    script = "import sys, llmops_operator.handlers; print(sorted({m.split('.')[0] for m in sys.modules}))"
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert not {"mlflow", "matplotlib", "scipy"} & set(ast.literal_eval(loaded.stdout))
