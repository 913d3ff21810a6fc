"""Mirroring rules: which decoder layer undoes each encoder step, and where norms and activations go.

Steps that keep the tensor's shape (norms, activations, dropout, identity, shape-keeping custom
blocks) are *posts*: they belong to the shape-changing step before them. The decoder undoes
the shape-changing steps in reverse order; after undoing step ``t`` it stands at the shape the
encoder had after step ``t-1``, so it applies fresh copies of the posts the encoder applied
there. :func:`assemble` builds that sequence for MirrorDecoder and, with skips, for MirrorUNet.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Literal, cast

import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.pooling import (
    _AdaptiveAvgPoolNd,
    _AdaptiveMaxPoolNd,
    _AvgPoolNd,
    _LPPoolNd,
    _MaxPoolNd,
)

from ..core.arithmetic import output_padding_for, same_padding
from ..core.inversion import fit_transpose
from ..errors import ShapeError
from ..layers.resize import SkipAdd, SkipConcat, UnflattenTo, UpsampleTo
from ..layers.target import TargetConvTranspose1d, TargetConvTranspose2d, TargetConvTranspose3d
from .chain import Chain, Step, size_functions

__all__ = ["POOL_MIRRORS", "Entry", "Options", "PoolMirror", "assemble"]

PoolMirror = Literal["nearest", "linear", "conv"]
POOL_MIRRORS = ("nearest", "linear", "conv")
_POOLS = (_MaxPoolNd, _AvgPoolNd, _LPPoolNd)
_ADAPTIVE_POOLS = (_AdaptiveAvgPoolNd, _AdaptiveMaxPoolNd)
_MIRRORED = (_ConvNd, *_POOLS, *_ADAPTIVE_POOLS, nn.Linear, nn.Flatten)
_CONV_TRANSPOSE: dict[int, type[nn.Module]] = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_TARGET_SAME: dict[int, type[nn.Module]] = {1: TargetConvTranspose1d, 2: TargetConvTranspose2d,
                                            3: TargetConvTranspose3d}
_CONV: dict[int, type[nn.Module]] = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_LINEAR_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}


@dataclass(frozen=True)
class Options:
    """How to mirror: pooling by interpolation or a learned transposed conv; tied conv weights."""

    pool_mirror: PoolMirror
    tie_weights: bool
    device: torch.device | None
    dtype: torch.dtype | None

    @classmethod
    def for_encoder(cls, encoder: nn.Module, pool_mirror: object, tie_weights: object) -> Options:
        """Checked options; new layers get the device and dtype of the encoder's first parameter.

        Raises:
            TypeError: ``tie_weights`` is not a bool.
            ValueError: an unknown ``pool_mirror``.
        """
        if pool_mirror not in POOL_MIRRORS:
            raise ValueError(f"pool_mirror must be one of {POOL_MIRRORS}, got {pool_mirror!r}")
        if not isinstance(tie_weights, bool):
            raise TypeError(f"tie_weights must be a bool, got {tie_weights!r}")
        first = next(encoder.parameters(), None) if isinstance(encoder, nn.Module) else None
        device = None if first is None else first.device
        dtype = first.dtype if first is not None and first.is_floating_point() else None
        return cls(cast(PoolMirror, pool_mirror), tie_weights, device, dtype)

    @property
    def factory(self) -> dict[str, object]:
        return {"device": self.device, "dtype": self.dtype}


@dataclass(frozen=True)
class Entry:
    """One decoder layer and the encoder step whose recorded input it needs per call.

    ``sized_by``: the layer gets that step's input shape as ``output_size``.
    ``fuses``: the layer (a skip fusion) gets that step's input tensor as its second argument.
    """

    module: nn.Module
    sized_by: int | None = None
    fuses: int | None = None


@dataclass(frozen=True)
class _Group:
    index: int  # a shape-changing step
    posts: tuple[int, ...]  # the shape-keeping steps right after it


def is_post(step: Step) -> bool:
    """True for a step that keeps the shape and is not a layer with a mirror rule of its own."""
    return step.output_shape == step.input_shape and not _has_rule(step.module)


def _has_rule(module: nn.Module) -> bool:
    return isinstance(module, _MIRRORED) and not (isinstance(module, _ConvNd) and module.transposed)


def is_down(step: Step) -> bool:
    """True for a step that changes the scale: it maps a neighbouring input size to the same output size.

    That is a stride above 1 in some dimension (pooling, strided conv or block, adaptive pooling).
    A stride-1 size change, such as an unpadded conv's, is one-to-one: it is not a new scale.
    """
    if step.input_shape[2:] == step.output_shape[2:]:
        return False
    for size_of, n in zip(size_functions(step), step.input_shape[2:]):
        o = size_of(n)
        if o is not None and o in (size_of(n - 1), size_of(n + 1)):
            return True
    return False


def _groups(chain: Chain) -> list[_Group]:
    groups: list[tuple[int, list[int]]] = []
    for index, step in enumerate(chain.steps):
        if not is_post(step):
            groups.append((index, []))
        elif groups:
            groups[-1][1].append(index)
    return [_Group(index, tuple(posts)) for index, posts in groups]


def fresh_copy(module: nn.Module) -> nn.Module:
    """A deep copy with every submodule's parameters re-initialised (``reset_parameters``)."""
    clone = copy.deepcopy(module)
    for part in clone.modules():
        reset = getattr(part, "reset_parameters", None)
        if callable(reset):
            reset()
    return clone


