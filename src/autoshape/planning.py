"""Plans for stacks of convolutions: the size after every layer, and the parameters of each layer.

Pure integer planning, no modules. Each spatial dimension is planned on its own as a shortest
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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any, overload

from ._search import Request, candidates
from ._sizes import IntOrTuple, as_int, as_tuple, dim_names, spatial_ndim
from .arithmetic import conv_out, conv_transpose_out
from .errors import ShapeError
from .solver import ConvParams

__all__ = ["Plan", "PlanStep", "plan_downsampling", "plan_upsampling"]

_DimPath = tuple[tuple[int, ConvParams], ...]
"""One dimension's plan: the size after each layer and that layer's (one-dimensional) parameters."""
_Cost = tuple[int, ...]
_SEARCHED = 8
"""How many extra layers, and larger strides, an error message tries when it suggests a fix."""


@dataclass(frozen=True)
class PlanStep:
    """One layer of a :class:`Plan`: its spatial input and output sizes and its solved parameters.

    Sizes are always tuples, one int per spatial dimension, even when the plan was asked for
    with ints.

    Args:
        input_size: the spatial size the layer receives.
        output_size: the spatial size it produces.
        params: the layer's kernel_size, stride, padding, dilation and output_padding.

    Shape:
        ``output_size == params.output_size(input_size)``, the torch formula of the layer.

    Example:
        >>> step = plan_upsampling(12, 24, 1)[0]
        >>> step.input_size, step.output_size, step.params.kernel_size
        ((12,), (24,), (4,))

    Raises:
        Nothing itself; :class:`Plan` checks its steps.
    """

    input_size: tuple[int, ...]
    output_size: tuple[int, ...]
    params: ConvParams


@dataclass(frozen=True)
class Plan(Sequence[PlanStep]):
    """A checked chain of convolution layers: an immutable sequence of :class:`PlanStep`.

    Iterate over it or index it for the steps; ``str()`` gives an aligned table and
    :meth:`to_dict` a JSON-ready dict.

    Args:
        steps: the layers in order; each one's input size is the previous one's output size.

    Shape:
        ``steps[0].input_size → steps[-1].output_size``, each step by its layer's torch formula.

    Example:
        >>> plan = plan_upsampling(1, 28, 3)
        >>> len(plan), plan.input_size, plan.output_size
        (3, (1,), (28,))
        >>> print(plan)
        3 transposed convolutions: 1 → 28
        layer  input  output  kernel  stride  padding  output_padding
        1      1      7       7       1       0        0
        2      7      14      4       2       1        0
        3      14     28      4       2       1        0

    Raises:
        ValueError: no steps, a step that is not a PlanStep, steps that do not chain, a step
            whose parameters do not give its output size, or a mix of plain and transposed layers.
    """

    steps: tuple[PlanStep, ...]

    def __post_init__(self) -> None:
        steps = tuple(self.steps)
        object.__setattr__(self, "steps", steps)
        if not steps or not all(isinstance(step, PlanStep) for step in steps):
            raise ValueError(f"a Plan needs one or more PlanStep, got {steps!r}")
        for n, step in enumerate(steps, 1):
            if step.params.output_size(step.input_size) != step.output_size:
                raise ValueError(f"step {n}: {step.params} takes {step.input_size} to "
                                 f"{step.params.output_size(step.input_size)}, not {step.output_size}")
            if n > 1 and step.input_size != steps[n - 2].output_size:
                raise ValueError(f"step {n} takes {step.input_size} but step {n - 1} gives {steps[n - 2].output_size}")
            if step.params.transposed != steps[0].params.transposed:
                raise ValueError("a Plan is all transposed convolutions or all plain ones")

    @property
    def input_size(self) -> tuple[int, ...]:
        """The spatial size the first layer receives."""
        return self.steps[0].input_size

    @property
    def output_size(self) -> tuple[int, ...]:
        """The spatial size the last layer produces."""
        return self.steps[-1].output_size

    @property
    def transposed(self) -> bool:
        """True for a plan of transposed convolutions (upsampling)."""
        return self.steps[0].params.transposed

    def __len__(self) -> int:
        return len(self.steps)

    @overload
    def __getitem__(self, index: int) -> PlanStep: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[PlanStep, ...]: ...
    def __getitem__(self, index: int | slice) -> PlanStep | tuple[PlanStep, ...]:
        return self.steps[index]

    def __str__(self) -> str:
        names = ["kernel_size", "stride", "padding"] + (["output_padding"] if self.transposed else [])
        header = ["layer", "input", "output", *(name.replace("_size", "") for name in names)]
        rows = [[str(n), _size(step.input_size), _size(step.output_size),
                 *(_value(getattr(step.params, name)) for name in names)] for n, step in enumerate(self, 1)]
        widths = [max(len(row[c]) for row in [header, *rows]) for c in range(len(header))]
        title = f"{_layers(len(self), self.transposed)}: {_size(self.input_size)} → {_size(self.output_size)}"
        table = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header, *rows]]
        return "\n".join([title, *table])

    def to_dict(self) -> dict[str, Any]:
        """The plan as plain lists and ints, ready for ``json.dumps``.

        Each step holds its ``input_size`` and ``output_size`` and every :class:`ConvParams`
        field, with lists for tuples, so the command line can print it and a reader rebuild it.
        """
        steps = [{"input_size": list(step.input_size), "output_size": list(step.output_size),
                  **{f.name: _plain(getattr(step.params, f.name)) for f in fields(ConvParams)}} for step in self]
        return {"transposed": self.transposed, "input_size": list(self.input_size),
                "output_size": list(self.output_size), "steps": steps}


def _layers(count: int, transposed: bool) -> str:
    return f"{count} {'transposed ' if transposed else ''}convolution{'s' * (count != 1)}"


def _size(size: tuple[int, ...]) -> str:
    return "×".join(map(str, size))


def _value(values: tuple[int, ...]) -> str:
    return str(values[0]) if len(set(values)) == 1 else _size(values)


def _plain(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


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
    if best is not None and request.transposed and best[0] % best[1]:
        best = next((c for c in ranked if c[0] % c[1] == 0), best)
    if best is None:
        return None
    k, s, p, op = best
    return ConvParams((k,), (s,), (p,), (1,), (op,), request.transposed)


def _layer(route: _Route, a: int, b: int) -> ConvParams | None:
    """The layer from size a to b: a projection's kernel is its footprint (stride 1, no padding)."""
    if (route.projects_from(a) and b > 1) or (route.projects_to(b) and a > 1):
        return _solved(Request(route.transposed, a, b, kernel=max(a, b), stride=1, padding=0))
    cap = route.cap if route.kernel is None else None
    return _solved(Request(route.transposed, a, b, kernel=route.kernel, max_kernel=cap, max_stride=route.max_stride))


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


