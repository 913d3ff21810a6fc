"""PLACEHOLDER until its issue lands: every name here raises NotImplementedError."""

from typing import Any


def main(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("main is not built yet")

