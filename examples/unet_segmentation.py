"""Segment digit strokes in very noisy 37×29 images with a U-Net that autoshape grows from an encoder.

    python examples/unet_segmentation.py                         # digits at 37×29 (odd, not square)
    python examples/unet_segmentation.py --image-size 101x67     # any size the encoder accepts
    python examples/unet_segmentation.py --backbone hf-resnet    # a U-Net on an HF ResNet's pyramid
    python examples/unet_segmentation.py --backbone monai-resnet # ... on MONAI's ResNetFeatures
    torchrun --nproc_per_node=2 examples/unet_segmentation.py    # DistributedDataParallel

The task: each digit, scaled to [-1, 1], gets Gaussian noise of standard deviation ``--noise``
(1.0 by default: half the full pixel range). The target mask is the stroke in the clean image
(pixels above mid-grey). The net sees only the noisy image.

The encoder is written by hand: a 3×3 block at each of four resolutions, joined by stride-2
convolutions (37×29 → 19×15 → 10×8 → 5×4). ``MirrorUNet`` splits it into stages where the
resolution changes and builds the way up: each step lands exactly on the size of the matching
encoder stage (19×15, then 37×29, for any input size) and concatenates the skip; no padding,
cropping or interpolation. The held-out IoU of the stroke mask is printed next to the trivial
baseline of thresholding the noisy pixel itself.

``--backbone hf-resnet`` (an HF transformers ``ResNetModel`` from a small config, returning its
``hidden_states``) and ``--backbone monai-resnet`` (MONAI's ``ResNetFeatures``, resnet10) give
``MirrorUNet`` a backbone that returns a pyramid of feature maps instead; the decoder meets each
map at its exact size. Both start from random weights, since nothing is downloaded here.
``--weights FILE`` loads pretrained weights into the backbone first: a ``state_dict`` saved with
``torch.save(backbone.state_dict(), FILE)``, e.g. from ``ResNetModel.from_pretrained(...)`` on a
machine with the hub, or from a checkpoint of your own.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from _common import (
    ExampleError,
    Runtime,
    loader,
    make_parser,
    positive_int,
    predict,
    prepare,
    run,
    start,
)
from _data import Images, load_images, resized, to_model
from _fit import fit
from _outputs import save_grid
from torch import Tensor, nn

from autoshape import MirrorUNet

SHOWN = 10  # held-out images in each row of the PNG


def block(in_channels: int, out_channels: int, stride: int = 1) -> list[nn.Module]:
    """A 3×3 convolution (stride 1 keeps the size, stride 2 halves it, rounding up), BatchNorm, ReLU."""
    return [nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1), nn.BatchNorm2d(out_channels), nn.ReLU()]


def encoder(channels: int, width: int) -> nn.Sequential:
    """Four resolutions, widths ``width`` to ``8·width``: a 3×3 block, then a stride-2 block per level."""
    layers = block(channels, width) + block(width, width)
    for level in range(3):
        wide = width * 2**level
        layers += block(wide, 2 * wide, stride=2) + block(2 * wide, 2 * wide)
    return nn.Sequential(*layers)


BACKBONES = ("mirror", "hf-resnet", "monai-resnet")


def backbone(name: str, channels: int, width: int) -> tuple[nn.Module, str | None]:
    """The encoder or pyramid backbone, and the ``output=`` that picks its feature maps."""
    if name == "mirror":
        return encoder(channels, width), None
    if name == "hf-resnet":
        from transformers import ResNetConfig, ResNetModel
        widths = [width * 2**level for level in range(4)]
        config = ResNetConfig(num_channels=channels, embedding_size=width, hidden_sizes=widths, depths=[1, 1, 1, 1],
                              output_hidden_states=True)
        return ResNetModel(config), "hidden_states"
    from monai.networks.nets import ResNetFeatures
    return ResNetFeatures("resnet10", pretrained=False, spatial_dims=2, in_channels=channels), None


def load_weights(model: nn.Module, path: Path) -> None:
    """Load a saved ``state_dict`` (``torch.save(model.state_dict(), path)``) into ``model``, strictly.

    Raises:
        ExampleError: the file is missing, or its keys or shapes are not the model's.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except (OSError, RuntimeError) as error:
        first = " ".join(line.strip() for line in str(error).splitlines()[:2])
        raise ExampleError(f"--weights {path}: {first} Fix: save the state_dict of a backbone built with the same "
                           "--backbone and --width.") from None


