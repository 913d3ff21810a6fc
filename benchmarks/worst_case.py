"""The worst case of the solver, the planner and the Target layers over a grid of extreme requests.

Every request with sizes up to 10⁶ per dimension should answer within 50 ms and 20 MB of Python
allocation (tracemalloc peak): a shape solver runs inside model constructors. The grid crosses
sizes from 1 to 10⁶ (a prime among them) with free, fixed and bounded kernels, strides, paddings
and dilations, both directions, 1-d to 3-d, reachable and unreachable targets, Target layers
(whose construction includes torch's weight initialisation) and plans of 1 to 16 layers, in 1 to 3
dimensions. Each request runs cold (autoshape's caches cleared): its time is the median CPU time of
three runs, its peak the tracemalloc peak of a fourth.
"""

from __future__ import annotations

import itertools
import statistics
import types
from collections.abc import Callable, Iterator
from typing import NamedTuple

import autoshape
from autoshape import ShapeError

from .memory import python_peak
from .report import Settings, table
from .timing import median_seconds

SECONDS, BYTES = 0.050, 20 * 2**20
"""The bound every request must meet."""

SIZES = (1, 2, 3, 7, 16000, 999_983, 10**6)
SOLVER_FIXED = ({}, {"kernel_size": 3}, {"stride": 2}, {"padding": 1}, {"kernel_size": 4, "stride": 2, "padding": 1},
                {"max_kernel_size": 5, "max_stride": 3}, {"dilation": 2}, {"kernel_size": 999_999},
                {"stride": 10**6})
PLAN_ENDS = ((1, 10**6), (3, 10**6), (1, 999_983), (1000, 10**6), (999_983, 10**6), (7, 2**20), (10**6 - 3, 10**6))
PLAN_LAYERS = (1, 2, 4, 8, 16)
PLAN_BOUNDS = ({}, {"kernel_size": 4}, {"kernel_size": 3}, {"max_kernel_size": 5}, {"max_stride": 4},
               {"kernel_size": 4, "max_stride": 3})


class Request(NamedTuple):
    family: str
    call: str
    run: Callable[[], object]


def _answer(function: Callable[..., object], *args: object, **kwargs: object) -> Callable[[], object]:
    """The call, with a refusal (ShapeError) counted as an answer."""
    def run() -> object:
        try:
            return function(*args, **kwargs)
        except ShapeError as error:
            return error
    return run


def _text(name: str, *args: object, **kwargs: object) -> str:
    return f"`{name}({', '.join([*map(repr, args), *(f'{k}={v!r}' for k, v in kwargs.items())])})`"


def _solver_requests() -> Iterator[Request]:
    for (i, o), fixed in itertools.product(itertools.product(SIZES, SIZES), SOLVER_FIXED):
        for name, function in (("solve_conv", autoshape.solve_conv), ("solve_conv_transpose",
                                                                      autoshape.solve_conv_transpose)):
            yield Request(name, _text(name, i, o, **fixed), _answer(function, i, o, **fixed))
    for (i, o), transposed in itertools.product(itertools.product(SIZES, SIZES), (True, False)):
        yield Request("ranked_solutions", _text("ranked_solutions", i, o, transposed=transposed),
                      _answer(autoshape.ranked_solutions, i, o, transposed=transposed))
    for i, o in ((10**6, 1), (999_983, 16000), (3, 10**6)):
        shape = (i, 7, o)
        yield Request("solve_conv", _text("solve_conv", shape, shape[::-1]), _answer(autoshape.solve_conv,
                                                                                      shape, shape[::-1]))


def _layer_requests() -> Iterator[Request]:
    """Target layers, 1-d and 2-d (a 3-d kernel of 10⁶ in two dimensions would not fit in memory)."""
    for (i, o), layer in itertools.product(((10**6, 1), (10**6, 999_983), (1, 10**6), (999_983, 10**6), (3, 10**6)),
                                           (autoshape.TargetConv1d, autoshape.TargetConvTranspose1d,
                                            autoshape.TargetConv2d, autoshape.TargetConvTranspose2d)):
        kwargs = {"input_size": i, "output_size": o} if layer.__name__.endswith("1d") else {
            "input_size": (i, 7), "output_size": (o, 7)}
        yield Request("Target layers", _text(layer.__name__, 1, 1, **kwargs), _answer(layer, 1, 1, **kwargs))


