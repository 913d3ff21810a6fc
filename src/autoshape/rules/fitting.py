"""Mirrors that undo a size change known only as a function: interpolation, or a fitted transposed conv."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from ..core.inversion import SizeFunction, fit_transpose
from ..errors import ShapeError
from ..layers.resize import UpsampleTo
from .registry import Mirror, MirrorRequest

__all__ = ["conv_1x1", "fitted", "interpolated"]

_CONV: dict[int, type[nn.Module]] = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_CONV_TRANSPOSE: dict[int, type[nn.Module]] = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_LINEAR_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}


def conv_1x1(request: MirrorRequest, in_channels: int, out_channels: int) -> nn.Module:
    """A 1×1 conv of the request's rank, on the encoder's device and dtype."""
    return _CONV[len(request.input_shape) - 2](in_channels, out_channels, 1, **request.options.factory)


def interpolated(request: MirrorRequest) -> Mirror:
    """Interpolation back to the step's recorded input size, then a 1×1 conv if channels change."""
    n = len(request.input_shape) - 2
    mode = _LINEAR_MODES[n] if request.options.pool_mirror == "linear" else "nearest"
    layers: tuple[nn.Module, ...] = (UpsampleTo(size=request.input_shape[2:], mode=mode,
                                                align_corners=None if mode == "nearest" else False),)
    if request.in_channels != request.out_channels:
        layers += (conv_1x1(request, request.in_channels, request.out_channels),)
    return Mirror(layers, sized=True)


def fitted(request: MirrorRequest, size_functions: Sequence[SizeFunction], why: str) -> Mirror:
    """A transposed conv whose ``output_padding`` range is exactly each output size's input interval,
    so it is exact at every input size given the recorded size (see :func:`fit_transpose`).

    Raises:
        ShapeError: the step does not shrink sizes like a convolution (``why`` says what it is).
    """
    rank = len(request.input_shape)
    fits = [fit_transpose(size_of, i) for size_of, i in zip(size_functions, request.input_shape[2:])]
    if rank != len(request.output_shape) or rank not in (3, 4, 5) or None in fits:
        raise ShapeError(
            f"cannot mirror {request.call.describe()}: {why}, and it maps {request.input_shape} to "
            f"{request.output_shape}, which no transposed convolution undoes for every input size (it must keep "
            "the tensor's rank and shrink each size like a convolution). Fix: build that part from layers "
            "autoshape mirrors (convolutions, poolings, padding, Linear, Flatten, norms, activations), or take it "
            "out of the encoder."
        )
    k, s, p, op = (tuple(column) for column in zip(*(fit for fit in fits if fit is not None)))
    layer = _CONV_TRANSPOSE[rank - 2](request.in_channels, request.out_channels, k, s, p, op, **request.options.factory)
    return Mirror((layer,), sized=any(si > 1 for si in s))
