"""Run-time overhead: forward+backward of autoshape modules against plain torch with identical weights.

Every case builds the autoshape module and its plain twin, checks that both give the same
output on the same input, then times training steps (forward, then backward of a fixed
output gradient into the weights and the input) as paired, alternating runs.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

import autoshape
from tests.architectures import dcgan_discriminator, dcgan_generator, unet_encoder

from .report import Settings, ratio_cell, table
from .timing import Step, ns_per_call, paired_ratio
from .twins import (
    HandWrittenUNet,
    PlainAutoencoder,
    conv_autoencoder_parts,
    copy_weights,
    full_fp32,
    plain_conv,
    small_autoencoder_parts,
    small_encoder,
    small_generator,
)

Pair = tuple[nn.Module, nn.Module]


@dataclass(frozen=True)
class Case:
    """One overhead measurement: the autoshape module and its plain twin on one input shape."""

    module: str
    size: str
    input_shape: tuple[int, ...]
    build: Callable[[], Pair]


def _target_case(cls: type[nn.Module], size: str, channels: tuple[int, int], batch: int,
                 sizes: tuple[tuple[int, ...], tuple[int, ...]]) -> Case:
    def build() -> Pair:
        layer = cls(*channels, input_size=sizes[0], output_size=sizes[1])
        return layer, copy_weights(layer, plain_conv(layer))
    return Case(cls.__name__, size, (batch, channels[0], *sizes[0]), build)


TINY_TARGET_CASES = [
    _target_case(autoshape.TargetConv1d, "tiny", (4, 4), 1, ((16,), (8,))),
    _target_case(autoshape.TargetConv2d, "tiny", (4, 8), 1, ((8, 8), (4, 4))),
    _target_case(autoshape.TargetConv3d, "tiny", (2, 4), 1, ((6, 6, 6), (3, 3, 3))),
    _target_case(autoshape.TargetConvTranspose1d, "tiny", (4, 4), 1, ((8,), (16,))),
    _target_case(autoshape.TargetConvTranspose2d, "tiny", (8, 4), 1, ((4, 4), (8, 8))),
    _target_case(autoshape.TargetConvTranspose3d, "tiny", (4, 2), 1, ((3, 3, 3), (6, 6, 6))),
]

REALISTIC_TARGET_CASES = [
    _target_case(autoshape.TargetConv1d, "realistic", (1, 512), 2, ((16000,), (3199,))),
    _target_case(autoshape.TargetConv2d, "realistic", (64, 128), 8, ((56, 56), (28, 28))),
    _target_case(autoshape.TargetConv3d, "realistic", (16, 32), 2, ((32, 32, 32), (16, 16, 16))),
    _target_case(autoshape.TargetConvTranspose1d, "realistic", (256, 128), 4, ((1000,), (2000,))),
    _target_case(autoshape.TargetConvTranspose2d, "realistic", (128, 64), 8, ((28, 28), (56, 56))),
    _target_case(autoshape.TargetConvTranspose3d, "realistic", (32, 16), 2, ((16, 16, 16), (32, 32, 32))),
]


def _twin_case(module: str, size: str, input_shape: tuple[int, ...], make: Callable[[], nn.Module],
               make_by_hand: Callable[[], nn.Module]) -> Case:
    def build() -> Pair:
        built = make()
        return built, copy_weights(built, make_by_hand())
    return Case(module, size, input_shape, build)


_RELU = partial(nn.ReLU, True)
_LEAKY = partial(nn.LeakyReLU, 0.2, True)

STACK_CASES = [
    _twin_case("UpsamplingStack", "tiny", (2, 8, 1, 1), lambda: autoshape.UpsamplingStack(
        8, (16, 8), 1, input_size=1, output_size=28, activation=_RELU), small_generator),
    _twin_case("DownsamplingStack", "tiny", (2, 1, 28, 28), lambda: autoshape.DownsamplingStack(
        1, (8, 16), 4, input_size=28, output_size=1, activation=_LEAKY), small_encoder),
    _twin_case("UpsamplingStack", "realistic", (2, 100, 1, 1), lambda: autoshape.UpsamplingStack(
        100, (512, 256, 128, 64), 3, input_size=1, output_size=64, kernel_size=4, bias=False, activation=_RELU),
        dcgan_generator),
    _twin_case("DownsamplingStack", "realistic", (2, 3, 64, 64), lambda: autoshape.DownsamplingStack(
        3, (64, 128, 256, 512), 1, input_size=64, output_size=1, kernel_size=4, bias=False, activation=_LEAKY,
        final_activation=nn.Sigmoid), dcgan_discriminator),
]



def _mirror_cases(size: str, batch: int, sample: tuple[int, ...], latent: tuple[int, ...],
                  parts: Callable[[], tuple[nn.Sequential, nn.Sequential]]) -> list[Case]:
    def decoder() -> nn.Module:
        return autoshape.MirrorDecoder(parts()[0], sample)

    def autoencoder() -> nn.Module:
        return autoshape.MirrorAutoencoder(parts()[0], sample)

    return [_twin_case("MirrorDecoder", size, (batch, *latent), decoder, lambda: parts()[1]),
            _twin_case("MirrorAutoencoder", size, (batch, *sample), autoencoder, lambda: PlainAutoencoder(*parts()))]


MIRROR_CASES = (_mirror_cases("tiny", 2, (1, 29, 29), (16, 8, 8), small_autoencoder_parts)
                + _mirror_cases("realistic", 8, (3, 64, 64), (256, 4, 4), conv_autoencoder_parts))



def _unet_case(size: str, input_shape: tuple[int, ...], widths: tuple[int, ...], output_paddings: tuple[int, ...],
               conv: type[nn.Module]) -> Case:
    def make() -> nn.Module:
        return autoshape.MirrorUNet(unet_encoder(input_shape[1], widths), input_shape[1:], out_channels=2)

    def by_hand() -> nn.Module:
        return HandWrittenUNet(input_shape[1], widths, 2, output_paddings, conv)

    return _twin_case(f"`MirrorUNet` · {conv.__name__} blocks", size, input_shape, make, by_hand)


UNET_CASES = [
    _unet_case(size, shape, widths, paddings, conv)
    for size, shape, widths, paddings in (("tiny", (2, 1, 37, 29), (4, 8, 16), (0, 1)),
                                          ("realistic", (1, 1, 257, 257), (8, 16, 32, 64, 128, 256), (0, 0, 0, 0, 1)))
    for conv in (nn.ConvTranspose2d, nn.Conv2d)
]



def _against_a_copy(case: Case) -> Case:
    """The case's plain twin timed against a deep copy of itself: what 'no difference' measures as."""
    def build() -> Pair:
        plain = case.build()[1]
        return plain, copy.deepcopy(plain)
    return Case(f"{case.module}'s plain twin vs a copy of itself", case.size, case.input_shape, build)


