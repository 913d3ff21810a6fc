"""Solver throughput: solves per second for representative requests, and what solving adds to building a layer."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

import autoshape
from autoshape import ShapeError, ranked_solutions, solve_conv, solve_conv_transpose

from .report import Settings, ratio_cell, table
from .timing import paired_ratio, per_second


def _unreachable() -> None:
    try:
        solve_conv_transpose(6, 21, kernel_size=3, stride=3)
    except ShapeError:
        return
    raise AssertionError("6→21 with kernel 3, stride 3 should be unreachable")


REQUESTS: list[tuple[str, str, Callable[[], object]]] = [
    ("12→24, transposed", "`solve_conv_transpose(12, 24)`", lambda: solve_conv_transpose(12, 24)),
    ("24×24→12×12, conv", "`solve_conv((24, 24), (12, 12))`", lambda: solve_conv((24, 24), (12, 12))),
    ("DCGAN first layer 1→4, k=4", "`solve_conv_transpose(1, 4, kernel_size=4)`",
     lambda: solve_conv_transpose(1, 4, kernel_size=4)),
    ("non-square (1, 7)→(4, 28)", "`solve_conv_transpose((1, 7), (4, 28))`",
     lambda: solve_conv_transpose((1, 7), (4, 28))),
    ("odd ratio 7→100", "`solve_conv_transpose(7, 100)`", lambda: solve_conv_transpose(7, 100)),
    ("audio 16000→3199, conv", "`solve_conv(16000, 3199)`", lambda: solve_conv(16000, 3199)),
    ("3-d (9, 16, 16)→(4, 8, 8), conv", "`solve_conv((9, 16, 16), (4, 8, 8))`",
     lambda: solve_conv((9, 16, 16), (4, 8, 8))),
    ("unreachable → ShapeError", "`solve_conv_transpose(6, 21, kernel_size=3, stride=3)`", _unreachable),
    ("10 ranked alternatives", "`ranked_solutions(12, 24, limit=10)`", lambda: ranked_solutions(12, 24, limit=10)),
]


def solver_rows(settings: Settings) -> list[list[object]]:
    """Solves per second (median of repeated samples) for each representative request."""
    min_seconds, repeats = (0.01, 3) if settings.quick else (0.2, 9)
    rows: list[list[object]] = []
    for request, call, solve in REQUESTS:
        rate = per_second(solve, min_seconds=min_seconds, repeats=repeats)
        rows.append([request, call, f"{rate:,.0f}", f"{1e6 / rate:.1f}"])
    return rows


def construction_row(settings: Settings) -> list[object]:
    """Building ``TargetConvTranspose2d(256, 128, 12→24)`` against building the plain layer it solves to."""
    def target() -> nn.Module:
        return autoshape.TargetConvTranspose2d(256, 128, input_size=12, output_size=24)

    def plain() -> nn.Module:
        return nn.ConvTranspose2d(256, 128, kernel_size=4, stride=2, padding=1)

    result = paired_ratio(target, plain, device=torch.device("cpu"), precision=settings.precision(), warmup=1,
                          min_sample_seconds=0.001 if settings.quick else 0.02)
    return ["`TargetConvTranspose2d(256, 128, input_size=12, output_size=24)`",
            "`nn.ConvTranspose2d(256, 128, 4, 2, 1)`", f"{result.reference_us:.0f}",
            ratio_cell(result.ratio, result.ratio_low, result.ratio_high), f"{result.delta_ns / 1e3:+.1f}"]


def section(settings: Settings) -> str:
    """The solver section of RESULTS.md."""
    return "\n\n".join([
        "## Solver throughput",
        "Pure-Python solves on one CPU core (the solver runs once, at construction). "
        "Solves/s is the median over repeated timed loops.",
        table(("request", "call", "solves/s (median)", "µs/solve"), solver_rows(settings)),
        "Building a Target layer against building the plain layer it solves to (weight initialisation "
        "included, paired ratio):",
        table(("autoshape", "plain torch", "plain µs/build (median)", "ratio (95% CI)", "Δ µs/build"),
              [construction_row(settings)]),
    ])
