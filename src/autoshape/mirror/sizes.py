"""A step's output size along each spatial dimension, as a function of its input size there.

A step with a rule answers from its formula (exact integer arithmetic). A unit (a module without
a rule) answers by composing the formulas of the calls on its data path, read from the record;
only where some call on that path has no formula and changes the shape is the unit probed on
meta tensors. One probe moves every spatial size by the same offset and serves all dimensions at
once (each output size is taken to depend on its own input size only).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from ..core.inversion import SizeFunction
from ..rules import rule_for
from ..tracing import Call, Record, Value, trace
from .chain import Step, breaks_its_rule

__all__ = ["Composer", "SizesFunction", "is_down", "per_dimension", "size_functions"]

Sizes = tuple[int, ...]
SizesFunction = Callable[[Sizes], "Sizes | None"]
"""All spatial sizes of a step's input to those of its output (None where it refuses them)."""


def _formula(call: Call) -> SizesFunction | None:
    """The call's rule as a function of the input's spatial sizes (its trailing dims; the rest kept)."""
    rule = rule_for(call)
    if rule is None or rule.terms is None or rule.ndim is None or breaks_its_rule(call) is not None:
        return None
    n, terms = rule.ndim(call), rule.terms

    def apply(sizes: Sizes) -> Sizes | None:
        if len(sizes) < n:
            return None
        try:
            out = tuple(t.value for t in terms(call, sizes[len(sizes) - n:], None))
        except (ValueError, ZeroDivisionError):
            return None
        return (*sizes[:len(sizes) - n], *out) if min(out, default=1) >= 1 else None
    return apply


class Composer:
    """Spatial sizes from one value of a record to a later one, composed from the formulas of the calls
    between them (memoised per record)."""

    def __init__(self, record: Record) -> None:
        self.record = record
        self.memo: dict[tuple[int, int, int], SizesFunction | None] = {}

    def between(self, within: Call, start: Value, end: Value) -> SizesFunction | None:
        """From ``start`` to ``end`` through the calls inside ``within``, when every call on some path
        between them has a formula or keeps the spatial sizes; at a merge (a sum, a concatenation)
        the first branch that composes is taken, since merged branches agree in size."""
        key = (within.index, start.index, end.index)
        if key not in self.memo:
            self.memo[key] = self._between(within, start, end)
        return self.memo[key]

    def _between(self, within: Call, start: Value, end: Value) -> SizesFunction | None:
        if end.index == start.index:
            return _same
        for call in self._returners(within, end):
            for before in call.data_inputs:
                rest = self.between(within, start, before)
                here = None if rest is None else self._through(call, before, end)
                if rest is not None and here is not None:
                    return _then(rest, here)
        return None

    def _returners(self, within: Call, value: Value) -> list[Call]:
        """The calls inside ``within`` that returned ``value``: its producer and the enclosing calls
        that returned it too, outermost first; none when ``value`` was not made inside ``within``."""
        returned: list[Call] = []
        index, climbing = value.producer, True
        while index is not None and index != within.index:
            call = self.record.calls[index]
            climbing = climbing and any(v.index == value.index for v in call.outputs)
            if climbing:
                returned.append(call)
            index = call.parent
        return returned[::-1] if index == within.index else []

    def _through(self, call: Call, vin: Value, vout: Value) -> SizesFunction | None:
        """One call's sizes: its formula, the composition of its own calls, or the identity if it keeps
        the spatial sizes (an activation, a norm, a concatenation along channels)."""
        formula = _formula(call)
        if formula is not None:
            return formula
        inner = None if call.module is None else self.between(call, vin, vout)
        if inner is not None:
            return inner
        keeps_sizes = len(vin.shape) == len(vout.shape) and vin.shape[2:] == vout.shape[2:]
        rule = rule_for(call)
        return _same if keeps_sizes and (rule is None or rule.keeps_shape) else None


def _same(sizes: Sizes) -> Sizes | None:
    return sizes


def _then(first: SizesFunction, second: SizesFunction) -> SizesFunction:
    def both(sizes: Sizes) -> Sizes | None:
        middle = first(sizes)
        return None if middle is None else second(middle)
    return both


def _checked(function: SizesFunction | None, step: Step) -> SizesFunction | None:
    """``function`` if it reproduces the traced size, else None."""
    return function if function is not None and function(step.input_shape[2:]) == step.output_shape[2:] else None


def _probed(step: Step) -> SizesFunction:
    module = step.call.module

    @functools.cache
    def probe(sizes: Sizes) -> Sizes | None:
        shape = (*step.input_shape[:2], *sizes)
        if module is None or min(shape) < 1:
            return None
        out = trace(module, shape, fallback=False).output_shape
        return out[2:] if out is not None and len(out) == len(shape) else None
    return probe


def per_dimension(function: SizesFunction, base: Sizes) -> list[SizeFunction]:
    """One size function per dimension of ``base``; the other dimensions move by the same offset
    (as a probe moves them all at once)."""
    def along(dim: int) -> SizeFunction:
        def size_of(n: int) -> int | None:
            out = function(tuple(b + n - base[dim] for b in base))
            return None if out is None else out[dim]
        return size_of
    return [along(dim) for dim in range(len(base))]


def size_functions(step: Step, record: Record) -> list[SizeFunction]:
    """One function per spatial dimension of ``step.input_shape[2:]``: from the step's formula, the
    formulas on a unit's data path, or probes."""
    own = _formula(step.call) if step.opaque is None else None
    composed = None if own is not None or step.call.module is None else _checked(
        Composer(record).between(step.call, step.input, step.output), step)
    return per_dimension(own or composed or _probed(step), step.input_shape[2:])


def is_down(step: Step, record: Record) -> bool:
    """True for a step that changes the scale: it maps a neighbouring input size to the same output size.

    That is a stride above 1 in some dimension (pooling, strided conv or unit, adaptive pooling). A
    stride-1 size change, such as an unpadded conv's, is one-to-one: it is not a new scale.
    """
    if step.input_shape[2:] == step.output_shape[2:] or len(step.input_shape) != len(step.output_shape):
        return False
    for size_of, n in zip(size_functions(step, record), step.input_shape[2:]):
        o = size_of(n)
        if o is not None and o in (size_of(n - 1), size_of(n + 1)):
            return True
    return False
