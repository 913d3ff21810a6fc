"""A U-Net decoder on a backbone that returns a pyramid of feature maps, exact at every input size.

The feature maps are read from one traced record: ordered by resolution, finest first; among
maps of the same size the last one in the returned list (or dict) is kept, since backbones list
their maps in forward order and the later one is the deeper (HF ResNet returns its embedding
output and its first stage at 1/4, and the stage is kept). From the coarsest map
up, each stage upsamples to exactly the size of the next skip, per call, fuses it (concatenation
or sum) and applies two conv-norm-activation blocks; a last stage returns to the input's own size
when the finest map is smaller, and the head gives ``out_channels``.

Upsampling is a transposed conv whose kernel, stride and padding are fitted to the backbone's own
size rule between the two maps (composed from the record), so that its ``output_padding`` range
is exactly the sizes that map to each coarser size and ``output_size`` hits the skip at every
input size; or interpolation to the skip's size. Nothing is padded or cropped. The modules that run
per call, and check the maps at call time, are in :mod:`autoshape.mirror.pyramid_decoder`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from ..core.inversion import fit_transpose
from ..core.sizes import as_int
from ..core.text import format_shape
from ..errors import ShapeError
from ..rules import PoolMirror
from ..tracing import Record, Value
from .pyramid_decoder import FittedUp, InterpolatedUp, PyramidDecoder, Stage, Transposed
from .sizes import Composer, per_dimension

__all__ = ["Feature", "build_pyramid", "pyramid_features", "stage_widths"]

_CONV: dict[int, type[nn.Module]] = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_CONV_TRANSPOSE: dict[int, type[Transposed]] = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_NORM: dict[int, type[nn.Module]] = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_LINEAR_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}


@dataclass(frozen=True)
class Feature:
    """One feature map the backbone returns: where it sits in the return value, and its traced value."""

    key: int | str
    value: Value

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.shape

    @property
    def size(self) -> tuple[int, ...]:
        return self.value.shape[2:]


def pyramid_features(record: Record, found: list[tuple[int | str, Value]]) -> list[Feature]:
    """The skips, finest first, one per size (the last returned), checked to be feature maps.

    Raises:
        ShapeError: a feature is not ``(N, C, *spatial)`` with the input's batch and spatial rank, or
            holds integers (pooling indices, a mask) rather than features.
    """
    image = record.input.shape
    for key, value in found:
        if not value.floating:
            keys = [k for k, v in found if v.floating]
            pick = f"output={keys[0]!r}" if len(keys) == 1 else f"output=lambda out: [out[k] for k in {tuple(keys)!r}]"
            raise ShapeError(
                f"MirrorUNet needs feature maps of floating-point features, but feature {key!r} "
                f"({format_shape(value.shape)}) holds integers (pooling indices or a mask). Fix: pick only the "
                f"feature maps, {pick}.")
        if len(value.shape) != len(image) or value.shape[0] != image[0]:
            raise ShapeError(
                f"MirrorUNet needs feature maps (N, C, *spatial) like its input {format_shape(image)}, but feature "
                f"{key!r} has shape {format_shape(value.shape)}. Fix: pick only the spatial feature maps with "
                "output= (a callable can filter them), or use MirrorAutoencoder on a tensor output."
            )
    by_size = {value.shape[2:]: Feature(key, value) for key, value in found}  # a later map of a size wins
    return sorted(by_size.values(), key=lambda f: _volume(f.size), reverse=True)


def _volume(size: tuple[int, ...]) -> int:
    count = 1
    for n in size:
        count *= n
    return count


def _blocks(n: int, in_channels: int, out_channels: int, factory: dict[str, Any]) -> nn.Sequential:
    conv, norm = _CONV[n], _NORM[n]
    return nn.Sequential(conv(in_channels, out_channels, 3, padding=1, bias=False, **factory),
                         norm(out_channels, **factory), nn.ReLU(inplace=True),
                         conv(out_channels, out_channels, 3, padding=1, bias=False, **factory),
                         norm(out_channels, **factory), nn.ReLU(inplace=True))


def _up(composer: Composer, record: Record, fine: Value, coarse: Value, in_channels: int, out_channels: int,
        upsample: PoolMirror, factory: dict[str, Any]) -> FittedUp | InterpolatedUp:
    """A transposed conv fitted to the backbone's sizes from ``fine`` to ``coarse``; interpolation
    when asked for, or when that relation is not a convolution's."""
    n = len(fine.shape) - 2
    root = record.root
    sizes = None if upsample != "conv" or root is None else composer.between(root, fine, coarse)
    fits = [] if sizes is None else [fit_transpose(f, i) for f, i in zip(per_dimension(sizes, fine.shape[2:]),
                                                                      fine.shape[2:])]
    if sizes is None or sizes(fine.shape[2:]) != coarse.shape[2:] or None in fits:
        mode = _LINEAR_MODES[n] if upsample == "linear" else "nearest"
        return InterpolatedUp(mode, _CONV[n](in_channels, out_channels, 1) if in_channels != out_channels else
                              nn.Identity())
    k, s, p, op = (tuple(column) for column in zip(*(fit for fit in fits if fit is not None)))
    return FittedUp(_CONV_TRANSPOSE[n](in_channels, out_channels, k, s, p, op, **factory))


