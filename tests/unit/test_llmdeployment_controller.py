"""The LLMDeployment controller against recorded API calls: what it writes, given what it sees."""

from __future__ import annotations

from typing import Any

import kopf
import pytest

from llmops_operator.config import Settings
from llmops_operator.handlers import llmdeployment
from llmops_operator.handlers.llmdeployment import LLMDeploymentController, in_memory_copy
from llmops_operator.names import SERVES_FOR_ANNOTATION
from llmops_operator.registry.mlflow import RegistryUnavailable, ResolvedVersion
from llmops_operator.workqueue import RetryLater

from .fake_kube import FakeKube


class RecordingKube(FakeKube):
    """The fake, with every status patch and Event in one list of writes, as (verb, what)."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[tuple[str, str]] = []

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.log.append(("apply", obj["kind"]))
        return super().apply(obj)

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        self.log.append(("delete", kind))
        return super().delete(kind, namespace, name)

    def patch_status(self, kind: str, namespace: str, name: str, changes: dict[str, Any]) -> dict[str, Any]:
        self.log.append(("status", ",".join(sorted(changes))))
        if (kind, namespace, name) not in self.objects:  # a body the test made, never stored
            self.put({"kind": kind, "metadata": {"name": name, "namespace": namespace}})
        return super().patch_status(kind, namespace, name, changes)

    def post_event(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        self.log.append(("event", reason))
        super().post_event(obj, type_, reason, message)

    @property
    def status(self) -> dict[str, Any]:
        return self.status_of("LLMDeployment", "ns", "m")


def body(uri: str, replicas: int = 2, status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "llmops.dev/v1alpha1",
        "kind": "LLMDeployment",
        "metadata": {"name": "m", "namespace": "ns", "uid": "u-1", "generation": 1},
        "spec": {"model": {"uri": uri}, "resources": {"gpus": 0}, "replicas": replicas},
        "status": status or {},
    }


def reconcile(
    controller: LLMDeploymentController,
    obj: dict[str, Any],
    live: dict[str, Any],
    kinds: tuple[str, ...] | None = None,
    ask_registry: bool = True,
) -> None:
    controller.reconcile(obj, ask_registry=ask_registry, live=live, pods=[], kinds=kinds)


def applied_children(obj: dict[str, Any]) -> dict[str, Any]:
    """Every child a first pass over ``obj`` applies, by kind: what the watches then hold."""
    kube = RecordingKube()
    LLMDeploymentController(Settings(), kube).reconcile(obj, ask_registry=True, live={}, pods=[])
    return {
        kind: kube.stored(kind, namespace, name)
        for kind, namespace, name in kube.objects
        if kind != "LLMDeployment"
    }


def test_first_pass_applies_every_child_and_a_pass_with_them_live_writes_nothing() -> None:
    kube = RecordingKube()
    controller = LLMDeploymentController(Settings(), kube)
    reconcile(controller, body("hf://org/m"), {})
    assert {kind for verb, kind in kube.log if verb == "apply"} == {
        "Deployment",
        "Service",
        "PodDisruptionBudget",
    }
    kube.log.clear()
    reconcile(controller, body("hf://org/m"), applied_children(body("hf://org/m")))
    assert [write for write in kube.log if write[0] != "status"] == []


def test_a_child_event_compares_only_that_kind_and_a_smaller_spec_prunes_the_pdb() -> None:
    live = applied_children(body("hf://org/m"))
    kube = RecordingKube()
    controller = LLMDeploymentController(Settings(), kube)
    edited = {**live, "Service": {**live["Service"], "spec": {**live["Service"]["spec"], "ports": []}}}
    reconcile(controller, body("hf://org/m"), edited, kinds=("Deployment",))
    assert ("apply", "Service") not in kube.log  # a Deployment event looks at the Deployment only
    reconcile(controller, body("hf://org/m"), edited, kinds=("Service",))
    assert ("apply", "Service") in kube.log  # the Service's own event puts it back
    reconcile(controller, body("hf://org/m"), {**live, "Service": None}, kinds=("Service",))
    assert kube.log.count(("apply", "Service")) == 2  # and so does its deletion
    kube.log.clear()
    reconcile(controller, body("hf://org/m", replicas=1), live)
    assert ("delete", "PodDisruptionBudget") in kube.log  # one replica needs no PDB


def test_a_stale_copy_from_a_watch_does_not_undo_the_last_registry_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answer = ResolvedVersion("llama", "3", "s3://models/llama/3", "run-1")
    monkeypatch.setattr(llmdeployment, "resolve", lambda ref, uri: answer)
    kube = RecordingKube()
    controller = LLMDeploymentController(Settings(), kube)
    reconcile(controller, body("models:/llama@prod"), {})
    kube.log.clear()
    # A child's event arrives with the object as the watch saw it before the first status write.
    reconcile(controller, body("models:/llama@prod"), {}, kinds=("Deployment",), ask_registry=False)
    statuses = [changes for verb, changes in kube.log if verb == "status"]
    assert statuses and all("model" in changes for changes in statuses)  # version 3 kept, not None


def test_in_memory_copy_leaves_out_managed_fields_and_whole_spec_annotations() -> None:
    watched: dict[str, Any] = {
        "metadata": {
            "name": "m",
            "managedFields": [{"manager": "kubectl"}],
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": "{...}",
                "llmops.dev/last-handled-configuration": "{...}",
                "llmops.dev/serves-for": "m",
            },
        },
        "spec": {"replicas": 1},
    }
    copy = in_memory_copy(watched)  # type: ignore[arg-type]
    assert copy == {
        "metadata": {"name": "m", "annotations": {"llmops.dev/serves-for": "m"}},
        "spec": {"replicas": 1},
    }
    assert "managedFields" in watched["metadata"]  # the watched object itself is untouched


def test_only_a_whole_pass_over_a_generation_and_annotations_makes_later_events_free() -> None:
    """The object's own events (the operator's status writes among them) cost no pass once a
    whole pass saw what they carry; a spec change or a canary's annotation does."""
    controller = LLMDeploymentController(Settings(), RecordingKube())
    seen = body("hf://org/m")
    reconcile(controller, seen, {}, kinds=("Deployment",))
    assert not controller.handled(seen)  # a child's event compared one kind only
    reconcile(controller, seen, {})
    assert controller.handled({**seen, "status": {"readyReplicas": 2}})
    meta = seen["metadata"]
    assert not controller.handled({**seen, "metadata": {**meta, "generation": 2}})
    annotated = {**meta, "annotations": {SERVES_FOR_ANNOTATION: "stable"}}
    assert not controller.handled({**seen, "metadata": annotated})
    controller.forget("ns", "m", "u-1")
    assert not controller.handled(seen)  # nothing kept once the object is gone


