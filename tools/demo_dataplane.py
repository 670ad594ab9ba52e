"""The data plane of `make run`: kwok runs no containers, so vLLM-compatible simulators stand in for
the pods of the demo LLMDeployment and its canary, a real Prometheus scrapes them with the labels a
ServiceMonitor would give the pods, and a load generator splits traffic by the weights the operator
sets (the Ready pods of each side, as replica-ratio routing does).

    python tools/demo_dataplane.py start|stop
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.simulator.loadgen import LoadGenerator  # noqa: E402
from tests.simulator.vllm_sim import Behaviour, VLLMSimulator  # noqa: E402

STATE = ROOT / ".cluster" / "dataplane"
NAMESPACE = os.environ.get("DEMO_NAMESPACE", "llmops-demo")
STABLE, CANARY = "llama-8b", "llama-8b-canary"
PROMETHEUS_PORT = int(os.environ.get("PROMETHEUS_PORT", "39090"))
SIM_PORTS = (38001, 38002)


def prometheus_config() -> dict[str, object]:
    def target(port: int, deployment: str) -> dict[str, object]:
        labels = {"namespace": NAMESPACE, "pod": f"{deployment}-0", "service": STABLE}
        return {
            "targets": [f"127.0.0.1:{port}"],
            "labels": {**labels, "llmops_dev_llmdeployment": deployment},
        }

    return {
        "global": {"scrape_interval": "2s", "evaluation_interval": "2s"},
        "scrape_configs": [
            {
                "job_name": "vllm",
                "static_configs": [target(SIM_PORTS[0], STABLE), target(SIM_PORTS[1], CANARY)],
            }
        ],
    }


def ready_pods(deployment: str) -> int:
    from kubernetes import client, config

    config.load_kube_config(str(ROOT / ".cluster" / "kubeconfig"))
    try:
        found = client.AppsV1Api().read_namespaced_deployment_status(deployment, NAMESPACE)
    except client.ApiException:
        return 0
    return int(found.status.ready_replicas or 0)


def canary_share() -> float:
    canary, stable = ready_pods(CANARY), ready_pods(STABLE)
    return canary / (canary + stable) if canary + stable else 0.0


def serve() -> None:
    VLLMSimulator(STABLE, SIM_PORTS[0], Behaviour(ttft_ms=40, itl_ms=10)).start()
    # The demo canary is a little slower but within the sample's thresholds: it gets promoted.
    VLLMSimulator(STABLE, SIM_PORTS[1], Behaviour(ttft_ms=50, itl_ms=11)).start()
    load = LoadGenerator(
        f"http://127.0.0.1:{SIM_PORTS[0]}",
        f"http://127.0.0.1:{SIM_PORTS[1]}",
        canary_share,
        rate_per_second=5,
    ).start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            time.sleep(3600)
    finally:
        load.stop()


def main(command: str) -> None:
    STATE.mkdir(parents=True, exist_ok=True)
    pid_file = STATE / "dataplane.pid"
    if command == "start":
        config = STATE / "prometheus.yml"
        config.write_text(yaml.safe_dump(prometheus_config()))
        prometheus = [str(ROOT / "tools" / "prometheus.sh"), "start", str(STATE / "prometheus")]
        subprocess.run([*prometheus, str(PROMETHEUS_PORT), str(config)], check=True)
        if pid_file.exists() and _alive(int(pid_file.read_text())):
            return
        log = (STATE / "dataplane.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, __file__, "serve"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        pid_file.write_text(str(process.pid))
        print(f"[dataplane] simulators on {SIM_PORTS}, Prometheus on 127.0.0.1:{PROMETHEUS_PORT}")
    elif command == "stop":
        if pid_file.exists():
            pid = int(pid_file.read_text())
            if _alive(pid):
                os.kill(pid, signal.SIGTERM)
            pid_file.unlink()
        subprocess.run([str(ROOT / "tools" / "prometheus.sh"), "stop", str(STATE / "prometheus")], check=True)
    elif command == "serve":
        serve()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "start")