@dataclass(frozen=True)
class _Mirror:
    layers: tuple[nn.Module, ...]  # the first one undoes the step
    sized: bool  # the first one takes the step's recorded input shape as output_size


def _conv(step: Step, cin: int, cout: int, options: Options, head: bool) -> _Mirror:
    conv = step.module
    assert isinstance(conv, _ConvNd)
    n = len(conv.kernel_size)
    k, s, d = conv.kernel_size, conv.stride, conv.dilation
    if isinstance(conv.padding, str):  # 'valid' is 0; 'same' (stride 1) pads d·(k-1), the odd one on the right
        p = tuple(same_padding(ki, di)[1] if conv.padding == "same" else 0 for ki, di in zip(k, d))
    else:
        p = tuple(conv.padding)
    dims = zip(step.input_shape[2:], step.output_shape[2:], k, s, p, d)
    output_padding = [output_padding_for(*dim) for dim in dims]
    groups = math.gcd(conv.groups, cin, cout)
    bias = conv.bias is not None or head  # an output head has no norm after it to stand in for a bias
    if None not in output_padding:
        layer = _CONV_TRANSPOSE[n](cin, cout, k, s, p, tuple(output_padding), groups, bias, d, **options.factory)
    else:  # an even kernel with padding='same' pads asymmetrically: no transposed conv undoes it with that kernel
        kernel = tuple(ki + (op is None) for ki, op in zip(k, output_padding))
        layer = _TARGET_SAME[n](cin, cout, kernel_size=kernel, stride=1, padding="same", dilation=d,
                                groups=groups, bias=bias, **options.factory)
    if options.tie_weights:
        _tie(layer, step)
    return _Mirror((layer,), any(si > 1 for si in s))


def _tie(layer: nn.Module, step: Step) -> None:
    assert isinstance(layer, _ConvNd) and isinstance(step.module, _ConvNd)
    weight = step.module.weight
    if layer.weight.shape != weight.shape:
        raise ShapeError(
            f"tie_weights cannot tie the mirror of {step.describe()}: the exact mirror {layer} needs a weight of "
            f"shape {tuple(layer.weight.shape)}, the encoder's is {tuple(weight.shape)} (torch's transposed "
            "conv has no asymmetric padding for padding='same' with an even kernel). Fix: give that conv an odd "
            "kernel or explicit padding, or pass tie_weights=False."
        )
    layer.weight = weight


def _fitted(step: Step, cin: int, cout: int, options: Options, why: str) -> _Mirror:
    """A transposed conv fitted by probing the step's size on meta tensors, exact for every input size."""
    rank = len(step.input_shape)
    fits = [fit_transpose(size_of, i) for size_of, i in zip(size_functions(step), step.input_shape[2:])]
    if rank != len(step.output_shape) or rank not in (3, 4, 5) or None in fits:
        raise ShapeError(
            f"cannot mirror {step.describe()}: {why}, and it maps {step.input_shape} to {step.output_shape}, "
            "which no transposed convolution undoes for every input size (it must keep the tensor's rank and "
            "shrink each size like a convolution). Fix: build that part from supported modules "
            "(convolutions, poolings, Linear, Flatten, norms, activations), or mirror it yourself."
        )
    k, s, p, op = (tuple(column) for column in zip(*fits))
    layer = _CONV_TRANSPOSE[rank - 2](cin, cout, k, s, p, op, **options.factory)
    return _Mirror((layer,), any(si > 1 for si in s))


