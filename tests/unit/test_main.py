"""The entrypoint's behaviour when the cluster is not usable, run as a user would run it."""

import json
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from llmops_operator.config import Settings
from llmops_operator.main import parse_args

KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:%d", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: nothing}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_operator(tmp_path: Path, kubeconfig: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "kubeconfig"
    path.write_text(kubeconfig)
    env = {"KUBECONFIG": str(path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-m", "llmops_operator"], env=env, capture_output=True, text=True, timeout=60
    )


def test_exits_with_a_clear_message_when_the_api_server_is_unreachable(tmp_path: Path) -> None:
    port = closed_port()
    result = run_operator(tmp_path, KUBECONFIG % port)
    assert result.returncode == 2
    assert f"cannot reach the Kubernetes API server at https://127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_exits_with_a_clear_message_without_credentials(tmp_path: Path) -> None:
    result = run_operator(tmp_path, "")
    assert result.returncode == 2
    assert "llmops-operator:" in result.stderr
    assert "Traceback" not in result.stderr


def test_flags_override_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMOPS_HEALTH_PORT", "9000")
    monkeypatch.setenv("LLMOPS_PROMETHEUS_URL", "http://from-env:9090")
    settings = parse_args(["--health-port", "9100", "-n", "a", "-n", "b"])
    assert settings.health_port == 9100
    assert settings.prometheus_url == "http://from-env:9090"
    assert settings.namespaces == ["a", "b"]
    assert Settings().namespaces == []


class _ClusterWithoutCRDs(BaseHTTPRequestHandler):
    """An HTTP endpoint that answers like an API server on which the CRDs were never installed."""

    def do_GET(self) -> None:
        if self.path.startswith("/version"):
            self._reply(200, {"major": "1", "minor": "35", "gitVersion": "v1.35.4"})
        else:
            self._reply(
                404,
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "status": "Failure",
                    "reason": "NotFound",
                    "code": 404,
                },
            )

    def _reply(self, code: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def test_exits_naming_the_missing_crds(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ClusterWithoutCRDs)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        kubeconfig = KUBECONFIG.replace("https://", "http://") % server.server_address[1]
        result = run_operator(tmp_path, kubeconfig)
    finally:
        server.shutdown()
    assert result.returncode == 2
    assert (
        "CustomResourceDefinitions missing: llmdeployments.llmops.dev, canaryrollouts.llmops.dev"
        in result.stderr
    )
    assert "kubectl apply -f crds/" in result.stderr
