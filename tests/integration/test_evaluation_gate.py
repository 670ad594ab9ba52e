"""The evaluation gate end to end: the operator, the local control plane, a real MLflow and
Prometheus, vLLM-compatible servers answering from a fixture, and the evaluation Job's pod run by
the test as a local process with exactly the Job's command, args and environment (plus, as a pod
would have, the cluster's Service network: a forward proxy to the servers standing in for the
Services' pods, and the Secret values kubelet would inject).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.argocd_health import health as argocd_health
from tests.simulator.service_network import ServiceNetwork
from tests.simulator.vllm_sim import Behaviour, VLLMSimulator, rank_percent

from .conftest import PLUGIN_DIR, Cluster, MLflowServer, free_port, wait_for
from .test_canaryrollout import CANARY, GOOD, STABLE, STEPS, World, analysis, cli

PROMPTS = 500
FIXTURE = {f"What is {i} plus {i}? Answer in JSON.": json.dumps({"sum": 2 * i}) for i in range(PROMPTS)}
STABLE_WRONG = 10.0  # percent of the fixture's prompts the stable answers wrong


def right_share(wrong_percent: float) -> str:
    """The exact-match score of a server wrong on ``wrong_percent`` of the fixture, as status shows it."""
    return f"{sum(rank_percent(p) >= wrong_percent for p in FIXTURE) / PROMPTS:.4g}"


def dataset() -> str:
    return "".join(
        json.dumps({"prompt": p, "reference": a, "tags": ["math"]}) + "\n" for p, a in FIXTURE.items()
    )


def evaluation(*scorers: dict[str, Any]) -> dict[str, Any]:
    return {
        "dataset": {"configMap": {"name": "eval-set", "key": "prompts.jsonl"}},
        "scorers": list(scorers),
        "concurrency": 16,
        "requestTimeout": "5s",
        "retries": 1,
        "maxTokens": 64,
    }


EXACT = {"name": "exact", "type": "exactMatch", "compareWithStable": {"maxRegression": "0.02"}}
JSON_VALID = {"name": "json", "type": "jsonValid", "min": "0.8"}


class GateWorld:
    def __init__(self, world: World, network: ServiceNetwork) -> None:
        self.world, self.network = world, network
        self.cluster, self.namespace = world.cluster, world.namespace
        network.route(STABLE, self.namespace, world.stable_sim.port)
        network.route(CANARY, self.namespace, world.canary_sim.port)
        self.canary_weights: list[int] = []

    def start(self, rollout_spec: dict[str, Any]) -> None:
        config_map = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "eval-set"},
            "data": {"prompts.jsonl": dataset()},
        }
        self.cluster.apply(config_map, self.namespace)
        self.world.start(rollout_spec)

    def status(self) -> dict[str, Any]:
        status = self.world.rollout().get("status") or {}
        self.canary_weights.append(int(status.get("canaryWeight", 0)))
        return dict(status)

    def evaluation(self) -> dict[str, Any]:
        return dict(self.status().get("evaluation") or {})

    def jobs(self) -> list[dict[str, Any]]:
        selector = "llmops.dev/evaluation-of=upgrade"
        return list(self.cluster.get("jobs", "-n", self.namespace, "-l", selector)["items"])

    def run_job(self) -> subprocess.CompletedProcess[str]:
        """The Job's pod, as kubelet would start it: its command and args, its env (Secret
        references resolved), on the cluster's Service network."""
        job = wait_for(self.jobs, timeout=90, what="the evaluation Job")[0]
        container = job["spec"]["template"]["spec"]["containers"][0]
        env = {}
        for item in container.get("env") or []:
            if "value" in item:
                env[item["name"]] = item["value"]
            else:
                ref = item["valueFrom"]["secretKeyRef"]
                secret = self.cluster.get("secret", ref["name"], "-n", self.namespace)
                import base64

                env[item["name"]] = base64.b64decode(secret["data"][ref["key"]]).decode()
        command = [shutil.which(container["command"][0], path=str(PLUGIN_DIR)) or "", *container["args"]]
        network = {"HTTP_PROXY": self.network.url, "http_proxy": self.network.url}
        network |= {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
        return subprocess.run(
            command, env={**os.environ, **env, **network}, capture_output=True, text=True, timeout=300
        )

    def canary_requests(self) -> int:
        """User requests the load generator sent to the canary."""
        assert self.world.load is not None
        return self.world.load.sent[1]


@pytest.fixture
def gate(
    cluster: Cluster,
    namespace: str,
    tmp_path: Path,
    mlflow_server: MLflowServer,
    request: pytest.FixtureRequest,
) -> Iterator[GateWorld]:
    mode, canary_wrong = request.param
    world = World(
        cluster,
        namespace,
        tmp_path,
        mlflow_server,
        mode,
        Behaviour(**{**vars(GOOD), "wrong_percent": canary_wrong}),
        {"stable": Behaviour(**{**vars(GOOD), "wrong_percent": STABLE_WRONG}), "answers": FIXTURE},
    )
    network = ServiceNetwork().start()
    handle = GateWorld(world, network)
    try:
        yield handle
    finally:
        for what in (["canaryrollout", "-o", "yaml"], ["llmdeployment,deployment,jobs", "-o", "wide"]):
            print(cluster.kubectl("get", "-n", namespace, *what, check=False).stdout)
        print(
            cluster.kubectl("get", "events", "-n", namespace, "--sort-by=.lastTimestamp", check=False).stdout
        )
        world.stop()
        network.stop()
        assert "Traceback" not in world.operator.logs(), world.operator.logs()


@pytest.mark.parametrize("gate", [("replica-ratio", STABLE_WRONG)], indirect=True, ids=["equal"])
def test_an_equal_canary_passes_its_evaluation_and_the_steps_start(gate: GateWorld) -> None:
    judge_sim = VLLMSimulator("judge", 0, judge=True).start()
    gate.network.route("judge", gate.namespace, judge_sim.port)
    judge = {
        "name": "judge",
        "type": "llmJudge",
        "judge": {"llmDeployment": {"name": "judge"}, "rubric": "The answer must equal the reference."},
        "min": "0.8",
    }
    try:
        gate.start(
            {"steps": STEPS, "analysis": analysis(), "evaluation": evaluation(EXACT, JSON_VALID, judge)}
        )
        wait_for(
            lambda: gate.evaluation().get("phase") == "Running", timeout=90, what="the evaluation running"
        )
        assert gate.canary_requests() == 0 and set(gate.canary_weights) == {0}
        evaluated = gate.run_job()
        assert evaluated.returncode == 0, evaluated.stderr
        wait_for(lambda: gate.evaluation().get("phase") == "Passed", timeout=30, what="the evaluation passed")
    finally:
        judge_sim.stop()
    scorers = {s["name"]: s for s in gate.evaluation()["scorers"]}
    stable_score = right_share(STABLE_WRONG)  # 0.878: the same prompts wrong on both sides
    assert scorers["exact"]["value"] == scorers["exact"]["stableValue"] == stable_score, scorers
    assert scorers["exact"]["difference"] == "0" and scorers["exact"]["interval"] == "[0, 0]"
    assert scorers["json"]["phase"] == "Passed" and float(scorers["json"]["value"]) >= 0.8
    assert scorers["judge"]["value"] == stable_score, scorers  # the rule: 5 (1.0) when right, 1 (0) else
    gate.world.wait_phase("Promoted", timeout=150)
    assert gate.canary_requests() > 0  # the steps sent users to it after the evaluation
    client = gate.world.mlflow.client()
    version = client.get_model_version(gate.world.model, "2")
    assert version.tags["llmops.dev/evaluation"] == "passed"
    run = client.get_run(gate.evaluation()["runId"])
    assert run.data.tags["llmops.dev/evaluation"] == "passed" and run.info.status == "FINISHED"
    assert run.data.metrics["exact/mean"] == pytest.approx(float(stable_score))
    artifacts = {item.path for item in client.list_artifacts(run.info.run_id)}
    assert {"dataset.jsonl", "evaluation.json", "verdict.json", "evaluation_table.json"} <= artifacts
    view = cli(gate.world, "rollout", "get", "upgrade")
    assert "Evaluation: Passed" in view and "exact" in view and "[0, 0]" in view, view


@pytest.mark.parametrize(
    "gate", [("gateway-api", STABLE_WRONG + 5)], indirect=True, ids=["five-points-worse"]
)
def test_a_worse_canary_is_rejected_before_any_traffic_and_a_restart_keeps_one_job(gate: GateWorld) -> None:
    gate.start({"steps": STEPS, "analysis": analysis(), "evaluation": evaluation(EXACT)})
    wait_for(lambda: gate.evaluation().get("phase") == "Running", timeout=90, what="the evaluation running")
    job = gate.jobs()[0]["metadata"]["name"]
    # The operator restarts mid-evaluation: no second Job, the same run.
    before = gate.evaluation()
    gate.world.operator.kill()
    gate.world.operator.start()
    ticks = wait_for(
        lambda: (
            gate.world.operator.metric("llmops_reconciles_total", kind="CanaryRollout") >= 2
            if _metrics_up(gate)
            else False
        ),
        timeout=30,
        what="the restarted operator ticking",
    )
    assert ticks
    assert [j["metadata"]["name"] for j in gate.jobs()] == [job]
    assert gate.evaluation()["runId"] == before["runId"]
    evaluated = gate.run_job()
    assert evaluated.returncode == 0, evaluated.stderr
    gate.world.wait_phase("RolledBack", timeout=60)
    rolled = gate.world.condition("RolledBack")
    assert rolled["reason"] == "EvaluationFailed", rolled
    named = f"scorer exact = {right_share(STABLE_WRONG + 5)}"  # 0.818 against the stable's 0.878
    assert named in rolled["message"] and "no worse than stable by 0.02" in rolled["message"], rolled
    events = gate.cluster.get("events", "-n", gate.namespace, "--field-selector", "reason=RolledBack")
    assert any(named in e["message"] and e["type"] == "Warning" for e in events["items"])
    scorers = {s["name"]: s for s in gate.evaluation()["scorers"]}
    drop = float(right_share(STABLE_WRONG + 5)) - float(right_share(STABLE_WRONG))
    assert scorers["exact"]["phase"] == "Failed", scorers
    assert float(scorers["exact"]["difference"]) == pytest.approx(drop, abs=1e-3)
    # No user ever reached the canary: the route never named it with a weight, nothing was sent.
    assert set(gate.canary_weights) == {0}
    assert gate.canary_requests() == 0
    route = gate.cluster.get("httproute", "chat", "-n", gate.namespace)
    assert all(
        ref.get("weight", 0) == 0 for ref in route["spec"]["rules"][0]["backendRefs"] if ref["name"] == CANARY
    )
    assert (
        gate.world.mlflow.client().get_model_version(gate.world.model, "2").tags["llmops.dev/evaluation"]
        == "failed"
    )
    assert argocd_health(gate.world.rollout())["status"] == "Degraded"
    # The verdict survives another restart, and no second Job appears.
    gate.world.operator.stop()
    gate.world.operator.start()
    wait_for(lambda: _metrics_up(gate), timeout=30, what="the operator back")
    assert gate.evaluation()["phase"] == "Failed" and len(gate.jobs()) == 1


def _metrics_up(gate: GateWorld) -> bool:
    try:
        gate.world.operator.metric("llmops_reconciles_total")
    except OSError:
        return False
    return True


@pytest.mark.parametrize("gate", [("replica-ratio", STABLE_WRONG)], indirect=True, ids=["judge-away"])
def test_an_unreachable_judge_makes_the_gate_inconclusive(gate: GateWorld) -> None:
    judge = {
        "name": "judge",
        "type": "llmJudge",
        "judge": {"url": f"http://127.0.0.1:{free_port()}", "rubric": "equal to the reference"},
        "min": "0.5",
    }
    gate.start({"steps": STEPS, "analysis": analysis(), "evaluation": evaluation(judge)})
    wait_for(lambda: gate.evaluation().get("phase") == "Running", timeout=90, what="the evaluation running")
    evaluated = gate.run_job()
    assert evaluated.returncode == 0, evaluated.stderr
    wait_for(
        lambda: gate.world.condition("Paused").get("reason") == "EvaluationInconclusive",
        timeout=30,
        what="an inconclusive pause",
    )
    status = gate.status()
    assert status["phase"] == "Paused" and status["canaryWeight"] == 0
    assert "judge" in status["evaluation"]["message"] and "unreachable" in status["evaluation"]["message"]
    assert gate.world.condition("Promoted")["status"] == "False"
    assert gate.world.condition("RolledBack")["status"] == "False"
    assert gate.canary_requests() == 0
    version = gate.world.mlflow.client().get_model_version(gate.world.model, "2")
    assert "llmops.dev/evaluation" not in version.tags
