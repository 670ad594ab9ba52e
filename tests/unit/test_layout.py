from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_operator_dir_is_a_source_root_not_a_package() -> None:
    # An operator/__init__.py would shadow the standard library's `operator` module.
    assert not (ROOT / "operator" / "__init__.py").exists()


def test_standard_library_operator_is_not_shadowed() -> None:
    import operator

    assert operator.add(2, 3) == 5
    assert "site-packages" not in (operator.__file__ or "") or "llmops" not in operator.__file__


def test_package_lives_in_operator_dir() -> None:
    import llmops_operator

    assert Path(llmops_operator.__file__).parent == ROOT / "operator" / "llmops_operator"