def _keeps_input_size(composer: Composer, record: Record, finest: Value) -> bool:
    """Whether the finest map has the input's size at every size (checked near the traced one)."""
    root, size = record.root, record.input.shape[2:]
    sizes = None if root is None else composer.between(root, record.input, finest)
    return sizes is not None and all(sizes(tuple(n + offset for n in size)) == tuple(n + offset for n in size)
                                     for offset in (0, 1, 2, 3))


def stage_widths(given: object, defaults: Sequence[int], full: bool) -> list[int]:
    """``decoder_channels`` as one width per stage, coarsest first: ``defaults`` for None, an int's
    value for every stage, or a sequence of one int per stage.

    Raises:
        TypeError: ``given`` is neither an int nor a sequence of ints.
        ValueError: a width below 1, or a sequence of another length than ``defaults``.
    """
    if given is None:
        return list(defaults)
    many = given if isinstance(given, Sequence) and not isinstance(given, (str, bytes)) else None
    stages = f"one per stage ({len(defaults)} here, coarsest first{', full resolution included' if full else ''})"
    told = (f"decoder_channels must be an int (the width of every stage) or a sequence of ints, {stages}, each at "
            f"least 1; got {given!r}. Fix: e.g. decoder_channels={defaults[0]} or decoder_channels={tuple(defaults)}.")
    try:
        widths = [as_int(width, "decoder_channels") for width in (many if many is not None else [given])]
    except TypeError:
        raise TypeError(told) from None
    except ValueError:
        raise ValueError(told) from None
    if many is not None and len(widths) != len(defaults):
        raise ValueError(told)
    return widths if many is not None else widths * len(defaults)


def build_pyramid(record: Record, features: Sequence[Feature], *, out_channels: int, skip: str,
                  decoder_channels: int | Sequence[int] | None, upsample: PoolMirror, factory: dict[str, Any],
                  final_activation: nn.Module | None) -> PyramidDecoder:
    """The decoder for ``features`` (finest first) of the traced backbone.

    Raises:
        TypeError, ValueError: a bad ``decoder_channels`` (see :func:`stage_widths`).
    """
    n = len(record.input.shape) - 2
    composer = Composer(record)
    full = not _keeps_input_size(composer, record, features[0].value)
    targets = [f.value for f in features[:-1]][::-1] + ([record.input] if full else [])
    widths = stage_widths(decoder_channels, [f.shape[1] for f in features[:-1]][::-1] +
                          ([features[0].shape[1]] if full else []), full)
    stages: list[Stage] = []
    channels, below = features[-1].shape[1], features[-1].value
    for target, width in zip(targets, widths):
        fused = target is not record.input
        skip_channels = target.shape[1] if fused else 0
        up_channels = skip_channels if fused and skip == "add" else width
        up = _up(composer, record, target, below, channels, up_channels, upsample, factory)
        into = up_channels + (skip_channels if fused and skip == "concat" else 0)
        stages.append(Stage(up, _blocks(n, into, width, factory), skip if fused else None))
        channels, below = width, target
    head: nn.Module = _CONV[n](channels, out_channels, 1, **factory)
    if final_activation is not None:
        head = nn.Sequential(head, final_activation)
    return PyramidDecoder(stages, head, [f.key for f in features], [f.shape for f in features], record.input.shape)
