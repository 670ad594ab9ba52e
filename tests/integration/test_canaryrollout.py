"""CanaryRollout end to end: the operator, the local control plane, a real Prometheus scraping
vLLM-compatible servers, a real MLflow registry, and a load generator splitting requests by the
weights the operator actually set (the HTTPRoute's backendRefs, or the Ready pods of each side).

kwok runs no containers, so each side's pods are stood in for by one simulator process; the scrape
config gives its series the labels a ServiceMonitor would give the pods (namespace, pod, service,
llmops_dev_llmdeployment, llmops_dev_model_version), so the operator's queries are the real ones.
Every scenario runs in both routing modes.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.argocd_health import health as argocd_health
from tests.simulator.loadgen import LoadGenerator
from tests.simulator.vllm_sim import Behaviour, VLLMSimulator

from .conftest import KUBECTL, PLUGIN_DIR, Cluster, MLflowServer, OperatorProcess, PrometheusServer, wait_for

STABLE = "llama"
CANARY = "llama-canary"
INTERVAL = 4  # seconds between measurements
GOOD = Behaviour(ttft_ms=40, itl_ms=10)  # e2e ~110 ms: p95 ~285 ms with vLLM's buckets
SLOW = Behaviour(ttft_ms=120, itl_ms=30)  # three times slower: p95 ~490 ms
FAILING = Behaviour(ttft_ms=40, itl_ms=10, failure_percent=5)
MODES = ["replica-ratio", "gateway-api"]


class World:
    """One rollout's surroundings, started per test and torn down after it."""

    def __init__(
        self,
        cluster: Cluster,
        namespace: str,
        tmp_path: Path,
        mlflow: MLflowServer,
        mode: str,
        canary_behaviour: Behaviour,
        options: dict[str, Any] | None = None,
        **sim_options: Any,
    ) -> None:
        """``options`` shape the two sides (``stable``, ``answers``, ``canary_max_model_len``,
        ``prompt_words``); ``sim_options`` go to both simulators (``inter_token_metric``: an older
        vLLM's name)."""
        self.cluster, self.namespace, self.mode, self.mlflow = cluster, namespace, mode, mlflow
        self.model = f"m-{namespace}"
        options = options or {}
        stable_behaviour = options.get("stable", GOOD)
        answers = options.get("answers")
        self.stable_sim = VLLMSimulator(
            STABLE, 0, Behaviour(**vars(stable_behaviour)), answers=answers
        ).start()
        self.canary_sim = VLLMSimulator(
            STABLE,
            0,
            Behaviour(**vars(canary_behaviour)),
            options.get("canary_max_model_len", 2048),
            answers=answers,
            **sim_options,
        ).start()
        self.prompt_words: Any = options.get("prompt_words", lambda: 2)
        self.prometheus = PrometheusServer(tmp_path / "prometheus", self._scrape_config())
        self.operator = OperatorProcess(
            namespace,
            tmp_path / "operator.log",
            env={
                "LLMOPS_PROMETHEUS_URL": self.prometheus.url,
                "LLMOPS_MLFLOW_TRACKING_URI": mlflow.uri,
                "LLMOPS_ROLLOUT_TICK_SECONDS": "1",
            },
        )
        self.canary_traffic = True
        self.load: LoadGenerator | None = None
        # What other test modules vary: the route's stable backend (a Service, or an InferencePool),
        # more of the stable's spec, and a load generator that routes by the HTTPRoute's rules.
        self.backend: dict[str, Any] = {"name": STABLE, "port": 8000}
        self.stable_extra: dict[str, Any] = {}
        self.route_rules = False
        self.headers: Callable[[], dict[str, str]] = dict

    def _scrape_config(self) -> dict[str, Any]:
        def target(sim: VLLMSimulator, deployment: str, version: str) -> dict[str, Any]:
            service = STABLE if self.mode == "replica-ratio" else deployment
            return {
                "targets": [f"127.0.0.1:{sim.port}"],
                "labels": {
                    "namespace": self.namespace,
                    "pod": f"{deployment}-7d9f8b6c5d-x2x4z",
                    "service": service,
                    "llmops_dev_llmdeployment": deployment,
                    "llmops_dev_model_version": version,
                },
            }

        return {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {
                    "job_name": "vllm",
                    "static_configs": [
                        target(self.stable_sim, STABLE, "1"),
                        target(self.canary_sim, CANARY, "2"),
                    ],
                }
            ],
        }

    # -- the data plane stand-in --------------------------------------------------------------

    def canary_share(self) -> float:
        if not self.canary_traffic:
            share = 0.0
        elif self.mode == "gateway-api":
            route = self.cluster.get("httproute", "-n", self.namespace, "chat")
            refs = route["spec"]["rules"][0]["backendRefs"]
            weights = {ref["name"]: int(ref.get("weight", 1)) for ref in refs}
            total = sum(weights.values())
            share = weights.get(CANARY, 0) / total if total else 0.0
        else:
            canary, stable = self.ready(CANARY), self.ready(STABLE)
            if not self.joins_stable_service():
                canary = 0  # its pods serve their own Service only (while it is being evaluated)
            share = canary / (canary + stable) if canary + stable else 0.0
        return share

    def joins_stable_service(self) -> bool:
        """Whether the canary's pods carry the stable's Service label, as the operator asks with
        the serves-for annotation on the canary LLMDeployment."""
        result = self.cluster.kubectl(
            "get", "llmdeployment", CANARY, "-n", self.namespace, "-o", "json", check=False
        )
        if result.returncode != 0:
            return False
        annotations = json.loads(result.stdout)["metadata"].get("annotations") or {}
        return annotations.get("llmops.dev/serves-for") == STABLE

    def route(self) -> dict[str, Any]:
        return self.cluster.get("httproute", "chat", "-n", self.namespace)

    def ready(self, deployment: str) -> int:
        result = self.cluster.kubectl(
            "get",
            "deployment",
            deployment,
            "-n",
            self.namespace,
            "-o",
            "jsonpath={.status.readyReplicas}",
            check=False,
        )
        return int(result.stdout or 0) if result.returncode == 0 else 0

    # -- set-up --------------------------------------------------------------------------------

    def start(self, rollout_spec: dict[str, Any]) -> None:
        version_1 = self.mlflow.register(self.model, "s3://models/llama/v1", alias="champion")
        version_2 = self.mlflow.register(self.model, "s3://models/llama/v2")
        assert (version_1, version_2) == ("1", "2")
        self.prometheus.start()
        self.operator.start()
        stable = {
            "apiVersion": "llmops.dev/v1alpha1",
            "kind": "LLMDeployment",
            "metadata": {"name": STABLE},
            "spec": {"model": {"uri": f"models:/{self.model}@champion"}, "replicas": 2, **self.stable_extra},
        }
        self.cluster.apply(stable, self.namespace)
        if self.mode == "gateway-api":
            route = {
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "HTTPRoute",
                "metadata": {"name": "chat"},
                "spec": {
                    "parentRefs": [{"name": "inference-gateway"}],
                    "rules": [{"backendRefs": [dict(self.backend)]}],
                },
            }
            self.cluster.apply(route, self.namespace)
        wait_for(lambda: self.ready(STABLE) == 2, timeout=120, what="the stable side Ready")
        self.load = LoadGenerator(
            f"http://127.0.0.1:{self.stable_sim.port}",
            f"http://127.0.0.1:{self.canary_sim.port}",
            self.canary_share,
            prompt_words=self.prompt_words,
            route=self.route if self.route_rules else None,
            backends=(STABLE, CANARY),
            headers=self.headers,
        ).start()
        spec = {"targetRef": {"name": STABLE}, "canary": {"model": {"uri": f"models:/{self.model}/2"}}}
        if self.mode == "gateway-api":
            spec["trafficRouting"] = {"gatewayAPI": {"httpRoute": "chat"}}
        spec.update(rollout_spec)
        rollout = {
            "apiVersion": "llmops.dev/v1alpha1",
            "kind": "CanaryRollout",
            "metadata": {"name": "upgrade"},
            "spec": spec,
        }
        self.cluster.apply(rollout, self.namespace)

    def stop(self) -> None:
        if self.load is not None:
            self.load.stop()
        self.operator.stop()
        self.prometheus.stop()
        self.stable_sim.stop()
        self.canary_sim.stop()

    # -- reading the outcome -------------------------------------------------------------------

    def rollout(self) -> dict[str, Any]:
        return self.cluster.get("canaryrollout", "upgrade", "-n", self.namespace)

    def condition(self, type_: str) -> dict[str, Any]:
        conditions = (self.rollout().get("status") or {}).get("conditions") or []
        return next((c for c in conditions if c["type"] == type_), {})

    def phase(self) -> str:
        return str((self.rollout().get("status") or {}).get("phase", ""))

    def wait_phase(self, phase: str, timeout: float = 120) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            rollout = self.rollout()
            status = rollout.get("status") or {}
            assert status.get("phase") not in {"Promoted", "RolledBack"} - {phase}, status
            return rollout if status.get("phase") == phase else None

        return dict(wait_for(reached, timeout=timeout, interval=0.5, what=f"phase {phase}"))


