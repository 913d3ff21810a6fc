"""Layers that resize by a fixed rule: interpolation, pixel (un)shuffle and padding.

Padding (``nn.ReflectionPad2d``, ``F.pad``, ...) is mirrored by the exact crop, a pad by the
negated amounts, with no parameters; ``PixelUnshuffle`` by ``PixelShuffle``; an interpolation
that shrinks (``F.interpolate(x, scale_factor=0.5)``) by interpolation back to the recorded size.
An encoder step that upsamples has no mirror.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn
from torch.nn import functional as F

from ..core.formulas import Term, pad_term, scale_term, shuffle_term, unshuffle_term
from ..core.text import format_shape
from ..errors import ShapeError
from ..layers.resize import Pad
from ..tracing import Call
from .fitting import conv_1x1, interpolated
from .registry import Mirror, MirrorRequest, Rule, Shape, arg

__all__ = ["RULES"]

def _rank_spatial(call: Call) -> int:
    shape = call.input_shape
    return 0 if shape is None else len(shape) - 2


def _per_dim(value: Any, n: int) -> Sequence[Any]:
    return value if isinstance(value, (tuple, list)) else (value,) * n


def _upsample_terms(call: Call, sizes: Shape, out: Shape | None) -> list[Term]:
    if call.kind == "module":
        size, scale = call.target.size, call.target.scale_factor
    else:
        size, scale = arg(call, 1, "size"), arg(call, 2, "scale_factor")
    if size is not None:
        return [Term("size", o) for o in _per_dim(size, len(sizes))]
    return [scale_term(i, f) for i, f in zip(sizes, _per_dim(scale, len(sizes)))]


def _factor(call: Call) -> int:
    if call.kind == "function":
        return int(arg(call, 1, "upscale_factor" if call.target is F.pixel_shuffle else "downscale_factor"))
    module = call.target
    return int(module.upscale_factor if isinstance(module, nn.PixelShuffle) else module.downscale_factor)


def _shuffle_terms(call: Call, sizes: Shape, out: Shape | None) -> list[Term]:
    return [shuffle_term(i, _factor(call)) for i in sizes]


def _unshuffle_terms(call: Call, sizes: Shape, out: Shape | None) -> list[Term]:
    return [unshuffle_term(i, _factor(call)) for i in sizes]


def _mirror_unshuffle(request: MirrorRequest) -> Mirror:
    r = _factor(request.call)
    layers: tuple[nn.Module, ...] = (nn.PixelShuffle(r),)
    if request.in_channels != request.out_channels * r * r:
        layers = (conv_1x1(request, request.in_channels, request.out_channels * r * r), *layers)
    return Mirror(layers)


def _pads(call: Call) -> tuple[int, ...]:
    """Torch's padding list: (left, right) of the last dimension first, then of the one before."""
    return tuple(call.target.padding if call.kind == "module" else arg(call, 1, "pad"))


def _pad_ndim(call: Call) -> int:
    return len(_pads(call)) // 2


def _pad_terms(call: Call, sizes: Shape, out: Shape | None) -> list[Term]:
    pads = _pads(call)
    pairs = list(zip(pads[::2], pads[1::2]))[::-1]
    return [pad_term(i, before, after) for i, (before, after) in zip(sizes, pairs)]


def _mirror_pad(request: MirrorRequest) -> Mirror:
    pads = _pads(request.call)
    if len(pads) // 2 >= len(request.input_shape):
        raise ShapeError(f"cannot mirror {request.call.describe()}: it pads the batch dimension. Fix: pad only the "
                         "channel and spatial dimensions.")
    crop: tuple[nn.Module, ...] = (Pad(tuple(-p for p in pads)),)
    padded_channels = request.output_shape[1] - request.input_shape[1]  # F.pad may reach the channels
    if request.in_channels - padded_channels != request.out_channels:
        crop += (conv_1x1(request, request.in_channels - padded_channels, request.out_channels),)
    return Mirror(crop)


def _padding_modules() -> tuple[type[nn.Module], ...]:
    kinds = ("ConstantPad", "ZeroPad", "ReflectionPad", "ReplicationPad", "CircularPad")
    return tuple(getattr(nn, f"{kind}{n}d") for kind in kinds for n in (1, 2, 3) if hasattr(nn, f"{kind}{n}d"))


def _mirror_resize(request: MirrorRequest) -> Mirror:
    """Interpolation back to the recorded size, for an interpolation that shrinks; none for one that grows."""
    shrinks = all(o <= i for i, o in zip(request.input_shape[2:], request.output_shape[2:]))
    if not shrinks:
        raise ShapeError(
            f"cannot mirror {request.call.describe()}: it upsamples {format_shape(request.input_shape)} to "
            f"{format_shape(request.output_shape)}, and a mirror undoes steps that shrink sizes. Fix: take the "
            "upsampling out of the encoder, or shrink with it (a scale below 1 is mirrored by interpolation)."
        )
    return interpolated(request)


RULES = (
    Rule("interpolation", modules=(nn.Upsample,), functions=(F.interpolate, F.upsample), ndim=_rank_spatial,
         terms=_upsample_terms, mirror=_mirror_resize, scales=True),
    Rule("pixel shuffle", modules=(nn.PixelShuffle,), functions=(F.pixel_shuffle,), ndim=lambda call: 2,
         terms=_shuffle_terms),
    Rule("pixel unshuffle", modules=(nn.PixelUnshuffle,), functions=(F.pixel_unshuffle,), ndim=lambda call: 2,
         terms=_unshuffle_terms, mirror=_mirror_unshuffle, scales=True),
    Rule("padding", modules=_padding_modules(), functions=(F.pad,), ndim=_pad_ndim, terms=_pad_terms,
         mirror=_mirror_pad),
)
