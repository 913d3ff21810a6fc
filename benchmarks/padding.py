"""MirrorUNet at odd sizes: computing on the exact size against padding up to a multiple of 32.

U-Net libraries that cannot meet odd skip sizes require inputs divisible by 2^N (N poolings)
and users pad, e.g. 257×257 up to 288×288, then crop the output. MirrorUNet needs neither.
Both strategies run on the same MirrorUNet instance with the same weights (it accepts every
size), so the difference is the padding alone. Two U-Nets: one mirrored from a sequential
encoder, and one on a ResNet-18 feature pyramid (the backbone-plus-decoder kind).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import autoshape
from tests.architectures import ResNetPyramid, unet_encoder

from .memory import Peak, in_fresh_process, peak_memory
from .report import Settings, ratio_cell, table
from .timing import Step, paired_ratio

WIDTHS = (8, 16, 32, 64, 128, 256)  # five poolings: sizes must be multiples of 2^5 = 32 to avoid odd skips
MULTIPLE = 2 ** (len(WIDTHS) - 1)
WARM_UP_SIZE = (65, 65)  # odd, and the deepest level still has 2×2 values for BatchNorm


def unet(kind: str = "mirror") -> nn.Module:
    """A MirrorUNet in training mode: ``'mirror'``, grown from the U-Net encoder of
    tests/architectures.py (widths 8…256); ``'pyramid'``, on a ResNet-18 pyramid (width 16)."""
    torch.manual_seed(0)
    if kind == "pyramid":
        return autoshape.MirrorUNet(ResNetPyramid(3, 16), (3, *WARM_UP_SIZE), out_channels=2).train()
    return autoshape.MirrorUNet(unet_encoder(1, WIDTHS), (1, *WARM_UP_SIZE), out_channels=2).train()


def in_channels(kind: str) -> int:
    return 3 if kind == "pyramid" else 1


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


def batch_size(device: torch.device) -> int:
    """A batch of one on the CPU (as the CPU figures were taken); 8 images on a GPU, a realistic batch there."""
    return 8 if device.type == "cuda" else 1


CPU = torch.device("cpu")


def training_step(model: nn.Module, size: tuple[int, ...], padded: bool, device: torch.device = CPU,
                  kind: str = "mirror") -> Step:
    """Forward (exact or padded) and backward of a fixed output gradient, on a seeded batch on ``device``."""
    generator = torch.Generator().manual_seed(0)
    batch = batch_size(device)
    x = torch.randn(batch, in_channels(kind), *size, generator=generator).to(device)
    grad = torch.randn(batch, 2, *size, generator=generator).to(device)
    return lambda: forward(model, x, padded).backward(grad)


def step_peak(size: tuple[int, ...], padded: bool, kind: str = "mirror") -> Peak:
    """Peak memory of one training step (run in a fresh process, after a warm-up step at a small size)."""
    model = unet(kind)
    training_step(model, WARM_UP_SIZE, padded=False, kind=kind)()
    return peak_memory(training_step(model, size, padded, kind=kind))


def cuda_peak(step: Step) -> int:
    """Peak extra CUDA memory allocated during one call of ``step`` (run it once before: gradients exist)."""
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    step()
    torch.cuda.synchronize()
    return torch.cuda.max_memory_allocated() - before


def _memory_cell(settings: Settings, size: tuple[int, ...], steps: tuple[Step, Step], kind: str) -> str:
    """Peak MiB, exact → padded: CUDA memory allocated on a GPU, the resident set on a CPU."""
    if settings.device.type == "cuda":
        exact, padded = (cuda_peak(step) for step in steps)
        return f"{exact / 2**20:,.0f} → {padded / 2**20:,.0f}"
    peaks = [step_peak(size, flag, kind) if settings.quick else in_fresh_process(step_peak, size, flag, kind)
             for flag in (False, True)]
    exact_rss, padded_rss = peaks[0].rss, peaks[1].rss
    return "n/a" if exact_rss is None or padded_rss is None else f"{exact_rss / 2**20:,.0f} → {padded_rss / 2**20:,.0f}"


def _row(settings: Settings, kind: str, size: tuple[int, ...]) -> list[object]:
    model = unet(kind).to(settings.device)
    exact, padded = (training_step(model, size, flag, settings.device, kind) for flag in (False, True))
    result = paired_ratio(padded, exact, device=settings.device, precision=settings.precision(),
                          warmup=1 if settings.quick else 3,
                          min_sample_seconds=0.01 if settings.device.type == "cuda" else 0.0)
    pixels = math.prod(padded_size(size)) / math.prod(size)
    memory = _memory_cell(settings, size, (exact, padded), kind)
    parameters = sum(p.numel() for p in model.parameters())
    return [KINDS[kind], "×".join(map(str, size)), "×".join(map(str, padded_size(size))), f"×{pixels:.3f}",
            ratio_cell(result.ratio, result.ratio_low, result.ratio_high), memory, f"{parameters:,}"]


KINDS = {"mirror": "mirrored from a U-Net encoder", "pyramid": "on a ResNet-18 pyramid"}


def sizes(settings: Settings, kind: str) -> list[tuple[int, ...]]:
    """Odd input sizes to compare."""
    if settings.quick:
        return [(69, 67)]
    return [(257, 193), (1213, 1546)] if kind == "pyramid" else [(257, 257), (101, 67)]


def section(settings: Settings) -> str:
    """The padding section of RESULTS.md."""
    memory = ("peak extra CUDA memory allocated by one step (`torch.cuda.max_memory_allocated`, exact → padded)"
              if settings.device.type == "cuda" else
              "peak extra resident set of one step in a fresh process (exact → padded)")
    return "\n\n".join([
        "## MirrorUNet at odd sizes: exact vs padding to a multiple of 32",
        "U-Net libraries that cannot meet odd skip sizes ask for inputs divisible by 2^N (N poolings), so "
        "users pad, e.g. 257×257 up to 288×288, and crop the output. MirrorUNet needs neither. Both "
        "strategies run on the same MirrorUNet instance with the same weights (so the same parameters), so "
        "the difference is the padding alone. U-Nets: MirrorUNet mirrored from `unet_encoder` widths "
        f"{'-'.join(map(str, WIDTHS))} (five 2×2 poolings), and MirrorUNet on `ResNetPyramid` (ResNet-18, "
        f"width 16, five maps from 1/2 to 1/32); batch {batch_size(settings.device)} on "
        f"{settings.device.type}, training step (forward + backward). Time ratio = padded / exact (paired, "
        f"median with 95% CI); memory = {memory}.",
        table(("U-Net", "input", "padded to", "pixels computed", "time padded / exact", "peak MiB exact → padded",
               "parameters"),
              [_row(settings, kind, size) for kind in KINDS for size in sizes(settings, kind)]),
    ])
