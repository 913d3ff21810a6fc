"""Why a plan is impossible: the reachable extreme or nearest sizes, and fixes confirmed before they are named.

Every fix is checked on every dimension at once (more layers change them all), with the exact
reachable sets of :mod:`autoshape.core.plan_reach`, computed in the direction in which sizes
shrink (back from the target of an upsampling plan, forward from the start of a downsampling
one), so their number stays small; the planner is complete, so a reachable target is planned.
The fixes are the fewest layers, the smallest larger max_stride (a free kernel's cap grows with it)
and the smallest ``max_kernel_size``: a hard bound, so a scale that a free kernel's cap refuses stays
reachable, exactly, with larger kernels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from ..errors import ShapeError
from .plan_reach import LEVELS, Route, Sizes, backward, beyond_reach, contains, extreme, forward
from .plan_search import describe_layers, routes

__all__ = ["DimRequest", "unreachable"]

_MORE_LAYERS, _MORE_STRIDE = 8, 4
"""How many extra layers, and how much larger a max_stride, an error message tries when it suggests a fix
(larger strides multiply the sets of sizes to follow)."""
_WORK = 4000
"""Images or preimages of spans a refusal may compute to confirm its fixes (about 10 ms' worth)."""
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


class _Checker:
    """Whether routes reach their targets, for one refusal: answers kept, and at most ``_WORK`` spans mapped
    in all (None: not known within that; the fix that needed it is then not offered)."""

    def __init__(self) -> None:
        self.left = _WORK
        self.known: dict[Route, set[int] | None] = {}

    def counts(self, route: Route) -> set[int] | None:
        """The layer counts up to ``route.layers`` with which the route reaches its target. One chain of sets,
        where sizes shrink (back from an upsampling target, forward from a downsampling start), answers all:
        its windows, those of the most layers, hold every size of a shorter plan too."""
        if route not in self.known:
            self.known[route] = None if self.left < 0 else self._follow(route)
        return self.known[route]

    def _follow(self, route: Route) -> set[int] | None:
        first, last = (route.target, route.start) if route.transposed else (route.start, route.target)
        sizes: Sizes = ((first, first, 1),)
        found = set()
        for done in range(1, route.layers + 1):
            self.left -= len(sizes) * route.max_stride  # one image or preimage per span and stride
            if self.left < 0:
                return None
            if route.transposed:
                sizes = backward(route, _ANY, sizes, route.layers - done + 1)
            else:
                sizes = forward(route, _ANY, sizes, done - 1)
            if contains(sizes, last):
                found.add(done)
        return found

    def reach(self, transposed: bool, dims: Sequence[DimRequest], layers: int, most: int | None = None) -> bool | None:
        """Whether every dimension reaches its target in ``layers`` layers (None: not known)."""
        if not _extremes_reach(transposed, dims, layers):
            return False
        for dim in dims:
            counts = self.counts(_route(transposed, dim, most or layers))
            if counts is None or layers not in counts:
                return None if counts is None else False
        return True


def _extremes_reach(transposed: bool, dims: Sequence[DimRequest], layers: int) -> bool:
    """The cheap test that every dimension may reach its target: its extreme does not fall short of it."""
    return not any(beyond_reach(_route(transposed, dim, layers)) for dim in dims)


def _smallest(fails: int, works: int, test: Callable[[int], bool | None]) -> int:
    """The smallest value above ``fails`` that passes a test, monotone and known to pass at ``works``: steps
    doubled up from ``fails``, then bisection. A test that cannot tell (None) ends it at the smallest passed."""
    step = 1
    while works - fails > 1:
        value = min(fails + step, (fails + works) // 2)
        passed = test(value)
        if passed is None:
            break
        fails, works, step = (fails, value, step) if passed else (value, works, 2 * step)
    return works


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
    """The fewest extra layers, the smallest larger max_stride, and the smallest kernel bound, that plan every
    dimension (a free kernel's cap grows with max_stride: the routes of the fixed requests say so).

    The failing dimensions are checked first (the likeliest to fail again), those with the nearest ends
    first among them: their sets of sizes are the smallest."""
    def order(d: int) -> tuple[bool, float]:
        return d not in failing, max(dims[d].start, dims[d].target) / min(dims[d].start, dims[d].target)

    dims, checker = [dims[d] for d in sorted(range(len(dims)), key=order)], _Checker()
    fixed, free = any(dim.kernel is not None for dim in dims), [dim._replace(kernel=None) for dim in dims]
    if fixed and checker.reach(transposed, free, layers):
        kernel = "leave kernel_size free (None)"
    else:  # the one fix always offered (a free kernel is capped): found first, while the checker's budget lasts
        bound = f"max_kernel_size={_kernel_bound(transposed, free, layers, checker)}"
        kernel = f"leave kernel_size free (None) with {bound}" if fixed else bound
    most = layers + _MORE_LAYERS
    more = next((n for n in range(layers + 1, most + 1) if checker.reach(transposed, dims, n, most)), None)
    top = max(dim.max_stride for dim in dims)
    stride = next((s for s in range(top + 1, top + _MORE_STRIDE + 1)
                   if checker.reach(transposed, [dim._replace(max_stride=s) for dim in dims], layers)), None)
    return ([f"num_layers={more}"] if more is not None else []) + (
        [f"max_stride={stride}"] if stride is not None else []) + [kernel]


def _kernel_bound(transposed: bool, dims: Sequence[DimRequest], layers: int, checker: _Checker) -> int:
    """The smallest max_kernel_size, at least the current bounds, that plans every dimension (a larger bound
    never loses a plan): the cheap extreme test finds the smallest that may, the checker confirms from there.
    Past the checker's budget, the smallest confirmed, at first |target-start|+1 (one layer that size and idle
    layers of kernel 1 always fit)."""
    def capped(cap: int) -> list[DimRequest]:
        return [dim._replace(max_kernel=cap) for dim in dims]

    floor = max(dim.max_kernel or 1 for dim in dims)
    fails = floor if all(dim.max_kernel == floor for dim in dims) else floor - 1  # the request's own bound fails
    works = max(floor, *(abs(dim.target - dim.start) + 1 for dim in dims))
    fails = _smallest(fails, works, lambda cap: _extremes_reach(transposed, capped(cap), layers)) - 1
    return _smallest(fails, works, lambda cap: checker.reach(transposed, capped(cap), layers))


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
    """The error for a plan no search completes: the first failing dimension's bounds (a free kernel's cap
    among them) and reachable extreme or nearest sizes, then fixes that plan every dimension."""
    first = dims[failing[0]]
    route = _route(transposed, first, layers)
    bound = (f"kernel_size {route.kernel}" if route.kernel is not None else
             f"kernel_size <= {route.cap}{', the cap on a free kernel' * route.soft}")
    monotone = f", no layer {'shrinking' if transposed else 'growing'}" * route.soft  # unlike under a hard bound
    what = (f"{call}: {describe_layers(layers, transposed)} cannot take size {first.start} to {first.target} in "
            f"{names[failing[0]]} ({bound}, stride <= {first.max_stride}, padding <= kernel_size-1{monotone}).")
    reached = {d: _reach_text(_route(transposed, dims[d], layers)) for d in failing}
    fixes = _targets(transposed, dims, {d: near for d, (_, near) in reached.items()})
    fixes += _fixes(transposed, dims, layers, failing)
    return ShapeError(f"{what} {reached[failing[0]][0]} Fix: use {', or '.join(fixes)}.")
