"""How the LLMDeployment controller scales on the local control plane.

For each count N it creates N LLMDeployments in a fresh namespace and prints:
- create-to-children: from the create call returning to the child Deployment existing (p50, p99);
- time to Ready: until every object's Ready condition is True (pods need cluster capacity, so
  objects beyond the fake nodes' pod capacity are created with replicas 0 and not counted);
- API writes during a no-op resync: write requests the API server counted for our resources
  while a restarted operator re-checked every object (a whole pass each), with nothing to change
  (these objects have direct model URIs, so no timer re-checks them between restarts);
- the operator's peak resident memory (the first process, which saw the burst);
- API writes per object: the operator's applies and patches from the first create until every
  object has settled, divided by N (Events left out: the scheduler and controller manager post
  them too while pods start).

Usage: .venv/bin/python benchmarks/llmdeployment_scale.py [--floor] [--rate R | --kubectl] [N ...]
(default: 1 100 1000). Objects are created one after another by one client, as fast as the API
server answers; at R per second with ``--rate``, a pace the control plane keeps up with, which
shows the operator's own latency apart from the queue a burst builds; or with ``--kubectl``, by one
`kubectl apply -f` of all N manifests, as a user or a CI job applies a folder.
``--floor`` runs benchmarks/floor_controller.py (apply Deployment and Service, nothing else) in
place of the operator: what this control plane on this machine allows any controller.
Needs `make cluster` and the CRDs applied (`make run` does both). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config, watch

ROOT = Path(__file__).resolve().parents[1]
KUBECONFIG = ROOT / ".cluster" / "kubeconfig"
READY_LIMIT = 100  # pods without GPUs land on the one CPU node, which takes 110
# The operator writes with apply and merge patches. Other writers on this cluster (the controller
# manager's PUTs of Deployment status, the garbage collector's DELETEs while an earlier run's
# namespace goes away) use other verbs, so they do not blur the count.
OPERATOR_WRITES = {
    ("PATCH", "llmdeployments"),
    ("APPLY", "llmdeployments"),
    ("PATCH", "deployments"),
    ("APPLY", "deployments"),
    ("PATCH", "services"),
    ("APPLY", "services"),
    ("PATCH", "poddisruptionbudgets"),
    ("APPLY", "poddisruptionbudgets"),
}
EVENTS = {("POST", "events")}  # the operator's only, while no pod starts


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def write_requests(api: client.ApiClient, kinds: set[tuple[str, str]]) -> float:
    """Write requests of ``kinds`` (verb, resource), counted by the API server (/metrics)."""
    request = api.param_serialize(method="GET", resource_path="/metrics", auth_settings=["BearerToken"])
    text = api.call_api(*request).read().decode()
    total = 0.0
    pattern = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")
    for line in text.splitlines():
        match = pattern.match(line)
        if not match:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
        if (labels.get("verb"), labels.get("resource")) in kinds:
            total += float(match["value"])
    return total


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def manifest(name: str, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "llmops.dev/v1alpha1",
        "kind": "LLMDeployment",
        "metadata": {"name": name},
        "spec": {"model": {"uri": f"hf://org/{name}"}, "resources": {"gpus": 0}, "replicas": replicas},
    }


def replicas_of(index: int) -> int:
    return 1 if index < READY_LIMIT else 0


def create_all(namespace: str, count: int, rate: float | None, times: Any) -> None:
    """Creates the objects, in a process of its own: in the measuring process the client's work
    held the GIL while the watch threads waited to timestamp the children, which inflated the
    burst figures. Sends back when each create call returned."""
    config.load_kube_config(str(KUBECONFIG))
    custom = client.CustomObjectsApi()
    created: dict[str, float] = {}
    started = time.monotonic()
    for index in range(count):
        if rate:
            time.sleep(max(0.0, started + index / rate - time.monotonic()))
        name = f"model-{index:04d}"
        body = manifest(name, replicas_of(index))
        custom.create_namespaced_custom_object("llmops.dev", "v1alpha1", namespace, "llmdeployments", body)
        created[name] = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process
    times.put(created)


def run(count: int, floor: bool, rate: float | None, with_kubectl: bool) -> None:
    namespace = f"bench-{count}-{uuid.uuid4().hex[:5]}"
    core, custom = client.CoreV1Api(), client.CustomObjectsApi()
    core.create_namespace({"metadata": {"name": namespace}})
    log_path = ROOT / ".cluster" / f"bench-operator-{count}.log"
    log = open(log_path, "wb")  # noqa: SIM115
    command = ["-m", "llmops_operator", "-n", namespace, "--log-format", "plain"]
    command += ["--health-port", str(free_port()), "--metrics-port", "0"]
    if floor:
        command = [str(ROOT / "benchmarks" / "floor_controller.py"), namespace]

    def start() -> subprocess.Popen[bytes]:
        env = {**os.environ, "KUBECONFIG": str(KUBECONFIG)}
        return subprocess.Popen([sys.executable, *command], env=env, stdout=log, stderr=subprocess.STDOUT)

    operator = start()
    created: dict[str, float] = {}
    children: dict[str, float] = {}
    stop = threading.Event()

    def watch_deployments() -> None:
        """Sees each child Deployment appear; plain dicts, so decoding never lags the stream."""
        stream = watch.Watch()
        for event in stream.stream(
            custom.list_namespaced_custom_object, "apps", "v1", namespace, "deployments", timeout_seconds=3600
        ):
            name = event["object"]["metadata"]["name"]
            children.setdefault(name, time.monotonic())
            if stop.is_set():
                stream.stop()

    conditions: dict[str, list[dict[str, Any]]] = {}  # LLMDeployment -> its status conditions
    seen: dict[str, float] = {}  # LLMDeployment -> when its watch first showed it

    def watch_llmdeployments() -> None:
        """Each object's conditions as they change: polling a list of 1000 objects every second
        cost the API server a few percent of its CPU in the middle of the measurement."""
        stream = watch.Watch()
        for event in stream.stream(
            custom.list_namespaced_custom_object,
            "llmops.dev",
            "v1alpha1",
            namespace,
            "llmdeployments",
            timeout_seconds=3600,
        ):
            obj = event["object"]
            seen.setdefault(obj["metadata"]["name"], time.monotonic())
            conditions[obj["metadata"]["name"]] = (obj.get("status") or {}).get("conditions") or []
            if stop.is_set():
                stream.stop()

    for watcher in (watch_deployments, watch_llmdeployments):
        threading.Thread(target=watcher, daemon=True).start()

    def create(name: str, replicas: int) -> None:
        body = manifest(name, replicas)
        custom.create_namespaced_custom_object("llmops.dev", "v1alpha1", namespace, "llmdeployments", body)
        created[name] = time.monotonic()

    def apply_all_with_kubectl() -> None:
        """One `kubectl apply -f` of every manifest, as a user or a CI job applies a folder; the
        create time of each object is when the watch first shows it."""
        documents = [manifest(f"model-{index:04d}", replicas_of(index)) for index in range(count)]
        kubectl = sorted(ROOT.glob(".tools/kubernetes-*/kubectl"))[-1]
        subprocess.run(
            [str(kubectl), "--kubeconfig", str(KUBECONFIG), "apply", "-n", namespace, "-f", "-"],
            input=yaml.safe_dump_all(documents).encode(),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        names = [document["metadata"]["name"] for document in documents]
        shown_deadline = time.monotonic() + 60
        while not all(name in seen for name in names) and time.monotonic() < shown_deadline:
            time.sleep(0.1)
        created.update({name: seen[name] for name in names if name in seen})

    try:
        # One object first, not counted: the operator's watches are up and its imports are done.
        create("warm-up", 0)
        warm_deadline = time.monotonic() + 120
        while "warm-up" not in children and time.monotonic() < warm_deadline:
            time.sleep(0.1)
        del created["warm-up"]
        writes_before = write_requests(client.ApiClient(), OPERATOR_WRITES)
        started = time.monotonic()
        if with_kubectl:
            apply_all_with_kubectl()
        else:
            spawn = multiprocessing.get_context("spawn")
            times = spawn.Queue()
            creator = spawn.Process(target=create_all, args=(namespace, count, rate, times))
            creator.start()
            created.update(times.get())
            creator.join()
        create_seconds = time.monotonic() - started
        deadline = time.monotonic() + 600
        while len(children) < count + 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        latencies = [children[n] - created[n] for n in created if n in children]  # warm-up left out
        pace = "kubectl apply" if with_kubectl else f"{rate:g}/s" if rate else "burst"
        figures = (
            f"N={count:5d} ({pace})  create {create_seconds:6.1f}s  "
            f"create-to-children p50 {statistics.median(latencies) * 1000:7.0f} ms  "
            f"p99 {percentile(latencies, 0.99) * 1000:7.0f} ms  (children {len(latencies)}/{count})"
        )
        if floor:
            print(f"{figures}  [floor: the minimal controller, not the operator]", flush=True)
            return

        def count_with(type_: str, key: str, value: str) -> int:
            """How many objects have condition ``type_`` with ``key`` (status or reason) = ``value``."""
            return sum(
                1
                for name in created
                if any(c["type"] == type_ and c[key] == value for c in conditions.get(name, []))
            )

        expected_ready = min(count, READY_LIMIT)
        while count_with("Ready", "status", "True") < expected_ready and time.monotonic() < deadline:
            time.sleep(1)
        all_ready = time.monotonic() - started
        while count_with("Progressing", "reason", "RolloutComplete") < count and time.monotonic() < deadline:
            time.sleep(1)  # every object's rollout judged complete: the operator has caught up
        settled = time.monotonic() - started
        time.sleep(5)
        per_object = (write_requests(client.ApiClient(), OPERATOR_WRITES) - writes_before) / count
        peak_rss = peak_rss_mib(operator.pid)
        before = write_requests(client.ApiClient(), OPERATOR_WRITES | EVENTS)
        operator.terminate()
        operator.wait(timeout=60)
        operator = start()
        resumed = 0
        while resumed < count + 1 and time.monotonic() < deadline:  # the warm-up object too
            time.sleep(1)
            resumed = log_path.read_text(errors="replace").count(" reconciled")
        time.sleep(5)
        writes = write_requests(client.ApiClient(), OPERATOR_WRITES | EVENTS) - before
        print(
            f"{figures}  all {expected_ready} Ready after {all_ready:6.1f}s  "
            f"all settled after {settled:6.1f}s  writes/object {per_object:4.1f}  "
            f"no-op resync writes {writes:.0f} ({resumed} resumed)  peak RSS {peak_rss:6.1f} MiB",
            flush=True,
        )
    finally:
        stop.set()
        # Delete while the operator runs, and wait: the next run must not share the cluster with
        # this one's garbage collection.
        core.delete_namespace(namespace)
        gone_deadline = time.monotonic() + 600
        while time.monotonic() < gone_deadline:
            try:
                core.read_namespace(namespace)
            except client.ApiException as error:
                if error.status == 404:
                    break
                raise
            time.sleep(2)
        operator.terminate()
        operator.wait(timeout=60)


def main() -> None:
    config.load_kube_config(str(KUBECONFIG))
    parser = argparse.ArgumentParser(description="LLMDeployment controller scale figures")
    parser.add_argument("counts", nargs="*", type=int, default=[1, 100, 1000])
    parser.add_argument("--floor", action="store_true", help="the minimal controller, not the operator")
    parser.add_argument("--rate", type=float, help="creates per second (default: as fast as answered)")
    parser.add_argument("--kubectl", action="store_true", help="create with one `kubectl apply -f`")
    args = parser.parse_args()
    for count in args.counts:
        run(count, args.floor, args.rate, args.kubectl)


if __name__ == "__main__":
    main()
