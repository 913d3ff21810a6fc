"""DCGAN with a generator and a discriminator planned by autoshape for the image size you ask for.

    python examples/dcgan.py                          # 32×32 digits
    python examples/dcgan.py --conditional            # class-conditional: 64 noise + 10 one-hot = 74 inputs
    python examples/dcgan.py --image-size 28          # or 64, or 48x40: autoshape plans the strides
    torchrun --nproc_per_node=2 examples/dcgan.py     # DistributedDataParallel

The generator is an ``UpsamplingStack`` from a 1×1 input and the discriminator a
``DownsamplingStack`` down to a 1×1 score, both with DCGAN's kernel 4: autoshape solves the
strides and paddings (1→4→8→16→32 for 32, 1→3→6→14→28 for 28). Training follows the DCGAN
recipe: Adam(lr 2e-4, betas (0.5, 0.999)), weights drawn from N(0, 0.02), BatchNorm, separate
real and fake discriminator batches, the non-saturating generator loss.

With ``--conditional`` the generator gets the label as 10 one-hot inputs after the noise, and the
discriminator gets it as 10 extra input planes, constant over the image, one-hot across the
planes (the conditional DCGAN of Mirza & Osindero 2014 / Radford et al. 2015). The label
accuracy of generated samples is then judged by a small classifier trained on real images, whose
accuracy on the real held-out images is the ceiling.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from _common import Progress, Runtime, loader, make_parser, positive_int, predict, prepare, run, start, train
from _data import CLASSES, Images, load_images, resized, to_model
from _outputs import resume, save_checkpoint, save_grid, save_metrics
from torch import Tensor, nn

from autoshape import DownsamplingStack, UpsamplingStack

NOISE = 64
CLASSIFIER_STEPS = 300


def widths(size: tuple[int, int], features: int) -> list[int]:
    """Discriminator widths, doubling per layer; one layer per halving, the last from 4 to 1."""
    layers = max(2, math.ceil(math.log2(max(size))) - 1)
    return [features * 2**n for n in range(layers - 1)]


def dcgan_init(module: nn.Module) -> None:
    """DCGAN's initialisation: conv weights from N(0, 0.02), norm scales from N(1, 0.02), zero shifts."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def build(size: tuple[int, int], channels: int, features: int, labels: int) -> tuple[nn.Module, nn.Module]:
    """The generator (noise + labels at 1×1 → image) and the discriminator (image + label planes → score)."""
    hidden = widths(size, features)
    generator = UpsamplingStack(NOISE + labels, hidden[::-1], channels, input_size=1, output_size=size,
                                kernel_size=4, bias=False)
    discriminator = DownsamplingStack(channels + labels, hidden, 1, input_size=size, output_size=1,
                                      kernel_size=4, bias=False)
    generator.apply(dcgan_init)
    discriminator.apply(dcgan_init)
    return generator, discriminator


class Conditioning:
    """How the label reaches each network: one-hot inputs for G, one-hot constant planes for D."""

    def __init__(self, conditional: bool, size: tuple[int, int]) -> None:
        self.classes = CLASSES if conditional else 0
        self.size = size

    def generator_input(self, noise: Tensor, labels: Tensor) -> Tensor:
        if not self.classes:
            return noise[:, :, None, None]
        return torch.cat([noise, F.one_hot(labels, self.classes).to(noise.dtype)], 1)[:, :, None, None]

    def discriminator_input(self, images: Tensor, labels: Tensor) -> Tensor:
        if not self.classes:
            return images
        planes = F.one_hot(labels, self.classes).to(images.dtype)[:, :, None, None].expand(-1, -1, *self.size)
        return torch.cat([images, planes], 1)


def gan_step(generator: nn.Module, discriminator: nn.Module, g_optimizer: torch.optim.Optimizer,
             d_optimizer: torch.optim.Optimizer, conditioning: Conditioning,
             runtime: Runtime) -> Callable[[Tensor, Tensor], dict[str, Tensor]]:
    """One training step on real images (on the device, in [-1, 1]) and their labels; returns the losses.

    The discriminator learns from a real and a fake batch (one backward each, as DCGAN does:
    DDP-friendly), then the generator from the non-saturating loss. ``generator`` and
    ``discriminator`` are the modules to train with (compiled or wrapped by ``prepare``).
    """
    def score(images: Tensor, labels: Tensor, real: bool) -> Tensor:
        logits = discriminator(conditioning.discriminator_input(images, labels)).flatten().float()
        return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, float(real)))

    def step(real: Tensor, labels: Tensor) -> dict[str, Tensor]:
        noise = torch.randn(len(labels), NOISE, device=real.device)
        d_optimizer.zero_grad(set_to_none=True)
        with runtime.autocast():
            fake = generator(conditioning.generator_input(noise, labels))
            d_real = score(real, labels, True)
        d_real.backward()
        with runtime.autocast():
            d_fake = score(fake.detach(), labels, False)
        d_fake.backward()
        d_optimizer.step()
        g_optimizer.zero_grad(set_to_none=True)
        with runtime.autocast():
            g_loss = score(fake, labels, True)
        g_loss.backward()
        g_optimizer.step()
        return {"loss_d": (d_real + d_fake).detach(), "loss_g": g_loss.detach()}

    return step


