"""A CanaryRollout beside an Argo Rollouts Rollout: the same regression, the same Prometheus query.

Each round makes two namespaces on the local control plane, one per controller, each with a
stable and a canary simulator (tests/simulator/vllm_sim.py standing in for the pods kwok keeps
Ready, as in benchmarks/canary_detection.py) behind a load generator that splits requests by the
Ready pods of each side. One real Prometheus (tools/prometheus.sh, 1 s scrapes, a query log)
serves both. Argo Rollouts' controller (tools/build-tools.sh argo-rollouts) runs as a host
process in --namespaced mode; the operator as its console script; both at nice 10.

- Argo: a Rollout (basic canary: setWeight 50, then an indefinite pause) with a background
  analysis from an AnalysisTemplate whose query is the ``e2eLatencyP95`` preset's, rendered for
  its namespace, failing above the threshold, at the same interval, failureLimit 0.
- llmops: a CanaryRollout (replica ratio) with the ``e2eLatencyP95`` metric, same threshold,
  interval and failureLimit.

Once both have one successful measurement both canaries regress at the same instant. Printed per
controller, median over the rounds, from the regression: visible (the query first exceeds the
threshold, evaluated afterwards at 0.1 s steps over Prometheus' data) -> first failed measurement
-> decided (rollback) -> no canary traffic (no Ready canary pod); the last three are the times a
Kubernetes watch delivered the change. Also the Prometheus queries per measurement (its query
log), and each controller process's peak RSS and CPU seconds from the rollout's creation to the
end of the round (/proc). ``--regression healthy`` runs the rollouts to completion and counts
false rollbacks instead.

    .venv/bin/python benchmarks/argo_peer.py --interval 10 --regression severe --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "operator"))

from kubernetes import client, config, watch  # noqa: E402
from tests.integration.conftest import (  # noqa: E402
    KUBECONFIG,
    VERSIONS,
    Cluster,
    OperatorProcess,
    PrometheusServer,
    free_port,
)
from tests.simulator.loadgen import LoadGenerator  # noqa: E402
from tests.simulator.vllm_sim import Behaviour, VLLMSimulator  # noqa: E402

from llmops_operator.api.canaryrollout import AnalysisSpec  # noqa: E402
from llmops_operator.metrics.templates import render_query  # noqa: E402
from llmops_operator.names import OWNER_LABEL  # noqa: E402
from llmops_operator.rollout.analysis import PRESETS  # noqa: E402

ARGO_DIR = ROOT / ".tools" / f"argo-rollouts-{VERSIONS['ARGO_ROLLOUTS_VERSION']}"
THRESHOLD_MS = 400
# 8 generated tokens at 40 ms to the first and 30 ms each after: 250 ms, all in vLLM's <= 0.3 s
# bucket, so p95 reads 285 ms; 1.3x (325 ms) and 3x (750 ms) both lift it over 400 ms.
BASELINE = Behaviour(ttft_ms=40, itl_ms=30)
REGRESSIONS = {"severe": (3.0, 20.0), "mild": (1.3, 0.0), "healthy": (1.0, 0.0)}  # latency x, % 5xx
NICE = 10
MIN_SUCCESSES = AnalysisSpec().min_successful_measurements  # before the operator promotes
STAGES = ("visible", "failed", "decided", "no_traffic")
ARGO = "Argo Rollouts"
LLMOPS = "llmops CanaryRollout"


def now() -> float:
    return time.monotonic()


@dataclass
class Side:
    """One controller's half of a round: its namespace, simulators, and what its watches saw."""

    controller: str
    namespace: str
    stable: VLLMSimulator
    canary: VLLMSimulator
    pods: dict[str, tuple[str, bool]] = field(default_factory=dict)  # name -> (pod hash label, ready)
    canary_hash: str = ""  # Argo: the canary ReplicaSet's pod-template-hash
    marks: dict[str, float] = field(default_factory=dict)
    measurements: int = 0
    successes: int = 0
    ended: str = ""  # "RolledBack" / "Promoted" (llmops) or "Aborted" / "Healthy" (Argo)
    regressed_at: float | None = None
    rounds_seen: set[str] = field(default_factory=set)
    fail_fast: list[dict[str, Any]] = field(default_factory=list)  # status.failFast, last seen
    served: bool = False  # a canary pod was Ready: only then can its traffic end
    lock: threading.Lock = field(default_factory=threading.Lock)

    def is_canary(self, key: str) -> bool:
        if self.controller == LLMOPS:
            return key == "llama-canary"
        return bool(self.canary_hash) and key == self.canary_hash

    def ready(self, canary: bool) -> int:
        return sum(1 for key, ready in self.pods.values() if ready and self.is_canary(key) == canary)

    def canary_share(self) -> float:
        canary, stable = self.ready(True), self.ready(False)
        return canary / (canary + stable) if canary + stable else 0.0

    def mark(self, stage: str) -> None:
        if self.regressed_at is not None and stage not in self.marks:
            self.marks[stage] = now()

    def pods_changed(self) -> None:
        if self.canary_hash_known() and self.ready(True) > 0:
            self.served = True
        if self.regressed_at is not None and self.served and self.ready(True) == 0:
            self.mark("no_traffic")

    def canary_hash_known(self) -> bool:
        return self.controller == LLMOPS or bool(self.canary_hash)


