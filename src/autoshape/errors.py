"""The one error type autoshape raises for sizes that cannot be reached."""

from __future__ import annotations

__all__ = ["ShapeError"]


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
