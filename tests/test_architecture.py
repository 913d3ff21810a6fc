"""The layout is the architecture: imports flow one way, and the pure core never imports torch."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "autoshape"

LEVELS = {"errors": 0, "version": 0, "core": 1, "tracing": 2, "layers": 2, "rules": 3, "mirror": 4, "diagnose": 4,
          "cli": 5, "__main__": 6, "__init__": 6}
"""Each part may import only parts of a lower level (and itself): siblings never import each other."""


def _part(module: str) -> str:
    """``autoshape.mirror.chain`` → ``mirror``; ``autoshape`` (the package's ``__init__``) → ``__init__``."""
    names = module.split(".")
    return names[1] if len(names) > 1 else "__init__"


def _module_name(path: Path, package: Path) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, package: Path) -> list[str]:
    """Every module ``path`` imports, relative imports resolved against its own package."""
    module = _module_name(path, package)
    owner = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found.append(node.module or "")
        elif isinstance(node, ast.ImportFrom):
            base = owner.split(".")[: len(owner.split(".")) - node.level + 1]
            found.append(".".join([*base, *([node.module] if node.module else [])]))
    return found


def violations(path: Path, package: Path = PACKAGE) -> list[str]:
    """The imports of ``path`` that go back up or sideways, and any torch import in the core."""
    here = _part(_module_name(path, package))

    def wrong(imported: str) -> bool:
        top, there = imported.split(".")[0], _part(imported)
        if top == "torch":
            return here == "core"
        return top == "autoshape" and there != here and LEVELS[there] >= LEVELS[here]

    return [imported for imported in _imports(path, package) if wrong(imported)]


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_every_part_has_a_level() -> None:
    parts = {_part(_module_name(path, PACKAGE)) for path in SOURCES}
    assert parts <= set(LEVELS), parts - set(LEVELS)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_flow_one_way_and_the_core_is_pure(path: Path) -> None:
    assert violations(path) == []


def test_the_check_catches_an_import_going_back_up(tmp_path: Path) -> None:
    package = tmp_path / "autoshape"
    (package / "core").mkdir(parents=True)
    (package / "mirror").mkdir()
    bad_core = package / "core" / "bad.py"
    bad_core.write_text("from ..mirror import MirrorDecoder\nimport torch\nfrom .sizes import as_int\n")
    sideways = package / "mirror" / "bad.py"
    sideways.write_text("from ..diagnose.explain import explain\nfrom ..rules import rule_for\n")
    assert violations(bad_core, package) == ["autoshape.mirror", "torch"]
    assert violations(sideways, package) == ["autoshape.diagnose.explain"]