def noisy(clean: Tensor, noise: float, generator: torch.Generator | None = None) -> Tensor:
    """``clean`` plus Gaussian noise of standard deviation ``noise`` (drawn on the CPU when seeded)."""
    draws = torch.randn(clean.shape, generator=generator) if generator else torch.randn_like(clean)
    return clean + noise * draws.to(clean.device, clean.dtype)


def strokes(clean: Tensor) -> Tensor:
    """The target mask: pixels above mid-grey (0 in [-1, 1]), averaged over colour channels."""
    return (clean.mean(1, keepdim=True) > 0).float()


def iou(predicted: Tensor, target: Tensor) -> float:
    """Intersection over union of two 0/1 masks, over every pixel of every image."""
    both = (predicted * target).sum()
    either = ((predicted + target) > 0).float().sum()
    return (both / either.clamp_min(1)).item()


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    parser = make_parser("U-Net mirrored by autoshape segments digit strokes in noisy images.",
                         image_size_default="37x29", epochs=15, batch_size=64, lr=2e-3, out="runs/unet_segmentation")
    parser.add_argument("--noise", type=float, default=1.0, help="standard deviation of the noise ([-1, 1] pixels)")
    parser.add_argument("--width", type=positive_int, default=16, help="channels at full resolution")
    parser.add_argument("--backbone", choices=BACKBONES, default="mirror",
                        help="mirror: a hand-written encoder, mirrored; hf-resnet, monai-resnet: a pyramid backbone")
    parser.add_argument("--weights", type=Path, default=None, help="a saved state_dict to load into the backbone")
    args = parser.parse_args(argv)
    runtime = start(args)
    data = load_images(args.dataset, args.data_dir, runtime)
    size = args.image_size
    net, output = backbone(args.backbone, data.channels, args.width)
    if args.weights is not None:
        load_weights(net, args.weights)
        runtime.log(f"loaded the backbone's weights from {args.weights}")
    model = MirrorUNet(net, (data.channels, *size), out_channels=1, output=output)
    runtime.log(f"the way up, built by autoshape:\n{model.decoder}")
    trained = prepare(model, runtime, args.compile)
    batches = loader(data.train, args.batch_size, runtime, args.seed)
    config = {"dataset": args.dataset, "image_size": list(size), "noise": args.noise, "width": args.width,
              "backbone": args.backbone, "epochs": args.epochs, "batch_size": args.batch_size,
              "world_size": runtime.world_size}

    def loss(batch: tuple[Tensor, Tensor]) -> dict[str, Tensor]:
        clean = to_model(batch[0], size, data.max_value, runtime)
        with runtime.autocast():
            logits = trained(noisy(clean, args.noise))
        return {"bce": F.binary_cross_entropy_with_logits(logits.float(), strokes(clean))}

    return fit(runtime, args, model, trained, batches, config, loss,
               lambda: evaluate(model, data, size, runtime, args))


def evaluate(model: nn.Module, data: Images, size: tuple[int, int], runtime: Runtime,
             args: argparse.Namespace) -> dict[str, float]:
    """Held-out IoU of the U-Net and of thresholding the noisy pixel (fixed noise); saves the PNG."""
    clean, _ = resized(data.test, size, data.max_value, runtime)
    inputs = noisy(clean, args.noise, torch.Generator().manual_seed(args.seed))
    target = strokes(clean)
    predicted = (predict(model, inputs) > 0).float()
    scores = {"unet_iou": iou(predicted, target), "threshold_iou": iou(strokes(inputs), target)}
    runtime.log(f"held-out IoU of the stroke mask (noise {args.noise}):\n"
                f"  U-Net                       {scores['unet_iou']:.4f}\n"
                f"  threshold the noisy pixel   {scores['threshold_iou']:.4f}")
    rows = [inputs[:SHOWN].clamp(-1, 1).mean(1, keepdim=True), predicted[:SHOWN] * 2 - 1, target[:SHOWN] * 2 - 1]
    save_grid(runtime, torch.cat(rows), args.out / "segmentation.png", columns=SHOWN)
    return {name: round(value, 4) for name, value in scores.items()}


if __name__ == "__main__":
    sys.exit(run(main))
