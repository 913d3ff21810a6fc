"""The one-dimensional search behind the solver: candidates in rank order, and reachable sizes.

A request is one spatial dimension: input size ``i``, target ``o`` and the user's fixed values
and bounds. Strides and kernels are enumerated within bounds that provably contain a solution
whenever one exists (see ``_stride_bound`` and ``_kernel_bound``); padding and output_padding
are then solved in closed form.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import NamedTuple

from .arithmetic import conv_out, conv_transpose_out, max_output_padding

__all__ = ["Candidate", "Request", "candidates", "nearest_reachable"]

class Candidate(NamedTuple):
    """One solution in one dimension."""

    kernel: int
    stride: int
    padding: int
    output_padding: int


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

    def aiming_at(self, o: int) -> Request:
        return replace(self, o=o)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _padding_cap(r: Request, k: int) -> int:
    """Largest padding considered: the fixed one, else ``dilation·(kernel_size-1)``."""
    return r.padding if r.padding is not None else r.dilation * (k - 1)


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


def _kernel_bound(r: Request, s: int) -> int:
    """A kernel size past which no new output size (or better-ranked solution) appears."""
    if r.max_kernel is not None:
        return r.max_kernel
    d = r.dilation
    if r.padding is not None:  # a larger kernel only overshoots: exact upper bound
        if r.transposed:
            return (2 * r.padding + r.o - 1 - (r.i - 1) * s) // d + 1
        return (r.i + 2 * r.padding - 1 - s * (r.o - 1)) // d + 1
    if r.transposed:
        base = (r.i - 1) * s + 1
        cover = 1 + max(0, _ceil_div(base - r.o, d), _ceil_div(r.o - base - max_output_padding(s, d), d))
        parity = 1 if max_output_padding(s, d) == 0 else 0  # sizes step by 2: one more kernel
        return max(cover + 1, _ceil_div(max(cover, s + 1), s) * s + parity)  # a divisible kernel > s
    cover = 1 + max(0, _ceil_div(s * (r.o - 1) - r.i + 1, d), _ceil_div(r.i - s * r.o, d))
    return max(cover, s + 1) + 1  # the next kernel too: with stride 1, sizes step by 2


def _stride_key(r: Request, s: int) -> tuple[int, int]:
    """Strides closest to the scale ratio first; stride 1 first where stride has no effect."""
    if (r.transposed and r.i == 1) or (not r.transposed and r.o == 1):
        return (s, s)
    return (abs(s * r.i - r.o) if r.transposed else abs(s * r.o - r.i), s)


def _rest_key(r: Request, c: Candidate) -> tuple[int, ...]:
    """Within a stride: divisible transposed kernels, then the smallest kernel larger than the
    stride (overlapping windows), then larger-to-smaller kernels up to the stride; then least padding."""
    k, s, p, op = c
    divisible = 0 if not r.transposed or k % s == 0 else 1
    kernel = (0, k) if k > s else (1, -k)
    return (divisible, *kernel, p, op)


def _paddings(r: Request, k: int, s: int) -> Iterator[tuple[int, int]]:
    """Every (padding, output_padding) that makes (k, s) hit ``r.o`` exactly."""
    d, cap = r.dilation, _padding_cap(r, k)
    fixed = r.padding is not None
    if r.transposed:
        t = conv_transpose_out(r.i, k, s, 0, d, 0) - r.o  # need 2p - op == t
        for op in range(max_output_padding(s, d) + 1):
            p = (t + op) // 2
            if (t + op) % 2 == 0 and 0 <= p <= cap and (not fixed or p == cap):
                yield p, op
        return
    low = 0 if not fixed else cap
    for p in range(low, cap + 1):
        if conv_out(r.i, k, s, p, d) == r.o and r.i + 2 * p >= d * (k - 1) + 1:
            yield p, 0


def _strides(r: Request) -> list[int]:
    if r.stride is not None:
        return [r.stride]
    return sorted(range(1, _stride_bound(r) + 1), key=lambda s: _stride_key(r, s))


def _kernels(r: Request, s: int) -> range:
    if r.kernel is not None:
        return range(r.kernel, r.kernel + 1)
    return range(1, _kernel_bound(r, s) + 1)


def candidates(r: Request) -> Iterator[Candidate]:
    """Every solution within the bounds, best first (the ranking documented on ``solve_conv_transpose``)."""
    for s in _strides(r):
        found = [Candidate(k, s, p, op) for k in _kernels(r, s) for p, op in _paddings(r, k, s)]
        yield from sorted(found, key=lambda c: _rest_key(r, c))


def _progression(r: Request, k: int, s: int) -> tuple[int, int, int] | None:
    """All output sizes (lo, hi, step) of kernel k and stride s over every valid padding."""
    d, cap = r.dilation, _padding_cap(r, k)
    low = cap if r.padding is not None else 0
    if r.transposed:
        top = conv_transpose_out(r.i, k, s, low, d, max_output_padding(s, d))
        bottom = conv_transpose_out(r.i, k, s, cap, d, 0)
        step = 1 if r.padding is not None or max_output_padding(s, d) > 0 else 2
    else:
        low = max(low, _ceil_div(d * (k - 1) + 1 - r.i, 2))
        if low > cap:
            return None
        bottom, top = conv_out(r.i, k, s, low, d), conv_out(r.i, k, s, cap, d)
        step = 2 if s == 1 and low < cap else 1
    while bottom < 1:
        bottom += step
    return (bottom, top, step) if bottom <= top else None


def nearest_reachable(r: Request) -> tuple[int | None, int | None]:
    """The reachable output sizes just below and just above ``r.o`` (None where there is none).

    The search spaces for the targets 1 and ``far`` together contain the one for every target in
    between, because each bound grows or shrinks monotonically with the target.
    """
    far = 2 * (r.o + r.i) + 8
    below: int | None = None
    above: int | None = None
    for probe in (r.aiming_at(1), r.aiming_at(far)):
        for s in _strides(probe):
            for k in _kernels(probe, s):
                span = _progression(probe, k, s)
                if span is None:
                    continue
                lo, hi, step = span
                under = min(hi, r.o - 1)
                under -= (under - lo) % step
                if under >= lo and (below is None or under > below):
                    below = under
                over = max(lo, r.o + 1)
                over += (-(over - lo)) % step
                if over <= hi and (above is None or over < above):
                    above = over
    return below, above
