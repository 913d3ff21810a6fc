"""Training throughput (CUDA only): the autoshape DCGAN against a hand-written reference loop.

The reference runs the step of the classic pytorch/examples DCGAN on its 64×64 generator and
discriminator spelled out layer by layer (re-typed in tests/architectures.py): N(0, 0.02)
initialisation, Sigmoid + BCELoss, Adam(2e-4, β1=0.5), fp32 and eager. The autoshape side builds the same
architecture with UpsamplingStack/DownsamplingStack and runs the same step with the options
the examples offer (bf16 autocast, channels_last, torch.compile). Both train on random
batches already on the GPU, so the figure is the models' and the step's speed, not data loading.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

import autoshape
from tests.architectures import dcgan_discriminator, dcgan_generator

from .report import Settings, table
from .timing import Clock

NOISE, IMAGE, BATCH = 100, 64, 128


def autoshape_generator() -> nn.Module:
    """The same generator, planned by autoshape from 1×1 to 64×64."""
    return autoshape.UpsamplingStack(NOISE, (512, 256, 128, 64), 3, input_size=1, output_size=IMAGE,
                                     kernel_size=4, bias=False)


def autoshape_discriminator() -> nn.Module:
    """The same discriminator, planned by autoshape from 64×64 to 1×1, returning logits."""
    return autoshape.DownsamplingStack(3, (64, 128, 256, 512), 1, input_size=IMAGE, output_size=1, kernel_size=4,
                                       bias=False, activation=lambda: nn.LeakyReLU(0.2), final_activation=None)


def dcgan_init(module: nn.Module) -> None:
    """The DCGAN initialisation: conv weights N(0, 0.02), norm weights N(1, 0.02), norm biases 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


@dataclass(frozen=True)
class Options:
    """The examples' speed options."""

    amp: bool = False
    channels_last: bool = False
    compile: bool = False

    def label(self) -> str:
        """``fp32 eager`` or the list of options that are on."""
        on = [name for name, value in (("amp (bf16)", self.amp), ("channels_last", self.channels_last),
                                       ("compile", self.compile)) if value]
        return " + ".join(on) or "fp32 eager"


def gan_step(generator: nn.Module, discriminator: nn.Module, *, batch: int, device: torch.device,
             options: Options, logits: bool) -> Callable[[], None]:
    """One DCGAN training step (discriminator on real and fake, then generator) on random real images."""
    memory_format = torch.channels_last if options.channels_last else torch.contiguous_format
    generator.to(device, memory_format=memory_format).apply(dcgan_init).train()
    discriminator.to(device, memory_format=memory_format).apply(dcgan_init).train()
    g, d = generator, discriminator
    if options.compile:
        g, d = torch.compile(generator), torch.compile(discriminator)
    criterion = nn.BCEWithLogitsLoss() if logits else nn.BCELoss()
    opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real = torch.rand(batch, 3, IMAGE, IMAGE, device=device).mul_(2).sub_(1).contiguous(memory_format=memory_format)
    ones, zeros = torch.ones(batch, device=device), torch.zeros(batch, device=device)

    def loss(images: Tensor, target: Tensor) -> Tensor:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=options.amp):
            score = d(images).reshape(-1)
        return criterion(score.float(), target)

    def step() -> None:
        opt_d.zero_grad(set_to_none=True)
        noise = torch.randn(batch, NOISE, 1, 1, device=device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=options.amp):
            fake = g(noise)
        (loss(real, ones) + loss(fake.detach(), zeros)).backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        loss(fake, ones).backward()
        opt_g.step()

    return step


def images_per_second(step: Callable[[], None], *, device: torch.device, batch: int, steps: int,
                      warmup: int, repeats: int) -> float:
    """Median over ``repeats`` samples of ``steps`` training steps of images per second (after warm-up)."""
    clock = Clock(device)
    for _ in range(warmup):
        step()
    samples = [batch * steps / clock.seconds(step, steps) for _ in range(repeats)]
    return sorted(samples)[len(samples) // 2]


@dataclass(frozen=True)
class Run:
    """One row of the table: which models, which options, and whether the discriminator gives logits."""

    models: str
    generator: Callable[[], nn.Module]
    discriminator: Callable[[], nn.Module]
    options: Options
    logits: bool


_AUTOSHAPE = ("autoshape stacks", autoshape_generator, autoshape_discriminator)
RUNS = [
    Run("reference (pytorch/examples style)", dcgan_generator, dcgan_discriminator, Options(), logits=False),
    Run(*_AUTOSHAPE, Options(), logits=True),
    Run(*_AUTOSHAPE, Options(amp=True), logits=True),
    Run(*_AUTOSHAPE, Options(channels_last=True), logits=True),
    Run(*_AUTOSHAPE, Options(compile=True), logits=True),
    Run(*_AUTOSHAPE, Options(amp=True, channels_last=True, compile=True), logits=True),
]


def section(settings: Settings) -> str:
    """The training section of RESULTS.md: measured on CUDA, otherwise a note saying why not."""
    title = "## Training throughput (DCGAN 64×64, batch 128)"
    if settings.device.type != "cuda":
        return "\n\n".join([title, "**Not measured: no GPU was available in this session.** This benchmark is "
                            "CUDA-only (`python benchmarks/run.py --device cuda`); the CPU figures would say nothing "
                            "about GPU training speed, so none are given."])
    rows, reference = [], 0.0
    for run in RUNS:
        torch.manual_seed(0)
        step = gan_step(run.generator(), run.discriminator(), batch=BATCH, device=settings.device,
                        options=run.options, logits=run.logits)
        rate = images_per_second(step, device=settings.device, batch=BATCH, steps=5 if settings.quick else 50,
                                 warmup=2 if settings.quick else 20, repeats=3 if settings.quick else 5)
        reference = reference or rate
        rows.append([run.models, run.options.label(), f"{rate:,.0f}", f"×{rate / reference:.2f}"])
    return "\n\n".join([
        title,
        f"On {torch.cuda.get_device_name(settings.device)}. Random real batches already on the GPU; images/s is "
        "the median of timed blocks of steps after warm-up (CUDA events). The reference uses Sigmoid + BCELoss "
        "as the classic example does; the autoshape runs use logits + BCEWithLogitsLoss (autocast-safe).",
        table(("models", "options", "images/s (median)", "vs reference"), rows),
    ])
