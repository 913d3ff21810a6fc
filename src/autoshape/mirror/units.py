"""Mirrors of units: modules whose forward is not a chain, such as residual blocks.

A unit that merges two branches by a sum (``main(x) + shortcut(x)``, then perhaps an
activation) is mirrored as a residual up block: each branch mirrored as a chain of its own,
exact through the unit's recorded input size. Any other unit that shrinks sizes like a
convolution gets a transposed conv fitted to its size rule (read from the record, or probed).

What a unit applies at its output (the norm and activation at the end of its main branch, and
after its sum; else its last activation) are :func:`unit_posts`: the decoder applies them where
the encoder had them, at the unit's output shape, just as the posts that follow a conv. So where
the encoder is non-linear between two learned steps, so is the decoder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch import nn

from ..layers.blocks import ResidualUp
from ..rules import Mirror, MirrorRequest, rule_for
from ..rules.fitting import fitted
from ..tracing import Call, Record, Value, trace
from .chain import Step, child_that_returned, read_steps
from .sizes import size_functions

__all__ = ["Decode", "Entry", "fits", "mirror_unit"]

_SUMS = frozenset({"add", "add_", "__add__", "__iadd__", "__radd__", "torch.add"})


@dataclass(frozen=True)
class Entry:
    """One decoder layer and the encoder step whose recorded input it needs per call.

    ``sized_by``: the layer gets that step's input shape as ``output_size``.
    ``fuses``: the layer (a skip fusion) gets that step's input tensor as its second argument.
    """

    module: nn.Module
    sized_by: int | None = None
    fuses: int | None = None


Decode = Callable[[Record, Sequence[Step], MirrorRequest], list[Entry]]
"""Builds the decoder of a chain of steps, from ``in_channels`` back to ``out_channels``."""


@dataclass(frozen=True)
class _Residual:
    main: list[Step]
    shortcut: list[Step]
    posts: list[Call]  # after the sum


def _trailing(record: Record, step: Step) -> tuple[list[Call], Value]:
    """The shape-keeping calls at the end of the unit's forward (its output norm and activation),
    and the value they start from."""
    posts: list[Call] = []
    value: Value = step.output
    while (child := child_that_returned(record, step.call, value)) is not None:
        inputs = child.data_inputs
        if len(inputs) != 1 or inputs[0].shape != value.shape:
            break
        posts.append(child)
        value = inputs[0]
    return posts[::-1], value


def _residual(record: Record, step: Step) -> _Residual | None:
    """The unit's two summed branches and what follows the sum, when it has that form."""
    posts, value = _trailing(record, step)
    merge = child_that_returned(record, step.call, value)
    if merge is None or merge.kind != "function" or merge.name not in _SUMS or len(merge.data_inputs) != 2:
        return None
    inputs = merge.data_inputs
    if inputs[0].shape != inputs[1].shape:
        return None  # a broadcast, not a residual sum
    branches = [[] if v.index == step.input.index else read_steps(record, step.call, step.input, v) for v in inputs]
    main, shortcut = sorted(branches, key=lambda branch: len(branch) if isinstance(branch, list) else -1,
                            reverse=True)
    if not isinstance(main, list) or not isinstance(shortcut, list):
        return None
    return _Residual(main, shortcut, posts)


def fits(module: nn.Module, shape: tuple[int, ...]) -> bool:
    """Whether ``module`` accepts an input of ``shape`` (tried on meta tensors)."""
    return trace(module, shape, fallback=False).failure is None


def _branch(record: Record, steps: list[Step], request: MirrorRequest, decode: Decode) -> tuple[
        list[nn.Module], list[bool]] | None:
    """A branch's decoder, when each layer that needs a recorded size can take the unit's input shape."""
    entries = decode(record, steps, request)
    for entry in entries:
        if entry.fuses is not None:
            return None
        if entry.sized_by is not None and any(s.input_shape[2:] != s.output_shape[2:] for s in steps[:entry.sized_by]):
            return None  # it needs a size inside the branch, which the unit does not record
    return [entry.module for entry in entries], [entry.sized_by is not None for entry in entries]


def _is_dropout(call: Call) -> bool:
    return "dropout" in call.name.lower()


def _last_activation(record: Record, step: Step) -> list[Call]:
    """The unit's last activation at its output's resolution (a parameter-free shape-keeping call; a
    squeeze-excitation gate, at 1×1, is not one), for a unit with none at its output."""
    for call in reversed(list(record.descendants(step.call))):
        rule = rule_for(call)
        out = call.output_shape
        keeps = len(call.data_inputs) == 1 and out == call.data_inputs[0].shape and not _is_dropout(call)
        if not keeps or out is None or out[2:] != step.output_shape[2:]:
            continue
        if call.kind == "function" and rule is not None and rule.keeps_shape:
            return [call]
        module = call.module
        if module is not None and rule is None and record.is_leaf(call) and not list(module.parameters()):
            return [call]
    return []


def unit_posts(record: Record, step: Step) -> list[Call]:
    """The shape-keeping calls a unit applies at its output, in order: for a residual unit, those at
    the end of its main branch and those after its sum; for another unit, those at the end of its
    forward, else its last activation."""
    parts = _residual(record, step)
    if parts is not None:
        main = parts.main
        trailing: list[Call] = []
        while main and main[-1].input_shape == main[-1].output_shape:
            trailing.insert(0, main.pop().call)
        return [*trailing, *parts.posts]
    return _trailing(record, step)[0] or _last_activation(record, step)


def mirror_unit(record: Record, step: Step, request: MirrorRequest, decode: Decode) -> Mirror:
    """A residual up block for a summed residual unit, else a fitted transposed conv.

    Raises:
        ShapeError: the unit does not shrink sizes like a convolution.
    """
    parts = _residual(record, step)
    if parts is not None:
        main, shortcut = (_branch(record, steps, request, decode) for steps in (parts.main, parts.shortcut))
        identity_fits = bool(parts.shortcut) or request.in_channels == request.out_channels
        if main is not None and shortcut is not None and identity_fits:
            return Mirror((ResidualUp(main[0], main[1], shortcut[0], shortcut[1]),), sized=True)
    return fitted(request, size_functions(step, record), step.opaque or "it has no mirror rule")
