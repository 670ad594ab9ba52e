"""The coalescing queue behind LLMDeployment passes: a burst costs one pass, none is lost, and a
failed pass comes back later, later each time."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import pytest

from llmops_operator.workqueue import RETRY, CoalescingQueue, RetryLater


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


def test_a_failing_pass_does_not_stop_the_queue_and_is_retried_with_backoff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    done: list[str] = []
    attempts: list[tuple[float, frozenset[str]]] = []

    def work(key: str, topics: frozenset[str]) -> None:
        if key == "bad":
            attempts.append((time.monotonic(), topics))
            raise RuntimeError("boom") if len(attempts) == 1 else RetryLater("registry down")
        done.append(key)

    queue: CoalescingQueue[str] = CoalescingQueue(work, workers=1, name="test", first_delay=0.2)
    with caplog.at_level(logging.WARNING):
        queue.mark("bad", "x")
        queue.mark("good", "x")
        settle(lambda: len(attempts) == 3)
    queue.shutdown()
    assert done == ["good"]
    assert [topics for _, topics in attempts] == [
        frozenset({"x"}),
        frozenset({"x", RETRY}),
        frozenset({"x", RETRY}),
    ]
    first_wait, second_wait = attempts[1][0] - attempts[0][0], attempts[2][0] - attempts[1][0]
    assert 0.2 <= first_wait < second_wait  # 0.2 s, then 0.4 s
    tracebacks = [bool(record.exc_info) for record in caplog.records]
    assert tracebacks[:2] == [True, False]  # an unexpected error has one; an expected retry not


def test_a_forgotten_key_is_not_retried() -> None:
    attempts: list[str] = []

    def work(key: str, topics: frozenset[str]) -> None:
        attempts.append(key)
        raise RetryLater("registry down")

    queue: CoalescingQueue[str] = CoalescingQueue(work, workers=1, name="test", first_delay=0.2)
    queue.mark("gone", "x")
    settle(lambda: bool(attempts))
    time.sleep(0.05)
    queue.forget("gone")
    time.sleep(0.4)
    queue.shutdown()
    assert attempts == ["gone"]
