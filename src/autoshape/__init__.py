"""autoshape: declare the size you want; get the exact convolution that produces it."""

from .core import (
    ConvParams,
    Plan,
    PlanStep,
    conv_output_size,
    conv_transpose_output_range,
    conv_transpose_output_size,
    plan_downsampling,
    plan_upsampling,
    pool_output_size,
    ranked_solutions,
    solve_conv,
    solve_conv_transpose,
)
from .diagnose import Change, ExplainFailure, ExplainRow, Explanation, Fix, explain, fix, overlap_map, transpose_taps
from .errors import ShapeError
from .layers import (
    DownsamplingStack,
    TargetConv1d,
    TargetConv2d,
    TargetConv3d,
    TargetConvTranspose1d,
    TargetConvTranspose2d,
    TargetConvTranspose3d,
    UpsamplingStack,
)
from .mirror import MirrorAutoencoder, MirrorDecoder, MirrorUNet
from .version import __version__ as __version__

__all__ = [
    "Change",
    "ConvParams",
    "DownsamplingStack",
    "ExplainFailure",
    "ExplainRow",
    "Explanation",
    "Fix",
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
    "fix",
    "overlap_map",
    "plan_downsampling",
    "plan_upsampling",
    "pool_output_size",
    "ranked_solutions",
    "solve_conv",
    "solve_conv_transpose",
    "transpose_taps",
]
