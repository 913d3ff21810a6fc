"""The documentation site: it builds under ``mkdocs build --strict``, every public name has an API
page with a formula and a doctest, the pictures draw, the shell examples print what they show,
README's links resolve, and headless Chromium opens the pages without a console error.

The guides' ``>>>`` examples run as doctests (pyproject's ``--doctest-glob=docs/*.md``). The build
needs the docs extra and is skipped without it; the browser check also needs Chromium
(Debian's ``chromium``), which CI does not install, and is skipped without it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import autoshape
from autoshape.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DOCS_EXTRA = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers", "matplotlib")
needs_docs_extra = pytest.mark.skipif(any(importlib.util.find_spec(name) is None for name in DOCS_EXTRA),
                                      reason="the docs extra (mkdocs-material, mkdocstrings) is not installed")


def _docs_module(name: str) -> ModuleType:
    """Import docs/NAME.py (the docs' scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(f"autoshape_docs_{name}", DOCS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``mkdocs build --strict`` into a temporary folder: a broken link, a missing reference or a
    docstring warning fails it."""
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)], cwd=ROOT,
                            capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    return out


@needs_docs_extra
@pytest.mark.parametrize("name", autoshape.__all__)
def test_every_public_name_has_an_api_page_with_its_formula_and_a_doctest(site: Path, name: str) -> None:
    page = (site / "api" / name / "index.html").read_text()
    assert f'<h1 id="autoshape.{name}"' in page
    assert "&gt;&gt;&gt;" in page, f"{name}'s page shows no example"
    shapeless = name == "ShapeError"
    assert shapeless or re.search(r">Shape</(summary|p)>", page), f"{name}'s page shows no Shape formula"
    assert name in (site / "api" / "index.html").read_text()


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="the pictures need matplotlib")
def test_the_pictures_script_draws_every_picture_the_docs_show(tmp_path: Path) -> None:
    _docs_module("pictures").main(["--out", str(tmp_path)])
    drawn = {path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*.png")}
    shown = set(re.findall(r"\]\(images/([\w/.-]+\.png)\)", "".join(p.read_text() for p in DOCS.glob("*.md"))))
    assert shown <= drawn, f"pictures the docs show that docs/pictures.py does not draw: {shown - drawn}"
    committed = {p.relative_to(DOCS / "images").as_posix() for p in (DOCS / "images").rglob("*.png")}
    assert drawn <= committed, f"run python docs/pictures.py and commit: {drawn - committed}"
    assert all((tmp_path / name).read_bytes().startswith(b"\x89PNG") for name in drawn)


def _console_examples() -> list[object]:
    """(page, folder, command, output) for every ``$ autoshape ...`` line of the console blocks of the
    docs (run in ``docs/``) and of README (run in the repository's root)."""
    examples = []
    pages = [(page, DOCS) for page in sorted(DOCS.glob("*.md"))] + [(ROOT / "README.md", ROOT)]
    for page, folder in pages:
        for block in re.findall(r"```console\n(.*?)```", page.read_text(), re.DOTALL):
            for command, output in re.findall(r"^\$ (.+)\n((?:(?!\$ ).*\n)*)", block, re.MULTILINE):
                examples.append(pytest.param(page.name, folder, command, output, id=f"{page.name}: {command}"))
    return examples


@pytest.mark.parametrize(("page", "folder", "command", "output"), _console_examples())
def test_every_shell_example_prints_what_the_docs_show(capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       page: str, folder: Path, command: str, output: str) -> None:
    program, *argv = shlex.split(command)
    assert program == "autoshape", f"{page}: only autoshape commands are run: {command}"
    monkeypatch.chdir(folder)
    main(argv)
    printed = capsys.readouterr()
    assert printed.out + printed.err == output


def test_readme_links_resolve() -> None:
    readme = (ROOT / "README.md").read_text()
    links = [link for link in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme) if "://" not in link]
    missing = [link for link in links if not (ROOT / link).exists()]
    assert links and not missing, missing
    assert all(f"(docs/{page.name})" in readme for page in DOCS.glob("*.md") if page.stem != "benchmarks")


@needs_docs_extra
def test_headless_chromium_opens_home_api_page_and_search_without_console_errors(site: Path, tmp_path: Path) -> None:
    browser = _docs_module("browser")
    executable = browser.find_chromium()
    if executable is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    results = browser.check_site(site, executable)
    for key, result in results.items():
        (tmp_path / f"screenshot-{key}.png").write_bytes(result.screenshot)
        assert result.problems == [], f"{result.name}: {result.problems}"
        assert result.screenshot.startswith(b"\x89PNG")
    assert results["home"].heading == "autoshape"
    assert results["api-TargetConvTranspose2d"].heading == "TargetConvTranspose2d"
    count, *titles = results["search-output_padding"].heading.split("\n")
    assert re.fullmatch(r"\d+ matching documents?", count) and int(count.split()[0]) >= 5, count
    assert "conv_transpose_output_size" in titles, titles
