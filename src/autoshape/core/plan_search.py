"""The search behind the planner: one spatial dimension of a conv stack as a shortest path.

Pure integer code, no modules. Each spatial dimension is planned on its own as a shortest
path (A*): the states are (layer, size), a step's parameters come from the solver (its best, a
kernel divisible by its stride preferred), and paths are compared by a cost that sums over
steps, lexicographically:

1. reversals: steps that shrink in an upsampling plan or grow in a downsampling one (a fixed
   kernel may need them: 8→9→8 with kernel 4 and stride 1, whose every step is odd);
2. checkerboard steps: transposed kernels not divisible by their stride;
3. irregularity: none for a whole stride (``out = in·stride``, stride > 1) or a projection from or
   to size 1 (a 1×1 input mapped to its kernel's footprint with stride 1 and no padding, as DCGAN's
   first layer; or the mirror, as its discriminator's last), 1 for a layer that keeps a size above
   1, and 2 for any other layer (so one uneven step costs as much as two idle ones);
4. drift from the geometric schedule: ``(ln(out/in) - ln(target/start)/num_layers)²``;
5. then smaller kernels, less padding and output_padding, and smaller intermediate sizes.

Kernels are bounded by the fixed ``kernel_size``, else by ``max_kernel_size``; within such a
hard bound the plan is the cheapest of all, and absent only when none exists. A free kernel gets
a soft cap of ``2·max_stride+1`` instead, doubled only while no checkerboard-free plan fits, so
kernels stay compact and the search small; projections from or to size 1 may exceed it, and a
free kernel's plan never turns back. Paddings stay within ``[0, kernel_size-1]``; dilation is 1.
"""

from __future__ import annotations

import functools
import heapq
import math
from collections.abc import Iterator
from dataclasses import dataclass

from ..errors import ShapeError
from .arithmetic import conv_out, conv_transpose_out
from .search import candidates
from .solver import ConvParams
from .window import Request

__all__ = ["DimPath", "describe_layers", "plan_dim", "routes", "unreachable"]

DimPath = tuple[tuple[int, ConvParams], ...]
"""One dimension's plan: the size after each layer and that layer's (one-dimensional) parameters."""
_Cost = tuple[int, ...]
_SEARCHED = 8
"""How many extra layers, and larger strides, an error message tries when it suggests a fix."""


def describe_layers(count: int, transposed: bool) -> str:
    """``"3 transposed convolutions"``: the stack a plan or an error speaks of."""
    return f"{count} {'transposed ' if transposed else ''}convolution{'s' * (count != 1)}"



@dataclass(frozen=True)
class _Route:
    """One spatial dimension of a plan request, under one kernel cap."""

    transposed: bool
    start: int
    target: int
    layers: int
    kernel: int | None  # fixed kernel_size
    cap: int  # largest kernel searched: the fixed one, max_kernel_size, or the planner's soft cap
    soft: bool  # soft cap: projections from or to size 1 may exceed it
    max_stride: int

    def projects_from(self, a: int) -> bool:
        """Whether a layer from size a may exceed the soft cap: a transposed projection of a 1×1 input."""
        return self.soft and self.transposed and a == 1

    def projects_to(self, b: int) -> bool:
        """Whether a layer to size b may exceed the soft cap: a plain projection to a 1×1 target."""
        return self.soft and not self.transposed and b == 1 == self.target


def _checkerboard(params: ConvParams) -> bool:
    return params.transposed and params.kernel_size[0] % params.stride[0] != 0


@functools.lru_cache(maxsize=1 << 16)
def _solved(request: Request) -> ConvParams | None:
    """The solver's best layer for one dimension, a divisible transposed kernel first; None if none."""
    ranked = candidates(request)
    best = next(ranked, None)
    if best is not None and request.transposed and best.kernel % best.stride:
        best = next((c for c in ranked if c.kernel % c.stride == 0), best)
    if best is None:
        return None
    return ConvParams((best.kernel,), (best.stride,), (best.padding,), (1,), (best.output_padding,),
                      request.transposed)


def _layer(route: _Route, a: int, b: int) -> ConvParams | None:
    """The layer from size a to b: a projection's kernel is its footprint (stride 1, no padding)."""
    if (route.projects_from(a) and b > 1) or (route.projects_to(b) and a > 1):
        return _solved(Request(transposed=route.transposed, i=a, o=b, kernel=max(a, b), stride=1, padding=0))
    cap = route.cap if route.kernel is None else None
    return _solved(Request(transposed=route.transposed, i=a, o=b, kernel=route.kernel, max_kernel=cap,
                           max_stride=route.max_stride))


def _reach(route: _Route, a: int, ceiling: int) -> list[int]:
    """Every size up to ``ceiling`` one layer could take ``a`` to (a superset; the solver decides)."""
    if route.projects_from(a):
        return list(range(1, ceiling + 1))
    k, spans = route.cap, set[int]()
    for s in range(1, route.max_stride + 1):
        if route.transposed:
            low, high = conv_transpose_out(a, k, s, k - 1, 1, 0), conv_transpose_out(a, k, s, 0, 1, s - 1)
        else:
            low, high = conv_out(a, k, s, 0, 1), conv_out(a, k, s, k - 1, 1)
        spans.update(range(max(low, 1), min(high, ceiling) + 1))
    if route.projects_to(1):
        spans.add(1)
    return sorted(spans)