def _search(route: _Route, low: int, high: int) -> dict[int, _DimPath]:
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


def _traced(best: dict[_Node, tuple[_Cost, _Node, ConvParams | None]], node: _Node) -> _DimPath:
    path = []
    while (params := best[node][2]) is not None:
        path.append((node[1], params))
        node = best[node][1]
    return tuple(reversed(path))


@functools.lru_cache(maxsize=1024)
def _path(route: _Route) -> _DimPath | None:
    return _search(route, route.target, route.target).get(route.target)


def _routes(transposed: bool, start: int, target: int, layers: int, kernel: int | None,
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


def _plan_dim(transposed: bool, start: int, target: int, layers: int, kernel: int | None,
              max_kernel: int | None, max_stride: int) -> _DimPath | None:
    """The first plan found by growing caps that is checkerboard-free, else the first plan found.

    A free kernel's last soft cap always has a checkerboard-free plan (stride-1 layers only).
    """
    found = None
    for route in _routes(transposed, start, target, layers, kernel, max_kernel, max_stride):
        path = _path(route)
        if path is not None and not any(_checkerboard(params) for _, params in path):
            return path
        found = found or path
    return found


def _unreachable(route: _Route, dim: str, call: str) -> ShapeError:
    """The error for a dimension no route reaches: the reachable extreme or nearest sizes, and fixes."""
    bound = f"kernel_size {route.kernel}" if route.kernel is not None else f"kernel_size <= {route.cap}"
    what = (f"{call}: {_layers(route.layers, route.transposed)} cannot take size {route.start} to "
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


def _merge(per_dim: Sequence[ConvParams]) -> ConvParams:
    """One n-d ConvParams from n one-dimensional ones."""
    names = [f.name for f in fields(ConvParams) if f.name != "transposed"]
    return ConvParams(**{name: tuple(getattr(p, name)[0] for p in per_dim) for name in names},
                      transposed=per_dim[0].transposed)


def _plan(transposed: bool, input_size: IntOrTuple, output_size: IntOrTuple, num_layers: int,
          kernel_size: IntOrTuple | None, max_stride: IntOrTuple, max_kernel_size: IntOrTuple | None) -> Plan:
    name = "plan_upsampling" if transposed else "plan_downsampling"
    given = {"kernel_size": kernel_size, "max_stride": max_stride, "max_kernel_size": max_kernel_size}
    call = f"{name}({input_size!r}, {output_size!r}, {num_layers!r}" + "".join(
        f", {key}={value!r}" for key, value in given.items() if value is not None) + ")"
    layers = as_int(num_layers, "num_layers")
    if kernel_size is not None and max_kernel_size is not None:
        raise ValueError(f"{call}: give kernel_size or max_kernel_size, not both")
    n = spatial_ndim(input_size, output_size, kernel_size, max_stride, max_kernel_size) or 1
    starts, targets = as_tuple(input_size, "input_size", n), as_tuple(output_size, "output_size", n)
    kernels: Sequence[int | None] = (None,) * n if kernel_size is None else as_tuple(kernel_size, "kernel_size", n)
    caps: Sequence[int | None] = (None,) * n if max_kernel_size is None else as_tuple(
        max_kernel_size, "max_kernel_size", n)
    strides = as_tuple(max_stride, "max_stride", n)
    if any(o < i if transposed else o > i for i, o in zip(starts, targets)):
        other = "plan_downsampling" if transposed else "plan_upsampling"
        relation = "at least" if transposed else "at most"
        raise ValueError(f"{call}: {name} needs an output_size {relation} the input_size in every dimension, "
                         f"got {targets} from {starts}. Fix: use {other} for the other direction.")
    names = dim_names(n)
    paths = []
    for i, o, k, cap, s, dim in zip(starts, targets, kernels, caps, strides, names):
        path = _plan_dim(transposed, i, o, layers, k, cap, s)
        if path is None:
            raise _unreachable(list(_routes(transposed, i, o, layers, k, cap, s))[-1], dim, call)
        paths.append(path)
    sizes = [starts, *(tuple(path[j][0] for path in paths) for j in range(layers))]
    return Plan(tuple(PlanStep(sizes[j], sizes[j + 1], _merge([path[j][1] for path in paths]))
                      for j in range(layers)))


def plan_upsampling(
    input_size: IntOrTuple,
    output_size: IntOrTuple,
    num_layers: int,
    *,
    kernel_size: IntOrTuple | None = None,
    max_stride: IntOrTuple = 2,
    max_kernel_size: IntOrTuple | None = None,
) -> Plan:
    """Plan ``num_layers`` transposed convolutions that take ``input_size`` to exactly ``output_size``.

    The scale is spread roughly geometrically, with whole strides (``out = in·stride``) wherever
    possible, every stride ``<= max_stride``, and every kernel divisible by its stride wherever
    achievable (no checkerboard). A layer on a 1×1 input is a projection to its kernel's
    footprint, as DCGAN's first layer. The ranking is documented in :mod:`autoshape.planning`.

    Args:
        input_size: the spatial input size, an int or one int per dimension (1-d, 2-d or 3-d).
        output_size: the spatial size to reach, at least ``input_size`` in every dimension.
        num_layers: how many layers.
        kernel_size: fix every layer's kernel (e.g. 4, as DCGAN); None lets the planner choose.
        max_stride: the largest stride of any layer.
        max_kernel_size: bound the chosen kernels (only with ``kernel_size=None``).

    Returns:
        A :class:`Plan`; its sizes are tuples even when ints were given.

    Shape:
        per layer and dimension, ``out = (in-1)·stride - 2·padding + (kernel_size-1) + output_padding + 1``,
        with padding in ``[0, kernel_size-1]`` and dilation 1.

    Example:
        >>> plan = plan_upsampling(1, 64, 5, kernel_size=4)
        >>> [step.output_size for step in plan]
        [(4,), (8,), (16,), (32,), (64,)]
        >>> [(s.params.stride[0], s.params.padding[0]) for s in plan]
        [(1, 0), (2, 1), (2, 1), (2, 1), (2, 1)]
        >>> [s.output_size for s in plan_upsampling((3, 5), (48, 80), 4)]
        [(6, 10), (12, 20), (24, 40), (48, 80)]

    Raises:
        TypeError: a size or bound is not an int or a tuple of ints.
        ValueError: a value is out of range, tuples disagree in length, ``output_size`` is smaller
            than ``input_size``, or both ``kernel_size`` and ``max_kernel_size`` are given.
        ShapeError: no plan within the bounds reaches the target; the message names the largest
            (or nearest) reachable size and fixes, e.g. more layers or a larger ``max_stride``.
    """
    return _plan(True, input_size, output_size, num_layers, kernel_size, max_stride, max_kernel_size)


def plan_downsampling(
    input_size: IntOrTuple,
    output_size: IntOrTuple,
    num_layers: int,
    *,
    kernel_size: IntOrTuple | None = None,
    max_stride: IntOrTuple = 2,
    max_kernel_size: IntOrTuple | None = None,
) -> Plan:
    """Plan ``num_layers`` convolutions that take ``input_size`` to exactly ``output_size``.

    The mirror of :func:`plan_upsampling`: whole strides (``in = out·stride``) wherever possible,
    the scale spread roughly geometrically, every stride ``<= max_stride``; a layer with a 1×1
    output is a projection of its whole input, as the last layer of DCGAN's discriminator.

    Args:
        input_size: the spatial input size, an int or one int per dimension (1-d, 2-d or 3-d).
        output_size: the spatial size to reach, at most ``input_size`` in every dimension.
        num_layers: how many layers.
        kernel_size: fix every layer's kernel; None lets the planner choose.
        max_stride: the largest stride of any layer.
        max_kernel_size: bound the chosen kernels (only with ``kernel_size=None``).

    Returns:
        A :class:`Plan`; its sizes are tuples even when ints were given.

    Shape:
        per layer and dimension, ``out = floor((in + 2·padding - (kernel_size-1) - 1) / stride) + 1``,
        with padding in ``[0, kernel_size-1]`` and dilation 1.

    Example:
        >>> plan = plan_downsampling(64, 1, 5, kernel_size=4)
        >>> [step.output_size[0] for step in plan]
        [32, 16, 8, 4, 1]
        >>> plan[-1].params.as_kwargs()
        {'kernel_size': (4,), 'stride': (1,), 'padding': (0,), 'dilation': (1,)}

    Raises:
        TypeError: a size or bound is not an int or a tuple of ints.
        ValueError: a value is out of range, tuples disagree in length, ``output_size`` is larger
            than ``input_size``, or both ``kernel_size`` and ``max_kernel_size`` are given.
        ShapeError: no plan within the bounds reaches the target; the message names the smallest
            (or nearest) reachable size and fixes, e.g. more layers or a larger ``max_stride``.
    """
    return _plan(False, input_size, output_size, num_layers, kernel_size, max_stride, max_kernel_size)
