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

__all__ = ["CONVS", "Proposal", "changeable", "emptied", "proposals"]

Shape = tuple[int, ...]
SizeOf = Callable[[Shape], "Shape | None"]
Wanted = Sequence["int | None"]
"""A wanted spatial size, one entry per dimension; None where any size will do."""

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


def _size_of(call: Call) -> SizeOf | None:
    """The call's spatial output size for any spatial input size (its rule, else the identity when
    it keeps the spatial size); None where neither holds or the rank changes."""
    shape, out = call.input_shape, call.output_shape
    if shape is None or out is None or len(shape) != len(out) or len(shape) < 3:
        return None
    rule = rule_for(call)
    if rule is None or rule.terms is None or rule.ndim is None:
        return (lambda sizes: sizes) if shape[2:] == out[2:] else None
    n, terms = rule.ndim(call), rule.terms

    def size_of(sizes: Shape) -> Shape | None:
        first = len(sizes) - n
        try:
            tail = tuple(term.value for term in terms(call, sizes[first:], None))
        except (ValueError, TypeError, ZeroDivisionError):
            return None
        return (*sizes[:first], *tail)
    return size_of


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
    shape = call.input_shape
    if numbers is None or shape is None:
        return None
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


def proposals(record: Record, value: Value, wanted: Wanted, stop: int = -1) -> list[Proposal]:
    """Every plain convolution behind ``value`` (back to values made after index ``stop``) that one
    change of parameters makes give ``value`` the ``wanted`` spatial size, cheapest first."""
    ranges: list[tuple[int, int]] | None = [(1, _ANY) if size is None else (size, size) for size in wanted]
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


def emptied(call: Call) -> Proposal | None:
    """For a plain convolution whose output would be empty (its input is smaller than its kernel
    reaches): the least change of its parameters that gives every dimension an output; None otherwise."""
    module: Any = call.target
    shape = call.input_shape
    if not changeable(module) or shape is None or len(shape) != len(module.kernel_size) + 2:
        return None
    return _conv_proposal(call, [(1, _ANY)] * len(module.kernel_size))
