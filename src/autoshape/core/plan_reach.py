"""The sizes a stack of layers can reach, exactly, as unions of progressions: the planner's map.

One layer of a plan relates two sizes by ``big = (small-1)·stride + 1 + δ``: for a transposed
convolution ``small`` is its input and ``big`` its output, for a convolution the other way round,
and ``δ = E - 2·padding + r`` with ``E = kernel_size-1``, padding in ``[0, E]`` and ``r`` the
output_padding (transposed) or the rows the floor drops (plain), below the stride. Over the
kernels a route allows, δ fills one progression per stride (``deltas``), so the sizes one layer
reaches from a progression of sizes are again a few progressions. Sets of sizes stay small
whatever the sizes are: their number of progressions grows with the layers and strides only.

A :class:`Level` restricts the layers: no reversal (``big >= small``), no checkerboard (a
transposed kernel divisible by its stride), no idle layer (``big > small``).
"""

from __future__ import annotations

import bisect
import functools
import itertools
from collections.abc import Iterable
from typing import NamedTuple

__all__ = [
    "LEVELS",
    "Level",
    "Route",
    "Sizes",
    "Span",
    "backward",
    "beyond_reach",
    "contains",
    "deltas",
    "extreme",
    "forward",
    "intersect",
    "window",
]

Span = tuple[int, int, int]
"""``(lo, hi, step)`` with step 1 or 2: the sizes ``lo, lo+step, …, hi``."""
Sizes = tuple[Span, ...]
"""A set of sizes: spans in increasing order of their first size."""


class Route(NamedTuple):
    """One spatial dimension of a plan request, under one kernel cap."""

    transposed: bool
    start: int
    target: int
    layers: int
    kernel: int | None  # the fixed kernel_size
    cap: int  # the largest kernel: the fixed one, max_kernel_size, or the planner's soft cap
    soft: bool  # a free kernel's cap, which a projection from or to size 1 may exceed; its plans never turn back
    max_stride: int


class Level(NamedTuple):
    """What the layers of a plan may do."""

    reversals: bool  # shrink in an upsampling plan, grow in a downsampling one
    checkerboards: bool  # a transposed kernel not divisible by its stride
    idle: bool  # keep the size


LEVELS = (Level(False, False, False), Level(False, False, True), Level(False, True, True), Level(True, True, True))
"""From the cleanest plans to any plan: a plan of an earlier level always costs less."""


def deltas(route: Route, s: int, divisible: bool) -> Span | None:
    """Every δ of one layer at stride s over the route's kernels (only divisible ones if asked)."""
    if route.kernel is not None:
        if divisible and route.kernel % s:
            return None
        reach = route.kernel - 1
        return (-reach, reach + s - 1, 2 if s == 1 and reach else 1)
    top = route.cap - route.cap % s if divisible else route.cap  # the largest kernel allowed
    return None if top < 1 else (1 - top, top + s - 2, 1)


