"""A griffe extension for the docs build: docstrings as ``help()`` shows them, roles as links.

* The Target layers' docstrings are built at import time (one template, six layers), so a
  static read sees none: a class without a static docstring gets its run-time ``__doc__``.
* ``autoshape.explain`` and ``autoshape.fix`` are functions, but a static read of
  ``autoshape.diagnose`` sees the submodules of the same names: a public name whose static
  target is a module while the run-time object is not points to the run-time object's own path.
* The docstrings write ``:class:`MirrorDecoder``` (as ``help()`` and Sphinx read them). In the
  site, a role naming a public name (``autoshape.__all__``) becomes a link to its API page; any
  other role (a private module, ``ValueError``) becomes plain code.

The source is never changed.
"""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any

import griffe

import autoshape

ROLE = re.compile(r":(?:func|class|meth|attr|mod|data|exc|obj):`~?([\w.]+)`")


def _link(match: re.Match[str]) -> str:
    target = match.group(1).removeprefix("autoshape.")
    head = target.split(".")[0]
    return f"[`{target}`][autoshape.{head}]" if head in autoshape.__all__ else f"`{target}`"


def link_roles(text: str) -> str:
    """Sphinx roles as Markdown: links to the API pages of public names, code for anything else."""
    return ROLE.sub(_link, text)


class AutoshapeDocstrings(griffe.Extension):
    """Public names as at run time, run-time docstrings where the source has none, roles rewritten."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.path != "autoshape":
            return
        for name in autoshape.__all__:
            runtime = getattr(autoshape, name)
            if pkg[name].is_module and not inspect.ismodule(runtime):
                pkg.set_member(name, griffe.Alias(name, f"{runtime.__module__}.{runtime.__qualname__}", parent=pkg))

    def on_class(self, *, cls: griffe.Class, **kwargs: Any) -> None:
        if cls.docstring is None:
            runtime = getattr(importlib.import_module(cls.module.path), cls.name, None)
            doc = inspect.getdoc(runtime) if runtime is not None else None
            if doc:
                cls.docstring = griffe.Docstring(doc, parent=cls)

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = link_roles(obj.docstring.value)
