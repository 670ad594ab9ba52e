"""The coalescing queue behind children's events: a burst costs one pass, none is lost."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from llmops_operator.workqueue import CoalescingQueue


def settle(done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5
    while not done() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_marks_before_a_pass_starts_share_it_and_a_mark_during_a_pass_gets_another() -> None:
    started, release = threading.Event(), threading.Event()
    passes: list[tuple[str, frozenset[str]]] = []

    def work(key: str, topics: frozenset[str]) -> None:
        passes.append((key, topics))
        started.set()
        release.wait(5)

    queue: CoalescingQueue[str] = CoalescingQueue(work, workers=1, name="test")
    queue.mark("a", "Deployment")
    assert started.wait(5)  # the first pass runs and is held
    for topic in ("Pod", "Service", "Pod"):
        queue.mark("a", topic)  # all three join one pending pass
    queue.mark("b", "Deployment")
    release.set()
    settle(lambda: len(passes) == 3)
    queue.shutdown()
    assert passes == [
        ("a", frozenset({"Deployment"})),
        ("a", frozenset({"Pod", "Service"})),
        ("b", frozenset({"Deployment"})),
    ]


def test_a_failing_pass_does_not_stop_the_queue() -> None:
    done: list[str] = []

    def work(key: str, topics: frozenset[str]) -> None:
        if key == "bad":
            raise RuntimeError("boom")
        done.append(key)

    queue: CoalescingQueue[str] = CoalescingQueue(work, workers=1, name="test")
    queue.mark("bad", "x")
    queue.mark("good", "x")
    settle(lambda: bool(done))
    queue.shutdown()
    assert done == ["good"]
