"""How fast a CanaryRollout notices a bad canary and takes its traffic away.

A good canary runs at 50% until it has one successful measurement; then its simulator turns three
times slower. The script polls the rollout and prints per routing mode:
- visible: from the slowdown to the first instant the operator's own p95 query reads bad (evaluated
  afterwards over Prometheus' data at 0.1 s steps, so the script sends no queries meanwhile);
- first failed measurement: from visible to the operator recording a Failed measurement;
- decided: from the first failed measurement to the rollout's RolledBack status (with
  failureLimit 0 they coincide; with failureLimit N, N more intervals);
- applied: from the decision to no canary traffic (the HTTPRoute's canary weight read back as 0,
  or no Ready canary pod behind the shared Service);
- Prometheus queries the operator sent per measurement, and the spacing of its measurements, both
  from Prometheus' query log (every query it answered, timestamped).

Usage: .venv/bin/python benchmarks/canary_detection.py [--interval 10] [--failure-limit 0]
    [--fail-fast on|off]
Needs `make cluster` (started if absent), the CRDs, and `make tools` (Prometheus). Prints figures.
The models are plain S3 URIs: the registry plays no part in detection.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "operator"))

from tests.integration.conftest import (  # noqa: E402
    KUBECONFIG,
    Cluster,
    OperatorProcess,
    PrometheusServer,
)
from tests.simulator.loadgen import LoadGenerator  # noqa: E402
from tests.simulator.vllm_sim import Behaviour, VLLMSimulator  # noqa: E402

from llmops_operator.metrics.templates import render_query  # noqa: E402
from llmops_operator.rollout.analysis import PRESETS  # noqa: E402

THRESHOLD_MS = 400


def run(mode: str, interval: int, failure_limit: int, fail_fast: bool, cluster: Cluster) -> dict[str, float]:
    namespace = f"bench-canary-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", namespace)
    work = Path(tempfile.mkdtemp(prefix="canary-bench-"))
    stable_sim = VLLMSimulator("llama", 0, Behaviour(ttft_ms=40, itl_ms=10)).start()
    canary_sim = VLLMSimulator("llama", 0, Behaviour(ttft_ms=40, itl_ms=10)).start()

    def target(sim: VLLMSimulator, name: str) -> dict[str, Any]:
        labels = {"namespace": namespace, "pod": f"{name}-0", "llmops_dev_llmdeployment": name}
        return {"targets": [f"127.0.0.1:{sim.port}"], "labels": labels}

    prometheus = PrometheusServer(
        work / "prometheus",
        {
            "global": {"scrape_interval": "1s"},
            "scrape_configs": [
                {
                    "job_name": "vllm",
                    "static_configs": [target(stable_sim, "llama"), target(canary_sim, "llama-canary")],
                }
            ],
        },
    )
    prometheus.start()
    operator = OperatorProcess(
        namespace,
        work / "operator.log",
        env={
            "LLMOPS_PROMETHEUS_URL": prometheus.url,
            "LLMOPS_ROLLOUT_TICK_SECONDS": "1",
        },
    )
    operator.start()
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "llmops.dev/v1alpha1",
            "kind": "LLMDeployment",
            "metadata": {"name": "llama"},
            "spec": {"model": {"uri": "s3://m/1"}, "replicas": 2},
        }
    ]
    rollout_spec: dict[str, Any] = {
        "targetRef": {"name": "llama"},
        "canary": {"model": {"uri": "s3://m/2"}},
        "steps": [{"setWeight": 50}, {"pause": {}}],
        "analysis": {
            "interval": f"{interval}s",
            "metrics": [{"name": "latency", "preset": "e2eLatencyP95", "max": str(THRESHOLD_MS)}],
            "failureLimit": failure_limit,
            "failFast": {"enabled": fail_fast},
            "scrapeInterval": "1s",  # the fast watch looks no more often than Prometheus scrapes
        },
    }
    if mode == "gateway-api":
        docs.append(
            {
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "HTTPRoute",
                "metadata": {"name": "chat"},
                "spec": {"rules": [{"backendRefs": [{"name": "llama", "port": 8000}]}]},
            }
        )
        rollout_spec["trafficRouting"] = {"gatewayAPI": {"httpRoute": "chat"}}
    cluster.apply(docs, namespace)

    def get(*args: str) -> dict[str, Any]:
        return cluster.get(*args, "-n", namespace)

    def ready(name: str) -> int:
        found = cluster.kubectl(
            "get", "deployment", name, "-n", namespace, "-o", "jsonpath={.status.readyReplicas}", check=False
        )
        return int(found.stdout or 0) if found.returncode == 0 else 0

    def canary_share() -> float:
        if mode == "gateway-api":
            refs = get("httproute", "chat")["spec"]["rules"][0]["backendRefs"]
            weights = {ref["name"]: int(ref.get("weight", 1)) for ref in refs}
            return weights.get("llama-canary", 0) / max(1, sum(weights.values()))
        canary, stable = ready("llama-canary"), ready("llama")
        return canary / (canary + stable) if canary + stable else 0.0

    while ready("llama") < 2:
        time.sleep(0.5)
    load = LoadGenerator(
        f"http://127.0.0.1:{stable_sim.port}", f"http://127.0.0.1:{canary_sim.port}", canary_share
    ).start()
    cluster.apply(
        {
            "apiVersion": "llmops.dev/v1alpha1",
            "kind": "CanaryRollout",
            "metadata": {"name": "r"},
            "spec": rollout_spec,
        },
        namespace,
    )

    def status() -> dict[str, Any]:
        return get("canaryrollout", "r").get("status") or {}

    while not any(m["phase"] == "Successful" for m in status().get("measurements") or []):
        time.sleep(0.5)
    query = render_query(
        PRESETS["e2eLatencyP95"].query,
        {"canary": "llama-canary", "stable": "llama", "namespace": namespace, "interval": f"{interval}s"},
    )
    canary_sim.behaviour.ttft_ms, canary_sim.behaviour.itl_ms = 120, 30  # three times slower
    slowed, slowed_wall = time.monotonic(), time.time()
    marks: dict[str, float] = {}
    while "applied" not in marks:
        now = time.monotonic()
        current = status()
        if "failed" not in marks and any(m["phase"] == "Failed" for m in current.get("measurements") or []):
            marks["failed"] = now
        if "decided" not in marks and current.get("phase") == "RolledBack":
            marks["decided"] = now
        if "decided" in marks and canary_share() == 0.0:
            marks["applied"] = time.monotonic()
        if now - slowed > 20 * interval:
            raise SystemExit(f"{mode}: no rollback within {20 * interval}s; see {work / 'operator.log'}")
        time.sleep(0.1)
    # Every query naming the namespace is the operator's; its counter says how many measurements.
    asked = sorted(at for at, _ in prometheus.logged_queries(f'namespace="{namespace}"'))
    measurements = operator.metric("llmops_analysis_measurements_total", namespace=namespace)
    gaps = [later - earlier for earlier, later in itertools.pairwise(asked)]
    visible_at = prometheus.first_instant_over(query, THRESHOLD_MS, slowed_wall, time.time())
    load.stop()
    # Deleted while the operator runs, which holds a finalizer on it; else the namespace stays.
    cluster.kubectl("delete", "canaryrollout", "r", "-n", namespace, "--timeout=60s", check=False)
    operator.stop()
    prometheus.stop()
    stable_sim.stop()
    canary_sim.stop()
    cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    visible = slowed + (visible_at - slowed_wall) if visible_at is not None else marks["failed"]
    return {
        "visible_s": visible - slowed,
        "first_failed_s": marks["failed"] - visible,
        "decided_s": marks["decided"] - marks["failed"],
        "applied_s": marks["applied"] - marks["decided"],
        "slowdown_to_applied_s": marks["applied"] - slowed,
        "queries_per_measurement": len(asked) / max(measurements, 1),
        "measurement_spacing_s": statistics.median(gaps) if gaps else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--interval", type=int, default=10)
    parser.add_argument("--failure-limit", type=int, default=0)
    parser.add_argument("--modes", nargs="*", default=["replica-ratio", "gateway-api"])
    parser.add_argument(
        "--fail-fast", choices=("on", "off"), default="on", help="off: one look per interval only"
    )
    args = parser.parse_args()
    subprocess.run([str(ROOT / "tools" / "cluster.sh"), "up"], check=True)
    cluster = Cluster(KUBECONFIG)
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    print(
        f"analysis interval {args.interval}s, failureLimit {args.failure_limit}, "
        f"threshold p95 <= {THRESHOLD_MS} ms, fail fast {args.fail_fast}"
    )
    for mode in args.modes:
        figures = run(mode, args.interval, args.failure_limit, args.fail_fast == "on", cluster)
        text = ", ".join(f"{key} {value:.2f}" for key, value in figures.items())
        in_intervals = (figures["first_failed_s"] + figures["decided_s"]) / args.interval
        print(f"{mode}: {text}; visible-to-decided {in_intervals:.2f} intervals")


if __name__ == "__main__":
    main()
