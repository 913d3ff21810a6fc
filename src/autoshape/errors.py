"""The one error type autoshape raises for sizes that cannot be reached, and where its warnings point."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

__all__ = ["ShapeError", "warn"]

_PACKAGE = str(Path(__file__).resolve().parent)


class ShapeError(ValueError):
    """A requested size is unreachable, or a module met an input size it was not built for.

    Every message names what was asked, what is reachable (a range or the nearest
    sizes), the context, and one concrete fix. It subclasses :class:`ValueError`,
    so ``except ValueError`` also catches it.

    Raises:
        Nothing: it raises nothing itself; autoshape raises it.

    Examples:
        >>> from autoshape import ShapeError, solve_conv_transpose
        >>> try:
        ...     solve_conv_transpose(6, 21, kernel_size=3, stride=3)
        ... except ShapeError as error:
        ...     print("Nearest reachable sizes: 20 below, none above" in str(error))
        True
    """


def warn(message: str, category: type[Warning] = RuntimeWarning) -> None:
    """Warn at the line of the caller's code that called into autoshape, not at autoshape's own line
    (as ``stacklevel`` would, however deep in the package the warning is raised)."""
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level + 1)
