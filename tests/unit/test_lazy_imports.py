"""An operator that runs no DriftMonitor, no baseline comparison and no registry model keeps the
heavy libraries out of its memory: they load with the first use that needs them (lazy.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

OPERATOR = Path(__file__).resolve().parents[2] / "operator"
# numpy (about 11 MiB) loads at start again: the DriftMonitor controller's decisions (drift/episode.py)
# import the drift check, which uses it throughout.
HEAVY = ("mlflow", "scipy", "pandas", "pyarrow", "matplotlib")


def test_the_operator_starts_without_its_heavy_libraries() -> None:
    code = (
        "import json, sys\n"
        "import llmops_operator.main, llmops_operator.handlers\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(OPERATOR)}
    # A fresh interpreter: this test session may have imported any of them already.
    found = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert json.loads(found.stdout) == []