def streams(
    list_call: Callable[..., Any], stop: threading.Event, **kwargs: Any
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Watch events (as plain dicts) until ``stop``; a stream that times out is started again."""
    api = client.ApiClient()
    while not stop.is_set():
        for event in watch.Watch().stream(list_call, timeout_seconds=5, _request_timeout=10, **kwargs):
            if stop.is_set():
                return
            yield event["type"], api.sanitize_for_serialization(event["object"])


def watch_pods(side: Side, stop: threading.Event) -> None:
    core = client.CoreV1Api()
    for kind, pod in streams(core.list_namespaced_pod, stop, namespace=side.namespace):
        meta, labels = pod["metadata"], pod["metadata"].get("labels") or {}
        key = (
            labels.get(OWNER_LABEL, "")
            if side.controller == LLMOPS
            else labels.get("rollouts-pod-template-hash", "")
        )
        conditions = (pod.get("status") or {}).get("conditions") or []
        ready = not meta.get("deletionTimestamp") and any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in conditions
        )
        with side.lock:
            if kind == "DELETED":
                side.pods.pop(meta["name"], None)
            else:
                side.pods[meta["name"]] = (key, ready)
            side.pods_changed()


def watch_objects(
    side: Side, plural: str, on_change: Callable[[Side, dict[str, Any]], None], stop: threading.Event
) -> None:
    group, version = ("llmops.dev", "v1alpha1") if side.controller == LLMOPS else ("argoproj.io", "v1alpha1")
    custom = client.CustomObjectsApi()
    for kind, body in streams(
        custom.list_namespaced_custom_object,
        stop,
        group=group,
        version=version,
        namespace=side.namespace,
        plural=plural,
    ):
        if kind != "DELETED":
            with side.lock:
                on_change(side, body)


def canaryrollout_changed(side: Side, body: dict[str, Any]) -> None:
    status = body.get("status") or {}
    measurements = status.get("measurements") or []
    side.fail_fast = status.get("failFast") or side.fail_fast
    if status.get("lastMeasuredAt"):
        side.rounds_seen.add(status["lastMeasuredAt"])  # one value per measurement round
        side.measurements = len(side.rounds_seen)
    side.successes = max(side.successes, sum(1 for m in measurements if m.get("phase") == "Successful"))
    fired = any(e.get("fired") for e in side.fail_fast)  # the fast watch fails without a measurement
    if fired or any(m.get("phase") == "Failed" for m in measurements):
        side.mark("failed")
    if status.get("phase") in ("RolledBack", "Promoted") and not side.ended:
        side.ended = status["phase"]
        if side.ended == "RolledBack":
            side.mark("decided")


def analysisrun_changed(side: Side, body: dict[str, Any]) -> None:
    for result in (body.get("status") or {}).get("metricResults") or []:
        side.measurements = max(side.measurements, int(result.get("count") or 0))
        side.successes = max(side.successes, int(result.get("successful") or 0))
        if int(result.get("failed") or 0) > 0:
            side.mark("failed")


def rollout_changed(side: Side, body: dict[str, Any]) -> None:
    status = body.get("status") or {}
    stable, current = status.get("stableRS", ""), status.get("currentPodHash", "")
    if stable and current and current != stable:  # no stableRS yet: the first pods are the stable
        side.canary_hash = current
    if status.get("abort") and not side.ended:
        side.ended = "Aborted"
        side.mark("decided")
    elif side.canary_hash and status.get("phase") == "Healthy" and current == stable and not side.ended:
        side.ended = "Healthy"
    side.pods_changed()


# -- processes --------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class ArgoController:
    """Argo Rollouts' controller as a host process watching one namespace."""

    def __init__(self, namespace: str, log_path: Path) -> None:
        self.namespace, self.log_path = namespace, log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = ARGO_DIR / "rollouts-controller"
        if not binary.exists():
            raise SystemExit(f"no {binary}: run tools/build-tools.sh argo-rollouts")
        command = [
            "nice", "-n", str(NICE), str(binary), "--kubeconfig", str(KUBECONFIG), "--namespaced",
            "--namespace", self.namespace, "--leader-elect=false", "--metricsport", str(free_port()),
            "--healthzPort", str(free_port()), "--loglevel", "warn",
        ]  # fmt: skip
        self.log = self.log_path.open("ab")
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid  # nice execs the controller in place: same pid

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


# -- objects ----------------------------------------------------------------------------------------


def the_query(namespace: str, interval: int) -> str:
    variables = {
        "canary": "llama-canary",
        "stable": "llama",
        "namespace": namespace,
        "interval": f"{interval}s",
    }
    return render_query(PRESETS["e2eLatencyP95"].query, variables)


def argo_objects(
    namespace: str, interval: int, prometheus_url: str, model: str, pause_intervals: int | None = None
) -> list[dict[str, Any]]:
    """The AnalysisTemplate and the Rollout; ``pause_intervals`` ends the pause after that many
    intervals (a healthy canary is then promoted), else it waits for ever."""
    template = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "latency"},
        "spec": {
            "metrics": [
                {
                    "name": "latency",
                    "interval": f"{interval}s",
                    "failureLimit": 0,
                    # No data yet (an empty vector or NaN) is not a failure, as in the operator.
                    "failureCondition": f"len(result) > 0 && result[0] > {THRESHOLD_MS}",
                    "provider": {
                        "prometheus": {"address": prometheus_url, "query": the_query(namespace, interval)}
                    },
                }
            ]
        },
    }
    pod = {
        "metadata": {"labels": {"app": "llama"}},
        "spec": {
            "nodeSelector": {"type": "kwok"},
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "containers": [
                {
                    "name": "vllm",
                    "image": "vllm/vllm-openai:v0.32.0",
                    "args": ["--model", model],
                    "resources": {"limits": {"nvidia.com/gpu": 1}},
                }
            ],
        },
    }
    pause = {} if pause_intervals is None else {"duration": f"{pause_intervals * interval}s"}
    rollout = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "llama"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "llama"}},
            "template": pod,
            "strategy": {
                "canary": {
                    "steps": [{"setWeight": 50}, {"pause": pause}],
                    "analysis": {"templates": [{"templateName": "latency"}], "startingStep": 1},
                }
            },
        },
    }
    return [template, rollout]


