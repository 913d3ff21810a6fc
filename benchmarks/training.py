"""Training throughput (CUDA only): the examples' models and steps against hand-written references.

DCGAN. The reference is the classic pytorch/examples DCGAN at 64×64: its generator and
discriminator spelled out layer by layer (re-typed in tests/architectures.py), N(0, 0.02)
initialisation, and its training loop transcribed statement by statement in
``reference_dcgan_step``: Sigmoid + BCELoss, Adam(lr 2e-4, betas (0.5, 0.999)), real label 1 and
fake label 0, and the three ``.item()`` reads its log line takes every step; fp32, eager. The
autoshape side is examples/dcgan.py itself: the generator and discriminator its ``build`` makes
(``features=64``: the same widths) trained by its ``gan_step`` (logits + BCEWithLogits, losses
kept on the device), set up by its ``prepare`` (channels_last, torch.compile) and ``Runtime``
(bf16 autocast): each of the example's options.

Autoencoder. examples/mirror_autoencoder.py's MirrorAutoencoder (MSE, Adam) against its own
layers run as a plain ``decoder(encoder(x))``.

Everything trains on random batches already on the GPU: the figure is the step's speed, not
data loading.
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
from .timing import Clock, Step
from .twins import PlainAutoencoder, reinitialised

IMAGE, BATCH = 64, 128
AE_IMAGE, AE_BATCH = (29, 29), 64  # examples/mirror_autoencoder.py's defaults
GOAL = 2.0  # issue #15: the example's fastest options against the reference loop
Models = tuple[nn.Module, nn.Module, int]  # generator, discriminator, noise size


def example(name: str) -> ModuleType:
    """A module of examples/ (they import their helpers by bare name, so the folder goes on sys.path)."""
    folder = str(REPO / "examples")
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return importlib.import_module(name)


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

    def runtime(self, device: torch.device) -> Any:
        """The examples' ``Runtime`` for one process on ``device`` with these options."""
        return example("_common").Runtime(device, 0, 1, self.amp, self.channels_last)


def random_images(batch: int, channels: int, size: int | tuple[int, int], device: torch.device) -> Tensor:
    """A batch of uniform random images in [-1, 1] on ``device``."""
    sides = (size, size) if isinstance(size, int) else size
    return torch.rand(batch, channels, *sides, device=device) * 2 - 1


def example_models() -> Models:
    """examples/dcgan.py's generator and discriminator for 64×64 RGB at the reference widths."""
    dcgan = example("dcgan")
    generator, discriminator = dcgan.build((IMAGE, IMAGE), 3, 64, 0)
    return generator, discriminator, dcgan.NOISE


def reference_models() -> Models:
    """The classic DCGAN pair with the classic initialisation (the example's ``dcgan_init`` is that rule)."""
    init = example("dcgan").dcgan_init
    return dcgan_generator().apply(init), dcgan_discriminator().apply(init), 100


