"""Checking and normalising int-or-tuple size arguments, once, at the API boundary."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Union

__all__ = ["IntOrTuple", "as_int", "as_tuple", "dim_labels", "dim_names", "like", "spatial_ndim"]

IntOrTuple = Union[int, Sequence[int]]
"""An int (the same value in every spatial dimension) or one int per dimension."""


def as_int(value: object, name: str, minimum: int = 1) -> int:
    """Return ``value`` as an int, refusing bools, floats and strings.

    Raises:
        TypeError: ``value`` is not an integer.
        ValueError: ``value`` is below ``minimum``.
    """
    if isinstance(value, (bool, str, bytes)):
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})")
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{name} must be an int, got {value!r} ({type(value).__name__})") from None
    if number < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {number}")
    return number


def spatial_ndim(*values: object) -> int | None:
    """The number of spatial dimensions implied by the tuple-valued arguments, if any.

    Raises:
        ValueError: two tuple arguments disagree in length.
    """
    lengths = {len(v) for v in values if isinstance(v, Sequence) and not isinstance(v, (str, bytes))}
    if len(lengths) > 1:
        raise ValueError(f"size tuples of different lengths {sorted(lengths)}: give one value per spatial dimension")
    return lengths.pop() if lengths else None


def as_tuple(value: object, name: str, ndim: int, minimum: int = 1) -> tuple[int, ...]:
    """Return ``value`` as a tuple of ``ndim`` checked ints (an int is repeated).

    Raises:
        TypeError: an entry is not an integer.
        ValueError: wrong tuple length, or an entry below ``minimum``.
    """
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        if len(value) != ndim:
            raise ValueError(f"{name} needs {ndim} value(s), one per spatial dimension; got {tuple(value)!r}")
        return tuple(as_int(v, name, minimum) for v in value)
    return (as_int(value, name, minimum),) * ndim


def like(*templates: object, values: tuple[int, ...]) -> int | tuple[int, ...]:
    """Return ``values`` as a bare int if every template is an int, else as the tuple."""
    return values[0] if spatial_ndim(*templates) is None else values


def dim_names(ndim: int) -> tuple[str, ...]:
    """``L`` for 1-d, ``H, W`` for 2-d, ``D, H, W`` for 3-d (numbers beyond that)."""
    names = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}
    return names.get(ndim, tuple(f"dim{n}" for n in range(ndim)))


_DIM_WORDS = {1: ("length",), 2: ("height", "width"), 3: ("depth", "height", "width")}


def dim_labels(ndim: int) -> tuple[str, ...]:
    """``dimension 1 of 2 (height)``, …: spatial dimensions named so that a message's reader knows which."""
    words = _DIM_WORDS.get(ndim)
    return tuple(f"dimension {n + 1} of {ndim}" + (f" ({words[n]})" if words else "") for n in range(ndim))
