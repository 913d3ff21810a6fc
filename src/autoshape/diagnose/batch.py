"""Notes on the batch dimension: an input shape given without one, and a reshape that changes it or fails.

* a first convolution that got one sample, ``(C, H, W)``: the shape was most likely meant with a batch;
* a ``view``/``reshape`` whose rows no longer hold one sample each (``x.view(-1, 400)`` written for
  another input size turns a batch of 25 into 16 rows): the forward runs and silently mixes samples;
* a ``view``/``reshape`` that fails because a sample holds other than the entries it asks for
  (``x.view(-1, 1352)`` on ``8×11×11`` samples): the spatial size that would hold them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from ..core.factors import nearest_factors
from ..core.text import format_shape
from ..rules import rule_for
from ..tracing import Call, Record
from .rows import rows_of, where

__all__ = ["RESHAPES", "BatchChange", "batch_change", "batch_changed_before", "changed_batch", "failed_reshape",
           "unbatched", "unbatched_input"]

Shape = tuple[int, ...]
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
RESHAPES = {"view": "view", "reshape": "reshape", "torch.reshape": "reshape"}
"""The calls that take a shape with ``-1`` in it, and the Tensor method a fix writes for each."""


def unbatched_input(rows: Sequence[Call]) -> tuple[str, str] | None:
    """What is wrong and the fix, when the first spatial layer got an input without a batch (``(C, H, W)``
    for a 2-d conv): torch reads it as one sample, so the shape given was most likely meant with a batch,
    or, where the first number is not the conv's channels and it takes one, without the channel dimension."""
    for call in rows:
        rule = rule_for(call)
        shape = call.input_shape
        if rule is None or rule.ndim is None or shape is None or not isinstance(call.target, _CONVS):
            continue
        if len(shape) != rule.ndim(call) + 1:
            return None
        channels = call.target.in_channels
        if shape[0] == channels:
            return (f"{where(call)} got {format_shape(shape)}, one sample without a batch dimension: torch reads "
                    f"it as (C, *spatial), so the first number is not a batch",
                    f"give the input shape with the batch first, e.g. {(1, *shape)}")
        meant = (shape[0], 1, *shape[1:]) if channels == 1 else (1, channels, *shape[1:])
        reading = ("the batch, with the channel dimension missing" if channels == 1 else
                   f"neither a batch nor its {channels} channels")
        return (f"{where(call)} got {format_shape(shape)}, which torch reads as one sample of {shape[0]} channels, "
                f"but it takes {channels}: the first number is most likely {reading}",
                f"give the input shape as {meant}")
    return None


def unbatched(rows: Sequence[Call]) -> str | None:
    """:func:`unbatched_input` as a note."""
    found = unbatched_input(rows)
    return None if found is None else f"{found[0]}. Fix: {found[1]}."


def _splits_samples(before: Shape, after: Shape) -> bool:
    """Each sample of ``before`` becomes whole rows of ``after`` that keep its last dimensions
    (``(N, H, W, C)`` to ``(N·H·W, C)``: a per-pixel batch, not a mistake)."""
    per_row = math.prod(after[1:])
    kept = after[1:] == before[len(before) - len(after) + 1:] if len(after) <= len(before) else False
    return math.prod(before[1:]) % per_row == 0 and kept


def _linear_after(rows: Sequence[Call], index: int, width: int) -> Call | None:
    """The first Linear after ``rows[index]`` that reads rows of ``width`` features."""
    return next((row for row in rows[index + 1:] if isinstance(row.target, nn.Linear) and row.input_shape
                 and row.input_shape[-1] == width), None)


_FLATTENS = frozenset({"torch.flatten", "flatten", "Flatten"})
"""Calls that flatten dimensions (``torch.flatten(x)`` without ``start_dim=1`` folds the batch in too)."""


def _keeping_batch(name: str) -> str:
    """The call that keeps the batch in place of a ``view``/``reshape``/``flatten`` named ``name``."""
    if name in _FLATTENS:
        return "torch.flatten(x, 1) (or nn.Flatten(), which starts at dimension 1)"
    return f"x.{RESHAPES[name]}(x.size(0), -1) or torch.flatten(x, 1)"


@dataclass(frozen=True)
class BatchChange:
    """A ``view``/``reshape``/``flatten`` whose rows no longer hold one sample each, and the fix keeping the batch."""

    call: Call
    before: Shape
    after: Shape
    fix: str

    def __str__(self) -> str:
        batch = self.before[0]
        what = (f"it folded the batch of {batch} into one dimension" if len(self.after) == 1 else
                f"it changed the batch from {batch} to {self.after[0]}")
        return (f"{where(self.call)} turned {format_shape(self.before)} into {format_shape(self.after)}: {what}, so "
                f"its rows no longer hold one sample each. Fix: {self.fix}.")


