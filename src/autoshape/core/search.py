"""Every solution of one spatial dimension, best first, produced lazily at a cost the sizes do not set.

The rank (documented on :func:`autoshape.solve_conv_transpose`) is, in order:

1. conventional strides first: those whose lattice fits the sizes, ``(small-1)·stride <= big-1``
   (a convolution's windows' starts span no more than its input; a transposed convolution's output
   spans every input's position); the tail after them needs windows over the padding;
2. the stride closest to the scale ratio (ascending where the stride has no effect);
3. a transposed kernel divisible by the stride; a convolution whose last window reaches its last
   input row (the rows the floor drops lie in the padding);
4. the smallest kernel larger than the stride, then the largest up to it;
5. the least padding, then output_padding.

The strides that can hold a solution form an interval computed in closed form; at each stride
:mod:`autoshape.core.window` gives the kernels of each group of 3 as progressions. Free values are
searched within bounds that provably hold a solution whenever one exists, and every preference
of 3 and 4 (see ``_stride_bound`` and ``_kernel_limits``).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator

from .window import (
    Candidate,
    Group,
    Request,
    first_stride_reaching,
    kernel_runs,
    output_padding,
    paddings,
    q_values,
    window,
)

__all__ = ["candidates"]


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _stride_bound(r: Request) -> int:
    """A stride past which no new output size (or better-ranked solution) appears."""
    if r.max_stride is not None:
        return r.max_stride
    k_known = r.kernel if r.kernel is not None else r.max_kernel
    if k_known is None and not (r.padding is not None and not r.transposed):
        # stride 1 (and 2, for a parity that even dilation blocks) reach everything reachable;
        # the ratio's neighbourhood is added for the ranking's sake.
        ratio = _ceil_div(r.o, r.i) if r.transposed else _ceil_div(r.i, r.o)
        return max(2, ratio + 1)
    pmax = r.padding if r.padding is not None else r.dilation * ((k_known or 1) - 1)
    if not r.transposed:
        return max(1, r.i + 2 * pmax)  # any larger stride gives output 1, as this one does
    if r.i == 1:
        return max(1, r.o + 2 * pmax)  # stride only widens output_padding's range here
    return max(1, (r.o - 1 + 2 * pmax) // (r.i - 1))


def _kernel_limits(r: Request, s: int) -> tuple[int, int]:
    """The kernels searched at stride s: the fixed one, up to max_kernel, or up to a bound.

    A free kernel with a fixed padding only overshoots past ``(2·padding - L)/dilation + 1``.
    Otherwise the search runs one stride past the smallest kernel that reaches the target (or
    exceeds the stride), so every residue appears: a divisible kernel, one that reads every row.
    """
    if r.kernel is not None:
        return r.kernel, r.kernel
    if r.max_kernel is not None:
        return 1, r.max_kernel
    low, width = window(r, s)
    if r.padding is not None:
        return 1, max(1, (2 * r.padding - low) // r.dilation + 1)
    reaching = 1 + _ceil_div(max(low, -(low + width), 0), r.dilation)
    return 1, max(reaching, s + 1) + s


def _stride_interval(r: Request) -> range:
    """The strides within the search bound whose window ``[L, L + w]`` meets the allowed ``2·padding - E``."""
    values = q_values(r)
    lo_q, hi_q = min(lo for lo, _, _ in values), max(hi for _, hi, _ in values)
    first, last = 1, _stride_bound(r)
    slope, base = (r.i - 1, 1 - r.o) if r.transposed else (r.o - 1, 1 - r.i)  # L = slope·s + base
    if slope:
        last = min(last, (hi_q - base) // slope)
    elif base > hi_q:
        return range(0)
    reaching = (first_stride_reaching(r.i, r.dilation, lo_q + r.o) if r.transposed
                else _ceil_div(lo_q + r.i, r.o))
    return range(max(first, reaching), last + 1)


def _in_rank_order(r: Request, strides: range) -> Iterator[int]:
    """Strides closest to the scale ratio first (the smaller on a tie); ascending where stride has no effect."""
    if not strides or (r.transposed and r.i == 1) or (not r.transposed and r.o == 1):
        yield from strides
        return
    n, m = (r.i, r.o) if r.transposed else (r.o, r.i)  # the ratio is m / n
    lo, hi = strides[0], strides[-1]
    below = min(max(m // n, lo - 1), hi)
    above = below + 1
    while below >= lo or above <= hi:
        if above > hi or (below >= lo and m - below * n <= above * n - m):
            yield below
            below -= 1
        else:
            yield above
            above += 1


def _strides(r: Request, tail: bool) -> Iterator[int]:
    """One half of the strides in rank order: those whose lattice fits the sizes (L <= 0), or the rest."""
    strides = _stride_interval(r) if r.stride is None else range(r.stride, r.stride + 1)
    small, big = (r.i, r.o) if r.transposed else (r.o, r.i)
    fit = len(strides) if small == 1 else min(len(strides), max(0, (big - 1) // (small - 1) - strides.start + 1))
    return _in_rank_order(r, strides[fit:] if tail else strides[:fit])


def _groups(r: Request, s: int) -> list[Group]:
    """The groups of one stride in rank order: divisible kernels, or full coverage, first."""
    if r.transposed:
        return [Group(divisible=True)] + ([Group(divisible=False)] if s > 1 and not r.divisible else [])
    return [Group(drops=False), Group(drops=True)]


def _larger_then_smaller(runs: list[range], s: int) -> Iterator[int]:
    """Kernels above the stride ascending (overlapping windows), then the others descending."""
    cuts = [min(len(run), max(0, (s - run.start) // run.step + 1)) for run in runs]
    yield from heapq.merge(*(run[cut:] for run, cut in zip(runs, cuts)))
    yield from heapq.merge(*(run[:cut][::-1] for run, cut in zip(runs, cuts)), reverse=True)


def _kernels(r: Request, s: int, group: Group) -> Iterator[int]:
    ranked = _larger_then_smaller(kernel_runs(r, s, group, *_kernel_limits(r, s)), s)
    return (k for k in ranked if k % s) if group.divisible is False else ranked


def candidates(r: Request) -> Iterator[Candidate]:
    """Every solution within the bounds, best first (the rank in this module's docstring)."""
    for tail in (False, True):
        for s in _strides(r, tail):
            for group in _groups(r, s):
                for k in _kernels(r, s, group):
                    for p in paddings(r, s, k, group):
                        yield Candidate(k, s, p, output_padding(r, s, k, p))
