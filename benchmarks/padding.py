"""MirrorUNet at odd sizes: computing on the exact size against padding up to a multiple of 2^N.

U-Net libraries that cannot meet odd skip sizes require inputs divisible by 2^N (N poolings)
and users pad, e.g. 257×257 up to 288×288, then crop the output. MirrorUNet needs neither.
Both strategies run on the same MirrorUNet instance with the same weights (it accepts every
size), so the difference is the padding alone.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import autoshape
from tests.architectures import unet_encoder

from .memory import Peak, in_fresh_process, peak_memory
from .report import Settings, ratio_cell, table
from .timing import Step, paired_ratio

WIDTHS = (8, 16, 32, 64, 128, 256)  # five poolings: sizes must be multiples of 2^5 = 32 to avoid odd skips
MULTIPLE = 2 ** (len(WIDTHS) - 1)
WARM_UP_SIZE = (65, 65)  # odd, and the deepest level still has 2×2 values for BatchNorm


def unet() -> nn.Module:
    """MirrorUNet on the U-Net encoder of tests/architectures.py (widths 8…256), in training mode."""
    torch.manual_seed(0)
    return autoshape.MirrorUNet(unet_encoder(1, WIDTHS), (1, *WARM_UP_SIZE), out_channels=2).train()


def padded_size(size: tuple[int, ...]) -> tuple[int, ...]:
    """Each side rounded up to a multiple of ``MULTIPLE``."""
    return tuple(math.ceil(side / MULTIPLE) * MULTIPLE for side in size)


def forward(model: nn.Module, x: Tensor, padded: bool) -> Tensor:
    """The model on ``x``, or on ``x`` zero-padded (bottom/right) to a multiple and cropped back."""
    if not padded:
        return model(x)  # type: ignore[no-any-return]
    height, width = x.shape[-2:]
    target = padded_size((height, width))
    out = model(F.pad(x, (0, target[1] - width, 0, target[0] - height)))
    return out[..., :height, :width]


def training_step(model: nn.Module, size: tuple[int, ...], padded: bool) -> Step:
    """Forward (exact or padded) and backward of a fixed output gradient, on a seeded batch of one."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1, 1, *size, generator=generator)
    grad = torch.randn(1, 2, *size, generator=generator)
    return lambda: forward(model, x, padded).backward(grad)


def step_peak(size: tuple[int, ...], padded: bool) -> Peak:
    """Peak memory of one training step (run in a fresh process, after a warm-up step at a small size)."""
    model = unet()
    training_step(model, WARM_UP_SIZE, padded=False)()
    return peak_memory(training_step(model, size, padded))


def _row(settings: Settings, size: tuple[int, ...]) -> list[object]:
    model = unet()
    exact, padded = training_step(model, size, False), training_step(model, size, True)
    result = paired_ratio(padded, exact, device=torch.device("cpu"), precision=settings.precision(),
                          warmup=1 if settings.quick else 3, min_sample_seconds=0.0)
    peaks = [step_peak(size, flag) if settings.quick else in_fresh_process(step_peak, size, flag)
             for flag in (False, True)]
    pixels = math.prod(padded_size(size)) / math.prod(size)
    exact_rss, padded_rss = peaks[0].rss, peaks[1].rss
    rss = "n/a" if exact_rss is None or padded_rss is None else f"{exact_rss / 2**20:,.0f} → {padded_rss / 2**20:,.0f}"
    return ["×".join(map(str, size)), "×".join(map(str, padded_size(size))), f"×{pixels:.3f}",
            ratio_cell(result.ratio, result.ratio_low, result.ratio_high), rss]


def sizes(settings: Settings) -> list[tuple[int, ...]]:
    """Odd input sizes to compare."""
    return [(69, 67)] if settings.quick else [(257, 257), (101, 67)]


def section(settings: Settings) -> str:
    """The padding section of RESULTS.md."""
    return "\n\n".join([
        "## MirrorUNet at odd sizes: exact vs padding to a multiple of 32",
        "U-Net libraries that cannot meet odd skip sizes ask for inputs divisible by 2^N (N poolings), so "
        "users pad, e.g. 257×257 up to 288×288, and crop the output. MirrorUNet needs neither. Both "
        "strategies run on the same MirrorUNet instance with the same weights, so the difference is the "
        f"padding alone. U-Net: MirrorUNet on `unet_encoder` widths "
        f"{'-'.join(map(str, WIDTHS))} (five 2×2 poolings), batch 1, training step (forward + backward). "
        "Time ratio = padded / exact (paired, median with 95% CI); memory = peak extra resident set of one "
        "step in a fresh process (exact → padded).",
        table(("input", "padded to", "pixels computed", "time padded / exact", "peak MiB exact → padded"),
              [_row(settings, size) for size in sizes(settings)]),
    ])
