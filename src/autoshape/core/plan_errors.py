"""Why a plan is impossible: the reachable extreme or nearest sizes, and fixes confirmed before they are named.

Every fix is checked on every dimension at once (more layers change them all), with the exact
reachable sets of :mod:`autoshape.core.plan_reach`; the planner is complete, so a reachable target
is planned.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from ..errors import ShapeError
from .plan_reach import LEVELS, Route, Sizes, contains, forward
from .plan_search import describe_layers, routes

__all__ = ["DimRequest", "unreachable"]

_SEARCHED = 8
"""How many extra layers, and larger strides, an error message tries when it suggests a fix."""


class DimRequest(NamedTuple):
    """One spatial dimension of a plan request."""

    start: int
    target: int
    kernel: int | None
    max_kernel: int | None
    max_stride: int


def _route(transposed: bool, dim: DimRequest, layers: int) -> Route:
    """The route a refusal speaks of: the hard one, or a free kernel's largest soft cap."""
    return list(routes(transposed, dim.start, dim.target, layers, dim.kernel, dim.max_kernel, dim.max_stride))[-1]


def _forward_sets(route: Route, count: int) -> list[Sizes]:
    """The sizes reachable from the start after 0, 1, …, ``count`` layers."""
    sets: list[Sizes] = [((route.start, route.start, 1),)]
    for _ in range(count):
        sets.append(forward(route, LEVELS[-1], sets[-1]))
    return sets


def _reaches(route: Route) -> bool:
    return contains(_forward_sets(route, route.layers)[-1], route.target)


def _all_reach(transposed: bool, dims: Sequence[DimRequest], layers: int) -> bool:
    return all(_reaches(_route(transposed, dim, layers)) for dim in dims)


def _smallest_cap(route: Route) -> int:
    """The smallest kernel cap that reaches the target (one layer of |target-start|+1 does)."""
    low, high = route.cap, max(abs(route.target - route.start) + 1, 3)
    while high - low > 1:  # reachability only grows with the cap
        middle = (low + high) // 2
        low, high = (low, middle) if _reaches(route._replace(cap=middle)) else (middle, high)
    return high


def _nearest(sizes: Sizes, target: int) -> tuple[int | None, int | None]:
    below = [min(hi, target - 1) - (min(hi, target - 1) - lo) % step for lo, hi, step in sizes if lo < target]
    above = [x for lo, hi, step in sizes if hi > target
             and (x := max(lo, target + 1) + (lo - max(lo, target + 1)) % step) <= hi]
    return max(below, default=None), min(above, default=None)


def _targets(transposed: bool, dims: Sequence[DimRequest], failing: dict[int, tuple[int | None, int | None]]
             ) -> list[str]:
    """Output sizes that work: each failing dimension at its nearest reachable size, below or above
    (a plan keeps its direction)."""
    shown = []
    for prefer_above in (False, True):
        sizes = []
        for d, dim in enumerate(dims):
            options = [s for s in failing.get(d, (dim.target, dim.target))
                       if s is not None and (s >= dim.start if transposed else s <= dim.start)]
            if not options:
                return []
            sizes.append(options[-1] if prefer_above else options[0])
        text = str(sizes[0] if len(set(sizes)) == 1 else tuple(sizes))
        if text not in shown:
            shown.append(text)
    return [f"output_size {' or '.join(shown)}"] if shown else []


def _fixes(transposed: bool, dims: Sequence[DimRequest], layers: int) -> list[str]:
    """The fewest extra layers, the smallest larger max_stride, and a kernel bound, that plan every dimension."""
    fixes = []
    more = next((n for n in range(layers + 1, layers + _SEARCHED + 1) if _all_reach(transposed, dims, n)), None)
    if more is not None:
        fixes.append(f"num_layers={more}")
    top = max(dim.max_stride for dim in dims)
    stride = next((s for s in range(top + 1, top + _SEARCHED + 1)
                   if _all_reach(transposed, [dim._replace(max_stride=s) for dim in dims], layers)), None)
    if stride is not None:
        fixes.append(f"max_stride={stride}")
    if any(dim.kernel is not None for dim in dims):
        fixes.append("leave kernel_size free (None)")
    else:  # a larger bound never loses a plan: the largest of the bounds and of what each dimension needs
        cap = max(max(dim.max_kernel or 1 for dim in dims),
                  *(_smallest_cap(_route(transposed, dim, layers)) for dim in dims))
        fixes.append(f"max_kernel_size={cap}")
    return fixes


def unreachable(transposed: bool, dims: Sequence[DimRequest], layers: int, failing: Sequence[int],
                names: Sequence[str], call: str) -> ShapeError:
    """The error for a plan no search completes: the first failing dimension's reachable extreme or
    nearest sizes, then fixes that plan every dimension."""
    first = dims[failing[0]]
    route = _route(transposed, first, layers)
    bound = f"kernel_size {route.kernel}" if route.kernel is not None else f"kernel_size <= {route.cap}"
    what = (f"{call}: {describe_layers(layers, transposed)} cannot take size {first.start} to {first.target} in "
            f"{names[failing[0]]} ({bound}, stride <= {first.max_stride}, padding <= kernel_size-1).")
    finals = {d: _forward_sets(_route(transposed, dims[d], layers), layers)[-1] for d in failing}
    reached = finals[failing[0]]
    largest, smallest = max(hi for _, hi, _ in reached), reached[0][0]
    fixes = _fixes(transposed, dims, layers)
    if transposed and largest < first.target:
        reach = f"The largest size they reach is {largest}."
    elif not transposed and smallest > first.target:
        reach = f"The smallest size they reach is {smallest}."
    else:
        below, above = _nearest(reached, first.target)
        reach = f"Nearest reachable sizes: {below or 'none'} below, {above or 'none'} above."
    nearest = {d: _nearest(sizes, dims[d].target) for d, sizes in finals.items()}
    fixes = _targets(transposed, dims, nearest) + fixes
    return ShapeError(f"{what} {reach} Fix: use {', or '.join(fixes)}.")