def llmops_rollout(interval: int, fail_fast: dict[str, Any], healthy_steps: bool) -> dict[str, Any]:
    analysis: dict[str, Any] = {
        "interval": f"{interval}s",
        "metrics": [{"name": "latency", "preset": "e2eLatencyP95", "max": str(THRESHOLD_MS)}],
        "failureLimit": 0,
        "failFast": fail_fast,
        "scrapeInterval": "1s",  # the benchmark's Prometheus scrapes every second
    }
    steps: list[dict[str, Any]] = [{"setWeight": 50}] if healthy_steps else [{"setWeight": 50}, {"pause": {}}]
    return {
        "apiVersion": "llmops.dev/v1alpha1",
        "kind": "CanaryRollout",
        "metadata": {"name": "r"},
        "spec": {
            "targetRef": {"name": "llama"},
            "canary": {"model": {"uri": "s3://bench/llama-v2"}},
            "steps": steps,
            "analysis": analysis,
        },
    }


def fail_fast_field(interval: int, on: bool) -> dict[str, Any]:
    """``spec.analysis.failFast``: on at a sixth of the interval (the default), or off (today's
    behaviour before fast fail: one look per interval, as Argo Rollouts)."""
    if not on:
        return {"enabled": False}
    return {"enabled": True, "interval": f"{interval * 1000 // 6}ms"}


