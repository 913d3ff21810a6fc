"""A forward that failed: where, on what, and the fix where autoshape can compute one.

Fixes are computed from the record, never from torch's message text: a ``Linear`` whose
``in_features`` is not its input's last size, a convolution whose ``in_channels`` is not its
input's channels or that gives no output (its input smaller than its kernel reaches), an
``Embedding`` given a model input that is not integer indices (a shape is traced as floating point), a pooling
(or other windowed call) whose input is too small for an output, a ``view``/``reshape`` whose
samples hold other than the entries it asks for, and a concatenation or sum of branches whose
sizes disagree, with the layer and parameter that make the newer branch agree with the older one
(the skip). Where ``fix``'s search found changes that make the whole forward run, the fix names them all.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from ..core.sizes import dim_names
from ..core.text import compact, format_shape
from ..rules import rule_for
from ..rules.registry import arg
from ..tracing import Call, Record, Value, trace
from .batch import batch_changed_before, failed_reshape
from .reach import CONVS, Proposal, emptied, least_input, least_model_input, proposals
from .rows import is_row, row_that_made, where

__all__ = ["MERGES", "ExplainFailure", "advice", "channels_last", "conv_channels", "diagnose", "failing_calls",
           "flatten_missing", "merge_sides", "wanted_input"]

Shape = tuple[int, ...]
_CONCATENATIONS = frozenset({"torch.cat", "torch.concat", "torch.concatenate"})
_TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
MERGES = _CONCATENATIONS | {"torch.stack", "add", "add_", "__iadd__", "torch.add", "sub", "mul", "torch.mul"}
"""Torch calls that combine tensors whose sizes must agree (except along a concatenated dimension)."""


@dataclass(frozen=True)
class ExplainFailure:
    """Where a model's forward failed in :func:`autoshape.explain`, and the fix where one is known.

    Args:
        path: the dotted path of the module that failed, or whose forward made the failing torch
            call (``''`` for the top module).
        call: the module type or torch function that failed (``'Linear'``, ``'torch.cat'``).
        input_shapes: the shapes it was given (those computed from the model's input).
        message: torch's (or the model's) error message.
        fix: what to change, with the numbers worked out; None where autoshape knows no fix.

    Shape:
        ``input_shapes`` are full tensor shapes, batch included.

    Examples:
        >>> from torch import nn
        >>> from autoshape import explain
        >>> model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.Flatten(), nn.Linear(8 * 14 * 13, 10))
        >>> failure = explain(model, (1, 1, 14, 14)).failure
        >>> failure.path, failure.call, failure.input_shapes
        ('2', 'Linear', ((1, 1568),))
        >>> print(failure.fix)
        build '2' Linear with in_features=1568 (= 8·14·14, the size of 1×8×14×14 flattened): nn.Linear(1568, 10)

    Raises:
        Nothing: a plain record.
    """

    path: str
    call: str
    input_shapes: tuple[Shape, ...]
    message: str
    fix: str | None

    def __str__(self) -> str:
        shapes = ", ".join(format_shape(shape) for shape in self.input_shapes) or "no tensor"
        text = f"failed: '{self.path or '(model)'}' {self.call} on {shapes}: {self.message}"
        return text + (f"\nfix: {self.fix}" if self.fix else "")


def failing_calls(record: Record) -> tuple[Call | None, Call | None]:
    """The row of a failed forward that ``explain`` shows as failing (the innermost running leaf, else
    module), and the innermost running call (the torch call that raised, if any)."""
    stack = record.failure.stack if record.failure is not None else ()
    rows = [call for call in stack if is_row(record, call) or call.kind == "module"]
    leaves = [call for call in rows if is_row(record, call)]
    return (leaves[-1] if leaves else rows[-1] if rows else None), (stack[-1] if stack else None)


def _shapes(call: Call) -> tuple[Shape, ...]:
    return tuple(v.shape for v in (call.data_inputs or call.inputs))


def _flattened(record: Record, call: Call) -> str:
    """``8·14·14, the size of 1×8×14×14 flattened``, when the input comes from a flatten or view of whole samples."""
    value = call.data_inputs[0] if call.data_inputs else None
    made = None if value is None else row_that_made(record, value)
    rule = None if made is None else rule_for(made)
    if made is None or rule is None or rule.name not in ("flatten", "reshape") or not made.data_inputs:
        return ""
    before = made.data_inputs[0].shape
    if value is None or math.prod(before[1:]) != value.shape[-1]:
        return ""
    return f" (= {'·'.join(map(str, before[1:]))}, the size of {format_shape(before)} flattened)"


def _linear_fix(record: Record, call: Call) -> str | None:
    """A Linear given other than ``in_features``: the features it gets, or, for an image-like input
    ``(N, C, *spatial)`` that no flatten came before, the flatten it needs."""
    linear: Any = call.target
    shape = call.input_shape
    if shape is None or shape[-1] == linear.in_features:
        return None
    if len(shape) >= 4:  # (N, C, H, W) reaching a Linear: a flatten is missing, not a width
        features = math.prod(shape[1:])
        build = "" if features == linear.in_features else (
            f", and build it with in_features={features}: nn.Linear({features}, {linear.out_features})")
        return (f"{where(call)} got {format_shape(shape)}, whose samples hold {features} entries "
                f"(= {'·'.join(map(str, shape[1:]))}): flatten them first, nn.Flatten() before it (or "
                f"torch.flatten(x, 1)){build}")
    features = shape[-1]
    return (f"build {where(call)} with in_features={features}{_flattened(record, call)}: "
            f"nn.Linear({features}, {linear.out_features})")


def flatten_missing(call: Call) -> bool:
    """A Linear given an image-like input, ``(N, C, *spatial)``: the fix is a flatten, not its ``in_features``."""
    return isinstance(call.target, nn.Linear) and call.input_shape is not None and len(call.input_shape) >= 4


def conv_channels(call: Call) -> int | None:
    """The channels of a conv's input: ``(C, *spatial)`` unbatched or ``(N, C, *spatial)``; None for another rank."""
    shape, n = call.input_shape, len(call.target.kernel_size)
    return shape[-n - 1] if shape is not None and len(shape) in (n + 1, n + 2) else None