def reference_dcgan_step(models: Models, *, batch: int, device: torch.device, options: Options) -> Step:
    """The classic pytorch/examples DCGAN training step, transcribed (fp32, eager: ``options`` must be off)."""
    if options != Options():
        raise ValueError("the reference loop has no options: it runs fp32 and eager")
    net_g, net_d, nz = models
    net_g.to(device).train()
    net_d.to(device).train()
    criterion = nn.BCELoss()
    optimizer_d = torch.optim.Adam(net_d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optimizer_g = torch.optim.Adam(net_g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real_label, fake_label = 1.0, 0.0
    real = random_images(batch, 3, IMAGE, device)
    log: list[float] = []  # the values of the loop's log line

    def step() -> None:
        # (1) update D: maximize log(D(x)) + log(1 - D(G(z)))
        net_d.zero_grad()
        label = torch.full((batch,), real_label, dtype=real.dtype, device=device)
        output = net_d(real).view(-1)
        err_d_real = criterion(output, label)
        err_d_real.backward()
        d_x = output.mean().item()
        noise = torch.randn(batch, nz, 1, 1, device=device)
        fake = net_g(noise)
        label.fill_(fake_label)
        output = net_d(fake.detach()).view(-1)
        err_d_fake = criterion(output, label)
        err_d_fake.backward()
        d_g_z1 = output.mean().item()
        optimizer_d.step()
        # (2) update G: maximize log(D(G(z)))
        net_g.zero_grad()
        label.fill_(real_label)
        output = net_d(fake).view(-1)
        err_g = criterion(output, label)
        err_g.backward()
        d_g_z2 = output.mean().item()
        optimizer_g.step()
        log[:] = [d_x, d_g_z1, d_g_z2]

    return step


def example_dcgan_step(models: Models, *, batch: int, device: torch.device, options: Options) -> Step:
    """examples/dcgan.py's own step (``gan_step``), set up as the example sets it up for ``options``."""
    dcgan, common = example("dcgan"), example("_common")
    generator, discriminator, _ = models
    runtime = options.runtime(device)
    g_train, d_train = (common.prepare(m, runtime, options.compile) for m in (generator, discriminator))
    g_optimizer = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    d_optimizer = torch.optim.Adam(discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    conditioning = dcgan.Conditioning(False, (IMAGE, IMAGE))
    train = dcgan.gan_step(g_train, d_train, g_optimizer, d_optimizer, conditioning, runtime)
    real = runtime.memory_format(random_images(batch, 3, IMAGE, device))
    labels = torch.zeros(batch, dtype=torch.long, device=device)
    return lambda: train(real, labels)


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
    runtime = options.runtime(device)
    trained = example("_common").prepare(model, runtime, options.compile)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    images = runtime.memory_format(random_images(batch, 1, AE_IMAGE, device))

    def step() -> None:
        with runtime.autocast():
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


ALL_OPTIONS = [Options(), Options(amp=True), Options(channels_last=True), Options(compile=True),
               Options(amp=True, channels_last=True, compile=True)]
SHORT_OPTIONS = [Options(), Options(amp=True, channels_last=True),
                 Options(amp=True, channels_last=True, compile=True)]
REFERENCE = "reference (pytorch/examples loop)"


def dcgan_runs(settings: Settings) -> list[Run]:
    """The reference, then examples/dcgan.py with each option set (fewer sets in a short run)."""
    chosen = SHORT_OPTIONS if settings.short else ALL_OPTIONS
    return [Run(REFERENCE, Options(), reference_models, reference_dcgan_step, BATCH)] + [
        Run("examples/dcgan.py", options, example_models, example_dcgan_step, BATCH) for options in chosen]


def autoencoder_runs(settings: Settings) -> list[Run]:
    """The plain layers, then the example's MirrorAutoencoder with each option set (no compile when short)."""
    chosen = SHORT_OPTIONS[:2] if settings.short else ALL_OPTIONS
    return [Run("same layers as plain `decoder(encoder(x))`", Options(), plain_autoencoder, autoencoder_step,
                AE_BATCH)] + [
        Run("examples/mirror_autoencoder.py (MirrorAutoencoder)", options, example_autoencoder, autoencoder_step,
            AE_BATCH) for options in chosen]


def _schedule(settings: Settings) -> dict[str, int]:
    if settings.quick:
        return {"steps": 5, "warmup": 3, "repeats": 3}
    if settings.short:
        return {"steps": 25, "warmup": 10, "repeats": 3}
    return {"steps": 50, "warmup": 20, "repeats": 5}


def measure(settings: Settings, runs: list[Run]) -> list[tuple[Run, float]]:
    """Images per second of each run on the settings' device."""
    rates = []
    for run in runs:
        torch.manual_seed(0)
        step = run.step(run.build(), batch=run.batch, device=settings.device, options=run.options)
        rates.append((run, images_per_second(step, device=settings.device, batch=run.batch,
                                             **_schedule(settings))))
    return rates


def rows(rates: list[tuple[Run, float]]) -> list[list[object]]:
    """Table rows: models, options, images/s, and the ratio to the first row."""
    reference = rates[0][1]
    return [[run.models, run.options.label(), f"{rate:,.0f}", f"×{rate / reference:.2f}"] for run, rate in rates]


def goal_line(rates: list[tuple[Run, float]]) -> str:
    """Whether the example's last (fastest) option set reaches ``GOAL`` times the reference's images/s."""
    (_, reference), (last, rate) = rates[0], rates[-1]
    ratio = rate / reference
    met = "met" if ratio >= GOAL else "not met"
    return (f"Goal: examples/dcgan.py with {last.options.label()} at ≥ {GOAL:g}× the reference's images/s: "
            f"**{met}** (×{ratio:.2f}). Sample quality is judged by the full-length `dcgan.py --conditional` "
            "runs of benchmarks/gpu_check.sh (label accuracy), not here.")


HEADERS = ("models", "options", "images/s (median)", "vs first row")


def tables(settings: Settings) -> list[str]:
    """The DCGAN and autoencoder tables, measured on the settings' device."""
    schedule = _schedule(settings)
    dcgan = measure(settings, dcgan_runs(settings))
    return [
        f"Random batches already on the device, so data loading is not measured; images/s is the median of "
        f"{schedule['repeats']} blocks of {schedule['steps']} steps after {schedule['warmup']} warm-up steps "
        "(the warm-up includes any compilation).",
        f"### DCGAN 64×64, batch {BATCH}",
        "Reference: the classic DCGAN models and training loop, transcribed (fp32 eager; it reads three "
        "scalars per step with `.item()` for its log line, as the original does). examples/dcgan.py: the models "
        "its `build` makes (features=64: the same widths; 64 noise inputs instead of 100) trained by its own "
        "`gan_step`, which keeps the losses on the device, set up by its `prepare` for each option set.",
        table(HEADERS, rows(dcgan)),
        goal_line(dcgan),
        f"### Autoencoder {AE_IMAGE[0]}×{AE_IMAGE[1]}, batch {AE_BATCH}",
        "examples/mirror_autoencoder.py's MirrorAutoencoder (which records sizes per call) against the same "
        "layers run as a plain `decoder(encoder(x))`; MSE and Adam as in the example.",
        table(HEADERS, rows(measure(settings, autoencoder_runs(settings)))),
    ]


def section(settings: Settings) -> str:
    """The training section of RESULTS.md: measured on CUDA, otherwise a note saying why not."""
    title = "## Training throughput (CUDA)"
    if settings.device.type != "cuda":
        return "\n\n".join([title, "**Not measured: this benchmark has not yet run on a GPU.** This benchmark is "
                             "CUDA-only (`python benchmarks/run.py --device cuda`; `bash benchmarks/gpu_check.sh` "
                             "runs it with the rest of the GPU check); CPU figures would say nothing about GPU "
                             "training speed, so none are given."])
    torch.backends.cudnn.benchmark = True  # as both the classic example and the examples set it
    return "\n\n".join([title, f"On {torch.cuda.get_device_name(settings.device)}.", *tables(settings)])
