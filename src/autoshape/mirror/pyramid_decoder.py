"""The pyramid decoder's modules, run per call: up steps that hit the size they are given, stages
that fuse a skip, and the decoder, which checks the backbone's maps at call time against what it
was built for (each map there, with its rank and channels; each up step able to reach the size
above it), so that a backbone returning other maps at some size gets a ShapeError, not torch's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import Tensor, nn

from ..core.arithmetic import conv_transpose_out
from ..core.text import format_shape
from ..errors import ShapeError
from ..layers.resize import UpsampleTo
from ..tracing.record import describe

__all__ = ["FittedUp", "InterpolatedUp", "PyramidDecoder", "Stage", "Transposed"]


Transposed = nn.ConvTranspose1d | nn.ConvTranspose2d | nn.ConvTranspose3d


class FittedUp(nn.Module):
    """A fitted transposed conv that hits the size it is given per call (``output_size``)."""

    def __init__(self, conv: Transposed) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, input: Tensor, size: Sequence[int]) -> Tensor:
        out: Tensor = self.conv(input, output_size=list(size))
        return out

    def reach(self, size: Sequence[int]) -> list[tuple[int, int]]:
        """The smallest and largest size ``output_size`` can ask for from an input of spatial ``size``,
        per dimension: ``output_padding`` in ``[0, stride)``."""
        c = self.conv
        padding = cast("tuple[int, ...]", c.padding)  # a transposed conv's padding is never a string
        lows = [conv_transpose_out(*args, 0) for args in zip(size, c.kernel_size, c.stride, padding, c.dilation)]
        return [(low, low + stride - 1) for low, stride in zip(lows, c.stride)]


class InterpolatedUp(nn.Module):
    """Interpolation to the size it is given per call, then ``project`` (a 1×1 conv where the channels change)."""

    def __init__(self, mode: str, project: nn.Module) -> None:
        super().__init__()
        self.resize = UpsampleTo(mode=mode, align_corners=None if mode == "nearest" else False)
        self.project = project

    def forward(self, input: Tensor, size: Sequence[int]) -> Tensor:
        out: Tensor = self.project(self.resize(input, (*input.shape[:2], *size)))
        return out

    def reach(self, size: Sequence[int]) -> None:
        """Any size: interpolation reaches every one."""
        return None


class Stage(nn.Module):
    """Upsample to the skip's size, fuse the skip, and two conv-norm-activation blocks."""

    def __init__(self, up: FittedUp | InterpolatedUp, blocks: nn.Sequential, skip: str | None) -> None:
        super().__init__()
        self.up = up
        self.blocks = blocks
        self.skip = skip

    def forward(self, input: Tensor, skip: Tensor | None, size: Sequence[int]) -> Tensor:
        x = self.up(input, size)
        if skip is not None:
            x = torch.cat([x, skip], dim=1) if self.skip == "concat" else x + skip
        out: Tensor = self.blocks(x)
        return out


class PyramidDecoder(nn.Module):
    """The decoder: stages from the coarsest feature map up, the full-resolution stage, the head.

    It takes what ``output=`` picked from the backbone's return value and reads the maps ``keys``
    from it, checking them against the decoder: each map is there with the traced ``shapes``'
    rank and channels, and each up step reaches the size of the map (or input) above it.
    """

    def __init__(self, stages: Sequence[Stage], head: nn.Module, keys: Sequence[int | str],
                 shapes: Sequence[tuple[int, ...]], traced: tuple[int, ...]) -> None:
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.head = head
        self.keys = tuple(keys)  # finest first
        self.shapes = tuple(shapes)
        self.traced = traced

    def forward(self, maps: Any, image: Sequence[int]) -> Tensor:
        """Decode the feature maps in ``maps`` (a list, tuple or dict) for an input of shape ``image``."""
        features = [self._map(maps, key, shape, image) for key, shape in zip(self.keys, self.shapes)]
        if len(self.stages) < len(features) and features[0].shape[2:] != tuple(image[2:]):
            raise self._misfit(image, f"map {self.keys[0]!r} is {format_shape(tuple(features[0].shape))}, not at the "
                                      f"input's size {format_shape(image[2:])}, where the decoder returns it")
        x, skips = features[-1], features[:-1][::-1]
        for index, stage in enumerate(cast("Sequence[Stage]", self.stages)):
            skip = skips[index] if index < len(skips) else None
            size = tuple(skip.shape[2:] if skip is not None else image[2:])
            reach = stage.up.reach(x.shape[2:])
            if reach is not None and any(not low <= n <= high for n, (low, high) in zip(size, reach)):
                above = f"map {self.keys[-2 - index]!r}'s" if skip is not None else "the input's"
                raise self._misfit(image, f"the up step from map {self.keys[-1 - index]!r} "
                                          f"({format_shape(tuple(x.shape))}) reaches {_ranges(reach)}, not "
                                          f"{above} {format_shape(size)}", resizable=True)
            x = stage(x, skip, size)
        out: Tensor = self.head(x)
        return out

    def _map(self, maps: Any, key: int | str, shape: tuple[int, ...], image: Sequence[int]) -> Tensor:
        try:
            value = maps[key]
        except (KeyError, IndexError, TypeError):
            raise self._misfit(image, f"it returned no map {key!r} ({describe(maps)})") from None
        if not isinstance(value, Tensor) or value.dim() != len(shape) or value.shape[:2] != (image[0], shape[1]):
            got = format_shape(tuple(value.shape)) if isinstance(value, Tensor) else describe(value)
            raise self._misfit(image, f"map {key!r} is {got}, where the decoder takes {image[0]}×{shape[1]} maps "
                                      f"with {len(shape) - 2} spatial dimensions")
        return value

    def _misfit(self, image: Sequence[int], what: str, resizable: bool = False) -> ShapeError:
        """``resizable``: only the sizes misfit (a backbone that pads or crops by the input's size), which
        interpolating up steps meet at every size."""
        built = ", ".join(f"{key!r}: {format_shape(shape)}" for key, shape in zip(self.keys, self.shapes))
        nearest = ("build it with pool_mirror='nearest' (each up step then resizes to the map it meets, per call), "
                   "or " if resizable else "")
        return ShapeError(
            f"MirrorUNet's decoder was built for the maps the backbone returned for an input of "
            f"{format_shape(self.traced)} ({built}), but for an input of {format_shape(tuple(image))} {what}: its "
            f"forward returns other maps at this size. Fix: {nearest}build the U-Net at this size, "
            f"MirrorUNet(encoder, {tuple(image[1:])}, ...) with the other arguments as before, or make the backbone "
            "return maps laid out alike at every size."
        )


def _ranges(reach: Sequence[tuple[int, int]]) -> str:
    """``11×11 to 12×12``."""
    return f"{format_shape([low for low, _ in reach])} to {format_shape([high for _, high in reach])}"