def extreme(route: Route) -> int:
    """The largest final size of an upsampling route, the smallest of a downsampling one: every layer
    at the largest stride and δ. Projections from or to 1 of a soft route reach anything (the target)."""
    if route.soft and ((route.transposed and route.start == 1) or (not route.transposed and route.target == 1)):
        return route.target
    size, s = route.start, route.max_stride
    _, top, _ = deltas(route, s, False) or (0, 0, 1)  # any kernel: never None
    for _ in range(route.layers):
        size = (size - 1) * s + 1 + top if route.transposed else max(1, -(-(size - 1 - top) // s) + 1)
    return size


def beyond_reach(route: Route) -> bool:
    """A cheap sufficient test that no plan of the route reaches its target: its extreme falls short."""
    return extreme(route) < route.target if route.transposed else extreme(route) > route.target


def _at_least(span: Span, bound: int) -> Span | None:
    lo, hi, step = span
    if lo < bound:
        lo += -(-(bound - lo) // step) * step
    return None if lo > hi else (lo, hi, step if lo < hi else 1)


def _at_most(span: Span, bound: int) -> Span | None:
    lo, hi, step = span
    if hi > bound:
        hi -= -(-(hi - bound) // step) * step
    return None if lo > hi else (lo, hi, step if lo < hi else 1)


def _intersect_span(a: Span, b: Span) -> Span | None:
    lo, hi = max(a[0], b[0]), min(a[1], b[1])
    parities = {span[0] % 2 for span in (a, b) if span[2] == 2}
    if len(parities) > 1 or lo > hi:
        return None
    if not parities:
        return lo, hi, 1
    first = lo + (lo - parities.pop()) % 2
    last = hi - (hi - first) % 2
    return None if first > last else (first, last, 2 if first < last else 1)


def _sum(a: Span, b: Span) -> Span:
    """Every x + y: one progression, as both steps are 1 or 2."""
    if a[0] == a[1]:
        step = b[2]
    elif b[0] == b[1]:
        step = a[2]
    else:
        step = min(a[2], b[2])
    return a[0] + b[0], a[1] + b[1], step


def _window(x: int, s: int, d: Span, least: int | None) -> Span | None:
    """The bigs one small x reaches at stride s with δ in d, at least ``x + least`` when given."""
    base = (x - 1) * s + 1
    window = (base + d[0], base + d[1], d[2])
    return window if least is None else _at_least(window, x + least)


def _image(span: Span, s: int, d: Span, least: int | None) -> list[Span]:
    """Every big some small in ``span`` reaches."""
    if s == 1:
        d_ok = d if least is None else _at_least(d, least)
        return [] if d_ok is None else [_sum(span, d_ok)]
    lo, hi, step = span
    found = []
    if lo == 1:  # the only small whose window a least-size bound can cut short
        found += [w for w in [_window(1, s, d, least)] if w]
        lo += step
    if lo > hi:
        return found
    if step * s <= d[1] - d[0] + 1:  # neighbouring windows touch: one progression
        first, last = _window(lo, s, d, least), _window(hi, s, d, least)
        return [*found, (first[0], last[1], 1)] if first and last else found
    return found + [w for x in range(lo, hi + 1, step) if (w := _window(x, s, d, least))]


def _preimage(span: Span, s: int, d: Span, least: int | None) -> list[Span]:
    """Every small whose window meets ``span``."""
    lo, hi, _ = span
    if s == 1:
        d_ok = d if least is None else _at_least(d, least)
        return [] if d_ok is None else [_sum(span, (-d_ok[1], -d_ok[0], d_ok[2]))]
    found = []
    window = _window(1, s, d, least)
    if window and _intersect_span(window, span):
        found.append((1, 1, 1))
    first = max(2, -(-(lo - 1 - d[1]) // s) + 1)  # windows of smalls >= 2 hold two sizes or more
    last = (hi - 1 - d[0]) // s + 1
    if least is not None:
        last = min(last, hi - least)
    return found + ([(first, last, 1)] if first <= last else [])


def _normalized(spans: Iterable[Span], low: int, high: int | None) -> Sizes:
    """Clip to ``[low, high]``, sort, and merge the spans that join (spans may still overlap)."""
    clipped = []
    for span in spans:
        kept = _at_least(span, low)
        if kept is not None and high is not None:
            kept = _at_most(kept, high)
        if kept is not None:
            clipped.append(kept)
    merged: list[Span] = []
    for lo, hi, step in sorted(clipped):
        if merged:
            plo, phi, pstep = merged[-1]
            if step == pstep == 1 and lo <= phi + 1:
                merged[-1] = (plo, max(phi, hi), 1)
                continue
            if step == pstep == 2 and lo % 2 == plo % 2 and lo <= phi + 2:
                merged[-1] = (plo, max(phi, hi), 2)
                continue
            if pstep == 1 and hi <= phi:  # inside the previous span
                continue
        merged.append((lo, hi, step))
    return tuple(merged)


def window(route: Route, layer: int, slack: int = 0) -> tuple[int, int]:
    """The sizes a plan can have after ``layer`` layers and still end within ``slack`` of the target.

    A layer moves a size against the plan's direction by at most ``cap-1`` (a transposed one shrinks
    by at most that, a plain one grows by at most that), so a size beyond these bounds could not
    come back; a soft route never turns back at all, so it stays between its start and the target
    (or within ``slack`` past it).
    """
    if route.soft:
        return (route.start, route.target + slack) if route.transposed else (max(1, route.target - slack), route.start)
    back, left = route.cap - 1, route.layers - layer
    if route.transposed:
        return max(1, route.start - layer * back), route.target + slack + left * back
    return max(1, route.target - slack - left * back), route.start + layer * back


def _least(route: Route, level: Level) -> int | None:
    """How much ``big`` must exceed ``small``: None (any), 0 (no reversal) or 1 (nor idle). A soft route
    never turns back, whatever the level: a free kernel's plan that would need to is refused instead."""
    return None if level.reversals and not route.soft else 0 if level.idle else 1


def _step(route: Route, level: Level, sizes: Sizes, to_big: bool, bounds: tuple[int, int]) -> Sizes:
    """The sizes one layer relates to ``sizes`` (bigger-role ones if ``to_big``) within ``bounds``."""
    least, found = _least(route, level), []
    for s in range(1, route.max_stride + 1):
        d = deltas(route, s, route.transposed and not level.checkerboards)
        if d is not None:
            for span in sizes:
                found += _image(span, s, d, least) if to_big else _preimage(span, s, d, least)
    if route.soft and (route.transposed or route.target == 1):  # a projection: its kernel is its footprint
        smallest_big = 1 + (least or 0)
        if to_big and contains(sizes, 1):
            found.append((smallest_big, bounds[1], 1))
        elif not to_big and any(span[1] >= smallest_big for span in sizes):
            found.append((1, 1, 1))
    return _normalized(found, *bounds)


def forward(route: Route, level: Level, sizes: Sizes, layer: int, slack: int = 0) -> Sizes:
    """The sizes one more layer reaches from ``sizes``, the sizes after ``layer`` layers."""
    return _step(route, level, sizes, route.transposed, window(route, layer + 1, slack))


def backward(route: Route, level: Level, sizes: Sizes, layer: int) -> Sizes:
    """The sizes after ``layer-1`` layers from which one layer reaches ``sizes``."""
    return _step(route, level, sizes, not route.transposed, window(route, layer - 1))


def contains(sizes: Sizes, x: int) -> bool:
    return any(lo <= x <= hi and (x - lo) % step == 0 for lo, hi, step in sizes)


@functools.lru_cache(maxsize=256)
def _index(sizes: Sizes) -> tuple[list[int], list[int]]:
    """The first sizes of the spans, and the running maximum of their last sizes: both non-decreasing."""
    return [lo for lo, _, _ in sizes], list(itertools.accumulate((hi for _, hi, _ in sizes), max))


def intersect(a: Sizes, b: Sizes) -> Sizes:
    """The sizes in both: each span of a meets only the spans of b around it (found by bisection)."""
    firsts, reach = _index(b)
    found = []
    for x in a:
        for y in b[bisect.bisect_left(reach, x[0]):bisect.bisect_right(firsts, x[1])]:
            if (span := _intersect_span(x, y)) is not None:
                found.append(span)
    return _normalized(found, 1, None)
