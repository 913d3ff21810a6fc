"""Checking that replaying an encoder's steps is its forward, at other input sizes and in training.

MirrorAutoencoder and MirrorUNet run the encoder step by step, with the arguments recorded at the
traced size in eval mode. That is the encoder's own forward only if its forward does not compute
arguments from the input's size (``F.avg_pool2d(x, x.shape[2:])``, a block called with
``height, width``) or branch on ``self.training`` between steps (noise added in training). Both
are found by tracing the encoder again, at another size and in training mode, on meta tensors,
and comparing how each step would be replayed; a difference is a ``ShapeError``, never a
silently different encoder.
"""

from __future__ import annotations

import torch
from torch import nn

from ..core.text import format_shape
from ..errors import ShapeError
from ..tracing import Selector, trace
from .chain import Chain, Step, chain_of
from .replay import signature

__all__ = ["check_replay"]

_OTHER_SIZES = (1, 2)
"""Offsets added to every spatial size to find another size the encoder accepts."""


def _other(encoder: nn.Module, chain: Chain, output: Selector, training: bool) -> tuple[Chain | str, str] | None:
    """The chain at another size (or in training mode, batch 2), or why it is no chain, and how it was
    traced; None where the encoder refuses every such input (a fixed-size encoder, whose replay cannot
    meet other sizes either)."""
    shape = chain.input_shape
    dtype = next((p.dtype for p in encoder.parameters() if p.is_floating_point()), torch.get_default_dtype())
    tries = [(max(2, shape[0]), *shape[1:])] if training else [
        (*shape[:2], *(n + offset for n in shape[2:])) for offset in _OTHER_SIZES]
    for other in tries:
        record = trace(encoder, torch.empty(other, dtype=dtype, device="meta"), fallback=False, training=training)
        if record.failure is None:
            how = "in training mode" if training else f"at {format_shape(other)}"
            try:
                return chain_of(record, encoder, output), how
            except (ShapeError, TypeError, ValueError) as error:
                return str(error).split(": ", 1)[-1].split(" A mirror replays")[0].rstrip("."), how
    return None


def _difference(traced: Chain, other: Chain | str) -> str | None:
    """The first step the two chains replay differently, in words; None when they agree."""
    if isinstance(other, str):
        return f"its steps are not a chain ({other})"
    for mine, theirs in zip(traced.steps, other.steps):
        if signature(mine.call, mine.input, mine.output) != signature(theirs.call, theirs.input, theirs.output):
            if mine.name != theirs.name:
                return f"it runs {theirs.describe()} where it ran {mine.describe()}"
            return f"{mine.describe()} is called with {_arguments(theirs)} instead of {_arguments(mine)}"
    if len(traced.steps) != len(other.steps):
        extra = other.steps[len(traced.steps):] or traced.steps[len(other.steps):]
        return f"it runs {len(other.steps)} steps instead of {len(traced.steps)} ({extra[0].describe()})"
    return None


def _arguments(step: Step) -> str:
    _, args, kwargs, _ = signature(step.call, step.input, step.output)
    shown = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs]
    return "(" + ", ".join(shown).replace("'<input>'", "·") + ")"


def check_replay(encoder: nn.Module, chain: Chain, output: Selector, who: str) -> None:
    """Raise when replaying ``chain`` would not be the encoder's forward at another size or in training.

    Raises:
        ShapeError: the forward passes sizes computed from the input as numbers, or runs other
            steps in training mode (the message names the step and what differs, and a fix).
    """
    for training in (False, True):
        found = _other(encoder, chain, output, training)
        if found is None:
            continue
        other, how = found
        difference = _difference(chain, other)
        if difference is None:
            continue
        traced = format_shape(chain.input_shape)
        if training:
            fix = ("put the training-only part in a module of its own, which is replayed whole with its own "
                   "training flag, or use MirrorDecoder")
        else:
            fix = ("compute it with a layer that takes any size (nn.AdaptiveAvgPool2d(1) for a global pool, "
                   "torch.flatten(x, 1) or x.view(x.size(0), -1) for a reshape), or use MirrorDecoder for one "
                   "input size")
        raise ShapeError(
            f"{who} replays {type(encoder).__name__}'s steps as they ran at {traced} in eval mode, but {how} "
            f"{difference}: the replay would not be the encoder's forward. Fix: {fix}."
        )
