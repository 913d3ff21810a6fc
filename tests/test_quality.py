"""Project-wide checks: lint, types, documented public names, and README's two set-up commands."""

from __future__ import annotations

import importlib.util
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

import autoshape

ROOT = Path(__file__).resolve().parents[1]


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True)


@pytest.mark.skipif(importlib.util.find_spec("ruff") is None, reason="ruff is in the test extra")
def test_ruff_clean() -> None:
    result = _run("ruff", "check", "src", "tests", "examples", "benchmarks", "docs")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is in the test extra")
def test_mypy_strict_clean() -> None:
    result = _run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", autoshape.__all__)
def test_public_name_has_summary_shape_example_and_raises(name: str) -> None:
    """Shape where a shape applies: every public name but the exception type."""
    value = getattr(autoshape, name)
    doc = inspect.getdoc(value) or ""
    shapeless = isinstance(value, type) and issubclass(value, BaseException)
    for section in ("Example", "Raises") if shapeless else ("Shape", "Example", "Raises"):
        assert re.search(rf"^\s*{section}s?:", doc, re.MULTILINE), f"{name} docstring lacks a {section} section"
    assert ">>>" in doc, f"{name} docstring has no runnable example"


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"<!-- (demo|test)-command -->\n```bash\n(.+)\n```", readme)
    assert [kind for kind, _ in commands] == ["demo", "test"]
    assert all(command.startswith("pip install torch==2.13.0 ") for _, command in commands)
    assert "test-command" in (ROOT / ".ci" / "run").read_text()
    assert "pytest" in commands[1][1]
