"""Heavy libraries load on first use, one thread at a time.

mlflow and matplotlib cost about 130 MiB of resident memory; an operator that serves only
Hugging Face or S3 models and runs no DriftMonitor never needs them. The lock matters: handler
threads importing mlflow at the same moment deadlocked on its protobuf modules.
"""

from __future__ import annotations

import importlib
import threading

_LOCK = threading.Lock()


def load(module: str) -> None:
    """Import ``module`` unless it is loaded; later ``from module import ...`` lines are then cheap."""
    with _LOCK:
        importlib.import_module(module)
