"""Mutation score of the pure modules, per module: how many one-line mistakes the unit tests catch.

Runs mutmut (pinned in the dev extra) on a copy of the package laid out as mutmut expects
(``src/llmops_operator``) in the git-ignored ``.mutation/all/`` folder (or ``--folder``, which a run
empties first: give each concurrent or kept run its own), so the work tree is never
mutated. A mutant counts as caught when a unit test fails on it or ``mypy --strict`` rejects it
(both gate every change); the score is caught / all mutants, mutants no test runs included.
Not part of CI or ``make test``: a full run takes about half an hour on two cores.

    .venv/bin/python tools/mutation.py                      # every pure module
    .venv/bin/python tools/mutation.py rollout serving_status.py
    .venv/bin/python tools/mutation.py drift --jobs 1 --tests tests/unit/test_drift*.py
    cd .mutation/all && ../../.venv/bin/mutmut show NAME    # the diff of one survivor
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tomllib
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "llmops_operator"
PURE_MODULES = ("rollout", "routing", "serving_status.py", "statistics", "drift")
# Unit tests about generated files and repository layout: they read paths outside the copy and
# exercise none of the pure modules.
IGNORED_TESTS = ("test_layout.py", "test_crdgen.py", "test_argocd_health.py")
CAUGHT = {"killed", "caught by type check", "timeout"}


def _stage_config(modules: list[str], tests: list[str]) -> str:
    mypy = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    only = [f"src/{PACKAGE}/{m}" if m.endswith(".py") else f"src/{PACKAGE}/{m}/*" for m in modules]
    checked = [f"src/{PACKAGE}/{m}" for m in modules]
    ignored = ", ".join(f'"--ignore=tests/unit/{name}"' for name in IGNORED_TESTS)
    overrides = "\n".join(
        f"[[tool.mypy.overrides]]\nmodule = {override['module']!r}\n"
        f"ignore_missing_imports = {str(override.get('ignore_missing_imports', False)).lower()}\n"
        for override in mypy.get("overrides", [])
    )
    return f"""
[tool.mutmut]
source_paths = ["src/{PACKAGE}"]
only_mutate = {only!r}
pytest_add_cli_args = ["-p", "no:cacheprovider", {ignored}]
pytest_add_cli_args_test_selection = {tests!r}
type_check_command = ["mypy", "--output", "json", {", ".join(repr(path) for path in checked)}]

[tool.pytest.ini_options]
timeout = 600

[tool.mypy]
python_version = {mypy["python_version"]!r}
mypy_path = "src"
strict = true
warn_unused_ignores = false  # mutmut marks its trampolines with type: ignore
untyped_calls_exclude = {mypy.get("untyped_calls_exclude", [])!r}
plugins = {mypy.get("plugins", [])!r}

{overrides}
"""


def stage(folder: Path, modules: list[str], tests: list[str]) -> None:
    """A fresh copy of the package and its unit tests, laid out as mutmut expects."""
    shutil.rmtree(folder, ignore_errors=True)
    junk = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "operator" / PACKAGE, folder / "src" / PACKAGE, ignore=junk)
    unit_only = shutil.ignore_patterns("integration", "__pycache__")
    shutil.copytree(ROOT / "tests", folder / "tests", ignore=unit_only)
    (folder / "pyproject.toml").write_text(_stage_config(modules, tests))


def module_of(mutant: str) -> str:
    """``llmops_operator.rollout.analysis.x_judge__mutmut_3`` -> ``rollout/analysis.py``."""
    dotted = mutant.split(".x", 1)[0] if ".x_" in mutant or ".xǁ" in mutant else mutant.rsplit(".", 1)[0]
    return dotted.removeprefix(f"{PACKAGE}.").replace(".", "/") + ".py"


def group_of(module: str, groups: list[str]) -> str:
    return next((g for g in groups if module == g or module.startswith(g.rstrip("/") + "/")), module)


def report(results: str, groups: list[str]) -> tuple[str, list[str]]:
    """The score table per file and per module group, and the names of the survivors."""
    by_file: dict[str, Counter[str]] = defaultdict(Counter)
    survivors = []
    for line in results.splitlines():
        name, _, outcome = line.strip().partition(": ")
        if not outcome:
            continue
        by_file[module_of(name)][outcome] += 1
        if outcome not in CAUGHT:
            survivors.append(f"{name}: {outcome}")
    by_group: dict[str, Counter[str]] = defaultdict(Counter)
    for module, counts in by_file.items():
        by_group[group_of(module, groups)] += counts
    rows = [f"{'module':40} {'mutants':>7} {'caught':>7} {'by mypy':>7} {'no test':>7} {'score':>7}"]
    for table in (by_file, by_group):
        for module in sorted(table):
            counts = table[module]
            total = sum(counts.values())
            caught = sum(counts[outcome] for outcome in CAUGHT)
            rows.append(
                f"{module:40} {total:7} {caught:7} {counts['caught by type check']:7} "
                f"{counts['no tests']:7} {100 * caught / total:6.1f}%"
            )
        rows.append("")
    return "\n".join(rows), survivors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("modules", nargs="*", default=list(PURE_MODULES), help="package dirs or .py files")
    parser.add_argument(
        "--folder", type=Path, default=ROOT / ".mutation" / "all", help="where the copy is mutated"
    )
    parser.add_argument("--jobs", type=int, default=2, help="mutants tested at once")
    parser.add_argument(
        "--tests",
        nargs="+",
        default=["tests/unit"],
        help="unit test files to run (default all): the ones that exercise the modules make a run faster",
    )
    args = parser.parse_args(argv)
    unit = ROOT / "tests" / "unit"
    strays = [t for t in args.tests if not Path(t).resolve().is_relative_to(unit) or not Path(t).exists()]
    if strays:
        parser.error(f"not a path under tests/unit: {', '.join(strays)}")
    tests = [Path(t).resolve().relative_to(ROOT).as_posix() for t in args.tests]
    modules = [m.rstrip("/") for m in args.modules]
    missing = [m for m in modules if not (ROOT / "operator" / PACKAGE / m).exists()]
    if missing:
        parser.error(f"no such module under operator/{PACKAGE}: {', '.join(missing)}")
    stage(args.folder, modules, tests)
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("PYTHONPATH", None)  # the mutated copy must be the package the tests import
    mutmut = [str(bin_dir / "mutmut")]
    with open(args.folder / "run.log", "w") as log:
        command = [*mutmut, "run", "--max-children", str(args.jobs)]
        run = subprocess.run(command, cwd=args.folder, env=env, stdout=log, stderr=log)
    if run.returncode != 0:
        print(f"mutmut run failed ({run.returncode}); see {args.folder / 'run.log'}", file=sys.stderr)
        return 1
    results = subprocess.run(
        [*mutmut, "results", "--all", "true"], cwd=args.folder, env=env, capture_output=True, text=True
    )
    groups = [m if m.endswith(".py") else m + "/" for m in modules]
    table, survivors = report(results.stdout, groups)
    (args.folder / "survivors.txt").write_text("".join(f"{line}\n" for line in survivors))
    print(table)
    print(f"{len(survivors)} surviving mutants listed in {args.folder / 'survivors.txt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
