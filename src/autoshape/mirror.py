"""PLACEHOLDER until its issue lands: every name here raises NotImplementedError."""

from typing import Any


def MirrorDecoder(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("MirrorDecoder is not built yet")


def MirrorAutoencoder(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("MirrorAutoencoder is not built yet")

