"""Per-object concurrency: one lock per object, and a coalescing work queue (marks for one key
that arrive before its pass starts share that pass; a failed pass is tried again with backoff).

Events come in bursts (a Deployment's status changes several times while its ReplicaSet and Pods
appear). Each event only marks its owner; one pass on a thread pool then reads the newest state
from the watches. So a burst costs one pass, not one per event.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)
RETRY = "retry"  # a topic of every pass that follows a failed one
logger = logging.getLogger(__name__)


class RetryLater(Exception):
    """An expected, passing failure (a registry that does not answer): retried with backoff and
    logged without a traceback."""


class KeyedLocks(Generic[Key]):
    """One lock per key, made on first use: passes over one object run one at a time, passes over
    different objects side by side."""

    def __init__(self) -> None:
        self._locks: dict[Key, threading.Lock] = {}
        self._guard = threading.Lock()

    def __call__(self, key: Key) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def forget(self, key: Key) -> None:
        with self._guard:
            self._locks.pop(key, None)


class CoalescingQueue(Generic[Key]):
    def __init__(
        self,
        work: Callable[[Key, frozenset[str]], None],
        workers: int,
        name: str,
        first_delay: float = 5.0,
        max_delay: float = 300.0,
    ) -> None:
        self._work = work
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix=name)
        self._pending: dict[Key, set[str]] = {}
        self._failures: dict[Key, int] = {}  # consecutive failed passes, for the backoff
        self._retries: dict[Key, threading.Timer] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._first_delay, self._max_delay = first_delay, max_delay

    def mark(self, key: Key, topic: str) -> None:
        """Ask for a pass over ``key`` looking at ``topic``; joins a pass not yet started."""
        self._mark(key, {topic})

    def _mark(self, key: Key, topics: set[str] | frozenset[str]) -> None:
        with self._lock:
            if self._closed:
                return
            pending = self._pending.get(key)
            if pending is not None:
                pending.update(topics)
                return
            self._pending[key] = set(topics)
        self._pool.submit(self._run, key)

    def forget(self, key: Key) -> None:
        """No retry for ``key``: its pass succeeded, or the object is gone."""
        with self._lock:
            self._failures.pop(key, None)
            retry = self._retries.pop(key, None)
        if retry is not None:
            retry.cancel()

    def _run(self, key: Key) -> None:
        with self._lock:
            topics = frozenset(self._pending.pop(key))
        try:
            self._work(key, topics)
        except Exception as error:  # one object's failure must not stop the others
            self._retry_later(key, topics, error)
        else:
            self.forget(key)

    def _retry_later(self, key: Key, topics: frozenset[str], error: Exception) -> None:
        with self._lock:
            if self._closed:
                return
            failures = self._failures[key] = self._failures.get(key, 0) + 1
            delay = min(self._max_delay, self._first_delay * 2 ** (failures - 1))
            previous = self._retries.pop(key, None)
            retry = self._retries[key] = threading.Timer(delay, self._retry, (key, topics))
        if previous is not None:
            previous.cancel()
        retry.daemon = True
        retry.start()
        logger.warning(
            "pass over %s (%s) failed, retrying in %.0f s: %s",
            key,
            ", ".join(sorted(topics)),
            delay,
            error,
            exc_info=not isinstance(error, RetryLater),
        )

    def _retry(self, key: Key, topics: frozenset[str]) -> None:
        with self._lock:
            if self._retries.get(key) is threading.current_thread():  # the Timer runs this
                del self._retries[key]
        self._mark(key, topics | {RETRY})

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            retries = list(self._retries.values())
            self._retries.clear()
        for retry in retries:
            retry.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)
