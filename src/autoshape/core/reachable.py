"""The reachable output sizes nearest an unreachable target, in closed form over strides and kernels.

With ``Q = 2·padding - dilation·(kernel_size-1)`` (see :mod:`autoshape.core.window`), the values Q
can take under a request's fixed values and bounds are one or two arithmetic progressions. For
one progression and one stride the reachable outputs are then an interval, or a progression
when the stride is below the progression's step; their ends move monotonically with the stride,
so the best stride on either side of the target is found directly. The cost grows with the
dilation (strides below it are looked at one by one), never with the sizes.
"""

from __future__ import annotations

from .window import FAR, Progression, Request, first_stride_reaching, q_values

__all__ = ["nearest_reachable"]


def _max_at_most(lo: int, hi: int, step: int, bound: int) -> int | None:
    top = min(hi, bound)
    return None if top < lo else top - (top - lo) % step


def _min_at_least(lo: int, hi: int, step: int, bound: int) -> int | None:
    bottom = max(lo, bound)
    return None if bottom > hi else bottom + (lo - bottom) % step


def _better(current: int | None, found: int | None, above: bool) -> int | None:
    if found is None or current is None:
        return current if found is None else found
    return min(current, found) if above else max(current, found)


def _conv(r: Request, q: Progression, strides: tuple[int, int]) -> tuple[int | None, int | None]:
    """Nearest below and above for a plain convolution: ``out = floor(X / s) + 1`` with ``X = in-1+Q >= 0``."""
    o, (lo, hi, step), (first, last) = r.o, q, strides
    lo, hi = lo + r.i - 1, hi + r.i - 1
    if lo < 0:
        lo -= lo // step * step  # the first X >= 0
    if lo > hi:
        return None, None
    below: int | None = None
    above: int | None = None
    for s in range(first, min(last, step - 1) + 1):  # outputs with gaps: one stride at a time
        x = _max_at_most(lo, hi, step, (o - 1) * s - 1)
        below = _better(below, None if x is None else x // s + 1, False)
        x = _min_at_least(lo, hi, step, o * s)
        above = _better(above, None if x is None else x // s + 1, True)
    start = max(first, step)  # from here on a stride reaches an interval of outputs
    s = max(start, lo // (o - 1) + 1) if o > 1 else last + 1  # the first whose lowest output is below o
    if s <= last:
        below = _better(below, min(o - 1, hi // s + 1), False)
    s = min(last, hi // o)  # the last whose highest output is above o
    if s >= start:
        above = _better(above, max(o + 1, lo // s + 1), True)
    return below, above


def _transposed(r: Request, q: Progression, strides: tuple[int, int]) -> tuple[int | None, int | None]:
    """Nearest below and above for a transposed convolution: ``out = (in-1)·s + 1 - Q + output_padding``."""
    i, o, d, (lo, hi, step), (first, last) = r.i, r.o, r.dilation, q, strides

    def ends(s: int) -> tuple[int, int]:  # the lowest and highest output at stride s
        return (i - 1) * s + 1 - hi, (i - 1) * s + 1 - lo + max(s, d) - 1

    below: int | None = None
    above: int | None = None
    if step == 2 and d == 1 and first == 1:  # stride 1 without output_padding: every other size only
        q_low = _min_at_least(lo, hi, step, i - o + 1)
        below = None if q_low is None or i - q_low < 1 else i - q_low
        q_high = _max_at_most(lo, hi, step, i - o - 1)
        above = None if q_high is None else i - q_high
        first = 2
    s = min(last, (o - 2 + hi) // (i - 1)) if i > 1 else last  # the last whose lowest output is below o
    if s >= first and ends(s)[0] < o and o > 1 and ends(s)[1] >= 1:
        below = _better(below, min(o - 1, ends(s)[1]), False)
    s = max(first, first_stride_reaching(i, d, o + 1 + lo))  # the first whose highest output is above o
    if s <= last:
        above = _better(above, max(o + 1, ends(s)[0]), True)
    return below, above


def nearest_reachable(r: Request) -> tuple[int | None, int | None]:
    """The output sizes just below and just above ``r.o`` that some allowed layer reaches (None: none)."""
    strides = (r.stride, r.stride) if r.stride is not None else (1, r.max_stride or FAR)
    nearest = _transposed if r.transposed else _conv
    below: int | None = None
    above: int | None = None
    for q in q_values(r):
        low, high = nearest(r, q, strides)
        below, above = _better(below, low, False), _better(above, high, True)
    return below, above
