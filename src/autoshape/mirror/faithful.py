"""Checking that replaying an encoder's steps is its forward, at other input sizes and in training.

MirrorAutoencoder and MirrorUNet run the encoder step by step, with the arguments recorded at the
traced size in eval mode. That is the encoder's own forward only if its forward does not compute
arguments from the input's size (``F.avg_pool2d(x, x.shape[2:])``, a block called with
``height, width``), branch on the input's size (``if x.shape[-1] > 40``) or branch on
``self.training`` between steps (noise added in training). These are found by tracing the encoder
again on meta tensors, at about twice the traced size (of the other parity) and in training mode,
and comparing how each step would be replayed; a difference is a ``ShapeError``, never a silently
different encoder. A branch on the size that flips only outside the traced size and about twice it
is not seen (README's limits table says so).
"""

from __future__ import annotations

import torch
from torch import nn

from ..core.text import format_shape
from ..errors import ShapeError
from ..rules import rule_for
from ..tracing import Selector, trace
from .chain import Break, Chain, Step, chain_of
from .replay import signature

__all__ = ["check_replay"]

_NEIGHBOURS = (1, 2)
"""Offsets added to every spatial size, for an encoder that refuses the far size."""

_ARGUMENT_FIX = ("compute it with a layer that takes any size (nn.AdaptiveAvgPool2d(1) for a global pool, "
                 "torch.flatten(x, 1) or x.view(x.size(0), -1) for a reshape), or use MirrorDecoder for one input size")
_PAD_FIX = ("pad inputs before the encoder rather than inside it (a padding of fixed amounts replays at every size), "
            "or use MirrorDecoder for one input size")
_BRANCH_FIX = ("make the forward run the same steps at every input size (resize inputs before the encoder rather "
               "than inside it), or use MirrorDecoder for one input size")
_TRAINING_FIX = ("put the training-only part in a module of its own, which is replayed whole with its own training "
                 "flag, or use MirrorDecoder")

Shape = tuple[int, ...]


def _tries(shape: Shape) -> list[tuple[list[tuple[Shape, bool]], bool]]:
    """The other traces, each as the shapes to try in turn, each with whether a forward that is no chain
    there counts as a difference, and whether in training mode.

    The far size has the other parity than the traced one, about twice it (``2n + 1`` for an even
    ``n``, ``2n`` for an odd one): an argument computed from the size, a padding that depends on its
    parity and a branch on a threshold between the two all differ there, at the cost of one trace.
    There only a chain of other steps counts: an MLP's ``x.view(-1, 784)`` runs at 56×56 as well, on
    another batch, and that size is not the encoder's. Where it is refused, a neighbouring size. Then
    the traced size in training mode (with a batch of 2, which batch norms need).
    """
    far = (*shape[:2], *(2 * n + 1 - n % 2 for n in shape[2:]))
    neighbours = [((*shape[:2], *(n + offset for n in shape[2:])), True) for offset in _NEIGHBOURS]
    return [([(far, False), *neighbours], False), ([((max(2, shape[0]), *shape[1:]), True)], True)]


def _other(encoder: nn.Module, output: Selector, shapes: list[tuple[Shape, bool]],
           training: bool) -> tuple[Chain | str, str] | None:
    """The chain for the first of ``shapes`` the encoder accepts, or why it is no chain, and how it was
    traced; None where the encoder refuses them all (a fixed-size encoder, whose replay cannot meet
    those sizes either)."""
    dtype = next((p.dtype for p in encoder.parameters() if p.is_floating_point()), torch.get_default_dtype())
    for other, whole in shapes:
        record = trace(encoder, torch.empty(other, dtype=dtype, device="meta"), fallback=False, training=training)
        if record.failure is not None:
            continue
        how = "in training mode" if training else f"at {format_shape(other)}"
        try:
            return chain_of(record, encoder, output), how
        except (ShapeError, TypeError, ValueError) as error:
            if whole:
                return str(error).split(": ", 1)[-1].split(" A mirror replays")[0].rstrip("."), how
    return None


def _difference(traced: Chain, other: Chain | str, training: bool) -> Break | None:
    """The first step the two chains replay differently, in words, and its fix; None when they agree."""
    steps_fix = _TRAINING_FIX if training else _BRANCH_FIX
    if isinstance(other, str):
        return Break(f"its steps are not a chain ({other})", steps_fix)
    for mine, theirs in zip(traced.steps, other.steps):
        if signature(mine.call, mine.input, mine.output) != signature(theirs.call, theirs.input, theirs.output):
            if mine.name != theirs.name:
                return Break(f"it runs {theirs.describe()} where it ran {mine.describe()}", steps_fix)
            rule = rule_for(mine.call)
            padding = rule is not None and rule.name == "padding"
            return Break(f"{mine.describe()} is called with {_arguments(theirs)} instead of {_arguments(mine)}",
                         _TRAINING_FIX if training else _PAD_FIX if padding else _ARGUMENT_FIX)
    if len(traced.steps) != len(other.steps):
        extra = other.steps[len(traced.steps):] or traced.steps[len(other.steps):]
        return Break(f"it runs {len(other.steps)} steps instead of {len(traced.steps)} ({extra[0].describe()})",
                     steps_fix)
    return None


def _arguments(step: Step) -> str:
    _, args, kwargs, _ = signature(step.call, step.input, step.output)
    shown = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs]
    return "(" + ", ".join(shown).replace("'<input>'", "·") + ")"


def check_replay(encoder: nn.Module, chain: Chain, output: Selector, who: str) -> None:
    """Raise when replaying ``chain`` would not be the encoder's forward at another size or in training.

    Raises:
        ShapeError: the forward passes sizes computed from the input as numbers, runs other steps
            at about twice the traced size, or runs other steps in training mode (the message names
            the step and what differs, and a fix).
    """
    for shapes, training in _tries(chain.input_shape):
        found = _other(encoder, output, shapes, training)
        difference = None if found is None else _difference(chain, found[0], training)
        if found is None or difference is None:
            continue
        raise ShapeError(
            f"{who} replays {type(encoder).__name__}'s steps as they ran at {format_shape(chain.input_shape)} in "
            f"eval mode, but {found[1]} {difference}: the replay would not be the encoder's forward. "
            f"Fix: {difference.fix}."
        )