def analysis(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "interval": f"{INTERVAL}s",
        "metrics": [
            {"name": "error-rate", "preset": "errorRate", "max": "1"},
            {"name": "latency", "preset": "e2eLatencyP95", "max": "400"},
        ],
        "failureLimit": 1,
    }
    spec.update(overrides)
    return spec


STEPS = [{"setWeight": 50}, {"analysis": {}}, {"setWeight": 100}, {"analysis": {}}]


def reconciles(world: World) -> float:
    """CanaryRollout ticks the operator process has finished (0 while its metrics are not up)."""
    try:
        return world.operator.metric("llmops_reconciles_total", kind="CanaryRollout")
    except OSError:
        return 0.0


@pytest.fixture
def world(
    cluster: Cluster,
    namespace: str,
    tmp_path: Path,
    mlflow_server: MLflowServer,
    request: pytest.FixtureRequest,
) -> Iterator[World]:
    mode, behaviour, *options = request.param
    handle = World(cluster, namespace, tmp_path, mlflow_server, mode, behaviour, *options)
    try:
        yield handle
    finally:
        # Shown only when the test fails: where the rollout stood and what happened around it.
        for what in (["canaryrollout", "-o", "yaml"], ["llmdeployment,deployment,httproute", "-o", "wide"]):
            print(cluster.kubectl("get", "-n", namespace, *what, check=False).stdout)
        events = cluster.kubectl("get", "events", "-n", namespace, "--sort-by=.lastTimestamp", check=False)
        print(events.stdout)
        handle.stop()
        assert "Traceback" not in handle.operator.logs(), handle.operator.logs()


