"""Fast fail end to end: the same world as test_canaryrollout.py (the local control plane, a real
Prometheus scraping vLLM-compatible simulators every second, MLflow, the load generator), with
interval 10 s and scrapeInterval 1 s, so the fast-fail watch looks every 1.67 s.

A severe regression is rolled back before the first full measurement, by the sequential test,
with the canary's traffic removed at once (errors); one just past its latency bound is rolled back
by the full measurement at the interval, as without fast fail, the slow canary serving until the
stable side is Ready again; a healthy canary is promoted with the watch on; and an operator
restart mid-watch neither loses nor double-counts a window.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tests.argocd_health import health as argocd_health
from tests.simulator.vllm_sim import Behaviour

from .conftest import wait_for
from .test_canaryrollout import CANARY, GOOD, SLOW, STABLE, World, cli, worlds
from .test_canaryrollout import world as world  # the fixture, by its name

INTERVAL = "10s"
SEVERE = Behaviour(ttft_ms=120, itl_ms=30, failure_percent=20)  # 3x slower and 20% 5xx
STEPS = [{"setWeight": 50}, {"analysis": {}}, {"setWeight": 100}, {"analysis": {}}]


def fast_analysis(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "interval": INTERVAL,
        "scrapeInterval": "1s",
        "metrics": [
            {"name": "error-rate", "preset": "errorRate", "max": "1"},
            {"name": "latency", "preset": "e2eLatencyP95", "max": "400"},
        ],
        "failureLimit": 0,
    }
    spec.update(overrides)
    return spec


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def evidence_of(world: World, metric: str) -> dict[str, Any]:
    status = world.rollout().get("status") or {}
    return next((e for e in status.get("failFast") or [] if e["metric"] == metric), {})


@worlds(SEVERE, modes=["replica-ratio"])
def test_a_severe_regression_fails_fast_before_the_first_measurement(world: World) -> None:
    world.start({"steps": STEPS, "analysis": fast_analysis(), "scaleDownDelay": "3s"})
    rollout = world.wait_phase("RolledBack", timeout=90)
    status = rollout["status"]
    rolled = world.condition("RolledBack")
    assert rolled["status"] == "True" and rolled["reason"] == "FailedFast", rolled
    # No full measurement ran: the rollback came between the analysis ticks.
    assert not status.get("measurements") and not status.get("tallies"), status
    fired = [e for e in status["failFast"] if e["fired"]]
    assert [e["metric"] for e in fired] == ["error-rate"], status["failFast"]
    evidence = fired[0]
    assert evidence["test"] == "mSPRT" and evidence["statistic"] >= evidence["boundary"] > 0
    assert 3 <= evidence["samples"] < 6 and evidence["lastSampleAt"]
    # The Warning Event carries the evidence; the rollout says errors take the canary out at once.
    events = world.cluster.get("events", "-n", world.namespace, "--field-selector", "reason=RolledBack")
    message = events["items"][0]["message"]
    assert "mSPRT" in message and "error-rate" in message and "removed at once" in message, message
    assert status["rollback"]["order"] == "RemovedAtOnce"
    assert argocd_health(rollout)["status"] == "Degraded"
    assert argocd_health(rollout)["message"].startswith("FailedFast: ")
    wait_for(lambda: world.canary_share() == 0.0, timeout=10, what="no traffic to the canary")
    # The canary went first, so capacity was short until the stable side had its 2 pods back.
    wait_for(
        lambda: (world.rollout()["status"]["rollback"] or {}).get("capacityShortSeconds") is not None,
        timeout=30,
        what="the stable side Ready again",
    )
    view = cli(world, "rollout", "get", "upgrade")
    assert "Fail fast:" in view and "FIRED mSPRT threshold" in view, view
    assert "Rollback:  RemovedAtOnce" in view, view


@worlds(SLOW, modes=["replica-ratio"])
def test_a_mild_regression_rolls_back_at_the_interval_keeping_the_canary_until_stable_is_ready(
    world: World,
) -> None:
    """p95 ~490 ms against at most 400: too close to its bound for the watch to be sure within an
    interval, so the full measurement rolls it back, as without fast fail."""
    world.start({"steps": STEPS, "analysis": fast_analysis(), "scaleDownDelay": "3s"})
    canary_ready: list[int] = []

    def rolled_back() -> bool:
        canary_ready.append(world.ready(CANARY))
        return world.phase() == "RolledBack"

    wait_for(rolled_back, timeout=90, interval=0.25, what="a rollback")
    status = world.rollout()["status"]
    assert world.condition("RolledBack")["reason"] == "AnalysisFailed"
    tally = next(t for t in status["tallies"] if t["name"] == "latency")
    assert tally["failed"] == 1, tally  # the first full measurement
    watched = next(e for e in status["failFast"] if e["metric"] == "latency")
    assert watched["samples"] >= 3 and not watched["fired"], watched  # it looked, and held its fire
    # A slow canary still answers: it kept serving until the stable side was back at 2 Ready pods.
    assert status["rollback"]["order"] == "KeptUntilStableReady"
    final = wait_for(
        lambda: (world.rollout()["status"]["rollback"] or {}).get("canaryRemovedAt") and world.rollout(),
        timeout=30,
        what="the canary removed",
    )
    rollback = final["status"]["rollback"]
    assert rollback["capacityShortSeconds"] == 0
    assert moment(rollback["canaryRemovedAt"]) >= moment(rollback["startedAt"])
    assert world.ready(STABLE) == 2
    wait_for(lambda: world.ready(CANARY) == 0, timeout=30, what="the canary scaled to zero")
    assert world.load is not None and world.load.errors[0] == 0  # nobody saw a refused request
    removed = world.cluster.get("events", "-n", world.namespace, "--field-selector", "reason=CanaryRemoved")
    assert removed["items"], "no CanaryRemoved event"


@worlds(GOOD, modes=["replica-ratio"])
def test_a_healthy_canary_is_promoted_with_fast_fail_on(world: World) -> None:
    world.start({"steps": STEPS, "analysis": fast_analysis()})
    world.wait_phase("Promoted", timeout=150)
    status = world.rollout()["status"]
    assert status["failFast"] and not any(e["fired"] for e in status["failFast"]), status["failFast"]
    assert all(e["samples"] >= 3 for e in status["failFast"]), status["failFast"]
    assert world.condition("Promoted")["status"] == "True"


@worlds(GOOD, modes=["replica-ratio"])
def test_an_operator_restart_mid_watch_neither_loses_nor_repeats_a_window(world: World) -> None:
    """Interval 30 s, so looks every 5 s: the operator is killed after two, and the windows it
    missed are read once it is back, each exactly once (samples == windows ended since the
    weight was verified), all before the first full measurement."""
    world.start({"steps": STEPS, "analysis": fast_analysis(interval="30s")})
    wait_for(lambda: evidence_of(world, "latency").get("samples", 0) >= 2, timeout=90, what="two looks")
    before = evidence_of(world, "latency")
    world.operator.kill()
    world.operator.start()
    wait_for(
        lambda: evidence_of(world, "latency").get("samples", 0) >= before["samples"] + 2,
        timeout=40,
        what="two more looks after the restart",
    )
    status = world.rollout()["status"]
    assert not status.get("measurements"), "a full measurement ran: the check below needs one interval"
    for metric in ("latency", "error-rate"):
        after = evidence_of(world, metric)
        windows = (moment(after["lastSampleAt"]) - moment(status["weightVerifiedAt"])).total_seconds() / 5
        assert after["samples"] == round(windows), (after, status["weightVerifiedAt"])
        assert abs(windows - round(windows)) < 0.01, after  # on the grid: no window read twice or skewed
