"""autoshape: declare the size you want; get the exact convolution that produces it."""

from .arithmetic import (
    conv_output_size,
    conv_transpose_output_range,
    conv_transpose_output_size,
    pool_output_size,
)
from .errors import ShapeError
from .explain import ExplainRow, Explanation, explain
from .layers import (
    TargetConv1d,
    TargetConv2d,
    TargetConv3d,
    TargetConvTranspose1d,
    TargetConvTranspose2d,
    TargetConvTranspose3d,
)
from .mirror import MirrorAutoencoder, MirrorDecoder
from .planning import Plan, PlanStep, plan_downsampling, plan_upsampling
from .solver import ConvParams, ranked_solutions, solve_conv, solve_conv_transpose
from .stacks import DownsamplingStack, UpsamplingStack
from .taps import overlap_map, transpose_taps
from .unet import MirrorUNet

__version__ = "0.1.0"

__all__ = [
    "ConvParams",
    "DownsamplingStack",
    "ExplainRow",
    "Explanation",
    "MirrorAutoencoder",
    "MirrorDecoder",
    "MirrorUNet",
    "Plan",
    "PlanStep",
    "ShapeError",
    "TargetConv1d",
    "TargetConv2d",
    "TargetConv3d",
    "TargetConvTranspose1d",
    "TargetConvTranspose2d",
    "TargetConvTranspose3d",
    "UpsamplingStack",
    "conv_output_size",
    "conv_transpose_output_range",
    "conv_transpose_output_size",
    "explain",
    "overlap_map",
    "plan_downsampling",
    "plan_upsampling",
    "pool_output_size",
    "ranked_solutions",
    "solve_conv",
    "solve_conv_transpose",
    "transpose_taps",
]
