"""PLACEHOLDER until its issue lands: every name here raises NotImplementedError."""

from typing import Any


def UpsamplingStack(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("UpsamplingStack is not built yet")


def DownsamplingStack(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("DownsamplingStack is not built yet")

