"""The smallest change of one convolution's parameters that makes it give a wanted size.

Pure integers, one spatial dimension at a time: the closed form behind ``autoshape.fix`` and
explain's fixes. Changes are ranked by the parameter they touch, least disruptive first
(:data:`KINDS`: output_padding, then padding, then kernel_size, then stride, then a kernel more than
doubled; only a kernel change alters the weight's shape), then by how far the values move. A new
kernel or stride always has the kernel reach at least the stride: a kernel 3 at stride 5 would
leave output pixels with no input at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from .arithmetic import conv_out, conv_transpose_out
from .solver import ranked_solutions

__all__ = ["KINDS", "DimChange", "nearest_change"]

KINDS = ("output_padding", "padding", "kernel_size", "stride", "kernel_size beyond 2k+1")
"""What a change touches, in order of preference: the last parameter it has to move. A kernel that
more than doubles (past ``2k+1``) comes last: a 3×3 kernel grown to 13×13 to undo a stride
elsewhere is no fix, the stride is."""

_NEAREST_TARGETS = 16
"""How many wanted sizes (nearest the current one first) each kind of change is tried on."""


@dataclass(frozen=True)
class DimChange:
    """One dimension's new kernel_size, stride, padding and output_padding, and what it costs.

    ``kind`` indexes :data:`KINDS` (-1: nothing changes); ``moves`` is how far stride, kernel_size
    and padding plus output_padding move, compared in that order among changes of one kind.
    """

    kernel_size: int
    stride: int
    padding: int
    output_padding: int
    kind: int
    moves: tuple[int, int, int]


def _output(i: int, k: int, s: int, p: int, d: int, op: int, transposed: bool) -> int:
    return conv_transpose_out(i, k, s, p, d, op) if transposed else conv_out(i, k, s, p, d)


def _covers(k: int, s: int, d: int) -> bool:
    """A kernel that reaches at least its stride: a transposed conv then leaves no output without an
    input (bias alone), and a conv skips no input between its windows."""
    return d * (k - 1) + 1 >= s


def _nearest(current: int, low: int, high: int) -> list[int]:
    """Up to ``_NEAREST_TARGETS`` sizes of ``[low, high]``, nearest ``current`` first (the smaller on a tie)."""
    start = min(max(current, low), high)
    found = [start]
    for step in range(1, _NEAREST_TARGETS):
        found += [t for t in (start - step, start + step) if low <= t <= high]
    return found[:_NEAREST_TARGETS]


def nearest_change(i: int, low: int, high: int, k: int, s: int, p: int, d: int, op: int,
                   transposed: bool) -> DimChange | None:
    """The least change of ``(k, s, p, op)`` (dilation ``d`` kept) that takes input size ``i`` to a
    size in ``[low, high]``; None where no convolution of this direction can.

    A change of a lower kind always wins; within a kind, the least moves (sizes nearest the current
    output are tried).
    """
    current = _output(i, k, s, p, d, op, transposed)
    if low <= current <= high:
        return DimChange(k, s, p, op, -1, (0, 0, 0))
    targets = _nearest(current, max(low, 1), high)
    doubled = 2 * k + 1
    fixed: tuple[dict[str, int], ...] = ({"kernel_size": k, "stride": s, "padding": p},
                                         {"kernel_size": k, "stride": s},
                                         {"stride": s, "max_kernel_size": doubled}, {"max_kernel_size": doubled}, {})
    for kind, kept in enumerate(fixed):
        if kind == 0 and not transposed:
            continue
        found = [DimChange(c.kernel_size[0], c.stride[0], c.padding[0], c.output_padding[0], kind,
                           (abs(c.stride[0] - s), abs(c.kernel_size[0] - k),
                            abs(c.padding[0] - p) + abs(c.output_padding[0] - op)))
                 for t in targets
                 for c in ranked_solutions(i, t, transposed=transposed, dilation=d, limit=None, **kept)
                 if _covers(c.kernel_size[0], c.stride[0], d) or (c.kernel_size[0], c.stride[0]) == (k, s)]
        if found:
            return min(found, key=lambda change: change.moves)
    return None
