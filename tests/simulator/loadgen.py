"""A bounded load generator standing in for the data plane: it splits requests between the
stable and canary servers by the weights the operator actually set in the cluster, and asks each
server by the model name it serves (its ``/v1/models``), as a real client of vLLM must.

Given the HTTPRoute (``route``), it routes each request as a gateway would (gateway.py): header
rules, weights, and RequestMirror filters, whose copies it sends and whose answers it drops."""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .gateway import route_request


class LoadGenerator:
    def __init__(
        self,
        stable_url: str,
        canary_url: str,
        canary_share: Callable[[], float],
        rate_per_second: float = 20.0,
        max_tokens: int = 8,
        prompt_words: Callable[[], int] = lambda: 2,
        route: Callable[[], dict[str, Any]] | None = None,
        backends: tuple[str, str] = ("", ""),
        headers: Callable[[], dict[str, str]] = dict,
        request_timeout: float = 10.0,
        workers: int = 16,
    ) -> None:
        self.urls = (stable_url, canary_url)
        self.canary_share = canary_share
        self.rate = rate_per_second
        self.max_tokens = max_tokens
        self.prompt_words = prompt_words  # tests shift the prompt length distribution through this
        self.models = ["", ""]
        self.sent = [0, 0]
        self.errors = [0, 0]
        self.mirrored = [0, 0]  # copies sent by RequestMirror filters, answers dropped
        self.by_rule: Counter[tuple[str, str]] = Counter()  # (rule, backend) -> requests routed so
        self.route_source, self.backends, self.headers = route, backends, headers
        self._route: dict[str, Any] = {}
        self._rng = random.Random(7)
        self._share = 0.0
        self._stop = threading.Event()
        # A client that gives up sooner than a slow server answers makes vLLM abort the request,
        # which then never reaches its latency histograms: slow servers need a patient client.
        self.request_timeout = request_timeout
        self._pool = ThreadPoolExecutor(max_workers=workers)
        self._threads = [
            threading.Thread(target=self._send_loop, daemon=True),
            threading.Thread(target=self._weight_loop, daemon=True),
        ]

    def start(self) -> LoadGenerator:
        self.models = [served_model(url) for url in self.urls]
        self._refresh()
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _weight_loop(self) -> None:
        while not self._stop.wait(0.5):
            with contextlib.suppress(Exception):  # a failed cluster read keeps the last split
                self._refresh()

    def _refresh(self) -> None:
        if self.route_source is not None:
            self._route = self.route_source()
        else:
            self._share = self.canary_share()

    def _send_loop(self) -> None:
        period = 1.0 / self.rate
        next_at = time.monotonic()
        while not self._stop.is_set():
            if self.route_source is None:
                self._pool.submit(self._request, 1 if random.random() < self._share else 0)
            else:
                self._routed()
            next_at += period
            time.sleep(max(0.0, next_at - time.monotonic()))

    def _routed(self) -> None:
        headers = self.headers()
        routing = route_request(self._route, headers, self._rng)
        self.by_rule[(routing.rule, routing.backend)] += 1
        if routing.backend in self.backends:
            self._pool.submit(self._request, self.backends.index(routing.backend), headers)
        for name in routing.mirrors:
            if name in self.backends:
                self._pool.submit(self._request, self.backends.index(name), headers, True)

    def _request(self, side: int, headers: dict[str, str] | None = None, mirror: bool = False) -> None:
        if mirror:
            self.mirrored[side] += 1
        else:
            self.sent[side] += 1
        prompt = " ".join(["word"] * max(1, self.prompt_words()))
        body = json.dumps(
            {"model": self.models[side], "prompt": prompt, "max_tokens": self.max_tokens}
        ).encode()
        request = urllib.request.Request(
            f"{self.urls[side]}/v1/completions",
            data=body,
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.request_timeout) as response:
                response.read()
        except (urllib.error.URLError, OSError):
            if not mirror:  # a mirrored copy's failure never reaches a user
                self.errors[side] += 1


def served_model(url: str) -> str:
    """The first model the server at ``url`` lists in ``/v1/models``."""
    with urllib.request.urlopen(f"{url}/v1/models", timeout=10) as response:
        return str(json.load(response)["data"][0]["id"])
