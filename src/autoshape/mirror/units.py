"""Mirrors of units: modules whose forward is not a chain, such as residual blocks.

A unit that merges two branches by a sum (``main(x) + shortcut(x)``, then perhaps an
activation) is mirrored as a residual up block: each branch mirrored as a chain of its own,
exact through the unit's recorded input size, and the sum followed by what the unit applied
after its sum. Any other unit that shrinks sizes like a convolution gets a transposed conv
fitted to it by probing its size on meta tensors, followed by the unit's output-side norm and
activation; so where the encoder is non-linear, so is the decoder.
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
    posts: list[Call]


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


def _copies(calls: Sequence[Call], shape: tuple[int, ...], copy: Callable[[Call], tuple[nn.Module, ...]]) -> list[
        nn.Module]:
    """Fresh copies of shape-keeping calls that work at ``shape`` (a norm sized for other channels does not)."""
    return [layer for call in calls for layer in copy(call) if fits(layer, shape)]


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


def _last_activation(record: Record, unit: Call) -> list[Call]:
    """The unit's last activation (a parameter-free shape-keeping call), for a unit with none at its output."""
    for call in reversed(list(record.descendants(unit))):
        rule = rule_for(call)
        keeps = len(call.data_inputs) == 1 and call.output_shape == call.data_inputs[0].shape and not _is_dropout(call)
        if call.kind == "function" and keeps and rule is not None and rule.keeps_shape:
            return [call]
        module = call.module
        if module is not None and keeps and rule is None and record.is_leaf(call) and not list(module.parameters()):
            return [call]
    return []


def mirror_unit(record: Record, step: Step, request: MirrorRequest, decode: Decode,
                copy: Callable[[Call], tuple[nn.Module, ...]]) -> Mirror:
    """A residual up block for a summed residual unit, else a fitted transposed conv and the unit's
    output-side norm and activation.

    Raises:
        ShapeError: the unit does not shrink sizes like a convolution.
    """
    target = (*request.input_shape[:1], request.out_channels, *request.input_shape[2:])
    parts = _residual(record, step)
    if parts is not None:
        branches = [_branch(record, steps, request, decode) for steps in (parts.main, parts.shortcut)]
        main, shortcut = branches
        identity_fits = bool(parts.shortcut) or request.in_channels == request.out_channels
        if main is not None and shortcut is not None and identity_fits:
            block = ResidualUp(main[0], main[1], shortcut[0], shortcut[1], _copies(parts.posts, target, copy))
            return Mirror((block,), sized=True)
    layer = fitted(request, size_functions(step), step.opaque or "it has no mirror rule")
    outputs = _trailing(record, step)[0]
    posts = _copies(outputs or _last_activation(record, step.call), target, copy)
    return Mirror((*layer.layers, *posts), layer.sized)
