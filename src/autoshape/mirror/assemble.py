"""Mirroring a chain: which decoder layer undoes each step, and where norms and activations go.

Steps that keep the tensor's shape (norms, activations, dropout, identity, shape-keeping units)
are *posts*: they belong to the shape-changing step before them. The decoder undoes the
shape-changing steps in reverse order; after undoing step ``t`` it stands at the shape the
encoder had after step ``t-1``, so it applies fresh copies of the posts the encoder applied
there. What undoes each step comes from the registry of layer rules (:mod:`autoshape.rules`);
a unit (a module without a rule) is mirrored by :mod:`autoshape.mirror.units`.
:func:`assemble` builds that sequence for MirrorDecoder and, with skips, for MirrorUNet.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from torch import nn

from ..core.text import format_shape
from ..errors import ShapeError
from ..layers.blocks import Applied
from ..layers.resize import SkipAdd, SkipConcat
from ..rules import Mirror, MirrorRequest, Options, rule_for
from ..tracing import Call, Record, Value
from .chain import Step
from .sizes import is_down
from .units import Entry, fits, mirror_unit, unit_posts

__all__ = ["Entry", "assemble", "channels_of", "copy_call", "fresh_copy", "is_post"]


def channels_of(shape: tuple[int, ...]) -> int:
    """The channel count of a shape: dimension 1, or 0 for a shape without a batch."""
    return shape[1] if len(shape) > 1 else shape[0]


@dataclass(frozen=True)
class _Group:
    index: int  # a shape-changing step
    posts: tuple[Call, ...]  # what the encoder applied at its output: a unit's own, then the steps after it


def is_post(step: Step) -> bool:
    """True for a step that keeps the shape and is not a layer with a mirror of its own."""
    if step.output_shape != step.input_shape:
        return False
    rule = rule_for(step.call) if step.opaque is None else None
    return rule is None or rule.keeps_shape or rule.mirror is None


def _is_unit(step: Step) -> bool:
    return step.call.module is not None and (step.opaque is not None or rule_for(step.call) is None)


def _groups(record: Record, steps: Sequence[Step]) -> list[_Group]:
    groups: list[tuple[int, list[Call]]] = []
    for index, step in enumerate(steps):
        if not is_post(step):
            groups.append((index, unit_posts(record, step) if _is_unit(step) else []))
        elif groups:
            groups[-1][1].append(step.call)
    return [_Group(index, tuple(posts)) for index, posts in groups]


def fresh_copy(module: nn.Module) -> nn.Module:
    """A deep copy with every submodule's parameters re-initialised (``reset_parameters``)."""
    clone = copy.deepcopy(module)
    for part in clone.modules():
        reset = getattr(part, "reset_parameters", None)
        if callable(reset):
            reset()
    return clone


_NO_OPTIONS = Options("nearest", False, None, None)


def copy_call(call: Call) -> tuple[nn.Module, ...]:
    """What a decoder applies for a shape-keeping call: a fresh copy of a module, the module twin of a
    functional activation (``F.relu`` → ``nn.ReLU()``), the same module or torch call with the same
    fixed extra arguments, or nothing for a torch call that reads the encoder's parameters
    (``x * self.gamma``: a learned scale, not an activation)."""
    rule = rule_for(call) if call.module is None else None
    if rule is not None and rule.keeps_shape and rule.mirror is not None:
        shape = call.input_shape or ()
        return rule.mirror(MirrorRequest(call, shape, shape, 0, 0, _NO_OPTIONS)).layers
    if call.module is None and any(not v.data for v in call.inputs):
        return ()
    target = fresh_copy(call.module) if call.module is not None else call.target
    if len(call.args) == 1 and isinstance(call.args[0], Value) and not call.kwargs and call.module is not None:
        return (target,)
    positional = next((n for n, a in enumerate(call.args) if isinstance(a, Value)), None)
    keyword = next((k for k, a in call.kwargs.items() if isinstance(a, Value)), None)
    input_at = positional if positional is not None else keyword
    constants = [a for a in (*call.args, *call.kwargs.values()) if isinstance(a, Value) and not a.data]
    if input_at is None or constants:
        return ()
    return (Applied(target, call.args, dict(call.kwargs), input_at, call.name),)


