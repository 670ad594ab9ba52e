"""What README promises of CanaryRollout beyond the main scenarios: the baseline judge, the TTFT and
inter-token presets, the default steps, restarts mid-analysis and mid-promotion, MLflow away during
promotion and rollback, promote outside a pause, a request acted on once, and `kubectl get` columns.
Replica-ratio routing throughout (the routing modes are covered in test_canaryrollout.py)."""

from __future__ import annotations

import contextlib
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.simulator.vllm_sim import INTER_TOKEN_METRIC_BEFORE_0_11, Behaviour

from .conftest import Cluster, MLflowServer, Outage, wait_for
from .test_canaryrollout import CANARY, GOOD, INTERVAL, SLOW, STABLE, STEPS, World, analysis, cli

MODE = "replica-ratio"


@contextlib.contextmanager
def make_world(
    cluster: Cluster,
    namespace: str,
    tmp_path: Path,
    mlflow: MLflowServer,
    behaviour: Behaviour,
    mode: str = MODE,
    **sim_options: Any,
) -> Iterator[World]:
    world = World(cluster, namespace, tmp_path, mlflow, mode, behaviour, **sim_options)
    try:
        yield world
    finally:
        print(cluster.kubectl("get", "-n", namespace, "canaryrollout", "-o", "yaml", check=False).stdout)
        print(
            cluster.kubectl("get", "events", "-n", namespace, "--sort-by=.lastTimestamp", check=False).stdout
        )
        world.stop()
        assert "Traceback" not in world.operator.logs(), world.operator.logs()


@pytest.fixture
def good_world(
    cluster: Cluster, namespace: str, tmp_path: Path, mlflow_server: MLflowServer
) -> Iterator[World]:
    with make_world(cluster, namespace, tmp_path, mlflow_server, GOOD) as world:
        yield world


@pytest.fixture
def slow_world(
    cluster: Cluster, namespace: str, tmp_path: Path, mlflow_server: MLflowServer
) -> Iterator[World]:
    with make_world(cluster, namespace, tmp_path, mlflow_server, SLOW) as world:
        yield world


def measurements(world: World) -> dict[str, dict[str, Any]]:
    return {m["metric"]: m for m in (world.rollout().get("status") or {}).get("measurements") or []}


def events(world: World, reason: str) -> list[dict[str, Any]]:
    return list(
        world.cluster.get("events", "-n", world.namespace, "--field-selector", f"reason={reason}")["items"]
    )


BASELINE_ONLY = {"metrics": [{"name": "latency-vs-stable", "preset": "e2eLatencyP95", "baseline": {}}]}


def test_baseline_judge_promotes_a_canary_as_fast_as_the_stable(good_world: World) -> None:
    world = good_world
    world.start({"steps": [{"setWeight": 50}, {"analysis": {}}], "analysis": analysis(**BASELINE_ONLY)})
    world.wait_phase("Promoted", timeout=150)
    judged = measurements(world)["latency-vs-stable"]
    assert judged["phase"] == "Successful" and judged["value"].startswith("p="), judged
    assert "effect" in judged["value"]


def test_baseline_judge_rolls_back_a_canary_slower_than_the_stable(slow_world: World) -> None:
    world = slow_world
    world.start(
        {
            "steps": [{"setWeight": 50}, {"analysis": {}}],
            "analysis": analysis(failureLimit=0, **BASELINE_ONLY),
        }
    )
    world.wait_phase("RolledBack", timeout=150)
    judged = measurements(world)["latency-vs-stable"]
    assert judged["phase"] == "Failed" and "worse than the stable baseline" in judged["message"], judged
    assert "latency-vs-stable" in world.condition("RolledBack")["message"]


TOKEN_PRESETS = {
    "metrics": [
        # GOOD answers its first token in 40 ms and then one every 10 ms; SLOW in 120 ms and 30 ms.
        {"name": "ttft", "preset": "timeToFirstTokenP95", "max": "100"},
        {"name": "itl", "preset": "interTokenLatencyP95", "max": "35"},
    ],
    "failureLimit": 0,
}