# -- Prometheus -------------------------------------------------------------------------------------


# -- one round --------------------------------------------------------------------------------------


def wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = now() + timeout
    while not predicate():
        if now() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.1)


def run_round(
    cluster: Cluster,
    interval: int,
    regression: str,
    fail_fast: dict[str, Any],
    work: Path,
    onset: str,
    controllers: tuple[str, ...] = (ARGO, LLMOPS),
) -> dict[str, dict[str, float]]:
    tag = uuid.uuid4().hex[:6]
    sides = {
        name: Side(
            name,
            f"peer-{short}-{tag}",
            VLLMSimulator("llama", 0, Behaviour(BASELINE.ttft_ms, BASELINE.itl_ms)).start(),
            VLLMSimulator("llama", 0, Behaviour(BASELINE.ttft_ms, BASELINE.itl_ms)).start(),
        )
        for name, short in ((ARGO, "argo"), (LLMOPS, "llmops"))
        if name in controllers
    }
    targets = []
    for side in sides.values():
        cluster.kubectl("create", "namespace", side.namespace)
        for sim, name in ((side.stable, "llama"), (side.canary, "llama-canary")):
            labels = {"namespace": side.namespace, "pod": f"{name}-0", "llmops_dev_llmdeployment": name}
            targets.append({"targets": [f"127.0.0.1:{sim.port}"], "labels": labels})
    prometheus = PrometheusServer(
        work / "prometheus",
        {
            "global": {"scrape_interval": "1s"},
            "scrape_configs": [{"job_name": "vllm", "static_configs": targets}],
        },
    )
    prometheus.start()
    argo_side, ours = sides.get(ARGO), sides.get(LLMOPS)
    stop = threading.Event()
    threads = [threading.Thread(target=watch_pods, args=(side, stop), daemon=True) for side in sides.values()]
    pids: dict[str, int] = {}
    argo = ArgoController(argo_side.namespace, work / "argo.log") if argo_side else None
    operator = None
    if ours is not None:
        operator = OperatorProcess(
            ours.namespace,
            work / "operator.log",
            env={"LLMOPS_PROMETHEUS_URL": prometheus.url, "LLMOPS_ROLLOUT_TICK_SECONDS": "1"},
        )
        threads.append(
            threading.Thread(
                target=watch_objects, args=(ours, "canaryrollouts", canaryrollout_changed, stop), daemon=True
            )
        )
    if argo_side is not None:
        threads += [
            threading.Thread(
                target=watch_objects, args=(argo_side, "rollouts", rollout_changed, stop), daemon=True
            ),
            threading.Thread(
                target=watch_objects, args=(argo_side, "analysisruns", analysisrun_changed, stop), daemon=True
            ),
        ]
    loads: list[LoadGenerator] = []
    try:
        if argo is not None and argo_side is not None:
            argo.start()
            pids[ARGO] = argo.pid
            cluster.apply(
                argo_objects(argo_side.namespace, interval, prometheus.url, "v1"), argo_side.namespace
            )
        if operator is not None and ours is not None:
            operator.start()
            assert operator.process is not None
            pids[LLMOPS] = operator.process.pid
            os.setpriority(os.PRIO_PROCESS, operator.process.pid, NICE)
            deployment = {
                "apiVersion": "llmops.dev/v1alpha1",
                "kind": "LLMDeployment",
                "metadata": {"name": "llama"},
                "spec": {"model": {"uri": "s3://bench/llama-v1"}, "replicas": 2},
            }
            cluster.apply(deployment, ours.namespace)
        for thread in threads:
            thread.start()
        for side in sides.values():
            wait(lambda s=side: s.ready(False) >= 2, 300, f"{side.controller}: two Ready stable pods")  # type: ignore[misc]
            load = LoadGenerator(
                f"http://127.0.0.1:{side.stable.port}",
                f"http://127.0.0.1:{side.canary.port}",
                side.canary_share,
            )
            loads.append(load.start())
        healthy = regression == "healthy"
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        started = now()
        regressed_wall = time.time()

        def regress() -> None:
            """Both canaries turn bad at one instant; the stages are timed from it."""
            nonlocal regressed_wall
            factor, failures = REGRESSIONS[regression]
            regressed_wall, regressed = time.time(), now()
            for side in sides.values():
                side.canary.behaviour.ttft_ms = BASELINE.ttft_ms * factor
                side.canary.behaviour.itl_ms = BASELINE.itl_ms * factor
                side.canary.behaviour.failure_percent = failures
                with side.lock:
                    side.regressed_at = regressed
                    side.pods_changed()

        if not healthy and onset == "start":
            regress()  # a new version that is bad from its first request
        if argo_side is not None:
            # Healthy: Argo pauses for as many intervals as the operator needs successes, then promotes.
            pause_intervals = MIN_SUCCESSES + 1 if healthy else None
            canary = argo_objects(argo_side.namespace, interval, prometheus.url, "v2", pause_intervals)[1]
            cluster.apply(canary, argo_side.namespace, "--force-conflicts")  # Argo rewrote a quantity
        if ours is not None:
            cluster.apply(llmops_rollout(interval, fail_fast, healthy), ours.namespace)
        if healthy:
            wait(
                lambda: all(s.ended for s in sides.values()),
                (MIN_SUCCESSES + 10) * interval,
                "both rollouts to end",
            )
        else:
            if onset == "after-success":
                wait(
                    lambda: all(s.successes >= 1 for s in sides.values()),
                    max(300, 10 * interval),
                    "a successful measurement each",
                )
                regress()
            wait(
                lambda: all("no_traffic" in s.marks for s in sides.values()), 20 * interval, "both rollbacks"
            )
        ended = now()
        cpu = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
        rss = {name: peak_rss_mib(pid) for name, pid in pids.items()}
        figures: dict[str, dict[str, float]] = {}
        for name, side in sides.items():
            queries = len(prometheus.logged_queries(f'namespace="{side.namespace}"'))
            row = {
                "queries_per_measurement": queries / max(side.measurements, 1),
                "measurements": float(side.measurements),
                "peak_rss_mib": rss[name],
                "cpu_s": cpu[name],
                "rollout_minutes": (ended - started) / 60,
                "rolled_back": 1.0 if side.ended in ("RolledBack", "Aborted") else 0.0,
            }
            if not healthy:
                query = the_query(side.namespace, interval)
                visible = prometheus.first_instant_over(query, THRESHOLD_MS, regressed_wall, time.time())
                row["visible"] = (visible - regressed_wall) if visible is not None else float("nan")
                for stage in STAGES[1:]:
                    mark = side.marks.get(stage)  # absent: that stage was never seen
                    row[stage] = mark - (side.regressed_at or 0.0) if mark else float("nan")
            figures[name] = row
            for evidence in side.fail_fast:  # the fast watch's evidence when the round ended
                row["fast_looks"] = float(evidence.get("samples") or 0)
                row["fast_statistic"] = float(evidence.get("statistic") or 0.0)
        return figures
    finally:
        stop.set()
        for load in loads:
            load.stop()
        if argo is not None:
            argo.stop()
        if operator is not None and ours is not None:
            # Deleted while the operator runs, which holds a finalizer on it; else the namespace stays.
            cluster.kubectl(
                "delete", "canaryrollout", "r", "-n", ours.namespace, "--timeout=60s", check=False
            )
            operator.stop()
        prometheus.stop()
        for side in sides.values():
            side.stable.stop()
            side.canary.stop()
            cluster.kubectl("delete", "namespace", side.namespace, "--wait=false", check=False)