def worlds(behaviour: Behaviour, modes: list[str] = MODES) -> Any:
    return pytest.mark.parametrize("world", [(mode, behaviour) for mode in modes], indirect=True, ids=modes)


@worlds(GOOD)
def test_good_canary_is_promoted_through_every_step(world: World) -> None:
    world.start({"steps": STEPS, "analysis": analysis()})
    weights_seen: set[int] = set()

    def promoted() -> bool:
        status = world.rollout().get("status") or {}
        weights_seen.add(int(status.get("canaryWeight", 0)))
        return status.get("phase") == "Promoted"

    wait_for(promoted, timeout=150, what="promotion")
    assert {50, 100} <= weights_seen
    status = world.rollout()["status"]
    assert {m["metric"]: m["phase"] for m in status["measurements"]} == {
        "error-rate": "Successful",
        "latency": "Successful",
    }
    assert all(m["value"] for m in status["measurements"]), status["measurements"]
    assert world.condition("Promoted")["status"] == "True"
    assert world.condition("Ready")["status"] == "True"
    assert argocd_health(world.rollout())["status"] == "Healthy"
    # The operator's own metrics tell the same story to Prometheus.
    rollout = {"namespace": world.namespace, "name": "upgrade"}
    metric = world.operator.metric
    assert metric("llmops_canaryrollout_phase", phase="Promoted", **rollout) == 1
    assert metric("llmops_canaryrollout_phase", phase="Progressing", **rollout) == 0
    assert metric("llmops_analysis_measurements_total", rollout="upgrade", phase="Successful") >= 2
    assert metric("llmops_reconciles_total", kind="CanaryRollout", result="success") > 0
    assert metric("llmops_canaryrollout_rollbacks_total", **rollout) == 0
    # The stable LLMDeployment now serves the canary's version, and the registry alias moved.
    stable = world.cluster.get("llmdeployment", STABLE, "-n", world.namespace)
    assert stable["spec"]["model"]["uri"] == f"models:/{world.model}/2"
    assert stable["status"]["model"]["version"] == "2"
    champion = world.mlflow.client().get_model_version_by_alias(world.model, "champion")
    assert champion.version == "2"
    # The canary is gone and the stable side is back at its own size.
    canaries = world.cluster.get("llmdeployment", "-n", world.namespace, "-l", "llmops.dev/canary-of=llama")
    assert canaries["items"] == []
    wait_for(lambda: world.ready(STABLE) == 2, timeout=30, what="stable back at 2 replicas")
    if world.mode == "gateway-api":
        route = world.cluster.get("httproute", "chat", "-n", world.namespace)
        weights = {ref["name"]: ref["weight"] for ref in route["spec"]["rules"][0]["backendRefs"]}
        assert weights == {STABLE: 100, CANARY: 0}


