"""A coalescing work queue: marks for one key that arrive before its pass starts share that pass.

Children's events come in bursts (a Deployment's status changes several times while its
ReplicaSet and Pods appear). Each event only marks its owner; one pass on a small thread pool of
its own then reads the newest state from the watches. So a burst costs one pass, not one per
event, and status work never queues ahead of, or takes threads from, creates and spec changes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)
logger = logging.getLogger(__name__)


class CoalescingQueue(Generic[Key]):
    def __init__(self, work: Callable[[Key, frozenset[str]], None], workers: int, name: str) -> None:
        self._work = work
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix=name)
        self._pending: dict[Key, set[str]] = {}
        self._lock = threading.Lock()

    def mark(self, key: Key, topic: str) -> None:
        """Ask for a pass over ``key`` looking at ``topic``; joins a pass not yet started."""
        with self._lock:
            topics = self._pending.get(key)
            if topics is not None:
                topics.add(topic)
                return
            self._pending[key] = {topic}
        self._pool.submit(self._run, key)

    def _run(self, key: Key) -> None:
        with self._lock:
            topics = frozenset(self._pending.pop(key))
        try:
            self._work(key, topics)
        except Exception:  # one object's failure must not stop the others; the next mark retries
            logger.exception("pass over %s (%s) failed", key, ", ".join(sorted(topics)))

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
