"""Stride-1 mirrors: MirrorUNet's stride-1 ConvTranspose2d against the Conv2d that computes the same function.

MirrorUNet mirrors every stride-1 conv of the encoder (a U-Net's 3×3 blocks) as a stride-1
``ConvTranspose2d``. A ``Conv2d`` with the weight transposed and flipped (padding ``k-1-p``)
computes exactly the same function, and the backends treat the two differently: cuDNN runs a
transposed conv's forward as a convolution's backward-data pass. This section times both, layer
by layer at U-Net shapes and as whole U-Nets (tests/architectures.py's encoder with the decoder
written by hand with each), in fp32 and with bf16 autocast + channels_last, and says which is
faster on the device it ran on.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from .overhead import training_steps
from .padding import WIDTHS
from .report import Settings, ratio_cell, table
from .timing import Paired, Step, paired_ratio
from .twins import HandWrittenUNet, copy_weights

CLEAR = 0.02  # a difference counts when the whole 95% interval is this far beyond 1.000


@dataclass(frozen=True)
class Variant:
    """How a step runs: bf16 autocast with channels_last weights and inputs, or plain fp32."""

    amp: bool

    def label(self) -> str:
        return "bf16 autocast + channels_last" if self.amp else "fp32"


def variants(settings: Settings) -> list[Variant]:
    """fp32 everywhere; bf16 + channels_last on a GPU only (CPUs without bf16 units emulate it)."""
    return [Variant(False), Variant(True)] if settings.device.type == "cuda" else [Variant(False)]


def layer_shapes(settings: Settings) -> list[tuple[int, int, int, int]]:
    """(batch, in channels, out channels, side): a U-Net decoder's first 3×3 conv after each skip concat."""
    if settings.quick:
        return [(1, 8, 4, 16)]
    if settings.device.type == "cuda":
        return [(8, 128, 64, 128), (8, 256, 128, 64), (8, 512, 256, 32), (8, 1024, 512, 16)]
    return [(1, 32, 16, 64), (1, 64, 32, 32), (1, 128, 64, 16)]


def unet_input(settings: Settings) -> tuple[int, ...]:
    """The whole-network input: the padding section's odd 257×257 (37×29 when quick), batch 8 on a GPU."""
    side = (37, 29) if settings.quick else (257, 257)
    return (8 if settings.device.type == "cuda" else 1, 1, *side)


def layer_pair(c_in: int, c_out: int) -> tuple[nn.Module, nn.Module]:
    """A stride-1 3×3 ConvTranspose2d (padding 1) and the Conv2d given its weights: the same function."""
    transposed = nn.ConvTranspose2d(c_in, c_out, 3, padding=1, bias=False)
    return transposed, copy_weights(transposed, nn.Conv2d(c_in, c_out, 3, padding=1, bias=False))


def unet_pair(settings: Settings) -> tuple[nn.Module, nn.Module]:
    """The hand-written U-Net with ConvTranspose2d blocks, and with Conv2d blocks given the same weights."""
    paddings = (0, 1) if settings.quick else (0, 0, 0, 0, 1)  # exact output sizes for 37×29 / 257×257
    widths = WIDTHS[:3] if settings.quick else WIDTHS
    transposed = HandWrittenUNet(1, widths, 2, paddings, nn.ConvTranspose2d)
    return transposed, copy_weights(transposed, HandWrittenUNet(1, widths, 2, paddings, nn.Conv2d))


def _steps(pair: tuple[nn.Module, nn.Module], shape: tuple[int, ...], variant: Variant,
           device: torch.device) -> tuple[Step, Step]:
    """Training steps for the pair (outputs checked equal in fp32 first), in the variant's precision and layout."""
    modules = tuple(m.to(device) for m in pair)
    x = torch.randn(shape, device=device)
    fp32_steps = training_steps((modules[0], modules[1]), x)
    if not variant.amp:
        return fp32_steps
    x = x.contiguous(memory_format=torch.channels_last).requires_grad_()
    grad = torch.randn_like(modules[1](x))

    def step_for(module: nn.Module) -> Step:
        module.to(memory_format=torch.channels_last)

        def step() -> None:
            with torch.autocast(device.type, dtype=torch.bfloat16):
                out = module(x)
            out.float().backward(grad)
        return step

    return step_for(modules[0]), step_for(modules[1])


