"""Torch functions named as users write them: ``F.relu``, ``torch.cat``, ``view``, ``add``."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch.nn import functional as F

__all__ = ["function_name", "function_named"]


@functools.cache
def _known() -> dict[int, str]:
    """Every public callable of ``torch.nn.functional``, ``torch`` and ``torch.Tensor``, by identity.

    ``F.`` names win over ``torch.`` ones (``F.relu`` is also ``torch.relu``'s twin), and both over
    Tensor methods, which are named bare (``view``, ``add`` for ``+``).
    """
    names: dict[int, str] = {}
    for namespace, prefix in ((F, "F."), (torch, "torch."), (torch.Tensor, "")):
        for name in dir(namespace):
            if name.startswith("_") and not name.startswith("__"):
                continue
            try:
                found = getattr(namespace, name)
            except Exception:  # a lazy attribute that fails to load is simply not a name
                continue
            if callable(found) and not isinstance(found, type):
                names.setdefault(id(found), prefix + name)
    return names


def function_name(function: Callable[..., object]) -> str:
    """The name a user writes for ``function``: ``F.max_pool2d``, ``torch.cat``, ``view``, ``__getitem__``."""
    known = _known().get(id(function))
    if known is not None:
        return known
    return str(getattr(function, "__name__", None) or type(function).__name__)


def function_named(name: str) -> Callable[..., object]:
    """The torch function or Tensor method :func:`function_name` calls ``name`` (its inverse).

    Raises:
        LookupError: ``name`` is not one of torch's public callables.
    """
    for prefix, namespace in (("F.", F), ("torch.", torch), ("", torch.Tensor)):
        if name.startswith(prefix) and (prefix or "." not in name):
            found = getattr(namespace, name[len(prefix):], None)
            if callable(found) and function_name(found) == name:
                return found  # type: ignore[no-any-return]
    raise LookupError(f"{name!r} names no public torch function or Tensor method")
