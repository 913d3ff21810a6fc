"""The torch modules autoshape builds: Target layers and planned stacks, plain torch layers inside."""

from .stacks import DownsamplingStack, UpsamplingStack
from .target import (
    TargetConv1d,
    TargetConv2d,
    TargetConv3d,
    TargetConvTranspose1d,
    TargetConvTranspose2d,
    TargetConvTranspose3d,
)

__all__ = [
    "DownsamplingStack",
    "TargetConv1d",
    "TargetConv2d",
    "TargetConv3d",
    "TargetConvTranspose1d",
    "TargetConvTranspose2d",
    "TargetConvTranspose3d",
    "UpsamplingStack",
]
