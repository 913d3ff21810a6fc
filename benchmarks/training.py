"""Training throughput (CUDA only): the examples' models against hand-written references.

The reference is the classic pytorch/examples DCGAN at 64×64: its generator and discriminator
spelled out layer by layer (re-typed in tests/architectures.py), N(0, 0.02) initialisation,
Sigmoid + BCELoss, Adam(2e-4, β1=0.5), fp32 and eager. The autoshape side takes the generator
and discriminator that examples/dcgan.py builds (``build``, with ``features=64``: the same
widths) and trains them with the example's step (logits + BCEWithLogits), under each of the
example's options: bf16 autocast, channels_last and torch.compile. The autoencoder of
examples/mirror_autoencoder.py (MirrorAutoencoder, MSE, Adam) is timed the same way against
its own layers run as a plain ``decoder(encoder(x))``. Everything trains on random batches
already on the GPU: the figure is the step's speed, not data loading.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from autoshape import MirrorAutoencoder
from tests.architectures import dcgan_discriminator, dcgan_generator

from .report import REPO, Settings, table
from .timing import Clock
from .twins import PlainAutoencoder, reinitialised

IMAGE, BATCH = 64, 128
AE_IMAGE, AE_BATCH = (29, 29), 64  # examples/mirror_autoencoder.py's defaults
Models = tuple[nn.Module, nn.Module, int]  # generator, discriminator, noise size
Step = Callable[[], None]


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


def gan_step(models: Models, *, batch: int, device: torch.device, options: Options, logits: bool) -> Step:
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


def example_autoencoder() -> nn.Module:
    """examples/mirror_autoencoder.py's model at its defaults: 1×29×29, width 32, a code of 16."""
    example_module = example("mirror_autoencoder")
    encoder = example_module.encoder(1, AE_IMAGE, 32, 16)
    return MirrorAutoencoder(encoder, (1, *AE_IMAGE), final_activation=nn.Tanh())


def plain_autoencoder() -> nn.Module:
    """The same layers run as ``decoder(encoder(x))``: no per-call sizes, as one writes it by hand."""
    mirrored = example_autoencoder()
    return PlainAutoencoder(reinitialised(mirrored.encoder), reinitialised(nn.Sequential(*mirrored.decoder)))


def autoencoder_step(model: nn.Module, *, batch: int, device: torch.device, options: Options) -> Step:
    """One reconstruction step as examples/mirror_autoencoder.py takes it: MSE, then Adam."""
    memory_format = torch.channels_last if options.channels_last else torch.contiguous_format
    model.to(device, memory_format=memory_format).train()
    trained = torch.compile(model) if options.compile else model
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    images = (torch.rand(batch, 1, *AE_IMAGE, device=device) * 2 - 1).contiguous(memory_format=memory_format)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=options.amp):
            loss = F.mse_loss(trained(images).float(), images)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def images_per_second(step: Step, *, device: torch.device, batch: int, steps: int,
                      warmup: int, repeats: int) -> float:
    """Median over ``repeats`` blocks of ``steps`` training steps of images per second (after warm-up)."""
    clock = Clock(device)
    for _ in range(warmup):
        step()
    samples = sorted(batch * steps / clock.seconds(step, steps) for _ in range(repeats))
    return samples[len(samples) // 2]


@dataclass(frozen=True)
class Run:
    """One row of a table: what is trained (``build``), with which options, and how one step is made."""

    models: str
    options: Options
    build: Callable[[], Any]
    step: Callable[..., Step]
    batch: int


def _gan_step(logits: bool) -> Callable[..., Step]:
    return lambda models, **kwargs: gan_step(models, logits=logits, **kwargs)


_ALL_OPTIONS = [Options(), Options(amp=True), Options(channels_last=True), Options(compile=True),
                Options(amp=True, channels_last=True, compile=True)]
DCGAN_RUNS = [Run("reference (pytorch/examples style)", Options(), reference_models, _gan_step(False), BATCH)] + [
    Run("examples/dcgan.py", options, example_models, _gan_step(True), BATCH) for options in _ALL_OPTIONS]
AUTOENCODER_RUNS = [
    Run("same layers as plain `decoder(encoder(x))`", Options(), plain_autoencoder, autoencoder_step, AE_BATCH)] + [
    Run("examples/mirror_autoencoder.py (MirrorAutoencoder)", options, example_autoencoder, autoencoder_step,
        AE_BATCH) for options in _ALL_OPTIONS]


def _rows(settings: Settings, runs: list[Run]) -> list[list[object]]:
    rows, reference = [], 0.0
    for run in runs:
        torch.manual_seed(0)
        step = run.step(run.build(), batch=run.batch, device=settings.device, options=run.options)
        rate = images_per_second(step, device=settings.device, batch=run.batch, steps=5 if settings.quick else 50,
                                 warmup=3 if settings.quick else 20, repeats=3 if settings.quick else 5)
        reference = reference or rate
        rows.append([run.models, run.options.label(), f"{rate:,.0f}", f"×{rate / reference:.2f}"])
    return rows


HEADERS = ("models", "options", "images/s (median)", "vs first row")


def section(settings: Settings) -> str:
    """The training section of RESULTS.md: measured on CUDA, otherwise a note saying why not."""
    title = "## Training throughput (CUDA)"
    if settings.device.type != "cuda":
        return "\n\n".join([title, "**Not measured: no GPU was available in this session.** This benchmark is "
                             "CUDA-only (`python benchmarks/run.py --device cuda`); CPU figures would say nothing "
                             "about GPU training speed, so none are given."])
    torch.backends.cudnn.benchmark = True  # as both the classic example and the examples set it
    return "\n\n".join([
        title,
        f"On {torch.cuda.get_device_name(settings.device)}. Random batches already on the GPU, so data loading "
        "is not measured; images/s is the median of blocks of 50 steps after 20 warm-up steps (CUDA events).",
        f"### DCGAN 64×64, batch {BATCH}",
        "Reference: the classic DCGAN models and step, fp32 eager. examples/dcgan.py: the models its `build` "
        "makes (features=64: the same widths) trained by its step (logits + BCEWithLogits) with its options.",
        table(HEADERS, _rows(settings, DCGAN_RUNS)),
        f"### Autoencoder {AE_IMAGE[0]}×{AE_IMAGE[1]}, batch {AE_BATCH}",
        "examples/mirror_autoencoder.py's MirrorAutoencoder (which records sizes per call) against the same "
        "layers run as a plain `decoder(encoder(x))`; MSE and Adam as in the example.",
        table(HEADERS, _rows(settings, AUTOENCODER_RUNS)),
    ])
