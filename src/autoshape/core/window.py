"""One spatial dimension of a solve, in closed form: the kernels and paddings that hit the target.

With ``E = dilation·(kernel_size-1)`` (the kernel's reach) and ``Q = 2·padding - E``, both layers
are linear in Q:

* a convolution gives ``out = floor((in - 1 + Q) / stride) + 1``, so Q lies in ``[L, L + stride-1]``
  with ``L = (out-1)·stride + 1 - in``; the floor drops the last ``Q - L`` rows of the padded input;
* a transposed one gives ``out = (in-1)·stride + 1 - Q + output_padding``, so ``Q = L + output_padding``
  with ``L = (in-1)·stride + 1 - out`` and ``output_padding <= max(stride, dilation) - 1``.

A rank group (see :mod:`autoshape.core.search`) bounds the padding from below and from above by
terms linear in E. For E of one parity every term is exact, so comparing the bounds pairwise gives
the kernels of the group as one arithmetic progression: no kernel is tried in vain, whatever the sizes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NamedTuple

__all__ = [
    "FAR",
    "Candidate",
    "Group",
    "Request",
    "first_stride_reaching",
    "kernel_runs",
    "output_padding",
    "paddings",
    "q_values",
    "window",
]

FAR = 1 << 62
"""Stands for 'no bound' on a kernel or a stride: more than any size a tensor can have."""


@dataclass(frozen=True)
class Request:
    """One dimension of a solve: sizes, fixed values (None = free) and bounds (None = unbounded)."""

    transposed: bool
    i: int
    o: int
    kernel: int | None = None
    stride: int | None = None
    padding: int | None = None
    dilation: int = 1
    max_kernel: int | None = None
    max_stride: int | None = None
    divisible: bool = False  # transposed kernels must be divisible by the stride (the planner's no-checkerboard)

    def aiming_at(self, o: int) -> Request:
        return replace(self, o=o)


class Candidate(NamedTuple):
    """One solution in one dimension."""

    kernel: int
    stride: int
    padding: int
    output_padding: int


class Group(NamedTuple):
    """A rank group at one stride: whether a convolution's floor drops input rows (None: either way),
    and whether a transposed kernel is divisible by the stride (None: any)."""

    drops: bool | None = None
    divisible: bool | None = None


Progression = tuple[int, int, int]
"""``(lo, hi, step)``: the integers ``lo, lo+step, …`` up to ``hi``."""

_Linear = tuple[int, int]
"""``(a, b)``: a bound ``2·padding ≥ a·E + b`` (a lower bound) or ``≤`` (an upper one)."""


def window(r: Request, s: int) -> tuple[int, int]:
    """``(L, w)``: at stride s, ``2·padding - E`` must lie in ``[L, L + w]``."""
    if r.transposed:
        return (r.i - 1) * s + 1 - r.o, max(s, r.dilation) - 1
    return (r.o - 1) * s + 1 - r.i, s - 1


def first_stride_reaching(i: int, d: int, total: int) -> int:
    """The smallest stride s with ``(i-1)·s + max(s, d) >= total``: a transposed window's top end."""
    if i - 1 + d >= total:
        return 1
    if i * d >= total:  # within s <= d (i > 1 here)
        return -(-(total - d) // (i - 1))
    return -(-total // i)


def q_values(r: Request) -> list[Progression]:
    """Every ``2·padding - E`` the fixed values and bounds allow (a free kernel reaches up to FAR)."""
    d = r.dilation
    low_e = d * ((r.kernel or 1) - 1)
    high_e = d * ((r.kernel if r.kernel is not None else r.max_kernel or FAR) - 1)
    if r.padding is not None:
        return [(2 * r.padding - high_e, 2 * r.padding - low_e, d if high_e > low_e else 1)]
    if high_e == low_e:
        return [(-high_e, high_e, 2 if high_e else 1)]
    # 2p - E runs over [-E, E] in steps of 2; these nest for E of one parity, so the largest E
    # of each parity (the two largest multiples of d, for an odd d) covers all the others.
    tops = {high_e, high_e - d} if d % 2 else {high_e}
    return [(-top, top, 2 if top else 1) for top in tops if top >= 0]


def _bounds(r: Request, s: int, e: int, group: Group) -> tuple[list[_Linear], list[_Linear]]:
    """Lower and upper bounds on ``2·padding`` for E of parity e, each exact for such E."""
    low, width = window(r, s)
    lower = [(0, 0 if r.padding is None else 2 * r.padding), (1, low + (low + e) % 2)]  # ceil((L+E)/2)
    upper = [(2, 0) if r.padding is None else (0, 2 * r.padding), (1, low + width - (low + width + e) % 2)]
    if group.drops is True:
        lower.append((2, 2 * low + 2))  # the floor drops more rows (Q - L) than there is padding
    elif group.drops is False:
        upper.append((2, 2 * low))
    return lower, upper


def _reach_range(lower: list[_Linear], upper: list[_Linear]) -> tuple[int, int | None] | None:
    """The E with every lower bound at most every upper bound: ``(lo, hi)``, hi None if unbounded."""
    lo, hi = 0, None
    for a1, b1 in lower:
        for a2, b2 in upper:
            slope, room = a1 - a2, b2 - b1  # need slope·E <= room
            if slope == 0 and room < 0:
                return None
            if slope > 0:
                hi = room // slope if hi is None else min(hi, room // slope)
            elif slope < 0:
                lo = max(lo, -(room // -slope))
    return lo, hi


def _divisible(run: range, s: int) -> range:
    """The elements of ``run`` (step 1 or 2) divisible by s."""
    if not run:
        return run
    first, step = run.start, run.step
    if step == 1 or s % 2 == 0:
        if step == 2 and first % 2:
            return range(0)  # odd kernels only, and every multiple of s is even
        return range(-(-first // s) * s, run.stop, s)
    m = -(-first // s)
    m += (m - first) % 2  # m·s must have first's parity
    return range(m * s, run.stop, 2 * s)


def kernel_runs(r: Request, s: int, group: Group, kmin: int, kmax: int) -> list[range]:
    """The kernels in ``[kmin, kmax]`` with a padding of the group at stride s, as ascending ranges.

    One range per parity of E (one in all when the dilation is even).
    """
    d = r.dilation
    runs = []
    for e in (0, 1) if d % 2 else (0,):
        reach = _reach_range(*_bounds(r, s, e, group))
        if reach is None:
            continue
        lo, hi = reach
        first = max(kmin, -(-lo // d) + 1)
        last = kmax if hi is None else min(kmax, hi // d + 1)
        if d % 2:
            first += (first - 1 - e) % 2  # k - 1 must have E's parity
        run = range(first, last + 1, 2 if d % 2 else 1)
        runs.append(_divisible(run, s) if group.divisible else run)
    return [run for run in runs if run]


def paddings(r: Request, s: int, k: int, group: Group) -> range:
    """The paddings, ascending, with which kernel k at stride s hits the target within the group."""
    reach = r.dilation * (k - 1)
    lower, upper = _bounds(r, s, reach % 2, group)
    low = max(a * reach + b for a, b in lower) // 2
    high = min(a * reach + b for a, b in upper) // 2
    return range(low, high + 1)


def output_padding(r: Request, s: int, k: int, p: int) -> int:
    """The output_padding that completes (k, s, p): ``Q - L`` for a transposed conv, 0 for a plain one."""
    return 2 * p - r.dilation * (k - 1) - window(r, s)[0] if r.transposed else 0