def test_token_latency_presets_pass_a_fast_canary(good_world: World) -> None:
    world = good_world
    world.start({"steps": [{"setWeight": 50}, {"analysis": {}}], "analysis": analysis(**TOKEN_PRESETS)})
    world.wait_phase("Promoted", timeout=150)
    judged = measurements(world)
    assert {name: m["phase"] for name, m in judged.items()} == {"ttft": "Successful", "itl": "Successful"}
    assert 40 <= float(judged["ttft"]["value"]) <= 100 and 0 < float(judged["itl"]["value"]) <= 35


def test_token_latency_presets_fail_a_slow_canary(slow_world: World) -> None:
    world = slow_world
    world.start({"steps": [{"setWeight": 50}, {"analysis": {}}], "analysis": analysis(**TOKEN_PRESETS)})
    world.wait_phase("RolledBack", timeout=150)
    failed = [name for name, m in measurements(world).items() if m["phase"] == "Failed"]
    assert failed and set(failed) <= {"ttft", "itl"}
    assert any(name in world.condition("RolledBack")["message"] for name in failed)


def test_inter_token_preset_reads_an_older_vllms_time_per_output_token_histogram(
    cluster: Cluster, namespace: str, tmp_path: Path, mlflow_server: MLflowServer
) -> None:
    """vLLM before 0.11 has no inter_token_latency_seconds; the preset falls back to the older name."""
    older = {"inter_token_metric": INTER_TOKEN_METRIC_BEFORE_0_11}
    with make_world(cluster, namespace, tmp_path, mlflow_server, GOOD, **older) as world:
        scraped = urllib.request.urlopen(f"http://127.0.0.1:{world.canary_sim.port}/metrics").read().decode()
        assert INTER_TOKEN_METRIC_BEFORE_0_11 in scraped and "vllm:inter_token_latency" not in scraped
        itl = {"metrics": [{"name": "itl", "preset": "interTokenLatencyP95", "max": "35"}], "failureLimit": 0}
        world.start({"steps": [{"setWeight": 50}, {"analysis": {}}], "analysis": analysis(**itl)})
        world.wait_phase("Promoted", timeout=150)
        judged = measurements(world)["itl"]
        assert judged["phase"] == "Successful" and 0 < float(judged["value"]) <= 35, judged


def test_default_steps_and_default_metrics(good_world: World) -> None:
    """No steps and no metrics: 10%, analysis, 50%, analysis, 100%, judged on errors, p95 and the
    4xx and truncation shares against the stable."""
    world = good_world
    world.start({"analysis": {"interval": f"{INTERVAL}s"}})
    weights: set[int] = set()

    def promoted() -> bool:
        status = world.rollout().get("status") or {}
        weights.add(int(status.get("canaryWeight", 0)))
        return status.get("phase") == "Promoted"

    wait_for(promoted, timeout=200, interval=0.25, what="promotion through the default steps")
    assert {10, 50, 100} <= weights
    assert set(measurements(world)) == {"error-rate", "latency-p95", "client-error-share", "truncation-share"}


def test_operator_killed_mid_analysis_neither_loses_nor_repeats_measurements(good_world: World) -> None:
    world = good_world
    world.start(
        {"steps": [{"setWeight": 50}, {"analysis": {}}], "analysis": analysis(minSuccessfulMeasurements=3)}
    )

    def successes(status: dict[str, Any]) -> dict[str, int]:
        return {t["name"]: int(t.get("successful", 0)) for t in status.get("tallies") or []}

    wait_for(
        lambda: min(successes(world.rollout().get("status") or {}).values(), default=0) >= 1,
        timeout=90,
        what="a first successful round",
    )
    world.operator.kill()
    before = world.rollout()["status"]
    world.operator.start()
    after = wait_for(
        lambda: (lambda s: s if s.get("lastMeasuredAt") != before["lastMeasuredAt"] else None)(
            world.rollout()["status"]
        ),
        timeout=60,
        what="the first round after the restart",
    )
    # One more round on top of what was counted before the kill: nothing lost, nothing twice.
    assert successes(after) == {name: count + 1 for name, count in successes(before).items()}, (before, after)
    assert after["currentStepIndex"] == 1 and after["stepStartedAt"] == before["stepStartedAt"]
    world.wait_phase("Promoted", timeout=150)
    assert len(events(world, "Started")) == 1


