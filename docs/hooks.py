"""mkdocs hooks: an API page for every name in ``autoshape.__all__``, grouped by subpackage in the nav.

The pages are generated at build time (``::: autoshape.NAME`` for mkdocstrings), so a new public
name gets its page, its nav entry and its row in the API index without touching the docs. The
doctests' ``<BLANKLINE>`` markers (an empty line of output, for doctest) are shown as empty lines.
"""

from __future__ import annotations

import inspect
from typing import Any

from griffe_autoshape import link_roles  # beside this file; mkdocs puts it on sys.path while loading hooks
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

import autoshape

GROUPS = {  # subpackage → nav section, in the order of the nav
    "layers": "Target layers and stacks",
    "mirror": "Mirrors and U-Nets",
    "core": "Solver, planner and arithmetic",
    "diagnose": "explain, fix and taps",
    "errors": "Errors",
}


def public_names() -> dict[str, list[str]]:
    """``autoshape.__all__`` grouped by the subpackage that defines each name, nav order."""
    groups: dict[str, list[str]] = {title: [] for title in GROUPS.values()}
    for name in autoshape.__all__:
        subpackage = getattr(autoshape, name).__module__.split(".")[1]
        groups[GROUPS[subpackage]].append(name)
    return groups


def _summary(name: str) -> str:
    """The docstring's first paragraph, on one line."""
    paragraph = (inspect.getdoc(getattr(autoshape, name)) or "").split("\n\n")[0]
    return link_roles(" ".join(paragraph.split()))


def _index() -> str:
    lines = ["# API reference", "",
             "Every public name of `autoshape` (its `__all__`), with the summary of its docstring.", ""]
    for title, names in public_names().items():
        lines += [f"## {title}", "", "| name | what it is |", "|---|---|"]
        lines += [f"| [`{name}`]({name}.md) | {_summary(name)} |" for name in names]
        lines.append("")
    return "\n".join(lines)


def on_config(config: MkDocsConfig, **kwargs: Any) -> MkDocsConfig:
    sections = [{title: [{name: f"api/{name}.md"} for name in names]} for title, names in public_names().items()]
    config.nav = [*(config.nav or []), {"API reference": ["api/index.md", *sections]}]
    return config


def on_files(files: Files, config: MkDocsConfig, **kwargs: Any) -> Files:
    files.append(File.generated(config, "api/index.md", content=_index()))
    for name in autoshape.__all__:
        files.append(File.generated(config, f"api/{name}.md", content=f"::: autoshape.{name}\n"))
    return files


def on_page_content(html: str, **kwargs: Any) -> str:
    return html.replace("&lt;BLANKLINE&gt;", "")
