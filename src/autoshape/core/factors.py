"""Spatial sizes with a given number of entries, the nearest to a current one (for a reshape to fit).

Pure integer code: ``x.view(-1, 1352)`` on ``8×11×11`` samples needs each sample to hold 1352
entries, so an ``11×11`` map must become one of ``h·w = 169``; the nearest is ``13×13``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["MAX_ENTRIES", "nearest_factors"]

MAX_ENTRIES = 10**9
"""The most entries :func:`nearest_factors` splits (trial division up to its square root: a few ms)."""
_WORK = 50_000
"""The most divisor checks one request may make with three or more dimensions."""


def _divisors(n: int) -> list[int]:
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return small + [n // d for d in reversed(small) if d * d != n]


def _distance(sizes: Sequence[int], current: Sequence[int]) -> float:
    return sum(math.log(a / b) ** 2 for a, b in zip(sizes, current))


def _nearest(total: int, current: Sequence[int], divisors: Sequence[int], work: list[int]) -> tuple[int, ...]:
    """The split of ``total`` nearest ``current``: exact for two dimensions; for more, the first size
    is tried from the proportional one outwards while ``work`` (shared, in a list) lasts."""
    if len(current) == 1:
        return (total,)
    if len(current) == 2:
        return min(((d, total // d) for d in divisors), key=lambda sizes: (_distance(sizes, current), -sizes[0]))
    scale = (total / math.prod(current)) ** (1 / len(current))
    best: tuple[int, ...] | None = None
    for d in sorted(divisors, key=lambda d: (abs(math.log(d / (current[0] * scale))), -d)):
        if best is not None and work[0] < 0:
            break
        work[0] -= len(divisors)
        rest = total // d
        split = (d, *_nearest(rest, current[1:], [e for e in divisors if rest % e == 0], work))
        if best is None or (_distance(split, current), [-a for a in split]) < (_distance(best, current),
                                                                              [-a for a in best]):
            best = split
    assert best is not None
    return best


def nearest_factors(total: int, current: Sequence[int]) -> tuple[int, ...] | None:
    """The sizes, one per dimension of ``current``, whose product is ``total`` and that are nearest to
    ``current`` in proportion: the least sum of ``ln(new/old)²`` (so an ``11×11`` map gives ``13×13``
    for 169 entries and a ``4×6`` one ``5×10`` for 50), ties to the larger first sizes. Exact for one
    or two dimensions; for more, the best found trying the first size from the proportional one
    outwards, within a bounded amount of work. None where ``total`` is above :data:`MAX_ENTRIES`.

    Examples:
        >>> nearest_factors(169, (11, 11))
        (13, 13)
        >>> nearest_factors(97, (3, 3))
        (97, 1)
    """
    if total < 1 or total > MAX_ENTRIES or not current:
        return None
    return _nearest(total, current, _divisors(total), [_WORK])
