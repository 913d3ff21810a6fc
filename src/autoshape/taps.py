"""PLACEHOLDER until its issue lands: every name here raises NotImplementedError."""

from typing import Any


def transpose_taps(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("transpose_taps is not built yet")


def overlap_map(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("overlap_map is not built yet")

