"""A step's output size along each spatial dimension, as a function of its input size there.

A step with a rule answers from its formula (exact integer arithmetic); a unit (a module
without a rule) is probed on meta tensors. One probe moves every spatial size by the same
offset and serves all dimensions at once (each output size is taken to depend on its own input
size only).
"""

from __future__ import annotations

import functools

from ..core.inversion import SizeFunction
from ..rules import rule_for
from ..tracing import Call, trace
from .chain import Step

__all__ = ["is_down", "size_functions"]


def _from_formula(call: Call, spatial: tuple[int, ...], dim: int) -> SizeFunction | None:
    """Dimension ``dim`` of ``spatial`` through the call's rule, None without a formula for it."""
    rule = rule_for(call)
    if rule is None or rule.terms is None or rule.ndim is None:
        return None
    n = rule.ndim(call)
    first = len(spatial) - n  # the rule acts on the trailing n dimensions
    if dim < first:
        return lambda size: size
    terms = rule.terms

    def size_of(size: int) -> int | None:
        sizes = list(spatial[first:])
        sizes[dim - first] = size
        try:
            value = terms(call, tuple(sizes), None)[dim - first].value
        except (ValueError, ZeroDivisionError):
            return None
        return value if value >= 1 else None
    return size_of


def _probed(step: Step) -> list[SizeFunction]:
    rank = len(step.input_shape)
    module = step.call.module

    @functools.cache
    def probe(offset: int) -> tuple[int, ...] | None:
        shape = (*step.input_shape[:2], *(n + offset for n in step.input_shape[2:]))
        if module is None or min(shape) < 1:
            return None
        out = trace(module, shape, fallback=False).output_shape
        return out if out is not None and len(out) == rank else None

    def along(dim: int) -> SizeFunction:
        def size_of(n: int) -> int | None:
            out = probe(n - step.input_shape[dim])
            return None if out is None else out[dim]
        return size_of

    return [along(dim) for dim in range(2, rank)]


def size_functions(step: Step) -> list[SizeFunction]:
    """One function per spatial dimension of ``step.input_shape[2:]``."""
    spatial = step.input_shape[2:]
    exact = [_from_formula(step.call, spatial, dim) for dim in range(len(spatial))]
    if step.opaque is None and all(f is not None for f in exact):
        return [f for f in exact if f is not None]
    return _probed(step)


def is_down(step: Step) -> bool:
    """True for a step that changes the scale: it maps a neighbouring input size to the same output size.

    That is a stride above 1 in some dimension (pooling, strided conv or unit, adaptive pooling). A
    stride-1 size change, such as an unpadded conv's, is one-to-one: it is not a new scale.
    """
    if step.input_shape[2:] == step.output_shape[2:] or len(step.input_shape) != len(step.output_shape):
        return False
    for size_of, n in zip(size_functions(step), step.input_shape[2:]):
        o = size_of(n)
        if o is not None and o in (size_of(n - 1), size_of(n + 1)):
            return True
    return False