def _largest(route: _Route, a: int, layers: int) -> float:
    """The largest size ``layers`` transposed layers reach from ``a`` (infinite past a free projection)."""
    for _ in range(layers):
        if route.projects_from(a):
            return math.inf
        a = conv_transpose_out(a, route.cap, route.max_stride, 0, 1, route.max_stride - 1)
    return a


def _smallest(route: _Route, a: int, layers: int) -> int:
    """A lower bound on the sizes ``layers`` plain layers reach from ``a`` (exact while a >= kernel)."""
    for _ in range(layers):
        a = 1 if route.projects_to(1) else max(1, conv_out(a, route.cap, route.max_stride, 0, 1))
    return a


def _can_end_within(route: _Route, size: int, layers: int, low: int, high: int) -> bool:
    """Whether ``layers`` more layers could take ``size`` into ``[low, high]``.

    A transposed layer shrinks by at most ``cap-1`` and a plain one grows by at most ``cap-1``.
    """
    give = layers * (route.cap - 1)
    if route.transposed:
        return size - give <= high and _largest(route, size, layers) >= low
    return size + give >= low and _smallest(route, size, layers) <= high


def _irregularity(small: int, big: int, stride: int) -> int:
    """0 for a whole stride or a projection of size 1, 1 for a layer that keeps a size > 1, else 2."""
    if small == big:
        return 1 if big > 1 else 2
    return 0 if small == 1 or big == small * stride else 2


def _step_cost(route: _Route, a: int, b: int, params: ConvParams) -> _Cost:
    small, big = (a, b) if route.transposed else (b, a)
    drift = math.log(b / a) - math.log(route.target / route.start) / route.layers
    extra = params.padding[0] + params.output_padding[0]
    return (int(small > big), int(_checkerboard(params)), _irregularity(small, big, params.stride[0]),
            round(1e6 * drift * drift), params.kernel_size[0], extra, b)


def _steps(route: _Route, layer: int, a: int, low: int, high: int) -> Iterator[tuple[int, ConvParams]]:
    """The layers worth trying after ``layer`` layers at size a: solvable, and able to end in [low, high]."""
    left = route.layers - layer - 1
    ceiling = high + left * (route.cap - 1) if route.transposed else route.start + route.layers * route.cap
    for b in _reach(route, a, ceiling):
        if route.soft and not min(a, route.target) <= b <= max(a, route.target):
            continue  # a free kernel never needs to turn back: one layer then ×1 layers always fit
        if _can_end_within(route, b, left, low, high) and (params := _layer(route, a, b)) is not None:
            yield b, params


_Node = tuple[int, int]
"""A search state: (layers so far, size)."""


def _prime_factors(q: int, largest: int) -> int | None:
    """How many prime factors q has (with multiplicity), or None if one is above ``largest``."""
    count, p = 0, 2
    while q > 1 and p <= largest:
        while q % p == 0:
            q, count = q // p, count + 1
        p += 1
    return count if q == 1 else None