def _interpolation(step: Step, cin: int, cout: int, options: Options) -> _Mirror:
    n = len(step.input_shape) - 2
    mode = _LINEAR_MODES[n] if options.pool_mirror == "linear" else "nearest"
    align = None if mode == "nearest" else False
    layers: tuple[nn.Module, ...] = (UpsampleTo(size=step.input_shape[2:], mode=mode, align_corners=align),)
    if cin != cout:
        layers += (_CONV[n](cin, cout, 1, **options.factory),)
    return _Mirror(layers, True)


def _mirror(step: Step, cin: int, cout: int, options: Options, head: bool = False) -> _Mirror:
    module = step.module
    if isinstance(module, _ConvNd) and not module.transposed:
        return _conv(step, cin, cout, options, head)
    if isinstance(module, _ADAPTIVE_POOLS) or (isinstance(module, _POOLS) and options.pool_mirror != "conv"):
        return _interpolation(step, cin, cout, options)
    if isinstance(module, _POOLS):
        return _fitted(step, cin, cout, options, "it is a pooling")
    if isinstance(module, nn.Linear):
        layer = nn.Linear(module.out_features, module.in_features, module.bias is not None, **options.factory)
        return _Mirror((layer,), False)
    if isinstance(module, nn.Flatten):
        rank = len(step.input_shape)
        start, end = module.start_dim % rank, module.end_dim % rank
        return _Mirror((UnflattenTo(start, step.input_shape[start:end + 1]),), True)
    return _fitted(step, cin, cout, options, step.opaque or "it has no mirror rule")


def _channels(shape: tuple[int, ...]) -> int:
    return shape[1] if len(shape) > 1 else shape[0]


def assemble(
    chain: Chain,
    options: Options,
    final_activation: nn.Module | None,
    *,
    skip: Literal["concat", "add"] | None = None,
    out_channels: int | None = None,
) -> list[Entry]:
    """The decoder of ``chain``: its shape-changing steps undone in reverse, posts copied.

    Without ``skip`` this is MirrorDecoder: channels reversed, output of the encoder's input
    shape. With ``skip`` (MirrorUNet) the decoder starts at the encoder's last size change (a
    size-keeping bottleneck block is not repeated), fuses the input of every change of scale
    (:func:`is_down`) right after undoing it, and ends at ``out_channels`` (a 1×1 conv head
    when the first step itself changes the scale).
    """
    groups = _groups(chain)
    steps = [chain.steps[g.index] for g in groups]
    downs = {t for t, step in enumerate(steps) if is_down(step)} if skip else set()
    resizing = [t for t, step in enumerate(steps) if step.input_shape[2:] != step.output_shape[2:]]
    start = max(resizing) if skip and resizing else len(groups) - 1  # a U-Net keeps the bottleneck's own block
    channels = _channels(chain.output_shape)
    entries: list[Entry] = []
    for t in range(start, -1, -1):
        step = chain.steps[groups[t].index]
        head = t == 0 and t not in downs and out_channels is not None
        target = out_channels if out_channels is not None and head else _channels(step.input_shape)
        mirror = _mirror(step, channels, target, options, head)
        entries.append(Entry(mirror.layers[0], groups[t].index if mirror.sized else None))
        entries += [Entry(layer) for layer in mirror.layers[1:]]
        entries += [Entry(fresh_copy(chain.steps[j].module)) for j in (groups[t - 1].posts if t else ())]
        channels = target
        if t in downs:
            entries.append(Entry(SkipConcat() if skip == "concat" else SkipAdd(), fuses=groups[t].index))
            channels *= 2 if skip == "concat" else 1
    if out_channels is not None and (not groups or 0 in downs):
        n = len(chain.input_shape) - 2
        entries.append(Entry(_CONV[n](channels, out_channels, 1, **options.factory)))
    if final_activation is not None:
        entries.append(Entry(final_activation))
    return entries