CONTROL_CASES = [_against_a_copy(TINY_TARGET_CASES[1]), _against_a_copy(STACK_CASES[3])]

GROUPS: list[tuple[str, str, list[Case]]] = [
    ("Control: identical modules (the measurement floor)", "Two copies of the same plain module timed against "
     "each other exactly as below. Ratios this far from 1.000 (memory placement, caches, the shared machine) "
     "are what 'no difference' looks like.", CONTROL_CASES),
    ("Target layers", "Each against the torch layer it subclasses, built with the solved values.",
     TINY_TARGET_CASES + REALISTIC_TARGET_CASES),
    ("UpsamplingStack and DownsamplingStack", "Tiny: a 28×28 generator and encoder written by hand. "
     "Realistic: the DCGAN generator and discriminator (64×64) as re-typed in tests/architectures.py.",
     STACK_CASES),
    ("MirrorDecoder and MirrorAutoencoder", "Against the decoder written by hand for the same encoder (and, for "
     "the autoencoder, `decoder(encoder(x))` by hand). Tiny: two stride-2 convs on 1×29×29. Realistic: four "
     "k4-s2 conv+BatchNorm+ReLU stages on 3×64×64. MirrorAutoencoder also records the encoder's sizes and "
     "passes them to the decoder's transposed convs (`output_size=`), which is what makes it exact at every "
     "input size.", MIRROR_CASES),
    ("MirrorUNet", "Against the same U-Net written by hand (tests/architectures.py's `unet_encoder`, the decoder "
     "laid out as MirrorUNet lays it out, output_padding fixed by hand for the size). MirrorUNet mirrors the "
     "encoder's stride-1 3×3 convs as stride-1 `ConvTranspose2d`; the twin with ConvTranspose2d blocks "
     "isolates autoshape's own cost, the twin with Conv2d blocks (weights transposed and flipped: the same "
     "function) is how a U-Net is usually written. Tiny: widths 4-8-16 on 1×37×29; realistic: widths "
     "8…256 (five poolings) on 1×257×257.", UNET_CASES),
]