def batch_change(rows: Sequence[Call], model_input: Shape, output: Shape | None) -> BatchChange | None:
    """The first ``view``/``reshape``/``flatten`` of a tensor with the model's batch first that gives another
    number of rows (not by splitting each sample into whole rows), where the model's output (``output``,
    None when unknown) does not get the batch back; with the fix that keeps the batch and the Linear it
    then needs."""
    batch = model_input[0]
    if output is not None and output[:1] == (batch,):
        return None
    for index, call in enumerate(rows):
        before, after = call.input_shape, call.output_shape
        reshape = call.name in RESHAPES or call.name in _FLATTENS
        if not reshape or not before or not after or before[0] != batch or after[0] == batch:
            continue
        if len(after) > 1 and _splits_samples(before, after):
            continue
        features = math.prod(before[1:])
        linear, then = _linear_after(rows, index, after[-1]), ""
        if linear is not None and linear.target.in_features != features:
            then = (f"; then build {where(linear)} with in_features={features}: "
                    f"nn.Linear({features}, {linear.target.out_features})")
        return BatchChange(call, before, after, f"keep the batch, {_keeping_batch(call.name)}, which gives "
                                                f"{format_shape((batch, features))}{then}")
    return None


def batch_changed_before(record: Record, call: Call) -> BatchChange | None:
    """The :func:`batch_change` made before ``call`` (the one that failed): the forward's code is then wrong
    (its batch), not the layer that failed on it."""
    change = batch_change(rows_of(record), record.input.shape, None)
    return change if change is not None and change.call.index < call.index else None


def changed_batch(rows: Sequence[Call], model_input: Shape, output: Shape | None) -> str | None:
    """:func:`batch_change` as a note."""
    change = batch_change(rows, model_input, output)
    return None if change is None else str(change)


def _asked(call: Call) -> tuple[int, ...] | None:
    """The shape a ``view``/``reshape`` call asks for: ``x.view(-1, 400)``, ``x.view((-1, 400))``,
    ``torch.reshape(x, (-1, 400))``; None for anything else (``x.view(torch.float16)``)."""
    asked: Any = call.args[1:] or call.kwargs.get("shape", call.kwargs.get("size"))
    if isinstance(asked, tuple) and len(asked) == 1 and isinstance(asked[0], (tuple, list)):
        asked = asked[0]
    if not isinstance(asked, (tuple, list)) or not asked:
        return None
    return tuple(asked) if all(type(n) is int for n in asked) else None


@dataclass(frozen=True)
class FailedReshape:
    """A ``view``/``reshape`` of a batch that failed: the entries per sample it asks for and those a sample
    holds, and the spatial size with which the input would hold them (None where none does)."""

    call: Call
    needs: int
    holds: int
    spatial: tuple[int, ...] | None

    def fix(self, change: str | None) -> str:
        """The fix, with ``change`` (the advice that brings the input to :attr:`spatial`) as the other way."""
        before = self.call.data_inputs[0].shape
        text = (f"{_keeping_batch(self.call.name)} keeps the batch, giving "
                f"{format_shape((before[0], self.holds))}: each sample of {format_shape(before)} holds "
                f"{self.holds} entries (= {'·'.join(map(str, before[1:]))}), not {self.needs}; then give the layer "
                f"that reads it {self.holds} input features")
        if change is None or self.spatial is None:
            return text
        return (f"{text}. Or, to keep the layers after it, make that input "
                f"{format_shape((*before[:2], *self.spatial))}: {change}")


def failed_reshape(call: Call) -> FailedReshape | None:
    """For a failed ``view``/``reshape`` of a tensor whose first dimension is kept (``-1`` or the same
    size first, no other ``-1``): what it asks for, and the nearest spatial size that holds it."""
    asked = _asked(call) if call.name in RESHAPES and call.data_inputs else None
    before = call.data_inputs[0].shape if asked is not None else ()
    if asked is None or len(asked) < 2 or len(before) < 2 or asked[0] not in (-1, before[0]) or -1 in asked[1:]:
        return None
    needs, holds = math.prod(asked[1:]), math.prod(before[1:])
    if needs == holds or needs < 1:
        return None
    spatial = nearest_factors(needs // before[1], before[2:]) if len(before) > 2 and needs % before[1] == 0 else None
    return FailedReshape(call, needs, holds, spatial)
