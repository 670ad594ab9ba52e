"""Integration fixtures: the local control plane (started when it is not running), the CRDs,
a namespace per test, and the operator as a real subprocess.

A test that cannot get its cluster fails: `tools/cluster.sh up` raising is an error, never a skip.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmops_operator.api import KINDS
from llmops_operator.names import GROUP

ROOT = Path(__file__).resolve().parents[2]
VERSIONS = dict(
    line.split("=", 1)
    for line in (ROOT / "tools" / "versions.env").read_text().splitlines()
    if "=" in line and not line.startswith("#")
)
KUBECONFIG = ROOT / ".cluster" / "kubeconfig"
PLUGIN_DIR = Path(sys.executable).parent  # where the kubectl-llmops console script is installed
KUBECTL = ROOT / ".tools" / f"kubernetes-{VERSIONS['KUBERNETES_VERSION']}" / "kubectl"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@dataclass
class Cluster:
    kubeconfig: Path

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(KUBECTL), "--kubeconfig", str(self.kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result

    def get(self, *args: str) -> dict[str, Any]:
        return dict(json.loads(self.kubectl("get", "-o", "json", *args).stdout))

    def apply(self, obj: dict[str, Any] | list[dict[str, Any]], namespace: str, *extra: str) -> str:
        docs = obj if isinstance(obj, list) else [obj]
        text = yaml.safe_dump_all(docs)
        return self.kubectl("apply", "--server-side", "-n", namespace, "-f", "-", *extra, input=text).stdout


def wait_for(
    predicate: Callable[[], Any], timeout: float = 60, interval: float = 0.5, what: str = "condition"
) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


def established(cluster: Cluster, crd: str) -> None:
    """Waits for a just-applied CRD (kubectl wait errs while its conditions are still unset)."""
    wait_for(
        lambda: (
            cluster.kubectl("wait", "--for=condition=Established", f"crd/{crd}", check=False).returncode == 0
        ),
        timeout=30,
        what=f"CRD {crd} established",
    )


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    subprocess.run([str(ROOT / "tools" / "cluster.sh"), "up"], check=True, timeout=3600)
    handle = Cluster(KUBECONFIG)
    handle.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    handle.kubectl(
        "wait", "--for=condition=Established", "crd", "-l", "app.kubernetes.io/name=llmops-operator"
    )
    return handle


def recycle_released_volumes(cluster: Cluster) -> None:
    """The static PersistentVolumes stand in for a provisioner: a volume whose claim was deleted
    (Released, reclaim policy Retain) is made Available again, as a provisioner would give a new
    claim a fresh volume; otherwise deleted model caches use up the cluster's eight volumes."""
    for volume in cluster.get("pv")["items"]:
        if (volume.get("status") or {}).get("phase") == "Released":
            cluster.kubectl(
                "patch",
                "pv",
                volume["metadata"]["name"],
                "--type=json",
                "-p",
                '[{"op": "remove", "path": "/spec/claimRef"}]',
                check=False,
            )


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    recycle_released_volumes(cluster)
    name = f"t-{request.node.name[:40].lower().replace('_', '-').strip('-[]')}-{uuid.uuid4().hex[:6]}"
    name = "".join(ch if ch.isalnum() or ch == "-" else "-" for ch in name)
    cluster.kubectl("create", "namespace", name)
    wait_for(
        lambda: cluster.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode == 0,
        what="the default service account",
    )
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
    release_finalizers(cluster, name)


LLMOPS_KINDS = ",".join(f"{kind.kind_info.plural}.{GROUP}" for kind in KINDS)


def release_finalizers(cluster: Cluster, namespace: str) -> None:
    """Drops the operator's finalizers from what a test left: the operator process that would
    remove them has stopped, so its objects kept the namespace Terminating for good, and the
    namespace controller's sweeps of every such namespace (discovery and a LIST of each resource
    type, again and again) had the API server at 70% of a core by the 30th test."""
    listed = cluster.kubectl("get", LLMOPS_KINDS, "-n", namespace, "-o", "name", check=False)
    for name in listed.stdout.split():
        cluster.kubectl(
            "patch",
            name,
            "-n",
            namespace,
            "--type=merge",
            "-p",
            '{"metadata":{"finalizers":null}}',
            check=False,
        )