def test_a_watch_copy_older_than_the_last_status_write_does_not_write_it_again() -> None:
    kube = RecordingKube()
    controller = LLMDeploymentController(Settings(), kube)
    stale = body("hf://org/m")
    stale["metadata"]["resourceVersion"] = "1"
    live = applied_children(stale)
    reconcile(controller, stale, live)
    assert [verb for verb, _ in kube.log] == ["status"]
    # A child's event arrives before the watch delivered the object with that status.
    reconcile(controller, stale, live, kinds=("Deployment",))
    assert [verb for verb, _ in kube.log] == ["status"]
    # The watch catches up; a copy with the written status needs no write either.
    caught_up = {**stale, "metadata": {**stale["metadata"], "resourceVersion": "2"}, "status": kube.status}
    reconcile(controller, caught_up, live)
    assert [verb for verb, _ in kube.log] == ["status"]


# -- through the recording fake of kube.py, and the registration ----------------------------------


def stored_body(kube: FakeKube, uri: str, **spec: Any) -> dict[str, Any]:
    obj = body(uri)
    obj["spec"].update(spec)
    return kube.put(obj)


def test_an_invalid_spec_sets_ready_false_invalid_spec_and_applies_nothing() -> None:
    kube = FakeKube()
    obj = stored_body(kube, "hf://org/m", replicas=-3)
    LLMDeploymentController(Settings(), kube).reconcile(obj, ask_registry=True, live={}, pods=[])
    ready = next(c for c in kube.status_of("LLMDeployment", "ns", "m")["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec") and "replicas" in ready["message"]
    assert kube.verbs() == ["status"]


def test_a_registry_that_is_down_is_said_once_applies_nothing_and_asks_for_a_retry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def down(ref: Any, tracking_uri: str) -> ResolvedVersion:
        raise RegistryUnavailable("MLflow at http://m is unreachable")

    monkeypatch.setattr(llmdeployment, "resolve", down)
    kube = FakeKube()
    obj = stored_body(kube, "models:/llama@prod")
    controller = LLMDeploymentController(Settings(), kube)
    with pytest.raises(RetryLater):
        controller.reconcile(obj, ask_registry=True, live={}, pods=[])
    with pytest.raises(RetryLater):
        controller.reconcile(kube.stored("LLMDeployment", "ns", "m"), ask_registry=True, live={}, pods=[])
    conditions = {c["type"]: c for c in kube.status_of("LLMDeployment", "ns", "m")["conditions"]}
    assert (conditions["ModelResolved"]["status"], conditions["ModelResolved"]["reason"]) == (
        "False",
        "RegistryUnavailable",
    )
    assert conditions["Ready"]["reason"] == "RegistryUnavailable"
    assert [reason for _, reason, _ in kube.events] == ["RegistryUnavailable"]  # said once
    assert "apply" not in kube.verbs()


def test_a_pass_sizes_the_stable_deployment_as_a_running_replica_ratio_rollout_asks() -> None:
    kube = FakeKube()
    passes = llmdeployment.Passes(LLMDeploymentController(Settings(), kube))
    key = ("ns", "m")
    indexes: dict[str, Any] = {index_id: {} for index_id in llmdeployment.NEEDED_INDEXES}
    indexes["llmdeployment_index"] = {key: [stored_body(kube, "hf://org/m", replicas=4)]}
    indexes[llmdeployment.ROLLOUT_REPLICAS_INDEX] = {
        key: [{"metadata": {}, "status": {"phase": "Progressing", "stableReplicas": 3}}]
    }
    passes.take_indexes(indexes)
    passes.run(key, kinds=None, ask_registry=True)
    assert kube.stored("Deployment", "ns", "m")["spec"]["replicas"] == 3
    passes.shutdown()


def test_a_missing_index_stops_the_operator_at_start_with_its_name() -> None:
    passes = llmdeployment.Passes(LLMDeploymentController(Settings(), FakeKube()))
    given = {index_id: {} for index_id in llmdeployment.NEEDED_INDEXES if index_id != "pod_index"}
    with pytest.raises(llmdeployment.MissingIndexes, match="pod_index"):
        passes.take_indexes(given)
    passes.shutdown()


def test_the_llmdeployment_controller_registers_every_index_it_reads_by_itself() -> None:
    before = kopf.get_default_registry()
    registry = kopf.OperatorRegistry()
    kopf.set_default_registry(registry)
    try:
        llmdeployment.register(Settings())  # no other controller registered
    finally:
        kopf.set_default_registry(before)
    registered = {str(handler.id) for handler in registry._indexing.get_all_handlers()}
    assert set(llmdeployment.NEEDED_INDEXES) <= registered


@pytest.mark.parametrize("installed", [False, True])
def test_a_service_monitor_is_applied_only_when_its_crd_is_installed(installed: bool) -> None:
    kube = RecordingKube()
    if installed:
        kube.crds.add("servicemonitors.monitoring.coreos.com")
    obj = body("hf://org/m")
    obj["spec"]["monitoring"] = {"serviceMonitor": {"enabled": True}}
    reconcile(LLMDeploymentController(Settings(), kube), obj, {})
    assert (("apply", "ServiceMonitor") in kube.log) is installed
    condition = next(c for c in kube.status["conditions"] if c["type"] == "ServiceMonitorReady")
    assert (condition["status"], condition["reason"]) == (
        ("True", "Created") if installed else ("False", "CRDNotInstalled")
    )