# -- report -----------------------------------------------------------------------------------------


def table(rounds: list[dict[str, dict[str, float]]], interval: int, regression: str) -> str:
    lines = []
    if regression == "healthy":
        lines.append(
            "| controller | rollouts | false rollbacks | queries/measurement | peak RSS MiB "
            "| CPU s/rollout-min |"
        )
        lines.append("|---|---|---|---|---|---|")
        for name in rounds[0]:
            rows = [r[name] for r in rounds]
            cpu_rate = statistics.median(r["cpu_s"] / r["rollout_minutes"] for r in rows)
            lines.append(
                f"| {name} | {len(rows)} | {sum(int(r['rolled_back']) for r in rows)} | "
                f"{statistics.median(r['queries_per_measurement'] for r in rows):.2f} | "
                f"{max(r['peak_rss_mib'] for r in rows):.0f} | {cpu_rate:.2f} |"
            )
        return "\n".join(lines)
    header = (
        "| controller | visible | first failed measurement | decided | no canary traffic "
        "| queries/measurement | peak RSS MiB | CPU s |"
    )
    lines += [header, "|---|---|---|---|---|---|---|---|"]
    for name in rounds[0]:
        rows = [r[name] for r in rounds]
        cells = []
        for stage in STAGES:
            values = sorted(r[stage] for r in rows)
            median = statistics.median(values)
            cells.append(f"{median:.2f} s ({median / interval:.2f} iv; {values[0]:.2f}-{values[-1]:.2f})")
        lines.append(
            f"| {name} | "
            + " | ".join(cells)
            + f" | {statistics.median(r['queries_per_measurement'] for r in rows):.2f}"
            + f" | {max(r['peak_rss_mib'] for r in rows):.0f}"
            + f" | {statistics.median(r['cpu_s'] for r in rows):.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--interval", type=int, choices=(10, 60), default=10)
    parser.add_argument("--regression", choices=tuple(REGRESSIONS), default="severe")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--onset",
        choices=("after-success", "start"),
        default="after-success",
        help="the canary turns bad after one successful measurement, or is bad from its start",
    )
    parser.add_argument("--fail-fast", choices=("on", "off"), default="on")
    parser.add_argument(
        "--only", choices=("argo", "llmops"), help="one controller alone (e.g. while Argo is not built)"
    )
    args = parser.parse_args()
    subprocess.run([str(ROOT / "tools" / "cluster.sh"), "up"], check=True)
    cluster = Cluster(KUBECONFIG)
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    if args.only != "llmops":
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ARGO_DIR))
    cluster.kubectl("wait", "--for=condition=Established", "crd", "--all")
    config.load_kube_config(str(KUBECONFIG))
    fail_fast = fail_fast_field(args.interval, args.fail_fast == "on")
    fast_note = json.dumps(fail_fast)
    factor, failures = REGRESSIONS[args.regression]
    print(
        f"interval {args.interval}s, failureLimit 0, p95 <= {THRESHOLD_MS} ms, regression {args.regression} "
        f"({factor}x latency, {failures:g}% 5xx), fail fast {fast_note}, Argo Rollouts "
        f"{VERSIONS['ARGO_ROLLOUTS_VERSION']}, {args.rounds} rounds",
        flush=True,
    )
    rounds = []
    for number in range(args.rounds):
        work = Path(tempfile.mkdtemp(prefix="argo-peer-"))
        controllers = {"argo": (ARGO,), "llmops": (LLMOPS,), None: (ARGO, LLMOPS)}[args.only]
        figures = run_round(cluster, args.interval, args.regression, fail_fast, work, args.onset, controllers)
        rounds.append(figures)
        print(
            f"round {number + 1}: "
            + json.dumps({k: {s: round(v, 3) for s, v in f.items()} for k, f in figures.items()}),
            flush=True,
        )
    print()
    print(
        "seconds from the regression (median; in intervals; min-max)" if args.regression != "healthy" else ""
    )
    print(table(rounds, args.interval, args.regression))


if __name__ == "__main__":
    main()