def test_mlflow_down_during_promotion_waits_then_completes_after_a_restart(
    cluster: Cluster, namespace: str, tmp_path: Path, mlflow_outage: tuple[MLflowServer, Outage]
) -> None:
    mlflow, outage = mlflow_outage
    with make_world(cluster, namespace, tmp_path, mlflow, GOOD) as world:
        # The alias moves after the stable took the canary's spec: stop MLflow as promotion starts.
        world.start({"steps": [{"setWeight": 50}, {"pause": {}}], "analysis": analysis()})
        wait_for(
            lambda: world.condition("Paused").get("reason") == "WaitingForPromote",
            timeout=90,
            what="the pause",
        )
        outage.cut()
        cli(world, "rollout", "promote", "upgrade")
        waiting = wait_for(
            lambda: "cannot move" in world.condition("Progressing").get("message", ""),
            timeout=60,
            what="promotion waiting for MLflow",
        )
        assert waiting
        assert world.phase() == "Promoting"
        assert world.condition("Promoted")["status"] != "True"
        world.operator.kill()  # a restart mid-promotion
        world.operator.start()
        outage.restore()
        world.wait_phase("Promoted", timeout=150)
        assert world.mlflow.client().get_model_version_by_alias(world.model, "champion").version == "2"
        assert len(events(world, "AliasMoved")) == 1
        assert len(events(world, "Completed")) == 1
        assert (
            world.cluster.get("llmdeployment", "-n", namespace, "-l", f"llmops.dev/canary-of={STABLE}")[
                "items"
            ]
            == []
        )


def test_mlflow_down_during_rollback_still_rolls_back_and_says_so(
    cluster: Cluster, namespace: str, tmp_path: Path, mlflow_outage: tuple[MLflowServer, Outage]
) -> None:
    mlflow, outage = mlflow_outage
    with make_world(cluster, namespace, tmp_path, mlflow, SLOW) as world:
        world.start({"steps": [{"setWeight": 50}, {"pause": {}}], "analysis": analysis()})
        wait_for(
            lambda: world.condition("Paused").get("reason") == "WaitingForPromote",
            timeout=90,
            what="the pause",
        )
        outage.cut()
        cli(world, "rollout", "abort", "upgrade")
        world.wait_phase("RolledBack", timeout=60)
        wait_for(lambda: world.canary_share() == 0.0, timeout=30, what="no traffic to the canary")
        wait_for(lambda: world.ready(STABLE) == 2, timeout=30, what="the stable at full size")
        warned = wait_for(lambda: events(world, "RegistryUnavailable"), timeout=30, what="the warning")
        assert "rejected" in warned[0]["message"] and warned[0]["type"] == "Warning"
        outage.restore()
        assert world.mlflow.client().get_model_version_by_alias(world.model, "champion").version == "1"


def test_operator_killed_mid_rollback_finishes_the_rollback_once(
    cluster: Cluster, namespace: str, tmp_path: Path, mlflow_server: MLflowServer
) -> None:
    """With a route the rollback has two halves: traffic back to the stable at once, the canary
    scaled to zero after scaleDownDelay. The operator dies between them and a new one finishes."""
    with make_world(cluster, namespace, tmp_path, mlflow_server, SLOW, mode="gateway-api") as world:
        world.start(
            {
                "steps": [{"setWeight": 50}, {"pause": {}}],
                "analysis": analysis(),
                "scaleDownDelay": "20s",
            }
        )
        wait_for(
            lambda: world.condition("Paused").get("reason") == "WaitingForPromote",
            timeout=90,
            what="the pause",
        )
        cli(world, "rollout", "abort", "upgrade")
        world.wait_phase("RolledBack", timeout=30)
        wait_for(lambda: world.canary_share() == 0.0, timeout=30, what="no traffic to the canary")

        def canary() -> dict[str, Any]:
            return world.cluster.get("llmdeployment", CANARY, "-n", world.namespace)

        before, finished = canary(), world.rollout()["status"]["finishedAt"]
        assert before["spec"]["replicas"] > 0, "the canary went before its delay"
        world.operator.kill()  # mid-rollback: the canary still up, its scale-down pending
        world.operator.start()
        wait_for(lambda: canary()["spec"]["replicas"] == 0, timeout=60, what="the canary scaled to zero")
        wait_for(lambda: world.ready(CANARY) == 0, timeout=30, what="no canary pods Ready")
        after = world.rollout()["status"]
        assert after["phase"] == "RolledBack" and after["finishedAt"] == finished
        assert canary()["metadata"]["generation"] == before["metadata"]["generation"] + 1  # scaled once
        assert len(events(world, "RolledBack")) == 1
        version = world.mlflow.client().get_model_version(world.model, "2")
        assert version.tags.get("llmops.dev/verdict") == "rejected"
        route = world.cluster.get("httproute", "chat", "-n", world.namespace)
        weights = {ref["name"]: ref["weight"] for ref in route["spec"]["rules"][0]["backendRefs"]}
        assert weights == {STABLE: 100, CANARY: 0}