def channels_last(call: Call) -> tuple[int, ...] | None:
    """For a conv given ``(N, *spatial, C)`` (its channels last, as images load): the order that puts them
    second, ``(0, 3, 1, 2)`` in 2-d; None otherwise."""
    shape, n, channels = call.input_shape, len(call.target.kernel_size), call.target.in_channels
    if shape is None or len(shape) != n + 2 or shape[1] == channels or shape[-1] != channels:
        return None
    return (0, n + 1, *range(1, n + 1))


def _meant_shape(shape: Shape, channels: int, n: int) -> Shape | None:
    """The input a conv of ``n`` spatial dimensions most likely was meant to get instead of ``shape``:
    ``(N, C)`` without spatial dimensions gets them (a GAN's ``z``), extra dimensions go, the batch stays."""
    if len(shape) == 2 and shape[1] == channels:
        return (shape[0], channels, *(1,) * n)
    if len(shape) == n:
        return (1, channels, *shape)
    if len(shape) > n + 2:
        return (shape[0], channels, *shape[-n:])
    return None


def _rank_fix(record: Record, call: Call) -> str | None:
    """A conv given an input of another rank: the shapes it takes, and the model input that gives one."""
    conv: Any = call.target
    shape, n = call.input_shape, len(conv.kernel_size)
    if shape is None or conv_channels(call) is not None:
        return None
    spatial = ", ".join(dim_names(n))
    fix = (f"{where(call)} takes (N, C, {spatial}) or (C, {spatial}) and got {format_shape(shape)}, "
           f"{len(shape)} dimensions")
    meant = _meant_shape(shape, conv.in_channels, n)
    if meant is not None and call.data_inputs and call.data_inputs[0] in record.inputs:
        grown = len(shape) == 2 and shape[1] == conv.in_channels  # (N, C): the spatial dimensions are added
        how = f" (x[:, :, {', '.join(['None'] * n)}] adds them)" if grown else ""
        fix += f": give the model an input of shape {meant}{how}"
    return fix


