"""Why a plan is impossible: the reachable extreme or nearest sizes, and fixes confirmed before they are named."""

from __future__ import annotations

from ..errors import ShapeError
from .plan_reach import LEVELS, Route, Sizes, contains, forward
from .plan_search import describe_layers, routes

__all__ = ["unreachable"]

_SEARCHED = 8
"""How many extra layers, and larger strides, an error message tries when it suggests a fix."""


def _forward_sets(route: Route, count: int) -> list[Sizes]:
    """The sizes reachable from the start after 0, 1, …, ``count`` layers."""
    sets: list[Sizes] = [((route.start, route.start, 1),)]
    for _ in range(count):
        sets.append(forward(route, LEVELS[-1], sets[-1]))
    return sets


def _reaches(route: Route) -> bool:
    return contains(_forward_sets(route, route.layers)[-1], route.target)


def _kernel_fix(route: Route) -> str:
    """Free the fixed kernel, or the smallest max_kernel_size that reaches (one layer of |target-start|+1 does)."""
    if route.kernel is not None:
        return "leave kernel_size free (None)"
    low, high = route.cap, max(abs(route.target - route.start) + 1, 3)
    while high - low > 1:  # reachability only grows with the cap
        middle = (low + high) // 2
        low, high = (low, middle) if _reaches(route._replace(cap=middle)) else (middle, high)
    return f"max_kernel_size={high}"


def _fixes(route: Route, finals: list[Sizes]) -> list[str]:
    """The fewest extra layers and the smallest larger max_stride that reach the target."""
    layers = next((n for n in range(route.layers + 1, route.layers + _SEARCHED + 1)
                   if contains(finals[n], route.target)), None)
    stride = next((s for s in range(route.max_stride + 1, route.max_stride + _SEARCHED + 1)
                   if _reaches(route._replace(max_stride=s))), None)
    return ([f"num_layers={layers}"] if layers else []) + ([f"max_stride={stride}"] if stride else [])


def _nearest(sizes: Sizes, target: int) -> tuple[int | None, int | None]:
    below = max((min(hi, target - 1) - (min(hi, target - 1) - lo) % step for lo, hi, step in sizes
                 if lo < target), default=None)
    above = min((max(lo, target + 1) + (lo - max(lo, target + 1)) % step for lo, hi, step in sizes
                 if hi > target and max(lo, target + 1) + (lo - max(lo, target + 1)) % step <= hi), default=None)
    return below, above


def unreachable(transposed: bool, start: int, target: int, layers: int, kernel: int | None,
                max_kernel: int | None, max_stride: int, dim: str, call: str) -> ShapeError:
    """The error for a dimension no plan reaches: the reachable extreme or nearest sizes, and fixes."""
    route = list(routes(transposed, start, target, layers, kernel, max_kernel, max_stride))[-1]
    bound = f"kernel_size {route.kernel}" if route.kernel is not None else f"kernel_size <= {route.cap}"
    what = (f"{call}: {describe_layers(layers, transposed)} cannot take size {start} to {target} in "
            f"{dim} ({bound}, stride <= {max_stride}, padding <= kernel_size-1).")
    finals = _forward_sets(route, layers + _SEARCHED)
    reached = finals[layers]
    largest, smallest = max(hi for _, hi, _ in reached), reached[0][0]
    fixes = _fixes(route, finals)
    if transposed and largest < target:
        reach = f"The largest size they reach is {largest}."
    elif not transposed and smallest > target:
        reach = f"The smallest size they reach is {smallest}."
    else:
        below, above = _nearest(reached, target)
        reach = f"Nearest reachable sizes: {below or 'none'} below, {above or 'none'} above."
        kept = [size for size in (below, above)  # a plan keeps its direction
                if size is not None and (size >= start if transposed else size <= start)]
        fixes = ([f"output_size {' or '.join(map(str, kept))}"] if kept else []) + fixes
    fixes.append(_kernel_fix(route))
    return ShapeError(f"{what} {reach} Fix: use {', or '.join(fixes)}.")