def training_steps(pair: Pair, x: Tensor) -> tuple[Step, Step]:
    """One forward+backward step for each module of the pair, after checking their outputs agree.

    They agree to 1e-4 of the largest output: twins that compute one function with different
    operators (a stride-1 transposed conv and its conv) round differently, especially on a GPU,
    while a structural difference is off by the order of the values.

    Raises:
        AssertionError: the two modules give different outputs (they are not twins).
    """
    candidate, reference = pair
    with full_fp32(), torch.no_grad():
        expected = reference(x)
        torch.testing.assert_close(candidate(x), expected, rtol=1e-4, atol=1e-4 * expected.abs().max().item(),
                                   msg=lambda m: f"not twins: {m}")
        grad = torch.randn_like(expected)
    x = x.detach().requires_grad_()

    def step_for(module: nn.Module) -> Step:
        return lambda: module(x).backward(grad)

    return step_for(candidate), step_for(reference)


def _timing(settings: Settings, size: str) -> dict[str, Any]:
    if settings.quick:
        return {"precision": settings.precision(), "warmup": 1, "min_sample_seconds": 0.001}
    if settings.short:
        return {"precision": settings.precision(), "warmup": 5, "min_sample_seconds": 0.01}
    return {"precision": settings.precision(), "warmup": 5, "min_sample_seconds": 0.02 if size == "tiny" else 0.03}


def _shape(shape: Sequence[int]) -> str:
    return "×".join(map(str, shape))


def measure(settings: Settings, case: Case) -> list[object]:
    """One table row: module, size, input, plain time per step, paired ratio, per-step delta, pairs."""
    torch.manual_seed(0)
    candidate, reference = (m.to(settings.device) for m in case.build())
    x = torch.randn(case.input_shape, device=settings.device)
    steps = training_steps((candidate, reference), x)
    result = paired_ratio(*steps, device=settings.device, **_timing(settings, case.size))
    name = case.module if case.module.startswith("`") else f"`{case.module}`"
    return [name, case.size, _shape(case.input_shape), f"{result.reference_us / 1e3:.3f}",
            ratio_cell(result.ratio, result.ratio_low, result.ratio_high), f"{result.delta_ns / 1e3:+.2f}",
            result.pairs]


OVERHEAD_HEADERS = ("module", "size", "input", "plain torch ms/step (median)", "ratio (95% CI)",
                    "Δ µs/step (median)", "pairs")


def check_cost(settings: Settings, case: Case) -> list[object]:
    """The forward input-size check of a Target layer, in isolation and inside a no-grad forward."""
    layer, plain = (m.to(settings.device) for m in case.build())
    x = torch.randn(case.input_shape, device=settings.device)
    check = getattr(layer, "_accepts", None)
    calls, repeats = (2000, 3) if settings.quick else (50_000, 15)
    alone = "no check" if check is None else f"{ns_per_call(lambda: check(x), calls=calls, repeats=repeats):.0f}"
    with torch.no_grad():
        forward = paired_ratio(lambda: layer(x), lambda: plain(x), device=settings.device,
                               **_timing(settings, case.size))
    return [f"`{case.module}`", _shape(case.input_shape), alone, f"{forward.delta_ns:+.0f}",
            f"{forward.reference_us:.1f}", ratio_cell(forward.ratio, forward.ratio_low, forward.ratio_high)]


CHECK_HEADERS = ("layer", "input", "check alone, ns/call", "Δ forward ns/call (paired median)",
                 "plain forward µs/call", "forward ratio (95% CI)")


def section(settings: Settings) -> str:
    """The overhead section of RESULTS.md (the quick run measures only the tiny cases)."""
    parts = [
        "## Run-time overhead: forward+backward vs plain torch",
        "Each autoshape module against the same network in plain torch with identical weights (outputs "
        "checked equal first). A step is forward, then backward of a fixed gradient into weights and input. "
        "Ratio = autoshape time / plain time per alternating pair; the median over pairs, with its "
        f"distribution-free 95% confidence interval; {settings.precision().describe()}. 1.000 means no "
        "overhead; goal ≤ 1.01 at realistic sizes. "
        "Δ is the paired median difference per step: a fixed Python cost shows up there, not in the ratio.",
    ]
    for title, description, cases in GROUPS:
        chosen = [case for case in cases if case.size == "tiny" or not settings.quick]
        parts += [f"### {title}", description, table(OVERHEAD_HEADERS, [measure(settings, c) for c in chosen])]
    parts += [
        "### Per-call cost of the forward input-size check",
        "Target layers check in `forward` that the spatial input size is the one they were built for. "
        "'check alone' times that check by itself; 'Δ forward' is the paired median difference of a whole "
        "no-grad forward (check plus the extra Python frame of the subclass) against plain torch.",
        table(CHECK_HEADERS, [check_cost(settings, TINY_TARGET_CASES[i]) for i in (1, 4)]),
    ]
    return "\n\n".join(parts)
