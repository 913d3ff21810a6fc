"""A U-Net grown from any convolutional encoder, whose skips line up exactly at every input size."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

from torch import Tensor, nn

from ..core.sizes import as_int
from ..errors import ShapeError
from ..rules import Options, PoolMirror, rule_for
from ..tracing import Selector, pick, select_all
from .assemble import assemble, channels_of
from .chain import Chain, Step, chain_of, check_activation, picked, replays, trace_encoder, wrong_rank
from .faithful import check_replay
from .pyramid import build_pyramid, pyramid_features
from .pyramid_decoder import PyramidDecoder

__all__ = ["MirrorUNet"]


def _check_convolutional(encoder: nn.Module, chain: Chain) -> None:
    for step in chain.steps:
        keeps_rank = len(step.input_shape) == len(step.output_shape) >= 3
        rule = rule_for(step.call)
        if not keeps_rank or (rule is not None and not rule.spatial):
            raise ShapeError(
                f"MirrorUNet needs a fully convolutional encoder, one whose every step keeps (N, C, *spatial) "
                f"and mixes channels only; {step.describe()} maps {step.input_shape} to {step.output_shape}. "
                f"Fix: {_convolutional_part(encoder, step, step is chain.steps[0])}, or use MirrorAutoencoder for an "
                "encoder that flattens."
            )


def _convolutional_part(encoder: nn.Module, step: Step, first: bool) -> str:
    """``pass encoder[:6]``: the slice of a Sequential before the step that is not convolutional; for a first
    step that only reshapes the input (an ``nn.Unflatten`` front on raw audio), the rest after it."""
    head = step.call.path.split(".")[0]
    sequential = isinstance(encoder, nn.Sequential) and head.isdigit()
    if first and math.prod(step.input_shape) == math.prod(step.output_shape):
        rest = f"encoder[{int(head) + 1}:]" if sequential else "the encoder's steps after it"
        return (f"pass the rest, {rest}, with input_shape={tuple(step.output_shape[1:])}, and give it inputs "
                f"reshaped as {step.describe()} does")
    if sequential and int(head) > 0:
        return f"pass only its convolutional part, encoder[:{head}]"
    return f"pass only the part of the encoder before {step.describe()}"


class MirrorUNet(nn.Module):
    """A U-Net from ``encoder``: each up step hits the skip's size exactly, no padding or cropping.

    **An encoder that returns one tensor** is traced on meta tensors as in :class:`MirrorDecoder`
    and split into stages at every change of scale: a step with a stride above 1 (a pooling, a
    strided conv or residual block, an adaptive pooling). The decoder starts at the deepest stage
    (its size-keeping bottleneck block is not repeated) and goes up one stage at a time: the up
    step, the mirror of the step that went down, hits exactly the size the encoder had there for
    the current input; the skip (that step's input) is fused by ``'concat'`` or ``'add'``; the
    conv block mirrored from that stage follows, with norms and activations placed as the encoder
    had them. Stride-1 size changes (unpadded convs) stay inside their stage, and their mirrors
    give the lost pixels back. The mirror of the encoder's first conv gives ``out_channels``
    (with a bias). When the first step itself changes the scale (a strided stem), its mirror
    keeps the first stage's width, the input is concatenated, and a 3×3 conv block at that width
    and a 1×1 head follow. Then ``final_activation``.

    **A backbone that returns several feature maps** (a list, a tuple or a dict, or what
    ``output=`` picks, such as an HF model's ``"hidden_states"``) gets a U-Net decoder on its
    pyramid. The maps are ordered by resolution, finest first; of maps with the same size the last
    one returned is kept (backbones return maps in forward order, so it is the deepest). From the
    coarsest map up, each stage upsamples to exactly the next skip's size, per call, fuses the
    skip, and applies two conv-batchnorm-ReLU blocks; a last stage returns to the input's size
    when the finest map is smaller (without a skip), and a 1×1 head gives ``out_channels``. The
    backbone runs its own forward; nothing is replayed.

    Nothing is padded, cropped or resized to force alignment, in either case.

    Args:
        encoder: a fully convolutional encoder (convolutions, poolings, norms, activations,
            functional calls, nested Sequentials and custom chains, residual blocks as units), or a
            backbone returning feature maps. It is kept as ``.encoder``.
        input_shape: a shape to trace with: one sample ``(C, *spatial)``, a batch, or a tensor.
        out_channels: channels of the output, at the input's resolution.
        skip: ``'concat'`` (default; channels add up, the next conv takes both) or ``'add'``.
        final_activation: a module applied to the output. Default none.
        pool_mirror: how the decoder goes up a scale: ``'conv'`` (default: a learned transposed
            conv, as U-Net's up-convolution, fitted to be exact at every size), ``'nearest'`` or
            ``'linear'`` (interpolation to the exact size, with a 1×1 conv where the channels must
            change). Adaptive pooling is always interpolated.
        output: what to read from the encoder's return value (see :class:`MirrorDecoder`): one
            tensor for a mirrored U-Net, or a list, tuple or dict of feature maps for a pyramid.
        decoder_channels: the widths of the pyramid decoder's stages: an int, the width of every
            stage, or a sequence of ints, one per stage, coarsest first, the full-resolution stage
            included. Default: each stage as wide as the skip it fuses, the full-resolution stage
            as the finest map. Only for a pyramid.

    Attributes:
        encoder: the given encoder.
        decoder: the decoder: its layers in order (skip fusions included), an ``nn.ModuleList``;
            for a pyramid, its stages and head.
        encoder_steps: dotted paths of the encoder steps replayed, in order, by ``forward``
            (empty for a pyramid: the backbone runs its own forward).
        features: the keys (indices or names) of the feature maps used as skips, finest first
            (empty for an encoder that returns one tensor).

    Shape:
        Input ``(N, C, *spatial)`` of any size the encoder accepts; output ``(N, out_channels,
        *spatial)``. Each up step restores the size it is given per call: a stride-``s`` step maps
        ``s`` sizes to each output size, and its up step reaches all of them,
        ``out = (in-1)·stride - 2·padding + dilation·(kernel_size-1) + output_padding + 1``,
        with ``output_padding = target size - (out with output_padding 0)``, in ``[0, stride)``.

    Examples:
        >>> import torch
        >>> def block(cin, cout):
        ...     return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]
        >>> encoder = nn.Sequential(*block(3, 16), nn.MaxPool2d(2), *block(16, 32), nn.MaxPool2d(2), *block(32, 64))
        >>> unet = MirrorUNet(encoder, (3, 101, 67), out_channels=2)
        >>> unet(torch.randn(1, 3, 101, 67)).shape
        torch.Size([1, 2, 101, 67])
        >>> unet(torch.randn(1, 3, 64, 33)).shape
        torch.Size([1, 2, 64, 33])

    Raises:
        TypeError: ``encoder`` or ``final_activation`` is not a module; ``out_channels`` is not an
            int; ``decoder_channels`` is neither an int nor a sequence of ints; the encoder returns
            no tensor ``output`` picks.
        ValueError: a bad ``input_shape``, ``skip``, ``pool_mirror`` or ``output``;
            ``decoder_channels`` not one width per stage, or given for an encoder that returns one
            tensor; ``out_channels`` or a width below 1.
        ShapeError: the encoder is not fully convolutional, a part cannot be mirrored exactly, or a
            feature map is not ``(N, C, *spatial)`` (the message names it and what to do); in
            ``forward``, the backbone returns maps that do not fit the pyramid decoder built (a map
            missing, with other channels, or of a size no up step reaches or not the input's), or the
            encoder's own forward fails on ``input_shape``.
    """

    def __init__(
        self,
        encoder: nn.Module,
        input_shape: Sequence[int] | Tensor,
        *,
        out_channels: int,
        skip: Literal["concat", "add"] = "concat",
        final_activation: nn.Module | None = None,
        pool_mirror: PoolMirror = "conv",
        output: Selector = None,
        decoder_channels: int | Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        out_channels = as_int(out_channels, "out_channels")
        if skip not in ("concat", "add"):
            raise ValueError(f"skip must be 'concat' or 'add', got {skip!r}")
        check_activation(final_activation)
        options = Options.for_encoder(encoder, pool_mirror, tie_weights=False)
        record = trace_encoder(encoder, input_shape)
        found = picked(record, encoder, output, select_all, "a tensor or feature maps")
        self.encoder = encoder
        self._traced = record.input.shape
        self.decoder: PyramidDecoder | nn.ModuleList
        self._output = output
        self.features: tuple[int | str, ...] = ()
        self.encoder_steps: tuple[str, ...] = ()
        if found is not None and output is None and _is_model_output(record.raw_output):
            raise ValueError(
                f"{type(encoder).__name__} returns a model output with {', '.join(map(repr, record.raw_output))}, "
                "not a list of feature maps. Fix: pick them with output='hidden_states' (HF: built with "
                "output_hidden_states=True), or one map with output='last_hidden_state' for a mirrored U-Net."
            )
        if found is not None:
            features = pyramid_features(record, found)
            self.features = tuple(f.key for f in features)
            self.decoder = build_pyramid(record, features, out_channels=out_channels, skip=skip,
                                         decoder_channels=decoder_channels, upsample=options.pool_mirror,
                                         factory=options.factory, final_activation=final_activation)
            return
        if decoder_channels is not None:
            raise ValueError("decoder_channels sets the widths of a pyramid decoder: give it for an encoder that "
                             "returns several feature maps; a mirrored U-Net takes the encoder's own widths")
        chain = chain_of(record, encoder, output)
        _check_convolutional(encoder, chain)
        check_replay(encoder, chain, output, "MirrorUNet")
        entries = assemble(record, chain.steps, options, in_channels=channels_of(chain.output_shape),
                           out_channels=out_channels, final_activation=final_activation, skip=skip, head=True)
        self.decoder = nn.ModuleList(entry.module for entry in entries)
        self.encoder_steps = tuple(step.name for step in chain.steps)
        self._steps = replays(chain, encoder)  # the encoder's own modules and calls, owned by .encoder
        fused = {entry.fuses for entry in entries}
        self._keeps = tuple(index in fused for index in range(len(chain.steps)))
        self._sized_by = tuple(entry.sized_by for entry in entries)
        self._fuses = tuple(entry.fuses for entry in entries)

    def forward(self, x: Tensor) -> Tensor:
        """Encode, keeping the skips and every size; decode, fusing each skip at exactly its size."""
        if x.dim() != len(self._traced):
            raise wrong_rank(self, x, self._traced)
        if isinstance(self.decoder, PyramidDecoder):
            out: Tensor = self.decoder(pick(self.encoder(x), self._output), x.shape)
            return out
        sizes, skips = [], {}
        for index, (step, keep) in enumerate(zip(self._steps, self._keeps)):
            sizes.append(x.shape)
            if keep:
                skips[index] = x
            x = step(x)
        for layer, sized_by, fuses in zip(self.decoder, self._sized_by, self._fuses):
            if fuses is not None:
                x = layer(x, skips[fuses])
            elif sized_by is not None:
                x = layer(x, sizes[sized_by])
            else:
                x = layer(x)
        return x


def _is_model_output(returned: object) -> bool:
    """An HF ``ModelOutput`` (a mapping with a ``last_hidden_state``), whose maps ``output=`` must pick."""
    return isinstance(returned, Mapping) and "last_hidden_state" in returned
