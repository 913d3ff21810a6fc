"""The search behind the planner: one spatial dimension of a conv stack, layer by layer.

Pure integer code, no modules. Each spatial dimension is planned on its own. Plans are compared
by a cost that sums over layers, lexicographically:

1. reversals: layers that shrink in an upsampling plan or grow in a downsampling one (a fixed
   kernel may need them: 8→9→8 with kernel 4 and stride 1, whose every layer is odd);
2. checkerboards: transposed kernels not divisible by their stride;
3. idle layers, which keep the size: none while a plan exists in which every layer changes it;
4. uneven layers: all but a whole stride (``out = in·stride`` or ``in = out·stride``, stride > 1),
   a projection from or to size 1 (a 1×1 input mapped to its kernel's footprint with stride 1
   and no padding, as DCGAN's first layer; or the mirror, as its discriminator's last) and an
   idle layer;
5. drift from the geometric schedule: ``(ln(out/in) - ln(target/start)/num_layers)²``;
6. then smaller intermediate sizes.

Which of the first three a plan can do without is settled exactly before any search:
:mod:`autoshape.core.plan_reach` gives the sizes from which the target stays reachable at each of
its :data:`~autoshape.core.plan_reach.LEVELS`, and the search visits only those of the cleanest
level reachable, so every partial plan it keeps can still be completed at that level. The search
keeps the cheapest partial plan to each size (Viterbi). It is exhaustive, hence exact, while it
needs at most ``_EDGES`` layer evaluations per request and ``_CHOICES`` next sizes per size; past
that it follows the most promising sizes only (those nearest the geometric schedule, whole
strides, the extremes), which keeps its cost bounded at any size. Each layer's parameters are
then the solver's best for its two sizes, a kernel divisible by its stride first.

Kernels are bounded by the fixed ``kernel_size``, else by ``max_kernel_size``; within such a hard
bound a plan is absent only when none exists. A free kernel gets a soft cap of ``2·max_stride+1``
instead, raised only while no plan of the cleanest level fits, and never past
:func:`largest_free_kernel`, ``4·max_stride+1`` (9 at the default stride 2): a scale that needs
larger kernels is refused (:mod:`autoshape.core.plan_errors` names a larger max_stride, more layers,
or ``max_kernel_size``, a hard bound), as an expert would rather add stride or layers than build
kernels of hundreds. Projections from or to size 1 may exceed the cap (DCGAN's 1→4 with kernel 4,
MNIST's 1→7 with kernel 7), and a free kernel's plan never turns back. Paddings stay within
``[0, kernel_size-1]``; dilation is 1.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Iterator
from dataclasses import replace

from .plan_reach import LEVELS, Level, Route, Sizes, backward, beyond_reach, contains, deltas, forward, intersect
from .search import candidates
from .solver import ConvParams
from .window import Request

__all__ = ["DimPath", "describe_layers", "largest_free_kernel", "plan_dim", "routes"]

DimPath = tuple[tuple[int, ConvParams], ...]
"""One dimension's plan: the size after each layer and that layer's (one-dimensional) parameters."""
_Cost = tuple[int, ...]
_ZERO: _Cost = (0,) * 6
_DRIFT_SCALE = 10**6
"""Drift is compared as an integer: squared log-ratios in millionths."""
_EDGES = 2000
"""Layer evaluations a plan request may spend (all dimensions together) before the search follows
only the most promising sizes; the brute-force grids of the tests need fewer than 250."""
_CHOICES = 48
"""Next sizes tried from one size before only the most promising ones are."""
_EXPANSION = 8
"""What finding the next sizes of one size costs, in layer evaluations (it works on sets of sizes)."""


def describe_layers(count: int, transposed: bool) -> str:
    """``"3 transposed convolutions"``: the stack a plan or an error speaks of."""
    return f"{count} {'transposed ' if transposed else ''}convolution{'s' * (count != 1)}"


def largest_free_kernel(max_stride: int) -> int:
    """The largest kernel a free ``kernel_size`` may take, ``4·max_stride+1``: twice the span of the
    first soft cap, ``2·max_stride+1`` (projections from or to size 1 are exempt)."""
    return 4 * max_stride + 1


def routes(transposed: bool, start: int, target: int, layers: int, kernel: int | None,
           max_kernel: int | None, max_stride: int) -> Iterator[Route]:
    """The routes to try in turn: one with a hard cap, or for a free kernel the soft caps ``2·max_stride+1``
    and then :func:`largest_free_kernel`; the last route is the widest, the one a refusal speaks of."""
    hard = kernel if kernel is not None else max_kernel
    if hard is not None:
        yield Route(transposed, start, target, layers, kernel, hard, False, max_stride)
        return
    cap = 2 * max_stride + 1
    if cap <= abs(target - start):  # from |target-start|+1 on, one layer and then ×1 layers always fit
        yield Route(transposed, start, target, layers, None, cap, True, max_stride)
        cap = largest_free_kernel(max_stride)
    yield Route(transposed, start, target, layers, None, cap, True, max_stride)


def _reachable_sets(route: Route, level: Level) -> list[Sizes]:
    """For each layer count j, the sizes from which the target is reachable in the remaining layers."""
    sets: list[Sizes] = [((route.target, route.target, 1),)]
    for layer in range(route.layers, 0, -1):
        sets.append(backward(route, level, sets[-1], layer))
    return sets[::-1]


def _small_big(route: Route, a: int, b: int) -> tuple[int, int]:
    return (a, b) if route.transposed else (b, a)


def _whole(route: Route, level: Level, a: int, b: int) -> bool:
    """Whether a layer can take a to b with a whole stride (``big = small·stride``, stride > 1) at this level."""
    small, big = _small_big(route, a, b)
    s = big // small
    d = deltas(route, s, route.transposed and not level.checkerboards) if big == s * small else None
    return 2 <= s <= route.max_stride and d is not None and d[0] <= s - 1 <= d[1]


def _cost_after(route: Route, level: Level, a: int, b: int, checkerboard: bool, before: _Cost) -> _Cost:
    """The cost of a partial plan ``before`` plus its next layer, from a to b (written out: the search's hot path)."""
    small, big = _small_big(route, a, b)
    uneven = small != 1 and small != big and not _whole(route, level, a, b)
    drift = math.log(b / a) - math.log(route.target / route.start) / route.layers
    reversals, checkerboards, idle, uneven_layers, drifts, sizes = before
    return (reversals + (big < small), checkerboards + checkerboard, idle + (a == b), uneven_layers + uneven,
            drifts + round(_DRIFT_SCALE * drift * drift), sizes + b)


def _fewest_whole_steps(ratio: int, largest: int) -> int | None:
    """A lower bound on how many whole strides (each at most ``largest``) multiply to ``ratio``; None if none do."""
    rest = ratio
    for p in range(2, largest + 1):
        while rest % p == 0:
            rest //= p
    if rest > 1:
        return None
    steps, reach = 0, 1
    while reach < ratio:
        steps, reach = steps + 1, reach * largest
    return steps


def _still_to_pay(route: Route, layer: int, size: int) -> _Cost:
    """A lower bound on the cost of the layers after ``layer`` layers at ``size`` (orders a cut search).

    Uneven layers: none if whole strides can still cover the ratio (or a projection from 1 can);
    drift: at least that of spreading the remaining ratio evenly.
    """
    left = route.layers - layer
    if left == 0:
        return _ZERO
    small, big = _small_big(route, size, route.target)
    whole = _fewest_whole_steps(big // small, route.max_stride) if big % small == 0 else None
    uneven = int(small != 1 and (whole is None or whole > left))
    ideal = math.log(route.target / route.start) / route.layers
    spread = math.log(route.target / size) / left - ideal
    drift = max(0, math.floor(_DRIFT_SCALE * left * spread * spread) - left)  # minus rounding slack
    return (0, 0, 0, uneven, drift, 0)


def _add(x: _Cost, y: _Cost) -> _Cost:
    return tuple(map(operator.add, x, y))


def _count(sizes: Sizes) -> int:
    return sum((hi - lo) // step + 1 for lo, hi, step in sizes)


def _members(sizes: Sizes) -> set[int]:
    return {x for lo, hi, step in sizes for x in range(lo, hi + 1, step)}


def _nearest(sizes: Sizes, goal: int) -> set[int]:
    """In each span, the sizes just below and just above ``goal`` (or at it)."""
    found: set[int] = set()
    for lo, hi, step in sizes:
        x = min(hi, max(lo, goal))
        x -= (x - lo) % step
        found.update(y for y in (x, x + step) if lo <= y <= hi)
    return found


def _anchors(route: Route, layer: int) -> set[int]:
    """Sizes worth reaching after ``layer+1`` layers: the geometric schedule's, and those that whole
    strides link to the start, or to the target with at most two uneven layers to go."""
    done, left = layer + 1, route.layers - layer - 1
    goal = route.start * (route.target / route.start) ** (done / route.layers)
    found = {math.floor(goal), math.ceil(goal)}
    for s in range(2, route.max_stride + 1):
        if route.transposed:
            found |= {route.start * s**done}
            found |= {route.target // s**m + up for m in range(max(0, left - 2), left + 1) for up in (0, 1)}
        else:
            found |= {route.start // s**done + up for up in (0, 1)}
            found |= {route.target * s**m for m in range(max(0, left - 2), left + 1)}
    return found


def _choices(route: Route, level: Level, a: int, layer: int, allowed: Sizes, anchors: set[int]) -> set[int]:
    """The next sizes tried from a: all of them if few, else the most promising ones (the extremes,
    whole strides, and the sizes nearest each anchor)."""
    nxt = intersect(forward(route, level, ((a, a, 1),), layer), allowed)
    if _count(nxt) <= _CHOICES:
        return _members(nxt)
    wholes = {a * s if route.transposed else a // s for s in range(2, route.max_stride + 1)}
    picks = {nxt[0][0], max(hi for _, hi, _ in nxt)} | {b for b in wholes if contains(nxt, b)}
    for anchor in anchors:
        picks |= _nearest(nxt, anchor)
    return picks


def _search(route: Route, level: Level, sets: list[Sizes], budget: int) -> list[int]:
    """The sizes after each layer of the cheapest plan found (exact while ``budget`` layer evaluations suffice)."""
    layers: list[dict[int, tuple[_Cost, int]]] = [{route.start: (_ZERO, 0)}]
    for layer in range(route.layers):
        states = layers[-1]
        ranked = sorted(states, key=lambda a: (_add(states[a][0], _still_to_pay(route, layer, a)), a))
        share = budget - (route.layers - layer - 1) * _CHOICES  # leave each later layer one size's worth
        reached, anchors = dict[int, tuple[_Cost, int]](), _anchors(route, layer)
        for a in ranked:
            clean = (forward(route, level._replace(checkerboards=False), ((a, a, 1),), layer)
                     if level.checkerboards and route.transposed else None)
            choices = _choices(route, level, a, layer, sets[layer + 1], anchors)
            for b in choices:
                checkerboard = clean is not None and not contains(clean, b)
                cost = _cost_after(route, level, a, b, checkerboard, states[a][0])
                if b not in reached or cost < reached[b][0]:
                    reached[b] = (cost, a)
            spent = len(choices) + _EXPANSION
            share, budget = share - spent, budget - spent
            if share <= 0:
                break
        layers.append(reached)
    sizes = [route.target]  # walk back: layers[j][size] holds the size before it, after j-1 layers
    for j in range(route.layers, 1, -1):
        sizes.append(layers[j][sizes[-1]][1])
    return sizes[::-1]


@functools.lru_cache(maxsize=1 << 14)
def _solved(request: Request) -> ConvParams | None:
    best = next(candidates(request), None)
    if best is None:
        return None
    return ConvParams((best.kernel,), (best.stride,), (best.padding,), (1,), (best.output_padding,),
                      request.transposed)


def _layer(route: Route, a: int, b: int) -> ConvParams:
    """The layer from size a to b: a projection's kernel is its footprint (stride 1, no padding);
    otherwise the solver's best within the route's bounds, a kernel divisible by its stride first."""
    small, big = _small_big(route, a, b)
    if route.soft and small == 1 < big and (route.transposed or route.target == 1):
        request = Request(transposed=route.transposed, i=a, o=b, kernel=big, stride=1, padding=0)
    else:
        request = Request(transposed=route.transposed, i=a, o=b, kernel=route.kernel,
                          max_kernel=None if route.kernel is not None else route.cap, max_stride=route.max_stride)
    found = _solved(replace(request, divisible=True)) or _solved(request)
    if found is None:  # the reachable sets and the solver disagree: a bug, never the user's request
        raise RuntimeError(f"autoshape found no layer from {a} to {b} on {route}; please report it")
    return found


def _best_level(route: Route) -> tuple[int, list[Sizes]] | None:
    """The index of the cleanest level at which the route reaches its target, with its sets; None if none.

    Each level's plans include the previous ones'. The cleanest is tried first (it usually reaches);
    then the cheap extreme test and the last level tell whether the route reaches at all.
    """
    if beyond_reach(route):
        return None
    clean = _reachable_sets(route, LEVELS[0])
    if contains(clean[0], route.start):
        return 0, clean
    if not contains(_reachable_sets(route, LEVELS[-1])[0], route.start):
        return None
    return next((index, sets) for index in range(1, len(LEVELS))
                if contains((sets := _reachable_sets(route, LEVELS[index]))[0], route.start))


@functools.lru_cache(maxsize=1024)
def plan_dim(transposed: bool, start: int, target: int, layers: int, kernel: int | None,
             max_kernel: int | None, max_stride: int, share: int = 1) -> DimPath | None:
    """The cheapest plan of the first route (cap) with the cleanest level reachable; None if none reaches.

    ``share``: the number of dimensions planned together; each gets that share of the search's budget,
    so a request's cost does not grow with its dimensions.
    """
    found: tuple[Route, int, list[Sizes]] | None = None
    for route in routes(transposed, start, target, layers, kernel, max_kernel, max_stride):
        level = _best_level(route)
        if level is not None and (found is None or level[0] < found[1]):
            found = (route, *level)
        if found is not None and found[1] == 0:
            break
    if found is None:
        return None
    route, index, sets = found
    sizes = _search(route, LEVELS[index], sets, _EDGES // share)
    return tuple((b, _layer(route, a, b)) for a, b in zip([start, *sizes], sizes))
