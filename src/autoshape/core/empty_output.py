"""The error for a layer whose output would be empty, with fixes that work when followed literally.

Each fix changes one argument in the direction that grows the output (more padding for a
convolution or a pooling, less for a transposed convolution) to the value nearest the current one
that gives every dimension an output of at least 1. The value is found by bisection on the
layer's own size function, so the advice cannot disagree with the arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from ..errors import ShapeError

__all__ = ["CONV_CHANGES", "POOL_CHANGES", "Change", "Layer", "check_output", "transpose_changes"]

Layer = dict[str, int]
"""One dimension of a layer: ``input_size``, ``kernel_size``, ``stride``, ``padding``, ``dilation``, …"""


class Change(NamedTuple):
    """One way to grow the output: the argument, the words for it, and the values to try in order."""

    name: str
    words: str  # e.g. "less padding"
    values: Callable[[Layer], range]  # from the current value outward; the output grows along it


def _nearest_valid(size: Callable[[Layer], int], layer: Layer, change: Change) -> int | None:
    """The first value along ``change.values`` with an output of at least 1 (bisection), or None."""
    values = change.values(layer)
    lo, hi = 0, len(values)
    while lo < hi:
        middle = (lo + hi) // 2
        if size({**layer, change.name: values[middle]}) >= 1:
            hi = middle
        else:
            lo = middle + 1
    return values[lo] if lo < len(values) else None


def _fix(size: Callable[[Layer], int], layers: Sequence[Layer], change: Change) -> str | None:
    found = []
    for layer in layers:
        value = layer[change.name] if size(layer) >= 1 else _nearest_valid(size, layer, change)
        if value is None:
            return None
        found.append(value)
    shown = found[0] if len(set(found)) == 1 else tuple(found)
    return f"{change.words} ({change.name}={shown})"


def check_output(what: str, size: Callable[[Layer], int], layers: Sequence[Layer],
                 changes: Sequence[Change]) -> tuple[int, ...]:
    """The output size of every dimension; a ShapeError naming the fixes if any is below 1."""
    sizes = tuple(size(layer) for layer in layers)
    if min(sizes) >= 1:
        return sizes
    fixes = [fix for change in changes if (fix := _fix(size, layers, change)) is not None]
    inputs = tuple(layer["input_size"] for layer in layers)
    raise ShapeError(f"{what} gives output size {sizes} for input size {inputs}: every size must be >= 1. "
                     f"Fix: use {', or '.join(fixes)}.")


def _extent(layer: Layer) -> int:
    return layer["dilation"] * (layer["kernel_size"] - 1) + 1


# What grows each layer's output, and how far to look: a convolution or pooling with an input as
# large as its kernel's extent (or padding that large) is never empty; a transposed one grows by
# at least one per step of its kernel or input.

_MORE_INPUT = Change("input_size", "a larger input", lambda x: range(x["input_size"] + 1, _extent(x) + 1))
_LESS_DILATION = Change("dilation", "less dilation", lambda x: range(x["dilation"] - 1, 0, -1))
CONV_CHANGES = (
    _MORE_INPUT,
    Change("padding", "more padding", lambda x: range(x["padding"] + 1, _extent(x) + 1)),
    Change("kernel_size", "a smaller kernel", lambda x: range(x["kernel_size"] - 1, 0, -1)),
    _LESS_DILATION,
)
POOL_CHANGES = (  # torch keeps pool padding at most half the kernel
    _MORE_INPUT,
    Change("padding", "more padding", lambda x: range(x["padding"] + 1, x["kernel_size"] // 2 + 1)),
    Change("kernel_size", "a smaller kernel", lambda x: range(x["kernel_size"] - 1, max(1, 2 * x["padding"]) - 1, -1)),
    _LESS_DILATION,
)


def transpose_changes(deficit: int) -> tuple[Change, ...]:
    """A transposed convolution grows with its input, kernel and stride, and shrinks with its padding."""
    return (
        Change("padding", "less padding", lambda x: range(x["padding"] - 1, -1, -1)),
        Change("kernel_size", "a larger kernel", lambda x: range(x["kernel_size"] + 1, x["kernel_size"] + deficit + 1)),
        Change("input_size", "a larger input", lambda x: range(x["input_size"] + 1, x["input_size"] + deficit + 1)),
    )