class OperatorProcess:
    """The operator as users run it: its console script, its own process, a kubeconfig."""

    def __init__(self, namespace: str, log_path: Path, env: dict[str, str] | None = None) -> None:
        self.namespace = namespace
        self.log_path = log_path
        self.extra_env = env or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.health_port = free_port()
        self.metrics_port = free_port()

    def start(self) -> None:
        # A short resync so registry polling and retries show within a test's patience.
        env = {
            **os.environ,
            "KUBECONFIG": str(KUBECONFIG),
            "LLMOPS_RESYNC_SECONDS": "2",
            "LLMOPS_DRIFT_TICK_SECONDS": "1",
            **self.extra_env,
        }
        self.log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llmops_operator",
                "--namespace",
                self.namespace,
                "--log-format",
                "plain",
                "--health-port",
                str(self.health_port),
                "--metrics-port",
                str(self.metrics_port),
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        """SIGKILL: no chance to clean up, as when a node dies under the operator."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
        self.process = None

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process = None

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def metric(self, family: str, /, **labels: str) -> float:
        """The sum of the operator's samples of ``family`` whose labels include ``labels``."""
        from prometheus_client.parser import text_string_to_metric_families

        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as answer:
            text = answer.read().decode()
        return sum(
            sample.value
            for found in text_string_to_metric_families(text)
            for sample in found.samples
            if sample.name == family and labels.items() <= sample.labels.items()
        )

    def reconciles(self, kind: str) -> float:
        """Finished passes over objects of ``kind`` in this process (``llmops_reconciles_total``);
        0 until its metrics port answers. What a test waits on to know the operator looked again."""
        try:
            return self.metric("llmops_reconciles_total", kind=kind)
        except OSError:
            return 0.0

    def wait_reconciles(self, kind: str, more: int, timeout: float = 60) -> None:
        """Waits until this process has finished ``more`` passes over ``kind`` from now."""
        start = self.reconciles(kind)
        wait_for(
            lambda: self.reconciles(kind) >= start + more,
            timeout=timeout,
            interval=0.25,
            what=f"{more} more {kind} passes of the operator",
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MLflowServer:
    """A real MLflow tracking server (sqlite backend) on 127.0.0.1, started by tools/mlflow.sh."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        subprocess.run(
            [str(ROOT / "tools" / "mlflow.sh"), "start", str(self.directory), str(self.port)], check=True
        )

    def stop(self) -> None:
        subprocess.run([str(ROOT / "tools" / "mlflow.sh"), "stop", str(self.directory)], check=True)

    def client(self) -> Any:
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)

    def register(self, name: str, source: str, alias: str | None = None) -> str:
        """Register a new version of ``name`` stored at ``source``; returns its version."""
        client = self.client()
        if not client.search_registered_models(filter_string=f"name = '{name}'"):
            client.create_registered_model(name)
        version = str(client.create_model_version(name, source).version)
        if alias is not None:
            client.set_registered_model_alias(name, alias, version)
        return version


class Outage:
    """A TCP forwarder on 127.0.0.1 in front of a server: ``cut()`` refuses and drops every
    connection at once, as a network partition would; ``restore()`` forwards again. Faster and
    more faithful to "the server went away" than stopping and restarting the server itself."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            for sock in [*self._open, *([listener] if listener else [])]:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


class PrometheusServer:
    """A real Prometheus on 127.0.0.1 (tools/prometheus.sh), scraping what ``config`` lists, with
    its query log on: every query it answers, so who asked what and when can be counted."""

    def __init__(self, directory: Path, config: dict[str, Any]) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path = directory / "prometheus.yml"
        self.query_log = directory / "queries.log"
        directory.mkdir(parents=True, exist_ok=True)
        config = {**config, "global": {**(config.get("global") or {}), "query_log_file": str(self.query_log)}}
        self.config_path.write_text(yaml.safe_dump(config))

    def logged_queries(self, containing: str) -> list[tuple[float, dict[str, Any]]]:
        """(Unix time, parameters) of each answered query whose text contains ``containing``."""
        found = []
        lines = self.query_log.read_text().splitlines() if self.query_log.exists() else []
        for line in filter(None, lines):
            entry = json.loads(line)
            if containing in entry["params"]["query"]:
                stamp = entry["ts"].rstrip("Z")
                whole, _, fraction = stamp.partition(".")
                at = datetime.fromisoformat(whole).replace(tzinfo=UTC).timestamp() + float(
                    f"0.{fraction or 0}"
                )
                found.append((at, entry["params"]))
        return found

    def first_instant_over(self, query: str, threshold: float, start: float, end: float) -> float | None:
        """The first instant (Unix time, 0.1 s steps from ``start``) at which ``query`` evaluates
        above ``threshold``: when it became visible, judged afterwards without polling."""
        params = {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": "0.1"}
        address = f"{self.url}/api/v1/query_range?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(address, timeout=30) as answer:
            result = json.load(answer)["data"]["result"]
        return next(
            (float(at) for at, value in (result[0]["values"] if result else []) if float(value) > threshold),
            None,
        )

    def start(self) -> None:
        script = str(ROOT / "tools" / "prometheus.sh")
        subprocess.run(
            [script, "start", str(self.directory), str(self.port), str(self.config_path)], check=True
        )

    def stop(self) -> None:
        subprocess.run([str(ROOT / "tools" / "prometheus.sh"), "stop", str(self.directory)], check=True)


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MLflowServer]:
    server = MLflowServer(tmp_path_factory.mktemp("mlflow"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def operator(namespace: str, tmp_path: Path) -> Iterator[OperatorProcess]:
    process = OperatorProcess(namespace, tmp_path / "operator.log")
    process.start()
    yield process
    process.stop()
    assert "Traceback" not in process.logs(), process.logs()


@pytest.fixture
def mlflow_outage(mlflow_server: MLflowServer) -> Iterator[tuple[MLflowServer, Outage]]:
    """The session's MLflow as the operator sees it through an :class:`Outage` the test can cut."""
    outage = Outage(mlflow_server.port)
    outage.restore()
    behind = copy.copy(mlflow_server)
    behind.uri = outage.url
    yield behind, outage
    outage.cut()


# The session's real vLLM servers (tests/integration/real_vllm.py), for the tests that need them.
from .real_vllm import vllm_servers  # noqa: E402, F401
