"""Taps of a transposed convolution: which inputs and kernel entries make each output.

A transposed convolution places ``input[x]·weight[j]`` at output position ``x·stride + j·dilation - padding``.
Read backwards, output ``o`` sums ``input[(o + padding - j·dilation) / stride]·weight[j]`` over every
kernel index ``j`` for which that input index is whole and inside the input: its *taps*. Uneven tap
counts between neighbouring outputs are the checkerboard pattern of transposed convolutions.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce
from typing import Any, cast, overload

from ..core.arithmetic import conv_transpose_output_size, max_output_padding
from ..core.sizes import IntOrTuple, as_tuple, spatial_ndim

__all__ = ["OverlapMap", "interior_tap_counts", "overlap_map", "transpose_taps"]

Tap1d = tuple[int, int]
TapNd = tuple[tuple[int, ...], tuple[int, ...]]


def _taps_1d(o: int, i: int, k: int, s: int, p: int, d: int) -> list[Tap1d]:
    """The (input_index, kernel_index) pairs summed into output ``o`` of one dimension."""
    taps = []
    for j in range(k):
        full = o + p - j * d  # position before the padding is cropped
        if full % s == 0 and 0 <= full // s < i:
            taps.append((full // s, j))
    return taps


@overload
def transpose_taps(
    output_index: int, *, input_size: int, kernel_size: int, stride: int = ..., padding: int = ..., dilation: int = ...,
    output_padding: int = ...,
) -> list[Tap1d]: ...
@overload
def transpose_taps(
    output_index: IntOrTuple,
    *,
    input_size: IntOrTuple,
    kernel_size: IntOrTuple,
    stride: IntOrTuple = ...,
    padding: IntOrTuple = ...,
    dilation: IntOrTuple = ...,
    output_padding: IntOrTuple = ...,
) -> list[Tap1d] | list[TapNd]: ...
def transpose_taps(
    output_index: IntOrTuple,
    *,
    input_size: IntOrTuple,
    kernel_size: IntOrTuple,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    output_padding: IntOrTuple = 0,
) -> list[Tap1d] | list[TapNd]:
    """The (input_index, kernel_index) pairs that a transposed convolution sums into one output.

    ``output[o] = Σ input[x]·weight[j]`` over the returned taps ``(x, j)`` (plus the bias), for one
    input and one output channel of ``nn.ConvTranspose*d``. Indices are ints in 1-d (all
    arguments ints) and tuples otherwise; n-d taps are every combination of the per-dimension ones.
    ``output_index`` must lie in the output of the layer given, ``output_padding`` included.

    Args:
        output_index: the output position, an int or one int per dimension.
        input_size: as for ``nn.ConvTranspose2d``: an int or one int per dimension.
        kernel_size: the same.
        stride: the same.
        padding: the same.
        dilation: the same.
        output_padding: the same (it adds outputs at the end, which have taps too).

    Shape:
        tap ``(x, j)`` of output ``o`` satisfies ``x·stride + j·dilation - padding = o`` with
        ``0 <= x < input_size`` and ``0 <= j < kernel_size``.

    Examples:
        >>> transpose_taps((0, 1), input_size=4, kernel_size=4, stride=2, padding=1)
        [((0, 1), (1, 0)), ((0, 0), (1, 2))]
        >>> transpose_taps(3, input_size=4, kernel_size=3, stride=2)
        [(1, 1)]

    Raises:
        TypeError: a value is not an int or tuple of ints.
        ValueError: a value is out of range, tuples disagree in length, ``output_padding`` is not
            below stride or dilation, or ``output_index`` lies outside the output (the message gives
            the valid range, and the ``output_padding`` with which the index exists, if any).
        ShapeError: the layer's output would be empty.
    """
    n = spatial_ndim(output_index, input_size, kernel_size, stride, padding, dilation, output_padding)
    o = as_tuple(output_index, "output_index", n or 1, minimum=0)
    i, k, s = (as_tuple(v, name, n or 1) for v, name in
               ((input_size, "input_size"), (kernel_size, "kernel_size"), (stride, "stride")))
    p = as_tuple(padding, "padding", n or 1, minimum=0)
    d = as_tuple(dilation, "dilation", n or 1)
    size = cast(tuple[int, ...], conv_transpose_output_size(i, k, s, p, d, output_padding))  # tuples in, out
    if any(oi >= top for oi, top in zip(o, size)):
        raise _outside(output_index, o, size, as_tuple(output_padding, "output_padding", len(o), 0), i, s, d)
    per_dim = [_taps_1d(*args) for args in zip(o, i, k, s, p, d)]
    if n is None:
        return per_dim[0]
    return [(tuple(x for x, _ in combo), tuple(j for _, j in combo)) for combo in itertools.product(*per_dim)]


def _flat(values: tuple[int, ...]) -> int | tuple[int, ...]:
    return values[0] if len(values) == 1 else values


def _outside(output_index: IntOrTuple, o: tuple[int, ...], size: tuple[int, ...], output_padding: tuple[int, ...],
             i: tuple[int, ...], s: tuple[int, ...], d: tuple[int, ...]) -> ValueError:
    """The index lies past the output: the valid range, and the output_padding that uncovers it, if torch allows one."""
    last = _flat(tuple(n - 1 for n in size))
    fixes = [f"use output_index={_flat(tuple(min(oi, n - 1) for oi, n in zip(o, size)))}"]
    bare = tuple(n - op for n, op in zip(size, output_padding))  # the size with output_padding=0
    needed = tuple(max(op, oi - b + 1) for oi, b, op in zip(o, bare, output_padding))
    if all(op <= max_output_padding(si, di) for op, si, di in zip(needed, s, d)):
        grown = _flat(tuple(b + op for b, op in zip(bare, needed)))
        fixes.append(f"output_padding={_flat(needed)} (the output then has size {grown} and the index exists)")
    return ValueError(
        f"output_index {output_index} is outside the output: indices run from 0 to {last} (output size "
        f"{_flat(size)}, with output_padding={_flat(output_padding)}) for input_size={_flat(i)}. "
        f"Fix: {', or '.join(fixes)}."
    )


def interior_tap_counts(kernel_size: int, stride: int, dilation: int = 1) -> tuple[int, ...]:
    """Taps per output away from the borders, one count per output phase ``0 … stride-1``.

    Unequal counts mean neighbouring outputs sum different numbers of products: the checkerboard
    risk. With dilation 1 they are equal exactly when ``kernel_size`` is divisible by ``stride``.

    Args:
        kernel_size, stride, dilation: ints, as for one dimension of ``nn.ConvTranspose*d``.

    Shape:
        count of phase ``r`` = number of ``j < kernel_size`` with ``j·dilation ≡ r (mod stride)``.

    Examples:
        >>> interior_tap_counts(3, 2)
        (2, 1)
        >>> interior_tap_counts(4, 2)
        (2, 2)
        >>> interior_tap_counts(4, 2, dilation=2)
        (4, 0)

    Raises:
        Nothing for ints >= 1.
    """
    reach = dilation * (kernel_size - 1)  # from here on every kernel index has an input
    return tuple(len(_taps_1d(reach + r, reach + stride, kernel_size, stride, 0, dilation)) for r in range(stride))


@dataclass(frozen=True)
class OverlapMap:
    """How many taps every output position of a transposed convolution sums (see :func:`overlap_map`).

    The map is separable: the count at ``(o1, o2)`` is ``per_dim[0][o1]·per_dim[1][o2]``.

    Args:
        size: the output size, one int per dimension.
        per_dim: the tap counts along each dimension.

    Shape:
        ``counts`` has shape ``size``.

    Examples:
        >>> m = overlap_map(input_size=(2, 3), kernel_size=3, stride=2)
        >>> m.size
        (5, 7)
        >>> print(m)
        1 1 2 1 2 1 1
        1 1 2 1 2 1 1
        2 2 4 2 4 2 2
        1 1 2 1 2 1 1
        1 1 2 1 2 1 1

    Raises:
        ValueError: ``save_png`` on a map of more than two dimensions.
        ImportError: ``save_png`` without matplotlib installed.
    """

    size: tuple[int, ...]
    per_dim: tuple[tuple[int, ...], ...]

    def __getitem__(self, index: int | Sequence[int]) -> int:
        """The tap count at one output position."""
        positions = (index,) if isinstance(index, int) else tuple(index)
        return reduce(lambda a, b: a * b, (counts[o] for counts, o in zip(self.per_dim, positions)), 1)

    @property
    def counts(self) -> list[Any]:
        """Tap counts as nested lists of shape ``size`` (like ``Tensor.tolist()``)."""
        def nest(dim: int, scale: int) -> list[Any]:
            if dim == len(self.per_dim) - 1:
                return [scale * c for c in self.per_dim[dim]]
            return [nest(dim + 1, scale * c) for c in self.per_dim[dim]]
        return nest(0, 1)

    def _grids(self) -> list[tuple[tuple[int, ...], list[list[int]]]]:
        """2-d slices (1-d maps as one row), keyed by the leading indices."""
        lead = self.size[:-2]
        grids = []
        for index in itertools.product(*(range(n) for n in lead)):
            block = self.counts
            for o in index:
                block = block[o]
            grids.append((index, block if len(self.size) > 1 else [block]))
        return grids

    def __str__(self) -> str:
        width = len(str(max(max(c) for c in self.per_dim) ** len(self.per_dim)))
        blocks = []
        for index, grid in self._grids():
            rows = [" ".join(f"{c:>{width}}" for c in row) for row in grid]
            header = [f"[{', '.join(map(str, index))}, :, :]"] if index else []
            blocks.append("\n".join(header + rows))
        return "\n\n".join(blocks)

    def save_png(self, path: str | os.PathLike[str]) -> None:
        """Write the map as a PNG heat map with the counts written in (needs matplotlib)."""
        if len(self.size) > 2:
            raise ValueError(f"save_png draws 1-d and 2-d maps; this one is {len(self.size)}-d (size {self.size})")
        try:
            from matplotlib.figure import Figure
        except ImportError as error:
            raise ImportError("OverlapMap.save_png needs matplotlib: pip install matplotlib") from error
        [(_, grid)] = self._grids()
        rows, cols = len(grid), len(grid[0])
        figure = Figure(figsize=(max(3.0, 0.35 * cols + 1.5), max(1.5, 0.35 * rows + 1.0)))
        axes = figure.subplots()
        image = axes.imshow(grid, cmap="viridis", vmin=0)
        figure.colorbar(image, ax=axes, label="taps")
        if rows * cols <= 1024:
            for y, row in enumerate(grid):
                for x, count in enumerate(row):
                    axes.text(x, y, str(count), ha="center", va="center", color="white", fontsize=7)
        axes.set_title("taps per output position")
        figure.savefig(path, format="png", bbox_inches="tight")


def overlap_map(
    *,
    input_size: IntOrTuple,
    kernel_size: IntOrTuple,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    output_padding: IntOrTuple = 0,
) -> OverlapMap:
    """The number of taps per output position of a transposed convolution: its checkerboard picture.

    ``str()`` of the result is a text grid; ``.save_png(path)`` draws it when matplotlib is installed.
    A transposed convolution of an all-ones input with an all-ones kernel outputs exactly these counts.

    Args:
        input_size: as for ``nn.ConvTranspose2d``: an int or one int per dimension.
        kernel_size: the same.
        stride: the same.
        padding: the same.
        dilation: the same.
        output_padding: the same.

    Shape:
        ``size = (in-1)·stride - 2·padding + dilation·(kernel_size-1) + output_padding + 1``;
        ``count[o] = len(transpose_taps(o, ...))``.

    Examples:
        >>> print(overlap_map(input_size=4, kernel_size=3, stride=2, padding=1))
        1 2 1 2 1 2 1
        >>> overlap_map(input_size=(4, 4), kernel_size=4, stride=2, padding=1).size
        (8, 8)

    Raises:
        TypeError: a value is not an int or tuple of ints.
        ValueError: a value is out of range, or ``output_padding`` is not below stride or dilation.
        ShapeError: the output would be empty.
    """
    n = spatial_ndim(input_size, kernel_size, stride, padding, dilation, output_padding) or 1
    size = cast(tuple[int, ...], conv_transpose_output_size(as_tuple(input_size, "input_size", n), kernel_size,
                                                             stride, padding, dilation, output_padding))
    i, k, s, d = (as_tuple(v, "size", n) for v in (input_size, kernel_size, stride, dilation))
    p = as_tuple(padding, "padding", n, minimum=0)
    per_dim = tuple(
        tuple(len(_taps_1d(o, *args)) for o in range(out)) for out, *args in zip(size, i, k, s, p, d)
    )
    return OverlapMap(size, per_dim)
