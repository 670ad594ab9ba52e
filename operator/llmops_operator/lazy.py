"""Heavy libraries load on first use, one thread at a time.

mlflow and matplotlib cost about 130 MiB of resident memory and scipy about 70 MiB; an operator
that serves only Hugging Face or S3 models and runs no DriftMonitor or CanaryRollout needs none.
The lock matters: handler threads importing mlflow at the same moment deadlocked on its protobuf
modules.
"""

from __future__ import annotations

import importlib
import threading
from types import ModuleType

_LOCK = threading.Lock()


def load(module: str) -> ModuleType:
    """``module``, imported unless it is loaded; later ``from module import ...`` lines are cheap."""
    with _LOCK:
        return importlib.import_module(module)