@pytest.mark.parametrize(
    "world",
    [(mode, fault) for fault in (SLOW, FAILING) for mode in MODES],
    indirect=True,
    ids=[f"{mode}-{name}" for name in ("latency-x3", "errors-5pct") for mode in MODES],
)
def test_bad_canary_is_rolled_back_within_two_intervals(world: World) -> None:
    world.start({"steps": STEPS, "analysis": analysis(), "scaleDownDelay": "3s"})
    stable_ready: list[int] = []

    def rolled_back() -> bool:
        stable_ready.append(world.ready(STABLE))
        return (world.rollout().get("status") or {}).get("phase") == "RolledBack"

    wait_for(rolled_back, timeout=120, interval=0.25, what="a rollback")
    rolled = world.condition("RolledBack")
    assert rolled["status"] == "True" and rolled["reason"] == "AnalysisFailed"
    failing_metric = "latency" if world.canary_sim.behaviour.failure_percent == 0 else "error-rate"
    assert failing_metric in rolled["message"], rolled["message"]
    # Two intervals: rolled back on the measurement that went past failureLimit (1), not one later.
    status = world.rollout()["status"]
    tally = next(t for t in status["tallies"] if t["name"] == failing_metric)
    assert tally["failed"] == analysis()["failureLimit"] + 1, tally
    latest = next(m for m in status["measurements"] if m["metric"] == failing_metric)
    assert latest["phase"] == "Failed", latest
    assert world.condition("Promoted")["status"] == "False"
    # All traffic back on stable, the stable at full size, and it never stopped serving.
    wait_for(lambda: world.canary_share() == 0.0, timeout=10, what="no traffic to the canary")
    wait_for(lambda: world.ready(STABLE) == 2, timeout=30, what="stable back at 2 replicas")
    assert world.load is not None and world.load.errors[0] == 0
    assert min(stable_ready) >= 1, "the stable side stopped serving"
    wait_for(lambda: world.ready(CANARY) == 0, timeout=30, what="the canary scaled to zero")
    # The registry remembers the verdict; the champion alias did not move.
    version = world.mlflow.client().get_model_version(world.model, "2")
    assert version.tags.get("llmops.dev/verdict") == "rejected"
    assert world.mlflow.client().get_model_version_by_alias(world.model, "champion").version == "1"
    stable = world.cluster.get("llmdeployment", STABLE, "-n", world.namespace)
    assert stable["spec"]["model"]["uri"] == f"models:/{world.model}@champion"
    events = world.cluster.get("events", "-n", world.namespace, "--field-selector", "reason=RolledBack")
    assert any(failing_metric in event["message"] for event in events["items"])
    assert world.operator.metric("llmops_canaryrollout_rollbacks_total", namespace=world.namespace) == 1
    assert argocd_health(world.rollout()) == {
        "status": "Degraded",
        "message": f"AnalysisFailed: {rolled['message']}",
    }


def every_fifth_prompt_long() -> Any:
    """Four short prompts, then one of 100 words, over and over."""
    count = iter(range(10**9))
    return lambda: 100 if next(count) % 5 == 4 else 2


