"""Which convolutions can bring a value of a traced forward to a wanted size, and how (no trace).

From a value (the model's output, or one side of a concatenation) walk back through the rows
that made it, as long as each row's size rule is known or it keeps the spatial size. For every
plain convolution on that walk: the output sizes that give the value its wanted size (the rows
in between inverted, by bisection on their size rules) and the least change of its parameters
that reaches one (:func:`autoshape.core.adjust.nearest_change`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from ..core.adjust import DimChange, nearest_change
from ..core.text import compact
from ..rules import rule_for
from ..tracing import Call, Record, Value
from .rows import row_that_made

__all__ = ["CONVS", "Proposal", "changeable", "emptied", "least_input", "least_model_input", "proposals"]

Shape = tuple[int, ...]
SizeOf = Callable[[Shape], "Shape | None"]
Wanted = Sequence["int | None"]
"""A wanted spatial size, one entry per dimension; None where any size will do."""
Ranges = list[tuple[int, int]]
"""Per dimension, the least and the most size that will do."""

CONVS: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d,
                                      nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
"""The layers whose sizes ``fix`` may change (exactly these classes: a subclass may build otherwise)."""

_ANY = 1 << 40
"""An output size no real model reaches: the top of an unbounded range of wanted sizes."""


@dataclass(frozen=True, eq=False)
class Proposal:
    """One layer to rebuild with other constructor arguments.

    Attributes:
        call: the layer's row in the record where the change was found.
        params: the constructor arguments that change, each an int where all dimensions agree.
        cost: what it touches (an index of :data:`~autoshape.core.adjust.KINDS`, past them for a
            layer's input size) and how far stride, kernel_size and the paddings move; lower is preferred.
    """

    call: Call
    params: Mapping[str, int | tuple[int, ...]]
    cost: tuple[int, int, int, int]

    @property
    def path(self) -> str:
        return self.call.path


def changeable(module: Any, kinds: tuple[type[nn.Module], ...] = CONVS) -> bool:
    """A plain torch layer of these classes that ``fix`` may rebuild: no subclass (it may build
    otherwise), no hooks, and no state but its weight and bias (a parametrization, spectral norm)."""
    return (type(module) in kinds and not module._forward_hooks and not module._forward_pre_hooks
            and set(module.state_dict()) <= {"weight", "bias"})


def _rule_size(call: Call) -> SizeOf | None:
    """The call's spatial output size for any spatial input size by its size rule (None where it has
    none, or where the rule gives no size); also for a call that failed."""
    rule = rule_for(call)
    if rule is None or rule.terms is None or rule.ndim is None:
        return None
    n, terms = rule.ndim(call), rule.terms

    def size_of(sizes: Shape) -> Shape | None:
        first = len(sizes) - n
        try:
            tail = tuple(term.value for term in terms(call, sizes[first:], None))
        except (ValueError, TypeError, ZeroDivisionError):
            return None
        return (*sizes[:first], *tail)
    return size_of


def _size_of(call: Call) -> SizeOf | None:
    """The call's spatial output size for any spatial input size (its rule, else the identity when
    it keeps the spatial size); None where neither holds or the rank changes."""
    shape, out = call.input_shape, call.output_shape
    if shape is None or out is None or len(shape) != len(out) or len(shape) < 3:
        return None
    size_of = _rule_size(call)
    if size_of is None:
        return (lambda sizes: sizes) if shape[2:] == out[2:] else None
    return size_of


def least_input(call: Call) -> Shape | None:
    """For a call with a size rule (a pooling, a convolution) whose input is too small for an output:
    per spatial dimension, the least input size that gives one (the current size where it already
    does); None where the output is not empty or the rule is unknown."""
    size_of, shape = _rule_size(call), call.input_shape
    if size_of is None or shape is None or len(shape) < 3:
        return None
    sizes = shape[2:]
    out = size_of(sizes)
    if out is None or len(out) != len(sizes) or min(out) >= 1:
        return None
    least = []
    for dim, size in enumerate(sizes):

        def g(x: int, dim: int = dim) -> int:
            found = size_of((*sizes[:dim], x, *sizes[dim + 1:]))
            return -1 if found is None else found[dim]

        top = 2 * max(size, 1)
        while g(top) < 1 and top < _ANY:
            top *= 2
        least.append(max(size, _first_reaching(g, 1, top)))
    return tuple(least)


def _walk(record: Record, value: Value, stop: int) -> list[tuple[Call, SizeOf]]:
    """The rows that made ``value``, last first, down to the first whose size rule is unknown or to a
    value made at or before index ``stop`` (through a merge, its newest input: the branch)."""
    links: list[tuple[Call, SizeOf]] = []
    while value.index > stop and (row := row_that_made(record, value)) is not None:
        size_of = _size_of(row)
        if size_of is None or not row.data_inputs:
            break
        links.append((row, size_of))
        value = max(row.data_inputs, key=lambda v: v.index)
    return links


def _first_reaching(g: Callable[[int], int], size: int, high: int) -> int:
    """The smallest ``x`` in ``[1, high]`` with ``g(x) >= size`` (``g`` non-decreasing); ``high + 1`` if none."""
    low = 1
    while low <= high:
        middle = (low + high) // 2
        if g(middle) >= size:
            high = middle - 1
        else:
            low = middle + 1
    return low


def _preimage(size_of: SizeOf, current: Shape, ranges: Sequence[tuple[int, int]]) -> list[tuple[int, int]] | None:
    """Per dimension, the input sizes (each dimension varied on its own from ``current``) that
    ``size_of`` takes into ``ranges``; None where a dimension has none. Size rules do not decrease."""
    found = []
    for dim, (low, high) in enumerate(ranges):
        if (low, high) == (1, _ANY):
            found.append((1, _ANY))
            continue

        def g(x: int, dim: int = dim) -> int:
            out = size_of((*current[:dim], x, *current[dim + 1:]))
            return -1 if out is None else out[dim]

        top = 2 * max(current[dim], low, 1)
        while g(top) <= high and top < _ANY:
            top *= 2
        first = _first_reaching(g, low, top)
        if first > top or g(first) > high:
            return None
        found.append((first, _ANY if g(top) <= high else _first_reaching(g, high + 1, top) - 1))
    return found


def _numbers(module: Any) -> list[tuple[int, ...]] | None:
    """kernel_size, stride, padding, dilation, output_padding per dimension; None for string padding."""
    if isinstance(module.padding, str):
        return None
    output_padding = getattr(module, "output_padding", (0,) * len(module.kernel_size))
    return [tuple(module.kernel_size), tuple(module.stride), tuple(module.padding), tuple(module.dilation),
            tuple(output_padding)]


def _conv_proposal(call: Call, ranges: Sequence[tuple[int, int]]) -> Proposal | None:
    module: Any = call.target
    numbers = _numbers(module)
    shape, n = call.input_shape, len(module.kernel_size)
    if numbers is None or shape is None or len(shape) != n + 2 or len(ranges) != n:
        return None  # an unbatched or misshapen input: no size change of this layer is meaningful
    transposed = isinstance(module, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d))
    per_dim: list[DimChange] = []
    for i, (low, high), (k, s, p, d, op) in zip(shape[2:], ranges, zip(*numbers)):
        change = nearest_change(i, low, high, k, s, p, d, op, transposed)
        if change is None:
            return None
        per_dim.append(change)
    new = {"kernel_size": [c.kernel_size for c in per_dim], "stride": [c.stride for c in per_dim],
           "padding": [c.padding for c in per_dim], "output_padding": [c.output_padding for c in per_dim]}
    old = dict(zip(("kernel_size", "stride", "padding", "output_padding"), numbers[:3] + numbers[4:]))
    params = {name: compact(values) for name, values in new.items() if tuple(values) != old[name]}
    if not params:
        return None
    moves = [sum(column) for column in zip(*(c.moves for c in per_dim))]
    return Proposal(call, params, (max(c.kind for c in per_dim), moves[0], moves[1], moves[2]))


def _ranges(wanted: Wanted, at_least: bool) -> Ranges:
    return [(1, _ANY) if size is None else (size, _ANY if at_least else size) for size in wanted]


def proposals(record: Record, value: Value, wanted: Wanted, stop: int = -1, at_least: bool = False) -> list[Proposal]:
    """Every plain convolution behind ``value`` (back to values made after index ``stop``) that one
    change of parameters makes give ``value`` the ``wanted`` spatial size (``at_least``: that size or
    more), cheapest first."""
    ranges: Ranges | None = _ranges(wanted, at_least)
    found = []
    for row, size_of in _walk(record, value, stop):
        shape = row.input_shape
        if ranges is None or shape is None:
            break
        if changeable(row.target):
            proposal = _conv_proposal(row, ranges)
            found += [proposal] if proposal is not None else []
        ranges = _preimage(size_of, shape[2:], ranges)
    return sorted(found, key=lambda p: p.cost)


def least_model_input(record: Record, value: Value, least: Wanted) -> Shape | None:
    """The least model input (full shape) that gives ``value`` at least the ``least`` spatial size, the
    layers unchanged, where every row between the model's input and ``value`` has a known size rule
    (a bound from each row's rule, each dimension on its own: verify it by a trace before naming it)."""
    if len(record.inputs) != 1:
        return None
    ranges: Ranges | None = _ranges(least, True)
    reached = value
    for row, size_of in _walk(record, value, -1):
        if ranges is None or row.input_shape is None:
            return None
        ranges = _preimage(size_of, row.input_shape[2:], ranges)
        reached = max(row.data_inputs, key=lambda v: v.index)
    if ranges is None or reached.producer is not None or len(reached.shape) != len(ranges) + 2:
        return None
    return (*reached.shape[:2], *(max(low, size) for (low, _), size in zip(ranges, reached.shape[2:])))


def emptied(call: Call) -> Proposal | None:
    """For a plain convolution whose output would be empty (its input is smaller than its kernel
    reaches): the least change of its parameters that gives every dimension an output; None otherwise."""
    module: Any = call.target
    shape = call.input_shape
    if not changeable(module) or shape is None or len(shape) != len(module.kernel_size) + 2:
        return None
    return _conv_proposal(call, [(1, _ANY)] * len(module.kernel_size))
