"""The pure integer core: output sizes, the solver and the planner. It never imports torch.

Everything above it (tracing, layers, rules, mirror, diagnose, the command line) calls in here
for arithmetic; nothing in here calls out.
"""

from .arithmetic import conv_output_size, conv_transpose_output_range, conv_transpose_output_size, pool_output_size
from .planning import Plan, PlanStep, plan_downsampling, plan_upsampling
from .solver import ConvParams, ranked_solutions, solve_conv, solve_conv_transpose

__all__ = [
    "ConvParams",
    "Plan",
    "PlanStep",
    "conv_output_size",
    "conv_transpose_output_range",
    "conv_transpose_output_size",
    "plan_downsampling",
    "plan_upsampling",
    "pool_output_size",
    "ranked_solutions",
    "solve_conv",
    "solve_conv_transpose",
]
