"""The few layers a mirror needs beyond torch's own: resizing and reshaping to a size given per
call, permutations, and U-Net skip fusions.

The resizing ones take the recorded shape of the encoder step they undo as ``output_size`` (a
full shape, batch and channels included, like ``ConvTranspose2d.forward``) and fall back to the
traced shape without it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..errors import ShapeError

__all__ = ["Pad", "PadTo", "Permute", "ReshapeTo", "SkipAdd", "SkipConcat", "UnflattenTo", "UpsampleTo"]


class UpsampleTo(nn.Upsample):
    """``nn.Upsample`` to a fixed size, or to the spatial part of ``output_size`` when given."""

    def forward(self, input: Tensor, output_size: Sequence[int] | None = None) -> Tensor:
        size = self.size if output_size is None else tuple(output_size[2:])
        return F.interpolate(input, size=size, mode=self.mode, align_corners=self.align_corners)


class UnflattenTo(nn.Unflatten):
    """``nn.Unflatten`` to fixed sizes, or to those ``output_size`` has at the unflattened dims."""

    def forward(self, input: Tensor, output_size: Sequence[int] | None = None) -> Tensor:
        if output_size is None:
            return super().forward(input)
        dim = int(self.dim)
        return torch.unflatten(input, dim, tuple(output_size[dim:dim + len(self.unflattened_size)]))


class ReshapeTo(nn.Module):
    """Reshape each sample to ``shape[1:]`` (a full shape, batch included), or to ``output_size[1:]`` when given."""

    def __init__(self, shape: Sequence[int]) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, input: Tensor, output_size: Sequence[int] | None = None) -> Tensor:
        target = self.shape if output_size is None else output_size
        return input.reshape(input.shape[0], *target[1:])

    def extra_repr(self) -> str:
        return f"shape={self.shape}"


class Pad(nn.Module):
    """``F.pad(input, padding)``: negative amounts crop, as the mirror of a padding layer or ``F.pad``."""

    def __init__(self, padding: Sequence[int]) -> None:
        super().__init__()
        self.padding = tuple(padding)

    def forward(self, input: Tensor) -> Tensor:
        return F.pad(input, self.padding)

    def extra_repr(self) -> str:
        return f"padding={self.padding}"


class PadTo(nn.Module):
    """Zero-pad back what a slice cut: ``front`` entries before each dimension, and after it up to
    ``shape`` (a full shape, batch included), or up to ``output_size`` when given."""

    def __init__(self, front: Sequence[int], shape: Sequence[int]) -> None:
        super().__init__()
        self.front = tuple(front)
        self.shape = tuple(shape)

    def forward(self, input: Tensor, output_size: Sequence[int] | None = None) -> Tensor:
        target = self.shape if output_size is None else tuple(output_size)
        pads: list[int] = []
        for dim in range(input.dim() - 1, 0, -1):
            pads += [self.front[dim], target[dim] - input.shape[dim] - self.front[dim]]
        return F.pad(input, pads)

    def extra_repr(self) -> str:
        return f"front={self.front}, shape={self.shape}"


class Permute(nn.Module):
    """``input.permute(dims)``: the inverse of an encoder's permute or transpose."""

    def __init__(self, dims: Sequence[int]) -> None:
        super().__init__()
        self.dims = tuple(dims)

    def forward(self, input: Tensor) -> Tensor:
        return input.permute(self.dims)

    def extra_repr(self) -> str:
        return f"dims={self.dims}"


class SkipConcat(nn.Module):
    """Fuse a U-Net skip by concatenating it after the upsampled features, along channels."""

    def forward(self, input: Tensor, skip: Tensor) -> Tensor:
        return torch.cat([input, skip], dim=1)


class SkipAdd(nn.Module):
    """Fuse a U-Net skip by adding it to the upsampled features (never broadcasting a size of 1)."""

    def forward(self, input: Tensor, skip: Tensor) -> Tensor:
        if input.shape != skip.shape:
            raise ShapeError(f"a skip of shape {tuple(skip.shape)} cannot be added to features of shape "
                             f"{tuple(input.shape)}: the shapes must be equal (a bug in the mirror: please report it)")
        return input + skip
