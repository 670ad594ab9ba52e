"""The CanaryRollout controller's ticks against the recording fake of kube.py: what a user sees in
status, Events and the objects it writes, for each way a tick can go."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest

from llmops_operator.api.common import PrometheusEndpoint
from llmops_operator.config import Settings
from llmops_operator.handlers import canaryrollout
from llmops_operator.handlers.canaryrollout import CanaryRolloutController
from llmops_operator.metrics import MetricsProvider
from llmops_operator.timestamps import format_time, now

from .fake_kube import FakeKube

NS = "ns"


def rollout_object(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "llmops.dev/v1alpha1",
        "kind": "CanaryRollout",
        "metadata": {"name": "r", "namespace": NS, "creationTimestamp": "2026-01-01T10:00:00Z"},
        "spec": {"targetRef": {"name": "llama"}, "canary": {"engine": {"image": "vllm:new"}}, **spec},
    }


def target_object(ready: bool = True, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "llmops.dev/v1alpha1",
        "kind": "LLMDeployment",
        "metadata": {"name": "llama", "namespace": NS},
        "spec": {"model": {"uri": "hf://org/llama", "revision": "1"}, "replicas": 2, **spec},
        "status": {
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "model": {"version": "1"},
        },
    }


def deployment(name: str, ready: int, replicas: int | None = None) -> dict[str, Any]:
    pods = ready if replicas is None else replicas
    return {
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS},
        "status": {"readyReplicas": ready, "replicas": pods, "updatedReplicas": pods},
    }


class FixedProvider:
    """Every query answers the same value."""

    def __init__(self, value: float) -> None:
        self.value = value

    def instant(self, query: str, at: Any = None) -> list[float]:
        return [self.value]

    def range(self, query: str, seconds: float, step_seconds: float, end: Any = None) -> list[float]:
        return [self.value] * 10

    def buckets(self, query: str, at: Any) -> dict[float, float]:
        raise AssertionError("a rollout reads no histograms")


def controller(kube: FakeKube, value: float = 0.0) -> CanaryRolloutController:
    def providers(endpoint: PrometheusEndpoint | None, default_url: str) -> MetricsProvider:
        return FixedProvider(value)

    return CanaryRolloutController(Settings(), kube, providers)


def tick(kube: FakeKube, value: float = 0.0) -> dict[str, Any]:
    body = kube.stored("CanaryRollout", NS, "r")
    controller(kube, value).tick(NS, "r", [body])
    return kube.status_of("CanaryRollout", NS, "r")


def condition(status: dict[str, Any], type_: str) -> tuple[str, str, str]:
    found = next(c for c in status["conditions"] if c["type"] == type_)
    return found["status"], found["reason"], found["message"]


def test_an_invalid_spec_says_so_in_ready_and_writes_nothing_else() -> None:
    broken = rollout_object()
    broken["spec"]["analysis"] = {"interval": "soon"}
    kube = FakeKube(broken)
    status = tick(kube)
    assert condition(status, "Ready")[:2] == ("False", "InvalidSpec")
    assert kube.verbs() == ["status"] and kube.events == []


def test_a_missing_target_waits_with_target_not_found() -> None:
    kube = FakeKube(rollout_object())
    status = tick(kube)
    assert status["phase"] == "Waiting"
    assert condition(status, "Progressing") == ("False", "TargetNotFound", "LLMDeployment llama not found")
    assert kube.verbs() == ["status"]


@pytest.mark.parametrize(
    ("target", "spec", "reason"),
    [
        (target_object(autoscaling={"maxReplicas": 4, "target": "5"}), {}, "TargetAutoscales"),
        (target_object(replicas=-1), {}, "InvalidTarget"),
        (
            target_object(),
            {"analysis": {"metrics": [{"name": "q", "query": "up{x='{{nope}}'}", "max": "1"}]}},
            "InvalidAnalysis",
        ),
        (target_object(ready=False), {}, "WaitingForTarget"),
    ],
)
def test_a_rollout_that_cannot_start_waits_with_a_reason_that_says_why(
    target: dict[str, Any], spec: dict[str, Any], reason: str
) -> None:
    kube = FakeKube(rollout_object(**spec), target)
    status = tick(kube)
    assert status["phase"] == "Waiting"
    assert condition(status, "Progressing")[:2] == ("False", reason)
    assert "LLMDeployment" not in kube.verbs() and kube.events == []


def test_a_second_rollout_of_a_target_waits_for_the_running_one() -> None:
    running = rollout_object()
    running["metadata"] = {**running["metadata"], "name": "first", "uid": "u-first"}
    running["status"] = {"phase": "Progressing"}
    kube = FakeKube(rollout_object(), target_object(), running)
    body = kube.stored("CanaryRollout", NS, "r")
    controller(kube).tick(NS, "r", [body, kube.stored("CanaryRollout", NS, "first")])
    status = kube.status_of("CanaryRollout", NS, "r")
    assert condition(status, "Progressing") == (
        "False",
        "WaitingForRollout",
        "CanaryRollout first is already rolling out llama",
    )


def test_the_first_tick_applies_an_owned_canary_and_the_next_verifies_its_weight() -> None:
    kube = FakeKube(rollout_object(), target_object(), deployment("llama", 2))
    status = tick(kube)
    assert (status["phase"], status["canaryWeight"], status["canaryName"]) == (
        "Progressing",
        10,
        "llama-canary",
    )
    assert kube.stored("LLMDeployment", NS, "llama-canary")["spec"]["replicas"] == 0  # applied at 0%
    assert [reason for _, reason, _ in kube.events] == ["Started"]
    status = tick(kube)  # the canary sized for 10% of 2 replicas
    canary = kube.stored("LLMDeployment", NS, "llama-canary")
    assert canary["spec"]["replicas"] == 1 and canary["spec"]["engine"]["image"] == "vllm:new"
    assert canary["metadata"]["labels"] == {"llmops.dev/canary-of": "llama", "llmops.dev/canaryrollout": "r"}
    assert canary["metadata"]["annotations"] == {"llmops.dev/serves-for": "llama"}  # replica ratio
    assert canary["metadata"]["ownerReferences"][0]["kind"] == "CanaryRollout"
    assert status.get("weightVerifiedAt") is None  # no canary pod is Ready yet
    assert condition(status, "Progressing")[2].startswith("waiting for 10% to reach the canary")
    kube.put(deployment("llama-canary", 1))
    status = tick(kube)  # 10% of 2 replicas takes no stable pod away: capacity never drops
    assert status["weightVerifiedAt"] is not None and status["stableReplicas"] == 2
    assert kube.events[-1][1] == "WeightSet"


def under_analysis(**spec: Any) -> FakeKube:
    """A rollout at 10% whose weight was verified two intervals ago: a measurement is due."""
    body = rollout_object(analysis={"failureLimit": 0, "interval": "1m"}, **spec)
    body["status"] = {
        "phase": "Progressing",
        "canaryName": "llama-canary",
        "canaryWeight": 10,
        "stableWeight": 90,
        "currentStepIndex": 1,
        "stepStartedAt": format_time(now() - timedelta(minutes=3)),
        "weightVerifiedAt": format_time(now() - timedelta(minutes=2)),
    }
    return FakeKube(
        body,
        target_object(),
        deployment("llama", 2, replicas=1),
        deployment("llama-canary", 1),
    )


def test_a_failed_measurement_beyond_the_limit_rolls_back_and_scales_the_canary_down() -> None:
    kube = under_analysis()
    tick(kube, value=50.0)  # 50% errors against at most 1%
    status = kube.status_of("CanaryRollout", NS, "r")
    assert (status["phase"], status["canaryWeight"], status["stableWeight"]) == ("RolledBack", 0, 100)
    assert condition(status, "RolledBack")[:2] == ("True", "AnalysisFailed")
    assert kube.stored("LLMDeployment", NS, "llama-canary")["spec"]["replicas"] == 0
    assert kube.events[-1][:2] == ("Warning", "RolledBack")


def test_successful_measurements_move_the_rollout_to_the_next_weight() -> None:
    kube = under_analysis()
    status = tick(kube, value=0.0)
    assert status["phase"] == "Progressing" and status["currentStepIndex"] == 2
    assert status["canaryWeight"] == 50 and status.get("weightVerifiedAt") is None
    assert {m["phase"] for m in status["measurements"]} == {"Successful"}


def test_an_abort_request_rolls_back_once_with_reason_aborted() -> None:
    kube = under_analysis()
    kube.objects[("CanaryRollout", NS, "r")]["metadata"]["annotations"] = {"llmops.dev/request": "abort:1"}
    status = tick(kube)
    assert status["phase"] == "RolledBack" and status["handledRequest"] == "abort:1"
    assert condition(status, "RolledBack") == ("True", "Aborted", "aborted by request")


def promoting(mode: str = "InPlace") -> FakeKube:
    kube = under_analysis(promotion={"mode": mode, "registryAlias": None})
    kube.objects[("CanaryRollout", NS, "r")]["status"]["phase"] = "Promoting"
    return kube


def test_in_place_promotion_patches_the_target_then_completes_once_the_stable_caught_up() -> None:
    kube = promoting()
    status = tick(kube)
    assert kube.stored("LLMDeployment", NS, "llama")["spec"]["engine"] == {"image": "vllm:new"}
    assert condition(status, "Progressing")[1] == "Promoting" and kube.events[-1][1] == "Promoted"
    target = kube.objects[("LLMDeployment", NS, "llama")]
    target["status"].update({"observedGeneration": target["metadata"]["generation"], "readyReplicas": 2})
    kube.put(deployment("llama", 2))
    status = tick(kube)
    assert status["phase"] == "Promoted" and ("delete", "LLMDeployment", "llama-canary") in kube.writes
    assert condition(status, "Promoted")[0] == "True" and kube.events[-1][1] == "Completed"


def test_gitops_promotion_lists_the_changes_and_writes_no_spec() -> None:
    kube = promoting("GitOps")
    status = tick(kube)
    assert status["gitopsChanges"] == [{"path": "spec.engine.image", "value": "vllm:new"}]
    assert "patch" not in kube.verbs("LLMDeployment")


def test_a_gateway_api_rollout_without_its_route_says_the_route_is_missing() -> None:
    kube = FakeKube(
        rollout_object(trafficRouting={"gatewayAPI": {"httpRoute": "llama-route"}}),
        target_object(),
        deployment("llama", 2),
    )
    kube.put(deployment("llama-canary", 1))
    status = tick(kube)
    assert status["phase"] == "Progressing"
    assert condition(status, "Progressing")[2] == "HTTPRoute llama-route not found"


def test_ended_rollouts_are_left_alone_and_the_canary_of_a_rolled_back_one_goes_after_the_delay() -> None:
    kube = under_analysis()
    kube.objects[("CanaryRollout", NS, "r")]["status"].update(
        {"phase": "RolledBack", "finishedAt": format_time(now() - timedelta(minutes=5))}
    )
    kube.put(
        kube.stored("LLMDeployment", NS, "llama") | {"metadata": {"name": "llama-canary", "namespace": NS}}
    )
    tick(kube)
    assert kube.stored("LLMDeployment", NS, "llama-canary")["spec"]["replicas"] == 0
    assert canaryrollout.gates.settled(kube.stored("CanaryRollout", NS, "r"), now())


class ByQuery:
    """Errors and latency answered apart: the error-rate preset reads http_requests_total; the
    shares judged against the stable (4xx, truncation) read 0 on both sides."""

    def __init__(self, errors: float, latency_ms: float) -> None:
        self.errors, self.latency_ms = errors, latency_ms
        self.looks: list[Any] = []

    def instant(self, query: str, at: Any = None) -> list[float]:
        if at is not None:
            self.looks.append(at)
        return [self.errors if "http_requests_total" in query else self.latency_ms]

    def range(self, query: str, seconds: float, step_seconds: float, end: Any = None) -> list[float]:
        return [0.0] * int(seconds / step_seconds)

    def buckets(self, query: str, at: Any) -> dict[float, float]:
        raise AssertionError("a rollout reads no histograms")


def watched(seconds_ago: float, **spec: Any) -> FakeKube:
    """A rollout at 50% whose weight was verified ``seconds_ago`` (interval 10 s, scrapes 1 s)."""
    analysis = {"interval": "10s", "scrapeInterval": "1s", "failureLimit": 0}
    body = rollout_object(analysis=analysis, **spec)
    body["status"] = {
        "phase": "Progressing",
        "canaryName": "llama-canary",
        "canaryWeight": 50,
        "stableWeight": 50,
        "currentStepIndex": 1,
        "stepStartedAt": format_time(now() - timedelta(minutes=1)),
        "weightVerifiedAt": format_time(now() - timedelta(seconds=seconds_ago)),
    }
    return FakeKube(body, target_object(), deployment("llama", 1), deployment("llama-canary", 1))


def tick_with(kube: FakeKube, provider: ByQuery) -> dict[str, Any]:
    def providers(endpoint: PrometheusEndpoint | None, default_url: str) -> MetricsProvider:
        return provider

    CanaryRolloutController(Settings(), kube, providers).tick(
        NS, "r", [kube.stored("CanaryRollout", NS, "r")]
    )
    return kube.status_of("CanaryRollout", NS, "r")


def test_severe_errors_fail_fast_before_the_interval_and_remove_the_canary_at_once() -> None:
    kube = watched(seconds_ago=8)
    provider = ByQuery(errors=20.0, latency_ms=100.0)
    status = tick_with(kube, provider)
    assert status["phase"] == "RolledBack" and status.get("tallies", []) == []  # no full measurement ran
    assert condition(status, "RolledBack")[:2] == ("True", "FailedFast")
    evidence = next(e for e in status["failFast"] if e["metric"] == "error-rate")
    assert evidence["fired"] and evidence["samples"] == 3 and evidence["statistic"] >= evidence["boundary"]
    assert evidence["lastSampleAt"] and evidence["lastValue"] == "20"
    kind, _, message = next(e for e in kube.events if e[1] == "RolledBack")
    assert kind == "Warning" and "mSPRT" in message and "error-rate" in message
    assert "removed at once" in message
    assert status["rollback"]["order"] == "RemovedAtOnce" and status["rollback"]["canaryRemovedAt"]
    assert kube.stored("LLMDeployment", NS, "llama-canary")["spec"]["replicas"] == 0
    assert status["canaryWeight"] == 0
    # The stable side comes back: how long capacity was short is in status and an Event.
    kube.put(deployment("llama", 2))
    status = tick_with(kube, provider)
    assert status["rollback"]["stableReadyAt"] and status["rollback"]["capacityShortSeconds"] >= 0


def test_a_healthy_canary_is_watched_but_not_rolled_back_and_writes_only_when_evidence_grows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kube = watched(seconds_ago=4)  # two 1.67 s windows have ended; the third ends in 1 s
    frozen = now()  # the controller's clock stands still, so a slow tick cannot end a third window
    monkeypatch.setattr(canaryrollout, "now", lambda: frozen)
    provider = ByQuery(errors=0.0, latency_ms=100.0)
    status = tick_with(kube, provider)
    assert status["phase"] == "Progressing"
    samples = {e["metric"]: e["samples"] for e in status["failFast"]}
    # The default metrics: two with thresholds, two shares judged against the stable.
    assert samples == {"error-rate": 2, "latency-p95": 2, "client-error-share": 2, "truncation-share": 2}
    assert len(provider.looks) == 8  # one query per metric per window
    writes = len(kube.writes)
    tick_with(kube, provider)  # no new window has ended: nothing queried, nothing written
    assert len(provider.looks) == 8 and len(kube.writes) == writes


def test_a_slow_canary_keeps_serving_until_the_stable_side_is_ready_again() -> None:
    kube = watched(seconds_ago=8)
    provider = ByQuery(errors=0.0, latency_ms=9000.0)  # far past the 2000 ms default
    status = tick_with(kube, provider)
    assert condition(status, "RolledBack")[:2] == ("True", "FailedFast")
    assert status["rollback"]["order"] == "KeptUntilStableReady"
    assert status["rollback"].get("canaryRemovedAt") is None
    assert kube.stored("LLMDeployment", NS, "llama-canary")["spec"]["replicas"] == 1  # still serving
    assert "serves until llama has 2 replicas Ready" in kube.events[-1][2]
    status = tick_with(kube, provider)  # the stable side not Ready yet: the canary stays
    assert kube.stored("LLMDeployment", NS, "llama-canary")["spec"]["replicas"] == 1
    kube.put(deployment("llama", 2))
    status = tick_with(kube, provider)
    assert kube.stored("LLMDeployment", NS, "llama-canary")["spec"]["replicas"] == 0
    assert status["rollback"]["canaryRemovedAt"] and status["rollback"]["capacityShortSeconds"] == 0
    assert kube.events[-1][1] == "CanaryRemoved"


def test_fail_fast_off_waits_for_the_full_measurement() -> None:
    kube = watched(seconds_ago=6)  # the measurement is due in 4 s, after the next tick
    body = kube.stored("CanaryRollout", NS, "r")
    body["spec"]["analysis"]["failFast"] = {"enabled": False}
    provider = ByQuery(errors=20.0, latency_ms=100.0)
    status = tick_with(kube, provider)
    assert status["phase"] == "Progressing" and provider.looks == [] and not status.get("failFast")


RATE = {
    "successes": "sum(feedback_good{service='{{canary}}'})",
    "trials": "sum(feedback_total{service='{{canary}}'})",
}


def decided_experiment() -> FakeKube:
    """A rollout whose 10-minute experiment at 30% began 11 minutes ago: it is decided now."""
    experiment = {"duration": "10m", "weight": 30, "metrics": [{"name": "feedback", "rate": RATE}]}
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "chat", "namespace": NS},
        "spec": {
            "rules": [
                {
                    "backendRefs": [
                        {"name": "llama", "port": 8000, "weight": 70},
                        {"name": "llama-canary", "port": 8000, "weight": 30},
                    ]
                }
            ]
        },
    }
    body = rollout_object(
        steps=[{"experiment": experiment}, {"setWeight": 100}],
        trafficRouting={"gatewayAPI": {"httpRoute": "chat"}},
    )
    began = format_time(now() - timedelta(minutes=11))
    body["status"] = {
        "phase": "Progressing",
        "canaryName": "llama-canary",
        "canaryWeight": 30,
        "stableWeight": 70,
        "currentStepIndex": 0,
        "stepStartedAt": began,
        "weightVerifiedAt": began,
        "experimentStartedAt": began,
    }
    return FakeKube(body, target_object(), deployment("llama", 2), deployment("llama-canary", 1), route)


class Feedback:
    """Each side's feedback counts: ``good`` of 1000 for the canary, 500 of 1000 for the stable."""

    def __init__(self, good: float) -> None:
        self.good = good

    def instant(self, query: str, at: Any = None) -> list[float]:
        if "feedback_total" in query:
            return [1000.0]
        return [self.good if "llama-canary" in query else 500.0]

    def range(self, query: str, seconds: float, step_seconds: float, end: Any = None) -> list[float]:
        return [0.0] * int(seconds / step_seconds)

    def buckets(self, query: str, at: Any) -> dict[float, float]:
        raise AssertionError("a rollout reads no histograms")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Real MLflow on a sqlite file, no server; made once (creating its tables takes seconds)."""
    from mlflow import MlflowClient

    directory = tmp_path_factory.mktemp("mlflow")
    tracking = f"sqlite:///{directory}/mlflow.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(directory)  # the store's artifact root, ./mlruns, is fixed where it is made
        MlflowClient(tracking).search_experiments()
    return tracking


def test_an_experiment_decided_again_after_a_lost_status_write_reuses_its_run_and_its_verdict(
    store: str,
) -> None:
    from mlflow import MlflowClient

    tracking = store
    kube = decided_experiment()
    before = copy.deepcopy(kube.stored("CanaryRollout", NS, "r"))

    def decide(good: float) -> dict[str, Any]:
        def providers(endpoint: PrometheusEndpoint | None, default_url: str) -> MetricsProvider:
            return Feedback(good)

        settings = Settings(mlflow_tracking_uri=tracking)
        CanaryRolloutController(settings, kube, providers).tick(
            NS, "r", [kube.stored("CanaryRollout", NS, "r")]
        )
        return kube.status_of("CanaryRollout", NS, "r")

    first = decide(good=500.0)["experiments"]
    assert [r["decision"] for r in first] == ["NoDifference"] and first[0]["mlflowRunId"]
    kube.put(before)  # the restart: the decision's status write never happened
    again = decide(good=400.0)["experiments"]  # later counts would now say CanaryWorse
    assert again == first  # the logged decision, read back, not a second one
    client = MlflowClient(tracking)
    experiment = client.get_experiment_by_name(f"canaryrollout/{NS}/r")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert [run.info.run_id for run in runs] == [first[0]["mlflowRunId"]]
    assert runs[0].data.params["feedback/decision"] == "NoDifference"


def test_a_keyed_run_a_crash_left_unfinished_is_logged_into_not_doubled(
    store: str,
) -> None:
    from mlflow import MlflowClient

    from llmops_operator.registry.mlflow import finished_run, log_run

    client = MlflowClient(store)
    experiment_id = client.create_experiment("crashed")
    crashed = client.create_run(experiment_id, tags={"k": "one"}).info.run_id  # no params, not ended
    key = ("k", "one")
    assert finished_run(store, "crashed", key) is None

    def log() -> str:
        return log_run(
            store, "crashed", "n", tags={}, params={"p": "1"}, metrics={"m": 2.0}, texts={}, key=key
        )

    assert log() == crashed
    assert finished_run(store, "crashed", key) == crashed
    assert log() == crashed
    run = client.get_run(crashed)
    assert (run.info.status, run.data.params, run.data.metrics) == ("FINISHED", {"p": "1"}, {"m": 2.0})
    assert len(client.search_runs([experiment_id])) == 1


def test_the_evaluation_job_reaches_mlflow_with_the_canarys_own_secrets_by_reference(
    store: str,
) -> None:
    evaluation = {
        "dataset": {"configMap": {"name": "prompts", "key": "data.jsonl"}},
        "scorers": [{"name": "exact", "type": "exactMatch", "min": "0.9"}],
    }
    dataset = {
        "kind": "ConfigMap",
        "metadata": {"name": "prompts", "namespace": NS},
        "data": {"data.jsonl": '{"prompt": "2+2?", "reference": "4"}\n'},
    }
    credentials = {"mlflowSecret": "mlflow-creds", "s3Secret": "s3-creds"}
    kube = FakeKube(rollout_object(evaluation=evaluation), target_object(credentials=credentials), dataset)
    settings = Settings(mlflow_tracking_uri=store)
    tick = CanaryRolloutController(settings, kube, lambda endpoint, url: FixedProvider(0.0)).tick
    tick(NS, "r", [kube.stored("CanaryRollout", NS, "r")])  # the canary, at 0%
    canary = kube.objects[("LLMDeployment", NS, "llama-canary")]
    canary["status"] = {"conditions": [{"type": "Ready", "status": "True"}], "model": {"version": "2"}}
    tick(NS, "r", [kube.stored("CanaryRollout", NS, "r")])
    (job,) = [obj for (kind, _, _), obj in kube.objects.items() if kind == "Job"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["envFrom"] == [
        {"secretRef": {"name": "mlflow-creds"}},
        {"secretRef": {"name": "s3-creds"}},
    ]
    assert container["env"] == [{"name": "MLFLOW_TRACKING_URI", "value": store}]  # no value of a Secret