def _conv_fix(record: Record, call: Call) -> str | None:
    conv: Any = call.target
    channels, order = conv_channels(call), channels_last(call)
    if channels is None or channels == conv.in_channels:
        return None
    shape = call.input_shape
    assert shape is not None
    if order is not None:
        permuted = tuple(shape[d] for d in order)
        head = f"{where(call)} got {format_shape(shape)}, its {conv.in_channels} channels last"
        if call.data_inputs and call.data_inputs[0] in record.inputs:
            return f"{head}: give the model x.permute{order}, of shape {permuted}"
        return f"{head}: put them second, x.permute{order}, which gives {format_shape(permuted)}"
    return (f"build {where(call)} with in_channels={channels}, the channels of its input "
            f"{format_shape(shape)}: {type(conv).__name__}({channels}, {conv.out_channels}, ...)")


def _empty_fix(record: Record, call: Call, edits: Sequence[Proposal]) -> str | None:
    """A convolution that gives no output (an input smaller than its kernel reaches, or a transposed
    conv's padding cropping it all): the least change that makes it give one (``fix``'s first change,
    where it searched), or, for a plain conv, the least model input (else layer input) that does."""
    change = edits[0] if edits else emptied(call)
    if change is None or call.input_shape is None:
        return None
    text = f"it gives no output for {format_shape(call.input_shape[2:])}: {advice(change)}"
    least = None if isinstance(call.target, _TRANSPOSED) else least_input(call)
    if least is None:
        return text
    model_input = _least_model_input(record, call, least)
    return f"{text}, or {f'give {model_input}' if model_input else f'make its input at least {format_shape(least)}'}"


def wanted_input(call: Call) -> tuple[Shape, bool] | None:
    """The spatial size a failing call's input needs, and whether a larger one will do: at least the
    least that gives a pooling (or other windowed call) an output; exactly the nearest that holds
    what a failed ``view``/``reshape`` asks for. None where neither applies."""
    least = least_input(call)
    if least is not None:
        return least, True
    reshape = failed_reshape(call)
    return (reshape.spatial, False) if reshape is not None and reshape.spatial is not None else None


_GROWTHS = 8
"""The most times the least model input grows past a later layer that is still too small (a trace each)."""


def _least_model_input(record: Record, call: Call, least: Shape) -> str | None:
    """``the model an input of at least 1×3×9×9``: the least model input with which the failing ``call``
    gets an input of ``least`` and no later layer is left without an output, checked by tracing the
    model there (on meta tensors only; each later layer still too small grows it, at most ``_GROWTHS`` times)."""
    shape = least_model_input(record, call.data_inputs[0], least) if call.data_inputs and record.on_meta else None
    for _ in range(_GROWTHS):
        if shape is None:
            return None
        again = trace(record.calls[0].target, shape, fallback=False)
        row = failing_calls(again)[0] if again.failure is not None else None
        needs = least_input(row) if row is not None and row.data_inputs else None
        if row is None or needs is None:
            return f"the model an input of at least {format_shape(shape)}" if row is None or \
                row.index > call.index else None
        more = least_model_input(again, row.data_inputs[0], needs)
        shape = None if more is None else tuple(max(a, b) for a, b in zip(shape, more))
    return None


def _small_fix(record: Record, call: Call, least: Shape, edits: Sequence[Proposal]) -> tuple[str, bool] | None:
    """A call whose input is too small for an output: the size it needs, the change that gives it that
    (``fix``'s first, where it searched) and the least model input that does, checked by a trace (and
    whether a layer change is named)."""
    shape = call.input_shape
    if shape is None or not call.data_inputs:
        return None
    change = edits[0] if edits else next(iter(proposals(record, call.data_inputs[0], least, at_least=True)), None)
    model_input = _least_model_input(record, call, least)
    ways = ([advice(change)] if change is not None else []) + ([f"give {model_input}"] if model_input else [])
    text = f"it gives no output for {format_shape(shape[2:])}: its input must be at least {format_shape(least)}"
    return (f"{text}; {', or '.join(ways)}" if ways else text), change is not None