def test_promote_outside_a_pause_skips_the_remaining_steps(good_world: World) -> None:
    world = good_world
    world.start({"steps": [{"setWeight": 50}, {"analysis": {}}, *STEPS[2:]], "analysis": analysis()})
    wait_for(
        lambda: (world.rollout().get("status") or {}).get("currentStepIndex") == 1,
        timeout=90,
        what="the analysis step",
    )
    cli(world, "rollout", "promote", "upgrade")
    world.wait_phase("Promoted", timeout=120)
    promoted = events(world, "Promote")
    assert len(promoted) == 1 and "skipping the remaining steps" in promoted[0]["message"]
    assert world.cluster.get("llmdeployment", STABLE, "-n", world.namespace)["spec"]["model"]["uri"].endswith(
        "/2"
    )


def reconciles(world: World) -> float:
    """CanaryRollout passes of the running operator process; 0 until its metrics port answers."""
    try:
        return world.operator.metric("llmops_reconciles_total", kind="CanaryRollout")
    except OSError:
        return 0.0


def test_a_request_is_acted_on_once(good_world: World) -> None:
    """A promote past one pause leaves the rollout at the next pause, through ticks and a restart."""
    world = good_world
    steps = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]
    world.start({"steps": steps, "analysis": analysis()})
    wait_for(
        lambda: world.condition("Paused").get("reason") == "WaitingForPromote", timeout=90, what="pause 1"
    )
    cli(world, "rollout", "promote", "upgrade")
    wait_for(
        lambda: (world.rollout().get("status") or {}).get("currentStepIndex") == 3,
        timeout=60,
        what="the second pause",
    )
    request = world.rollout()["metadata"]["annotations"]["llmops.dev/request"]
    assert world.rollout()["status"]["handledRequest"] == request
    world.operator.stop()
    world.operator.start()
    wait_for(
        lambda: reconciles(world) >= 3,
        timeout=60,
        what="ticks after the restart",
    )
    status = world.rollout()["status"]
    assert status["currentStepIndex"] == 3 and world.condition("Paused")["reason"] == "WaitingForPromote"
    assert len(events(world, "Promote")) == 1


def test_kubectl_get_shows_the_columns(good_world: World) -> None:
    world = good_world
    world.start({"steps": [{"setWeight": 50}, {"pause": {}}], "analysis": analysis()})
    wait_for(
        lambda: world.condition("Paused").get("reason") == "WaitingForPromote", timeout=90, what="the pause"
    )
    table = world.cluster.kubectl("get", "canary", "-n", world.namespace, "-o", "wide").stdout.splitlines()
    header, row = table[0].split(), table[1].split()
    assert header[:6] == ["NAME", "TARGET", "STATUS", "STEP", "WEIGHT", "PROGRESSING"]
    assert "MESSAGE" in header and header[-1] == "AGE"
    status = world.rollout()["status"]
    assert row[:6] == ["upgrade", STABLE, status["phase"], "1", "50", "WaitingForPromote"]
    short = world.cluster.kubectl("get", "canary", "-n", world.namespace).stdout.splitlines()[0].split()
    assert "MESSAGE" not in short
    assert (
        json.loads(world.cluster.kubectl("get", "cr", "upgrade", "-n", world.namespace, "-o", "json").stdout)[
            "metadata"
        ]["name"]
        == "upgrade"
    )
    assert CANARY in world.rollout()["status"]["canaryName"]