def _measure(settings: Settings, pair: tuple[nn.Module, nn.Module], shape: tuple[int, ...],
             variant: Variant) -> Paired:
    torch.manual_seed(0)
    steps = _steps(pair, shape, variant, settings.device)
    cuda = settings.device.type == "cuda"
    return paired_ratio(*steps, device=settings.device, precision=settings.precision(),
                        warmup=1 if settings.quick else 5, min_sample_seconds=0.01 if cuda else 0.0)


def _cell(result: Paired) -> str:
    return ratio_cell(result.ratio, result.ratio_low, result.ratio_high)


def _layer_rows(settings: Settings) -> Iterator[list[object]]:
    for variant in variants(settings):
        for batch, c_in, c_out, side in layer_shapes(settings):
            result = _measure(settings, layer_pair(c_in, c_out), (batch, c_in, side, side), variant)
            yield [f"{c_in}→{c_out}, {side}×{side}, batch {batch}", variant.label(),
                   f"{result.reference_us / 1e3:.3f}", _cell(result)]


def verdict(results: list[Paired]) -> str:
    """Which operator the whole-network ratios favour, in words (a difference needs its interval past ±2%)."""
    if all(r.ratio_low > 1 + CLEAR for r in results):
        return ("**Conv2d is faster** in every variant: the stride-1 mirrors should become Conv2d "
                "(weights transposed and flipped: the same function).")
    if all(r.ratio_high < 1 - CLEAR for r in results):
        return "**ConvTranspose2d is faster** in every variant: keep the stride-1 mirrors as they are."
    if any(r.ratio_low > 1 + CLEAR for r in results) and not any(r.ratio_high < 1 - CLEAR for r in results):
        return ("**Conv2d is faster in some variants** and no slower in the others: the stride-1 mirrors "
                "should become Conv2d.")
    if not any(r.ratio_low > 1 + CLEAR or r.ratio_high < 1 - CLEAR for r in results):
        return "**No clear difference** (no interval lies wholly beyond ±2% of 1.000): nothing to change."
    return "**Mixed**: each operator wins in some variant; see the rows."


def section(settings: Settings) -> str:
    """The stride-1 section of RESULTS.md."""
    shape = unet_input(settings)
    network = [(variant, _measure(settings, unet_pair(settings), shape, variant)) for variant in variants(settings)]
    widths = WIDTHS[:3] if settings.quick else WIDTHS
    return "\n\n".join([
        "## Stride-1 mirrors: ConvTranspose2d vs Conv2d",
        "MirrorUNet mirrors each stride-1 conv of the encoder as a stride-1 `ConvTranspose2d`; a `Conv2d` with "
        "the weight transposed and flipped computes the same function (outputs checked equal in fp32 first). "
        f"Ratio = ConvTranspose2d / Conv2d per training step (forward + backward) on {settings.device.type}, "
        f"paired; above 1.000 the Conv2d is faster. {settings.precision().describe().capitalize()}.",
        f"### Whole U-Net, input {'×'.join(map(str, shape))}",
        f"tests/architectures.py's `unet_encoder` (widths {'-'.join(map(str, widths))}) with the decoder written "
        "by hand as MirrorUNet lays it out, its 3×3 blocks all ConvTranspose2d or all Conv2d.",
        table(("variant", "Conv2d blocks ms/step (median)", "ConvTranspose2d / Conv2d (95% CI)"),
              [[v.label(), f"{r.reference_us / 1e3:.3f}", _cell(r)] for v, r in network]),
        f"Verdict on this device: {verdict([r for _, r in network])}",
        "### One 3×3 layer (the decoder block's first conv after a skip concat)",
        table(("layer", "variant", "Conv2d ms/step (median)", "ConvTranspose2d / Conv2d (95% CI)"),
              list(_layer_rows(settings))),
    ])