SHORTER_CONTEXT = {"canary_max_model_len": 64, "prompt_words": every_fifth_prompt_long()}
TERSE = Behaviour(ttft_ms=40, itl_ms=10, answer_tokens=4)  # answers fit in max_tokens (8): "stop"
VERBOSE = Behaviour(ttft_ms=40, itl_ms=10, answer_tokens=12)  # cut at max_tokens: "length"


@pytest.mark.parametrize(
    "world",
    [("replica-ratio", GOOD, SHORTER_CONTEXT), ("gateway-api", VERBOSE, {"stable": TERSE})],
    indirect=True,
    ids=["shorter-max-model-len", "truncating"],
)
def test_default_analysis_sees_refused_long_prompts_and_truncated_answers(world: World) -> None:
    """As fast and without one 5xx, but a canary that answers long prompts with vLLM's 400
    ("maximum context length") or cuts its answers at max_tokens is rolled back by the default
    metrics, judged against the stable on the same traffic."""
    # One failed measurement rolls back, out of three rounds at 50%: the canary's 4xx series is
    # born with its first refused prompt, so the first round's rate window may not see it yet.
    spec = analysis(metrics=[], failureLimit=0, minSuccessfulMeasurements=3)
    world.start({"steps": STEPS, "analysis": spec, "scaleDownDelay": "3s"})
    world.wait_phase("RolledBack", timeout=120)
    rolled = world.condition("RolledBack")
    failing = "client-error-share" if world.mode == "replica-ratio" else "truncation-share"
    # Either the fast-fail watch or the full measurement gets there first, by the machine's pace.
    assert rolled["reason"] in ("AnalysisFailed", "FailedFast") and failing in rolled["message"], rolled
    status = world.rollout()["status"]
    if rolled["reason"] == "FailedFast":
        # The 5xx share and the latency were fine: only the new presets could see it.
        assert {e["metric"] for e in status["failFast"] if e["fired"]} == {failing}, status["failFast"]
    else:
        measured = {m["metric"]: m for m in status["measurements"]}
        assert measured[failing]["phase"] == "Failed", measured
        assert measured["error-rate"]["phase"] == "Successful", measured
        assert measured["latency-p95"]["phase"] == "Successful", measured
    if world.mode == "replica-ratio":
        assert world.load is not None and world.load.errors[1] > 0 and world.load.errors[0] == 0


@worlds(GOOD)
def test_canary_without_traffic_pauses_with_no_data(world: World) -> None:
    world.canary_traffic = False
    world.start({"steps": STEPS, "analysis": analysis(inconclusiveLimit=1)})
    paused = wait_for(
        lambda: world.condition("Paused").get("reason") == "NoData", timeout=90, what="a NoData pause"
    )
    assert paused

    def inconclusive() -> int:
        return sum(t["inconclusive"] for t in world.rollout()["status"]["tallies"])

    # Three more measurements with no data: still paused, neither promoted nor rolled back.
    before = inconclusive()
    wait_for(lambda: inconclusive() >= before + 3, timeout=12 * INTERVAL, what="three more measurements")
    status = world.rollout()["status"]
    assert status["phase"] == "Paused" and status["pausedReason"] == "NoData"
    assert status["currentStepIndex"] == 1 and status["canaryWeight"] == 50
    assert world.condition("Progressing")["reason"] == "NoData"
    assert {m["phase"] for m in status["measurements"]} == {"Inconclusive"}
    assert world.condition("Promoted")["status"] == "False"
    assert world.condition("RolledBack")["status"] == "False"
    # Traffic arrives: the rollout carries on by itself.
    world.canary_traffic = True
    world.wait_phase("Promoted", timeout=120)


