"""A forward that failed: where, on what, and the fix where autoshape can compute one.

Fixes are computed from the record, never from torch's message text: a ``Linear`` whose
``in_features`` is not its input's last size, a convolution whose ``in_channels`` is not its
input's channels, and a concatenation or sum of branches whose sizes disagree, with the layer
and parameter that would make them agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from ..core.solver import solve_conv
from ..core.text import format_shape
from ..errors import ShapeError
from ..rules import rule_for
from ..tracing import Call, Record
from .notes import restoring, where
from .rows import is_row, row_that_made

__all__ = ["ExplainFailure", "diagnose"]

Shape = tuple[int, ...]
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_MERGES = frozenset({"torch.cat", "torch.concat", "torch.concatenate", "torch.stack", "add", "add_", "__iadd__",
                     "torch.add", "sub", "mul", "torch.mul"})


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

    Example:
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


def _failing_row(record: Record, stack: Sequence[Call]) -> Call:
    """The innermost running call ``explain`` shows as a row (the leaf around a failing torch call)."""
    rows = [call for call in stack if is_row(record, call) or call.kind == "module"]
    leaves = [call for call in rows if is_row(record, call)]
    return leaves[-1] if leaves else rows[-1]


def _shapes(call: Call) -> tuple[Shape, ...]:
    return tuple(v.shape for v in (call.data_inputs or call.inputs))


def _flattened(record: Record, call: Call) -> str:
    """``8·14·14, the size of 1×8×14×14 flattened``, when the input comes from a flatten or view."""
    value = call.data_inputs[0] if call.data_inputs else None
    made = None if value is None else row_that_made(record, value)
    rule = None if made is None else rule_for(made)
    if made is None or rule is None or rule.name not in ("flatten", "reshape") or not made.data_inputs:
        return ""
    before = made.data_inputs[0].shape
    return f" (= {'·'.join(map(str, before[1:]))}, the size of {format_shape(before)} flattened)"


def _linear_fix(record: Record, call: Call) -> str | None:
    linear: Any = call.target
    shape = call.input_shape
    if shape is None or shape[-1] == linear.in_features:
        return None
    features = shape[-1]
    return (f"build {where(call)} with in_features={features}{_flattened(record, call)}: "
            f"nn.Linear({features}, {linear.out_features})")


def _conv_fix(call: Call) -> str | None:
    conv: Any = call.target
    shape = call.input_shape
    if shape is None or len(shape) < 2 or shape[1] == conv.in_channels:
        return None
    return (f"build {where(call)} with in_channels={shape[1]}, the channels of its input "
            f"{format_shape(shape)}: {type(conv).__name__}({shape[1]}, {conv.out_channels}, ...)")


def agreeing_change(record: Record, producer: Call, target: Shape) -> str | None:
    """The parameter change that makes ``producer`` (a row) give the spatial size ``target``."""
    m: Any = producer.target
    shape, out = producer.input_shape, producer.output_shape
    if shape is None or out is None or len(out) != len(target) + 2:
        return None
    sizes = shape[2:]
    if isinstance(m, _TRANSPOSED):
        change = restoring(m, sizes, target)
        text = None if change is None else ", ".join(f"{k}={v}" for k, v in change.items())
        return None if text is None else f"pass {text} to {where(producer)} (or call it with output_size=...)"
    rule = rule_for(producer)
    if rule is not None and rule.name == "upsampling":
        return f"make {where(producer)} upsample to size={target if len(set(target)) > 1 else target[0]}"
    if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)) and not isinstance(m.padding, str):
        try:
            params = solve_conv(sizes, target, kernel_size=m.kernel_size, stride=m.stride, dilation=m.dilation)
        except ShapeError:
            return None
        padding = params.padding if len(set(params.padding)) > 1 else params.padding[0]
        return f"pass padding={padding} to {where(producer)}"
    return None


def _merge_fix(record: Record, call: Call) -> str | None:
    """Sizes that disagree in a concatenation or sum: both branches, and the change that aligns them."""
    inputs = call.data_inputs
    if len(inputs) < 2 or len({v.shape[2:] for v in inputs}) < 2:
        return None
    first, second = inputs[0], inputs[1]
    makers = [row_that_made(record, first), row_that_made(record, second)]
    named = [f"{where(m)} gives {format_shape(v.shape)}" if m else f"the model's input is {format_shape(v.shape)}"
             for m, v in zip(makers, (first, second))]
    tries = [(makers[1], first.shape[2:]), (makers[0], second.shape[2:])]
    for maker, target in sorted(tries, key=lambda pair: not _is_upsampling(pair[0])):
        change = None if maker is None else agreeing_change(record, maker, target)
        if change is not None:
            return f"{named[0]} and {named[1]}: {change} so that both are {format_shape(target)}"
    return f"{named[0]} and {named[1]}: their sizes must agree (except along the concatenated dimension)"


def _is_upsampling(call: Call | None) -> bool:
    rule = None if call is None else rule_for(call)
    return call is not None and (isinstance(call.target, _TRANSPOSED) or (rule is not None
                                                                          and rule.name == "upsampling"))


def diagnose(record: Record) -> ExplainFailure:
    """The failure of a record whose forward failed, with its fix."""
    failure = record.failure
    assert failure is not None
    stack = failure.stack
    call = _failing_row(record, stack) if stack else None
    innermost = stack[-1] if stack else None
    fix = None
    if call is not None and isinstance(call.target, nn.Linear):
        fix = _linear_fix(record, call)
    elif call is not None and isinstance(call.target, _CONVS):
        fix = _conv_fix(call)
    elif innermost is not None and innermost.kind == "function" and innermost.name in _MERGES:
        fix = _merge_fix(record, innermost)
    return ExplainFailure(call.path if call else "", call.name if call else type(failure.error).__name__,
                          _shapes(call) if call else (), str(failure.error), fix)