def _mirror(record: Record, step: Step, request: MirrorRequest) -> Mirror:
    rule = rule_for(step.call) if step.opaque is None else None
    if rule is not None and rule.mirror is not None:
        return rule.mirror(request)
    if rule is not None or step.call.kind == "function":
        what = (f"{'an' if rule.name[0] in 'aeiou' else 'a'} {rule.name}" if rule is not None
                else f"{step.call.name}, which autoshape has no mirror for")
        raise ShapeError(
            f"cannot mirror {step.describe()}: it is {what}, and it maps {format_shape(step.input_shape)} to "
            f"{format_shape(step.output_shape)}. Fix: change sizes with a layer that has a mirror (a convolution, "
            "a pooling, padding, Flatten or a reshape), or move this part out of the encoder."
        )
    return mirror_unit(record, step, request, _decode)


def _decode(record: Record, steps: Sequence[Step], request: MirrorRequest) -> list[Entry]:
    return assemble(record, steps, request.options, in_channels=request.in_channels,
                    out_channels=request.out_channels)


def assemble(
    record: Record,
    steps: Sequence[Step],
    options: Options,
    *,
    in_channels: int,
    out_channels: int,
    final_activation: nn.Module | None = None,
    skip: Literal["concat", "add"] | None = None,
    head: bool = False,
) -> list[Entry]:
    """The decoder of ``steps``: the shape-changing ones undone in reverse, posts copied, from
    ``in_channels`` (at the last step's output) back to ``out_channels`` (at the first's input).

    Without ``skip`` this is MirrorDecoder. With ``skip`` (MirrorUNet) the decoder starts at the
    last size change (a size-keeping bottleneck block is not repeated), fuses the input of every
    change of scale (:func:`is_down`) right after undoing it, and ``head`` makes the last mirror the
    output layer. When the first step itself changes the scale, its mirror keeps that step's width,
    the input is fused by concatenation, and a full-resolution conv block and a 1×1 head follow.
    """
    groups = _groups(record, steps)
    shapes = [steps[g.index] for g in groups]
    downs = {t for t, step in enumerate(shapes) if is_down(step, record)} if skip else set()
    resizing = [t for t, step in enumerate(shapes) if step.input_shape[2:] != step.output_shape[2:]]
    start = max(resizing) if skip and resizing else len(groups) - 1  # a U-Net keeps the bottleneck's own block
    channels, entries = in_channels, []
    for t in range(start, -1, -1):
        step = steps[groups[t].index]
        last = t == 0 and (not skip or t not in downs)
        target = out_channels if last else channels_of(step.input_shape)
        if t == 0 and skip and t in downs:
            target = channels_of(step.output_shape)  # the full-resolution stage keeps the first stage's width
        request = MirrorRequest(step.call, step.input_shape, step.output_shape, channels, target, options,
                                head and last)
        mirror = _mirror(record, step, request)
        entries.append(Entry(mirror.layers[0], groups[t].index if mirror.sized else None))
        entries += [Entry(layer) for layer in mirror.layers[1:]]
        entries += [Entry(layer) for call in (groups[t - 1].posts if t else ()) for layer in copy_call(call)]
        channels = target
        if t in downs:
            concat = skip == "concat" or t == 0  # the input image's channels differ from the first stage's
            entries.append(Entry(SkipConcat() if concat else SkipAdd(), fuses=groups[t].index))
            channels += channels_of(step.input_shape) if concat else 0
    if skip and groups and 0 in downs:
        entries += _full_resolution(steps, groups[0], channels, out_channels, options)
    elif skip and not groups:  # nothing changes the shape: the head alone
        entries.append(Entry(_conv(len(steps[0].input_shape) - 2, channels, out_channels, 1, options)))
    if final_activation is not None:
        entries.append(Entry(final_activation))
    return entries


def _full_resolution(steps: Sequence[Step], first: _Group, channels: int, out_channels: int,
                     options: Options) -> list[Entry]:
    """After the input is fused: a 3×3 conv back to the first stage's width, that stage's norm and
    activation where they fit, and the 1×1 head."""
    step = steps[first.index]
    n = len(step.input_shape) - 2
    width = channels_of(step.output_shape)
    at_full = (*step.input_shape[:1], width, *step.input_shape[2:])
    posts = [layer for call in first.posts for layer in copy_call(call) if fits(layer, at_full)]
    return [Entry(_conv(n, channels, width, 3, options)), *(Entry(layer) for layer in posts),
            Entry(_conv(n, width, out_channels, 1, options))]


def _conv(n: int, in_channels: int, out_channels: int, kernel_size: int, options: Options) -> nn.Module:
    """A new n-d conv that keeps the size (padding ``kernel_size // 2``)."""
    conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[n]
    return conv(in_channels, out_channels, kernel_size, padding=kernel_size // 2, **options.factory)