def _still_to_pay(route: _Route, node: _Node) -> _Cost:
    """A lower bound on the cost of the layers after ``node`` on the way to the target (for A*).

    Irregularity: none if whole strides can still cover the ratio, one per layer they leave idle,
    capped at 2 (an uneven layer); drift: at least that of spreading the remaining ratio evenly.
    """
    layer, size = node
    left = route.layers - layer
    if left == 0:
        return (0,) * 7
    small, big = (size, route.target) if route.transposed else (route.target, size)
    factors = _prime_factors(big // small, route.max_stride) if big % small == 0 else None
    irregular = 0 if small == 1 else 2 if factors is None else min(max(0, left - factors), 2)
    ideal = math.log(route.target / route.start) / route.layers
    spread = math.log(route.target / size) / left - ideal
    drift = max(0, math.floor(1e6 * left * spread * spread) - left)  # minus rounding slack
    return (0, 0, irregular, drift, 0, 0, 0)


def _add(x: _Cost, y: _Cost) -> _Cost:
    return tuple(a + b for a, b in zip(x, y))


def _search(route: _Route, low: int, high: int) -> dict[int, DimPath]:
    """The best path to every reachable final size in ``[low, high]``.

    Dijkstra's search over (layer, size) states: costs only grow along a path, so states are
    settled cheapest first. Aiming at one size it is A*: a consistent lower bound on the cost
    still to come orders the queue, and the search stops as soon as the target is settled.
    """
    def priority(cost: _Cost, node: _Node) -> _Cost:
        return _add(cost, _still_to_pay(route, node)) if low == high else cost

    origin = (0, route.start)
    best: dict[_Node, tuple[_Cost, _Node, ConvParams | None]] = {origin: ((0,) * 7, origin, None)}
    queue = [(priority((0,) * 7, origin), origin)]
    settled, finals = set[_Node](), []
    while queue:
        node = heapq.heappop(queue)[1]
        if node in settled:
            continue
        settled.add(node)
        (layer, a), cost = node, best[node][0]
        if layer == route.layers:
            finals.append(a)
            if low == high:
                break
            continue
        for b, params in _steps(route, layer, a, low, high):
            total, nearer = _add(cost, _step_cost(route, a, b, params)), (layer + 1, b)
            if nearer not in best or total < best[nearer][0]:
                best[nearer] = (total, node, params)
                heapq.heappush(queue, (priority(total, nearer), nearer))
    return {size: _traced(best, (route.layers, size)) for size in finals}


def _traced(best: dict[_Node, tuple[_Cost, _Node, ConvParams | None]], node: _Node) -> DimPath:
    path = []
    while (params := best[node][2]) is not None:
        path.append((node[1], params))
        node = best[node][1]
    return tuple(reversed(path))


@functools.lru_cache(maxsize=1024)
def _path(route: _Route) -> DimPath | None:
    return _search(route, route.target, route.target).get(route.target)


def routes(transposed: bool, start: int, target: int, layers: int, kernel: int | None,
            max_kernel: int | None, max_stride: int) -> Iterator[_Route]:
    """The routes to try in turn: one with a hard cap, or growing soft caps for a free kernel."""
    def route(cap: int, soft: bool) -> _Route:
        return _Route(transposed, start, target, layers, kernel, cap, soft, max_stride)

    hard = kernel if kernel is not None else max_kernel
    if hard is not None:
        yield route(hard, False)
        return
    cap, enough = 2 * max_stride + 1, max(abs(target - start) + 1, 3)
    while cap < enough:  # from |target-start|+1 on, one layer and then ×1 layers always fit
        yield route(cap, True)
        cap *= 2
    yield route(cap, True)


def plan_dim(transposed: bool, start: int, target: int, layers: int, kernel: int | None,
              max_kernel: int | None, max_stride: int) -> DimPath | None:
    """The first plan found by growing caps that is checkerboard-free, else the first plan found.

    A free kernel's last soft cap always has a checkerboard-free plan (stride-1 layers only).
    """
    found = None
    for route in routes(transposed, start, target, layers, kernel, max_kernel, max_stride):
        path = _path(route)
        if path is not None and not any(_checkerboard(params) for _, params in path):
            return path
        found = found or path
    return found


def unreachable(route: _Route, dim: str, call: str) -> ShapeError:
    """The error for a dimension no route reaches: the reachable extreme or nearest sizes, and fixes."""
    bound = f"kernel_size {route.kernel}" if route.kernel is not None else f"kernel_size <= {route.cap}"
    what = (f"{call}: {describe_layers(route.layers, route.transposed)} cannot take size {route.start} to "
            f"{route.target} in dimension {dim} ({bound}, stride <= {route.max_stride}, padding <= kernel_size-1).")
    largest, smallest = _largest(route, route.start, route.layers), _smallest(route, route.start, route.layers)
    fixes = _fixes(route)
    if route.transposed and largest < route.target:
        reach = f"The largest size they reach is {largest}."
    elif not route.transposed and smallest > route.target:
        reach = f"The smallest size they reach is {smallest}."
    else:
        # every size a plain stack reaches is at most start + layers·(cap-1); a transposed one's
        # largest is reachable, so the search stops there or at a generous bound above the target
        high = (min(largest, 4 * route.target + 2 * route.cap * route.max_stride) if route.transposed
                else route.start + route.layers * (route.cap - 1))
        finals = _search(route, 1, int(high))
        below = max((size for size in finals if size < route.target), default=None)
        above = min((size for size in finals if size > route.target), default=None)
        reach = (f"Nearest reachable sizes: {below or 'none'} below, "
                 f"{above or ('none' if not route.transposed or high >= largest else f'none up to {high}')} above.")
        allowed = [size for size in (below, above)  # a plan keeps its direction
                   if size is not None and (size >= route.start if route.transposed else size <= route.start)]
        nearest = " or ".join(map(str, allowed))
        fixes = ([f"output_size {nearest}"] if nearest else []) + fixes
    fixes.append("leave kernel_size free (None)" if route.kernel is not None else "a larger max_kernel_size")
    return ShapeError(f"{what} {reach} Fix: use {', or '.join(fixes)}.")


def _fixes(route: _Route) -> list[str]:
    """Fixes confirmed by planning them: the fewest extra layers, the smallest larger max_stride."""
    def reaches(layers: int, max_stride: int) -> bool:
        return _path(_Route(route.transposed, route.start, route.target, layers, route.kernel, route.cap,
                            route.soft, max_stride)) is not None

    layers = next((n for n in range(route.layers + 1, route.layers + _SEARCHED + 1)
                   if reaches(n, route.max_stride)), None)
    stride = next((s for s in range(route.max_stride + 1, route.max_stride + _SEARCHED + 1)
                   if reaches(route.layers, s)), None)
    return ([f"num_layers={layers}"] if layers else []) + ([f"max_stride={stride}"] if stride else [])