def _plan_requests() -> Iterator[Request]:
    for (small, big), layers, bounds in itertools.product(PLAN_ENDS, PLAN_LAYERS, PLAN_BOUNDS):
        for name, function, ends in (("plan_upsampling", autoshape.plan_upsampling, (small, big)),
                                     ("plan_downsampling", autoshape.plan_downsampling, (big, small))):
            yield Request(name, _text(name, *ends, layers, **bounds), _answer(function, *ends, layers, **bounds))
    small, big = (1, 3, 999_983), (10**6, 2**20, 10**6)  # three dimensions at once: one budget for all
    for layers, bounds in itertools.product((4, 8, 16), ({}, {"kernel_size": 4}, {"max_stride": 4})):
        for name, function, ends in (("plan_upsampling", autoshape.plan_upsampling, (small, big)),
                                     ("plan_downsampling", autoshape.plan_downsampling, (big, small))):
            yield Request(name, _text(name, *ends, layers, **bounds), _answer(function, *ends, layers, **bounds))


def requests(every: int = 1) -> list[Request]:
    """The grid, or every ``every``-th request of it (an odd step mixes the families and directions)."""
    return [*_solver_requests(), *_layer_requests(), *_plan_requests()][::every]


_CACHED = list({id(member): member for module in vars(autoshape.core).values() if isinstance(module, types.ModuleType)
                for member in vars(module).values() if hasattr(member, "cache_clear")}.values())
"""Every memoised function of autoshape's core."""


def cold(run: Callable[[], object]) -> Callable[[], object]:
    """``run`` after clearing autoshape's caches, so that every repeat pays the full cost."""
    def uncached() -> object:
        for cached in _CACHED:
            cached.cache_clear()
        return run()
    return uncached


class Cost(NamedTuple):
    seconds: float
    peak: int


def cost(request: Request) -> Cost:
    """The median CPU time of three cold runs, and the tracemalloc peak of a fourth."""
    run = cold(request.run)
    return Cost(median_seconds(run, repeats=3)[0], python_peak(run))


def _rows(measured: list[tuple[Request, Cost]]) -> list[list[object]]:
    families = list(dict.fromkeys(request.family for request, _ in measured))
    rows = []
    for family in [*families, "all"]:
        mine = [(r, c) for r, c in measured if family in ("all", r.family)]
        slowest = max(mine, key=lambda rc: rc[1].seconds)
        largest = max(mine, key=lambda rc: rc[1].peak)
        median_ms = statistics.median(c.seconds for _, c in mine) * 1e3
        rows.append([f"**{family}**" if family == "all" else f"`{family}`", len(mine), f"{median_ms:.2f}",
                     f"{slowest[1].seconds * 1e3:.2f}", slowest[0].call, f"{largest[1].peak / 2**20:.2f}",
                     largest[0].call])
    return rows


def section(settings: Settings) -> str:
    """The worst-case section of RESULTS.md."""
    measured = [(request, cost(request)) for request in requests(23 if settings.quick else 1)]
    return "\n\n".join([
        "## Worst case over extreme requests (sizes up to 10⁶)",
        __doc__.split("\n\n", 1)[1].replace("\n", " ").strip(),
        table(("calls", "requests", "median ms", "worst ms", "slowest request", "worst peak MiB",
               "largest request"), _rows(measured)),
        f"Bound: {SECONDS * 1e3:.0f} ms and {BYTES / 2**20:.0f} MiB per request; every request above "
        + ("meets it." if all(c.seconds <= SECONDS and c.peak <= BYTES for _, c in measured) else "does NOT meet it."),
    ])
