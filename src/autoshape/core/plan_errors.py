"""Why a plan is impossible: the reachable extreme or nearest sizes, and fixes confirmed before they are named.

Every fix is checked on every dimension at once (more layers change them all), with the exact
reachable sets of :mod:`autoshape.core.plan_reach`, computed in the direction in which sizes
shrink (back from the target of an upsampling plan, forward from the start of a downsampling
one), so their number stays small; the planner is complete, so a reachable target is planned.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import NamedTuple

from ..errors import ShapeError
from .plan_reach import LEVELS, Route, Sizes, backward, beyond_reach, contains, extreme, forward
from .plan_search import describe_layers, routes

__all__ = ["DimRequest", "unreachable"]

_MORE_LAYERS, _MORE_STRIDE = 8, 4
"""How many extra layers, and how much larger a max_stride, an error message tries when it suggests a fix
(larger strides multiply the sets of sizes to follow)."""
_ANY = LEVELS[-1]


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


@functools.lru_cache(maxsize=256)
def _reaches(route: Route) -> bool:
    """Whether any plan of the route reaches its target (sizes followed where they shrink, after the
    cheap test that the extreme size lies beyond the target)."""
    if beyond_reach(route):
        return False
    if route.transposed:
        sizes: Sizes = ((route.target, route.target, 1),)
        for layer in range(route.layers, 0, -1):
            sizes = backward(route, _ANY, sizes, layer)
        return contains(sizes, route.start)
    sizes = ((route.start, route.start, 1),)
    for layer in range(route.layers):
        sizes = forward(route, _ANY, sizes, layer)
    return contains(sizes, route.target)


def _all_reach(transposed: bool, dims: Sequence[DimRequest], layers: int) -> bool:
    return all(_reaches(_route(transposed, dim, layers)) for dim in dims)


def _smallest_cap(route: Route) -> int:
    """The smallest kernel cap that reaches the target (one layer of |target-start|+1 does)."""
    low, high = route.cap, max(abs(route.target - route.start) + 1, 3)
    while high - low > 1:  # reachability only grows with the cap
        middle = (low + high) // 2
        low, high = (low, middle) if _reaches(route._replace(cap=middle)) else (middle, high)
    return high


def _finals(route: Route, slack: int) -> Sizes:
    """Every final size within ``slack`` of the target (an upsampling route's finals grow without bound)."""
    sizes: Sizes = ((route.start, route.start, 1),)
    for layer in range(route.layers):
        sizes = forward(route, _ANY, sizes, layer, slack)
    return sizes


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
    return [" or ".join(f"output_size={text}" for text in shown)] if shown else []


def _fixes(transposed: bool, dims: Sequence[DimRequest], layers: int, failing: Sequence[int]) -> list[str]:
    """The fewest extra layers, the smallest larger max_stride, and a kernel bound, that plan every dimension.

    The failing dimensions are checked first (the likeliest to fail again), those with the nearest ends
    first among them: their sets of sizes are the smallest."""
    def order(d: int) -> tuple[bool, float]:
        return d not in failing, max(dims[d].start, dims[d].target) / min(dims[d].start, dims[d].target)

    dims = [dims[d] for d in sorted(range(len(dims)), key=order)]
    fixes = []
    more = next((n for n in range(layers + 1, layers + _MORE_LAYERS + 1) if _all_reach(transposed, dims, n)), None)
    if more is not None:
        fixes.append(f"num_layers={more}")
    top = max(dim.max_stride for dim in dims)
    stride = next((s for s in range(top + 1, top + _MORE_STRIDE + 1)
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


def _reach_text(route: Route) -> tuple[str, tuple[int | None, int | None]]:
    """What the message says the route reaches, and its nearest sizes below and above the target."""
    far = extreme(route)
    if route.transposed and far < route.target:
        return f"The largest size they reach is {far}.", (far, None)
    if not route.transposed and far > route.target:
        return f"The smallest size they reach is {far}.", (None, far)
    slack = 3 * route.target + 2 * route.cap * route.max_stride  # finals up to about 4·target are looked at
    below, above = _nearest(_finals(route, slack), route.target)
    horizon = route.target + slack
    shown = above or ("none" if not route.transposed or far <= horizon else f"none up to {horizon}")
    return f"Nearest reachable sizes: {below or 'none'} below, {shown} above.", (below, above)


def unreachable(transposed: bool, dims: Sequence[DimRequest], layers: int, failing: Sequence[int],
                names: Sequence[str], call: str) -> ShapeError:
    """The error for a plan no search completes: the first failing dimension's reachable extreme or
    nearest sizes, then fixes that plan every dimension."""
    first = dims[failing[0]]
    route = _route(transposed, first, layers)
    bound = f"kernel_size {route.kernel}" if route.kernel is not None else f"kernel_size <= {route.cap}"
    what = (f"{call}: {describe_layers(layers, transposed)} cannot take size {first.start} to {first.target} in "
            f"{names[failing[0]]} ({bound}, stride <= {first.max_stride}, padding <= kernel_size-1).")
    reach, _ = _reach_text(route)
    nearest = {d: _reach_text(_route(transposed, dims[d], layers))[1] for d in failing}
    fixes = _targets(transposed, dims, nearest) + _fixes(transposed, dims, layers, failing)
    return ShapeError(f"{what} {reach} Fix: use {', or '.join(fixes)}.")