@worlds(GOOD)
def test_prometheus_outage_pauses_and_the_rollout_resumes(world: World) -> None:
    world.start(
        {
            "steps": STEPS,
            "analysis": analysis(consecutiveErrorLimit=1, minSuccessfulMeasurements=2),
        }
    )
    wait_for(
        lambda: any(
            m["phase"] == "Successful"
            for m in (world.rollout().get("status") or {}).get("measurements") or []
        ),
        timeout=90,
        what="a first successful measurement",
    )
    world.prometheus.stop()
    wait_for(
        lambda: world.condition("Paused").get("reason") == "MetricsUnavailable",
        timeout=60,
        what="a MetricsUnavailable pause",
    )
    status = world.rollout()["status"]
    assert status["phase"] == "Paused"
    assert {m["phase"] for m in status["measurements"]} == {"Error"}
    assert "unreachable" in world.condition("Paused")["message"]
    assert world.condition("RolledBack")["status"] == "False"
    world.prometheus.start()
    world.wait_phase("Promoted", timeout=150)


@worlds(GOOD)
def test_operator_killed_mid_step_resumes_at_that_step(world: World) -> None:
    world.start(
        # A pause long enough to outlast a kill and a restart on a loaded machine (seen: 21 s).
        {"steps": [{"setWeight": 50}, {"pause": {"duration": "40s"}}, *STEPS[2:]], "analysis": analysis()}
    )
    wait_for(
        lambda: (world.rollout().get("status") or {}).get("currentStepIndex") == 1,
        timeout=90,
        what="the pause step",
    )
    before = world.rollout()["status"]
    world.operator.kill()
    time.sleep(3)
    world.operator.start()
    wait_for(lambda: reconciles(world) >= 2, timeout=30, what="the restarted operator to tick the rollout")
    after = world.rollout()["status"]
    assert after["currentStepIndex"] == 1, after
    assert after["stepStartedAt"] == before["stepStartedAt"]
    canaries = world.cluster.get("llmdeployment", "-n", world.namespace, "-l", "llmops.dev/canary-of=llama")
    assert [item["metadata"]["name"] for item in canaries["items"]] == [CANARY]
    selector = f"llmops.dev/llmdeployment={CANARY}"
    replica_sets = world.cluster.get("replicasets", "-n", world.namespace, "-l", selector)
    assert len(replica_sets["items"]) == 1, "the canary was recreated or rolled"
    world.wait_phase("Promoted", timeout=150)
    started = world.cluster.get("events", "-n", world.namespace, "--field-selector", "reason=Started")
    assert len(started["items"]) == 1, "the rollout started twice"