def classifier(channels: int) -> nn.Sequential:
    """A small judge of digits: three stride-2 convs, global average pooling, a linear layer."""
    return nn.Sequential(
        nn.Conv2d(channels, 32, 3, stride=2, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.Conv2d(64, 128, 3, stride=2, padding=1), nn.BatchNorm2d(128), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, CLASSES),
    )


def train_judge(data: Images, size: tuple[int, int], runtime: Runtime, max_steps: int | None, seed: int) -> nn.Module:
    """The classifier, trained on real training images in this process only (rank 0 calls it)."""
    judge = classifier(data.channels).to(runtime.device)
    optimizer = torch.optim.Adam(judge.parameters(), lr=1e-3)
    images, labels = data.train.tensors
    order = torch.Generator().manual_seed(seed)
    steps = min(CLASSIFIER_STEPS, max_steps or CLASSIFIER_STEPS)
    for _ in range(steps):
        pick = torch.randint(len(labels), (128,), generator=order)
        loss = F.cross_entropy(judge(to_model(images[pick], size, data.max_value, runtime)),
                               labels[pick].to(runtime.device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return judge


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    parser = make_parser("DCGAN planned by autoshape for any image size.", image_size_default="32", epochs=100,
                         batch_size=128, lr=2e-4, out="runs/dcgan")
    parser.add_argument("--conditional", action="store_true", help="class-conditional GAN (64 noise + 10 one-hot)")
    parser.add_argument("--features", type=positive_int, default=32, help="width of the discriminator's first layer")
    args = parser.parse_args(argv)
    runtime = start(args)
    data = load_images(args.dataset, args.data_dir, runtime)
    size = args.image_size
    conditioning = Conditioning(args.conditional, size)
    generator, discriminator = build(size, data.channels, args.features, conditioning.classes)
    g_train, d_train = prepare(generator, runtime, args.compile), prepare(discriminator, runtime, args.compile)
    g_optimizer = torch.optim.Adam(generator.parameters(), lr=args.lr, betas=(0.5, 0.999))
    d_optimizer = torch.optim.Adam(discriminator.parameters(), lr=args.lr, betas=(0.5, 0.999))
    runtime.log(f"generator: {generator.plan}\ndiscriminator: {discriminator.plan}")

    progress = Progress()
    config = {"dataset": args.dataset, "image_size": list(size), "conditional": args.conditional,
              "features": args.features}
    parts = {"generator": generator, "discriminator": discriminator, "g_optimizer": g_optimizer,
             "d_optimizer": d_optimizer}
    if args.resume:
        resume(runtime, args.out, config, progress, parts)

    gan = gan_step(g_train, d_train, g_optimizer, d_optimizer, conditioning, runtime)

    def step(batch: tuple[Tensor, Tensor]) -> dict[str, Tensor]:
        return gan(to_model(batch[0], size, data.max_value, runtime), batch[1].to(runtime.device))

    grid_noise = torch.randn(10 if args.conditional else 100, NOISE, generator=torch.Generator().manual_seed(args.seed))
    if args.conditional:  # row r: one noise vector; column c: class c
        grid_noise = grid_noise.repeat_interleave(10, 0)
    grid_noise, grid_labels = grid_noise.to(runtime.device), torch.arange(10, device=runtime.device).repeat(10)

    def end_of_epoch() -> None:
        save_checkpoint(runtime, args.out, config, progress, parts)
        if runtime.is_main:
            samples = predict(generator, conditioning.generator_input(grid_noise, grid_labels))
            save_grid(runtime, samples, args.out / "samples.png", columns=10)

    batches = loader(data.train, args.batch_size, runtime, args.seed)
    metrics: dict[str, float] = train(runtime, args, batches, step, progress, end_of_epoch)
    if args.conditional and runtime.is_main:
        metrics.update(label_accuracy(generator, conditioning, data, size, runtime, args.max_steps, args.seed))
    save_metrics(runtime, args.out, metrics)
    return metrics


def label_accuracy(generator: nn.Module, conditioning: Conditioning, data: Images, size: tuple[int, int],
                   runtime: Runtime, max_steps: int | None, seed: int) -> dict[str, float]:
    """Accuracy of a real-data classifier on 1000 generated samples (100 per class) and on real held-out data."""
    judge = train_judge(data, size, runtime, max_steps, seed)
    test_images, test_labels = resized(data.test, size, data.max_value, runtime, limit=10000)
    labels = torch.arange(CLASSES, device=runtime.device).repeat(100)
    noise = torch.randn(len(labels), NOISE, generator=torch.Generator().manual_seed(1)).to(runtime.device)
    samples = runtime.memory_format(predict(generator, conditioning.generator_input(noise, labels)))
    generated = (predict(judge, samples).argmax(1) == labels).float().mean().item()
    real = (predict(judge, test_images).argmax(1) == test_labels).float().mean().item()
    return {"generated_label_accuracy": round(generated, 4), "real_test_accuracy_ceiling": round(real, 4)}


if __name__ == "__main__":
    sys.exit(run(main))
