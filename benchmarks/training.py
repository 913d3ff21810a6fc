"""Training throughput (CUDA only): examples/dcgan.py's models against a hand-written reference loop.

The reference is the classic pytorch/examples DCGAN at 64×64: its generator and discriminator
spelled out layer by layer (re-typed in tests/architectures.py), N(0, 0.02) initialisation,
Sigmoid + BCELoss, Adam(2e-4, β1=0.5), fp32 and eager. The autoshape side takes the generator
and discriminator that examples/dcgan.py builds (``build``, with ``features=64``: the same
widths) and trains them with the example's step (logits + BCEWithLogits), under each of the
example's options: bf16 autocast, channels_last and torch.compile. Both train on random
batches already on the GPU: the figure is the step's speed, not data loading.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import torch
from torch import Tensor, nn

from tests.architectures import dcgan_discriminator, dcgan_generator

from .report import REPO, Settings, table
from .timing import Clock

IMAGE, BATCH = 64, 128
Models = tuple[nn.Module, nn.Module, int]  # generator, discriminator, noise size


def example(name: str) -> ModuleType:
    """A module of examples/ (they import their helpers by bare name, so the folder goes on sys.path)."""
    folder = str(REPO / "examples")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module(name)


def example_models() -> Models:
    """examples/dcgan.py's generator and discriminator for 64×64 RGB at the reference widths."""
    dcgan = example("dcgan")
    generator, discriminator = dcgan.build((IMAGE, IMAGE), 3, 64, 0)
    return generator, discriminator, dcgan.NOISE


def reference_models() -> Models:
    """The classic DCGAN pair with the classic initialisation (100 noise inputs)."""
    generator, discriminator = dcgan_generator(), dcgan_discriminator()
    init = example("dcgan").dcgan_init
    return generator.apply(init), discriminator.apply(init), 100


@dataclass(frozen=True)
class Options:
    """The examples' speed options."""

    amp: bool = False
    channels_last: bool = False
    compile: bool = False

    def label(self) -> str:
        """``fp32 eager`` or the options that are on."""
        on = [name for name, value in (("amp (bf16)", self.amp), ("channels_last", self.channels_last),
                                       ("compile", self.compile)) if value]
        return " + ".join(on) or "fp32 eager"


def gan_step(models: Models, *, batch: int, device: torch.device, options: Options,
             logits: bool) -> Callable[[], None]:
    """One DCGAN step on random real images: D on real, D on fake (one backward each), then G."""
    generator, discriminator, noise_size = models
    memory_format = torch.channels_last if options.channels_last else torch.contiguous_format
    for model in (generator, discriminator):
        model.to(device, memory_format=memory_format).train()
    g, d = (torch.compile(m) if options.compile else m for m in (generator, discriminator))
    criterion = nn.BCEWithLogitsLoss() if logits else nn.BCELoss()
    opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real = (torch.rand(batch, 3, IMAGE, IMAGE, device=device) * 2 - 1).contiguous(memory_format=memory_format)

    def loss(images: Tensor, label: float) -> Tensor:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=options.amp):
            score = d(images).reshape(-1)
        return criterion(score.float(), torch.full_like(score, label, dtype=torch.float32))

    def step() -> None:
        opt_d.zero_grad(set_to_none=True)
        loss(real, 1.0).backward()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=options.amp):
            fake = g(torch.randn(batch, noise_size, 1, 1, device=device))
        loss(fake.detach(), 0.0).backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        loss(fake, 1.0).backward()
        opt_g.step()

    return step


def images_per_second(step: Callable[[], None], *, device: torch.device, batch: int, steps: int,
                      warmup: int, repeats: int) -> float:
    """Median over ``repeats`` blocks of ``steps`` training steps of images per second (after warm-up)."""
    clock = Clock(device)
    for _ in range(warmup):
        step()
    samples = sorted(batch * steps / clock.seconds(step, steps) for _ in range(repeats))
    return samples[len(samples) // 2]


@dataclass(frozen=True)
class Run:
    """One row of the table: which models, which options, and whether the discriminator gives logits."""

    models: str
    build: Callable[[], Models]
    options: Options
    logits: bool


_EXAMPLE = ("examples/dcgan.py", example_models)
RUNS = [
    Run("reference (pytorch/examples style)", reference_models, Options(), logits=False),
    Run(*_EXAMPLE, Options(), logits=True),
    Run(*_EXAMPLE, Options(amp=True), logits=True),
    Run(*_EXAMPLE, Options(channels_last=True), logits=True),
    Run(*_EXAMPLE, Options(compile=True), logits=True),
    Run(*_EXAMPLE, Options(amp=True, channels_last=True, compile=True), logits=True),
]


def section(settings: Settings) -> str:
    """The training section of RESULTS.md: measured on CUDA, otherwise a note saying why not."""
    title = "## Training throughput (DCGAN 64×64, batch 128)"
    if settings.device.type != "cuda":
        return "\n\n".join([title, "**Not measured: no GPU was available in this session.** This benchmark is "
                            "CUDA-only (`python benchmarks/run.py --device cuda`); CPU figures would say nothing "
                            "about GPU training speed, so none are given."])
    torch.backends.cudnn.benchmark = True  # as both the classic example and examples/dcgan.py set it
    rows, reference = [], 0.0
    for run in RUNS:
        torch.manual_seed(0)
        step = gan_step(run.build(), batch=BATCH, device=settings.device, options=run.options, logits=run.logits)
        rate = images_per_second(step, device=settings.device, batch=BATCH, steps=5 if settings.quick else 50,
                                 warmup=3 if settings.quick else 20, repeats=3 if settings.quick else 5)
        reference = reference or rate
        rows.append([run.models, run.options.label(), f"{rate:,.0f}", f"×{rate / reference:.2f}"])
    return "\n\n".join([
        title,
        f"On {torch.cuda.get_device_name(settings.device)}. Reference: the classic DCGAN models and step, fp32 "
        "eager. examples/dcgan.py: the models its `build` makes (features=64: the same widths) trained by its "
        "step (logits + BCEWithLogits) with its options. Random batches already on the GPU, so data loading is "
        "not measured; images/s is the median of blocks of 50 steps after 20 warm-up steps (CUDA events).",
        table(("models", "options", "images/s (median)", "vs reference"), rows),
    ])