def cli(world: World, *args: str) -> str:
    """``kubectl llmops ...`` through the real kubectl, which finds the plugin on PATH."""
    env = {
        **os.environ,
        "KUBECONFIG": str(world.cluster.kubeconfig),
        "PATH": f"{PLUGIN_DIR}:{os.environ['PATH']}",
    }
    result = subprocess.run(
        [str(KUBECTL), "llmops", "-n", world.namespace, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@worlds(GOOD, modes=["replica-ratio"])
def test_manual_control_and_one_rollout_per_target(world: World) -> None:
    world.start({"steps": [{"setWeight": 50}, {"pause": {}}, *STEPS[2:]], "analysis": analysis()})
    wait_for(
        lambda: world.condition("Paused").get("reason") == "WaitingForPromote", timeout=90, what="the pause"
    )
    view = cli(world, "rollout", "get", "upgrade")
    assert "->   2. pause (until promoted)" in view
    assert "canary 50%  stable 50%" in view
    assert "error-rate" in view or "Metrics:" not in view

    # A second rollout of the same LLMDeployment waits for the first.
    second = {
        "apiVersion": "llmops.dev/v1alpha1",
        "kind": "CanaryRollout",
        "metadata": {"name": "other"},
        "spec": {
            "targetRef": {"name": STABLE},
            "canary": {"engine": {"extraArgs": ["--enable-prefix-caching"]}},
        },
    }
    world.cluster.apply(second, world.namespace)

    def other() -> dict[str, Any]:
        return world.cluster.get("canaryrollout", "other", "-n", world.namespace).get("status") or {}

    wait_for(lambda: other().get("phase") == "Waiting", timeout=30, what="the second rollout waiting")
    progressing = next(c for c in other()["conditions"] if c["type"] == "Progressing")
    assert progressing["reason"] == "WaitingForRollout" and "upgrade" in progressing["message"]

    cli(world, "rollout", "pause", "upgrade")
    wait_for(lambda: world.condition("Paused").get("reason") == "Manual", timeout=30, what="a manual pause")
    cli(world, "rollout", "resume", "upgrade")
    wait_for(
        lambda: world.condition("Paused").get("reason") == "WaitingForPromote", timeout=30, what="resumed"
    )

    # Abort: everything back on stable; the waiting rollout takes its turn.
    cli(world, "rollout", "abort", "upgrade")
    world.wait_phase("RolledBack", timeout=30)
    assert world.condition("RolledBack")["reason"] == "Aborted"
    wait_for(
        lambda: other().get("phase") in ("Progressing", "Paused"),
        timeout=60,
        what="the second rollout started",
    )
    cli(world, "rollout", "abort", "other")
    wait_for(lambda: other().get("phase") == "RolledBack", timeout=30, what="the second rollout aborted")

    # Retry the first from the start, promote it past its pause, and it completes.
    cli(world, "rollout", "retry", "upgrade")
    wait_for(
        lambda: world.condition("Paused").get("reason") == "WaitingForPromote",
        timeout=90,
        what="the pause again",
    )
    cli(world, "rollout", "promote", "upgrade")
    world.wait_phase("Promoted", timeout=120)
    final = cli(world, "rollout", "get", "upgrade", "--watch")  # returns at once: the rollout has ended
    assert "Status:    Promoted" in final and "done 3. setWeight 100%" in final


@worlds(GOOD)
def test_deleting_a_rollout_mid_flight_gives_everything_back_to_stable(world: World) -> None:
    world.start({"steps": [{"setWeight": 50}, {"pause": {}}], "analysis": analysis()})
    wait_for(
        lambda: world.condition("Paused").get("reason") == "WaitingForPromote", timeout=90, what="the pause"
    )
    assert world.canary_share() == 0.5
    world.cluster.kubectl(
        "delete", "canaryrollout", "upgrade", "-n", world.namespace, "--wait=true", timeout=60
    )
    wait_for(lambda: world.canary_share() == 0.0, timeout=30, what="no traffic to the canary")
    wait_for(lambda: world.ready(STABLE) == 2, timeout=30, what="the stable back at 2 replicas")
    wait_for(
        lambda: (
            not world.cluster.get("llmdeployment", "-n", world.namespace, "-l", "llmops.dev/canary-of=llama")[
                "items"
            ]
        ),
        timeout=30,
        what="the canary garbage-collected",
    )
    stable = world.cluster.get("llmdeployment", STABLE, "-n", world.namespace)
    assert stable["spec"]["model"]["uri"] == f"models:/{world.model}@champion"


@worlds(GOOD, modes=["gateway-api"])
def test_gitops_promotion_writes_nothing_and_says_what_git_must_change(world: World) -> None:
    world.start(
        {
            "steps": [{"setWeight": 100}, {"analysis": {}}],
            "analysis": analysis(),
            "promotion": {"mode": "GitOps", "registryAlias": "champion"},
        }
    )
    wanted = [{"path": "spec.model.uri", "value": f"models:/{world.model}/2"}]
    wait_for(
        lambda: (world.rollout().get("status") or {}).get("gitopsChanges") == wanted,
        timeout=120,
        what="the changes Git must make",
    )
    assert world.phase() == "Promoting"
    assert "Git" in world.condition("Progressing")["message"]
    ticks = reconciles(world)
    wait_for(lambda: reconciles(world) >= ticks + 2, timeout=30, what="two more ticks while Promoting")
    stable = world.cluster.get("llmdeployment", STABLE, "-n", world.namespace)
    assert stable["spec"]["model"]["uri"] == f"models:/{world.model}@champion"  # untouched
    # Git syncs: the change arrives through the user's own apply, and the rollout completes.
    stable_spec = {"model": {"uri": f"models:/{world.model}/2"}, "replicas": 2}
    world.cluster.apply(
        {
            "apiVersion": "llmops.dev/v1alpha1",
            "kind": "LLMDeployment",
            "metadata": {"name": STABLE},
            "spec": stable_spec,
        },
        world.namespace,
    )
    world.wait_phase("Promoted", timeout=120)
    assert world.mlflow.client().get_model_version_by_alias(world.model, "champion").version == "2"
