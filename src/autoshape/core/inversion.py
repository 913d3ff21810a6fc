"""Pure integer arithmetic of mirroring: transposed convolutions that undo a size change exactly.

A downsampling layer maps a whole interval of input sizes to one output size (a stride-2 conv
takes 23 and 24 to 12). A transposed convolution reaches an interval too: ``output_padding``
runs from 0 to ``stride - 1`` (what torch accepts per call through ``output_size``). A mirror is
exact for every input size when its interval is the layer's interval, for every output size.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["SizeFunction", "fit_transpose"]

SizeFunction = Callable[[int], "int | None"]
"""One spatial dimension of a layer: input size to output size (None where the layer refuses)."""


def _last_with(size_of: SizeFunction, start: int, value: int, limit: int) -> int | None:
    """The largest size ``j >= start`` with ``size_of`` equal to ``value`` on all of ``start..j``."""
    j = start
    while size_of(j + 1) == value:
        j += 1
        if j - start > limit:
            return None
    return j


def _period(size_of: SizeFunction, i: int, limit: int) -> tuple[int, int, int] | None:
    """``(o, hi, s)``: the output at ``i``, the last input giving it, and the period ``s``.

    The period is measured on the next output size's interval, which lies wholly above ``i``
    (the interval of ``o`` itself may be cut short at size 1). Two more periods are checked.
    """
    o = size_of(i)
    hi = None if o is None else _last_with(size_of, i, o, limit)
    if o is None or hi is None or size_of(hi + 1) != o + 1:
        return None
    hi_next = _last_with(size_of, hi + 1, o + 1, limit)
    if hi_next is None:
        return None
    s = hi_next - hi
    later = all(size_of(hi + m * s + t) == o + m + 1 for m in (1, 2) for t in (1, s))
    return (o, hi, s) if later and hi - i < s else None


def fit_transpose(size_of: SizeFunction, i: int, limit: int = 64) -> tuple[int, int, int, int] | None:
    """``(kernel, stride, padding, output_padding)`` of a transposed conv that undoes ``size_of``.

    ``size_of`` must behave like a convolution near ``i``: every output size comes from an
    interval of ``s`` consecutive input sizes, and the next output from the next ``s``. The
    transposed conv gets stride ``s`` and the kernel and padding that make its
    ``output_padding`` range exactly that interval, so passing the recorded input size as
    ``output_size`` is exact for every input size. The kernel is the smallest one at least
    the stride (``kernel = stride``, no overlap, when the interval allows it); output_padding is
    the one for ``i``. None when ``size_of`` is not conv-like within ``limit`` sizes of ``i``.
    """
    found = _period(size_of, i, limit)
    if found is None:
        return None
    o, hi, s = found
    lo = hi - s + 1
    if (lo >= 1 and size_of(lo) not in (o, None)) or (lo > 1 and size_of(lo - 1) not in (o - 1, None)):
        return None
    e = lo - (o - 1) * s  # the kernel must satisfy kernel - 2·padding == e
    k = max(s + (s - e) % 2, e)
    return k, s, (k - e) // 2, i - lo
