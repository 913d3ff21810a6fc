"""The few layers a mirror needs beyond torch's own: each hits a size it is given per call.

Each subclasses the torch layer it extends, takes the recorded shape of the encoder step it
undoes as ``output_size`` (a full shape, batch and channels included, like
``ConvTranspose2d.forward``), and falls back to the traced size without it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..errors import ShapeError

__all__ = ["SkipAdd", "SkipConcat", "UnflattenTo", "UpsampleTo"]


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
