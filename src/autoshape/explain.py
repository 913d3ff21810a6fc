"""PLACEHOLDER until its issue lands: every name here raises NotImplementedError."""

from typing import Any


def Explanation(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("Explanation is not built yet")


def ExplainRow(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("ExplainRow is not built yet")


def explain(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("explain is not built yet")