def _reshape_fix(record: Record, call: Call, edits: Sequence[Proposal]) -> tuple[str, bool] | None:
    """A failed ``view``/``reshape``: the way that keeps the batch, and the change that makes the input
    hold what it asks for (and whether one is named)."""
    reshape = failed_reshape(call)
    if reshape is None:
        return None
    change = edits[0] if edits else None
    if change is None and reshape.spatial is not None:
        change = next(iter(proposals(record, call.data_inputs[0], reshape.spatial)), None)
    return reshape.fix(None if change is None else advice(change)), change is not None


def _positional(model: Any) -> list[inspect.Parameter]:
    """The positional parameters of a model's forward."""
    return [p for p in inspect.signature(model.forward).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _inputs_fix(record: Record) -> str | None:
    """A forward that takes more inputs than it was given: one shape or example tensor for each."""
    model = record.calls[0].target if record.calls else None
    if model is None:
        return None
    needed = [p.name for p in _positional(model) if p.default is p.empty]
    given = record.inputs
    if len(needed) <= len(given):
        return None
    shapes = ", ".join([*(str(v.shape) for v in given), *(f"<{name}>" for name in needed[len(given):])])
    return (f"its forward takes {len(needed)} inputs ({', '.join(needed)}) and got {len(given)}: give input_shape "
            f"as one shape or example tensor per input, ({shapes}) (the command line takes one input)")


def _indices_fix(record: Record, call: Call) -> str | None:
    """An ``Embedding`` that failed on a floating-point input of the model (a shape is traced as one)."""
    value = call.data_inputs[0] if call.data_inputs else None
    if not isinstance(call.target, nn.Embedding) or value is None or value not in record.inputs or not value.floating:
        return None
    position = record.inputs.index(value)
    names = [p.name for p in _positional(record.calls[0].target)]
    named = f"'{names[position]}'" if position < len(names) else f"number {position + 1}"
    example = f"torch.zeros({', '.join(map(str, value.shape))}, dtype=torch.long)"
    return (f"{where(call)} takes integer indices, but the forward's input {named} was not (a shape is traced in the "
            f"model's floating-point dtype): give that input as an example tensor of indices, e.g. {example}")


def advice(edit: Proposal, alternative: bool = True) -> str:
    """``pass output_padding=1 to '2' ConvTranspose2d``, or ``build ... with ...`` for new weights;
    ``alternative``: name ``output_size=...`` where only output_padding changes."""
    text = ", ".join(f"{name}={value}" for name, value in edit.params.items())
    if {"kernel_size", "in_features", "in_channels"} & set(edit.params):
        return f"build {where(edit.call)} with {text}"
    by_output_size = set(edit.params) == {"output_padding"} and alternative
    return f"pass {text} to {where(edit.call)}" + (" (or call it with output_size=...)" if by_output_size else "")


def merge_sides(call: Call) -> tuple[Value, Value, tuple[int | None, ...]] | None:
    """For a concatenation or sum whose inputs disagree: its oldest input (the skip, kept), the newest
    one that disagrees with it (to change), and the spatial size that one needs (None along the
    concatenated dimension); None when they agree or differ in batch or channels."""
    inputs = call.data_inputs
    if call.kind != "function" or call.name not in MERGES or len(inputs) < 2:
        return None
    held = min(inputs, key=lambda v: v.index)
    rank = len(held.shape)
    dim = arg(call, 1, "dim", 0) % rank if call.name in _CONCATENATIONS else None
    differs = [v for v in inputs if len(v.shape) == rank and
               any(a != b for n, (a, b) in enumerate(zip(v.shape, held.shape)) if n != dim)]
    if rank < 3 or not differs:
        return None
    changing = max(differs, key=lambda v: v.index)
    if any(changing.shape[n] != held.shape[n] for n in (0, 1) if n != dim):
        return None
    return held, changing, tuple(None if n == dim else held.shape[n] for n in range(2, rank))


def _merge_fix(record: Record, call: Call, edits: Sequence[Proposal]) -> tuple[str, bool] | None:
    """Sizes that disagree in a concatenation or sum: both branches, and the change that aligns them
    (and whether there is one)."""
    inputs = call.data_inputs
    if len(inputs) < 2 or len({v.shape[2:] for v in inputs}) < 2:
        return None
    named = []
    for value in inputs[:2]:
        maker = row_that_made(record, value)
        named.append(f"{where(maker)} gives {format_shape(value.shape)}" if maker
                     else f"the model's input is {format_shape(value.shape)}")
    both = f"{named[0]} and {named[1]}"
    sides = merge_sides(call)
    if sides is None:
        return f"{both}: their sizes must agree (except along the concatenated dimension)", False
    held, changing, _ = sides
    change = edits[0] if edits else next(iter(proposals(record, changing, sides[2], stop=held.index)), None)
    upsampling = _upsampling_behind(record, changing)
    if change is not None:
        how = advice(change)
    elif upsampling is not None:
        how = f"make {where(upsampling)} upsample to size={compact(held.shape[2:])}"
    else:
        return (f"{both}: their sizes must agree (except along the concatenated dimension); no single change of "
                f"a convolution behind {format_shape(changing.shape)} makes it {format_shape(held.shape[2:])}", False)
    return f"{both}: {how} so that both are {format_shape(held.shape[2:])}", True


def _upsampling_behind(record: Record, value: Value) -> Call | None:
    """The upsampling that made ``value``'s spatial size, through rows that keep it (activations, norms)."""
    made = row_that_made(record, value)
    while made is not None and made.data_inputs and made.input_shape is not None:
        rule = rule_for(made)
        if rule is not None and rule.name == "interpolation":
            return made
        if made.input_shape[2:] != value.shape[2:]:
            return None
        made = row_that_made(record, made.data_inputs[0])
    return None


def diagnose(record: Record, edits: Sequence[Proposal] | None = None) -> ExplainFailure:
    """The failure of a record whose forward failed, with its fix. ``edits``: the changes ``fix``'s
    search verified (the first fixes this failure), () when it found none, None when not searched."""
    failure = record.failure
    assert failure is not None
    call, innermost = failing_calls(record)
    fix, changes = None, True
    mixed = batch_changed_before(record, call) if call is not None else None
    if mixed is not None:
        fix, changes = mixed.fix, False
    elif call is not None and isinstance(call.target, nn.Linear):
        fix, changes = _linear_fix(record, call), not flatten_missing(call)
    elif call is not None and isinstance(call.target, CONVS) and conv_channels(call) is None:
        fix, changes = _rank_fix(record, call), False
    elif call is not None and isinstance(call.target, CONVS):
        fix = _conv_fix(record, call) or _empty_fix(record, call, edits or ())
        changes = channels_last(call) is None
    elif call is not None and call.index == 0 and (needs := _inputs_fix(record)) is not None:
        fix, changes = needs, False
    elif call is not None and isinstance(call.target, nn.Embedding):
        fix, changes = _indices_fix(record, call), False
    elif call is not None and (least := least_input(call)) is not None:
        fix, changes = _small_fix(record, call, least, edits or ()) or (None, False)
    elif call is not None:
        fix, changes = _reshape_fix(record, call, edits or ()) or (None, False)
    if fix is None and innermost is not None and innermost.kind == "function" and innermost.name in MERGES:
        fix, changes = _merge_fix(record, innermost, edits or ()) or (None, False)
    rest = "; ".join(advice(edit, alternative=False) for edit in (edits or ())[1:])
    if fix is not None and rest:
        fix += f". The rest of the forward then needs: {rest} (autoshape fix makes all these changes)"
    elif fix is not None and changes and edits is not None and not edits:
        fix += (" (this call only: autoshape fix, which changes convolutions and Linear layers only, found no "
                "fix for the whole forward)")
    return ExplainFailure(call.path if call else "", call.name if call else type(failure.error).__name__,
                          _shapes(call) if call else (), str(failure.error), fix)
