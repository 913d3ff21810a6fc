"""An autoencoder whose decoder autoshape builds by mirroring a hand-written convolutional encoder.

    python examples/mirror_autoencoder.py                        # 29×29 digits, 27 s to 102 s on a shared 2-core CPU
    python examples/mirror_autoencoder.py --image-size 37x29     # any size: the decoder follows
    torchrun --nproc_per_node=2 examples/mirror_autoencoder.py   # DistributedDataParallel

The encoder is written by hand: three stride-2 convolutions on an odd 29×29 image
(29 → 15 → 8 → 4), then Flatten and Linear to a code of ``--latent`` numbers.
``MirrorAutoencoder`` traces it on meta tensors and builds the decoder: Linear, Unflatten,
then transposed convolutions whose output_padding lands exactly on 8, 15 and 29, with the
same BatchNorm and ReLU at each resolution. Nobody computes a decoder size by hand.

At the end the held-out reconstruction MSE is printed next to PCA with as many components as
the code has numbers: the best any linear autoencoder of that size can do.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from _common import Runtime, loader, make_parser, positive_int, predict, prepare, run, start
from _data import Images, load_images, resized, to_model
from _fit import fit
from _outputs import save_grid
from torch import Tensor, nn

from autoshape import MirrorAutoencoder, conv_output_size

PCA_FIT_LIMIT = 10_000  # training images PCA is fitted on (all of the digits)
SHOWN = 10  # held-out images in each row of the PNG


def encoder(channels: int, size: tuple[int, int], width: int, latent: int) -> nn.Sequential:
    """Three stride-2 3×3 convolutions with BatchNorm and ReLU, then Flatten and Linear to ``latent``."""
    smallest = size
    for _ in range(3):
        smallest = conv_output_size(smallest, kernel_size=3, stride=2, padding=1)
    return nn.Sequential(
        nn.Conv2d(channels, width, 3, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(),
        nn.Conv2d(2 * width, 4 * width, 3, stride=2, padding=1), nn.BatchNorm2d(4 * width), nn.ReLU(),
        nn.Flatten(), nn.Linear(4 * width * smallest[0] * smallest[1], latent),
    )


def pca_reconstructions(train_images: Tensor, test_images: Tensor, components: int, seed: int) -> Tensor:
    """Held-out images projected on the first ``components`` principal components of the training images."""
    from sklearn.decomposition import PCA

    flat_train = train_images.flatten(1).cpu().double().numpy()
    pca = PCA(n_components=components, random_state=seed).fit(flat_train)
    flat_test = test_images.flatten(1).cpu().double().numpy()
    restored = pca.inverse_transform(pca.transform(flat_test))
    return torch.from_numpy(np.asarray(restored, dtype=np.float32)).reshape(test_images.shape)


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    parser = make_parser("Autoencoder with a decoder mirrored by autoshape, compared with PCA.",
                         image_size_default="29", epochs=30, batch_size=64, lr=2e-3, out="runs/mirror_autoencoder")
    parser.add_argument("--latent", type=positive_int, default=16, help="numbers in the code (and PCA components)")
    parser.add_argument("--width", type=positive_int, default=32, help="channels of the first convolution")
    args = parser.parse_args(argv)
    runtime = start(args)
    data = load_images(args.dataset, args.data_dir, runtime)
    size = args.image_size
    model = MirrorAutoencoder(encoder(data.channels, size, args.width, args.latent), (data.channels, *size),
                              final_activation=nn.Tanh())
    runtime.log(f"decoder mirrored by autoshape:\n{model.decoder}")
    trained = prepare(model, runtime, args.compile)
    batches = loader(data.train, args.batch_size, runtime, args.seed)
    config = {"dataset": args.dataset, "image_size": list(size), "latent": args.latent, "width": args.width,
              "epochs": args.epochs, "batch_size": args.batch_size, "world_size": runtime.world_size}

    def loss(batch: tuple[Tensor, Tensor]) -> dict[str, Tensor]:
        images = to_model(batch[0], size, data.max_value, runtime)
        with runtime.autocast():
            return {"mse": F.mse_loss(trained(images).float(), images)}

    return fit(runtime, args, model, trained, batches, config, loss,
               lambda: evaluate(model, data, size, runtime, args))


def evaluate(model: nn.Module, data: Images, size: tuple[int, int], runtime: Runtime,
             args: argparse.Namespace) -> dict[str, float]:
    """Held-out MSE of the autoencoder and of PCA (pixels in [-1, 1]); saves the PNG of both."""
    test_images, _ = resized(data.test, size, data.max_value, runtime)
    train_images, _ = resized(data.train, size, data.max_value, runtime, limit=PCA_FIT_LIMIT)
    ours = predict(model, test_images)
    pca = pca_reconstructions(train_images, test_images, args.latent, args.seed).to(ours.device)
    errors = {"autoencoder_mse": F.mse_loss(ours, test_images.float()).item(),
              "pca_mse": F.mse_loss(pca, test_images.float()).item()}
    runtime.log(f"held-out reconstruction MSE (pixels in [-1, 1]), {args.latent} numbers per image:\n"
                f"  autoencoder  {errors['autoencoder_mse']:.5f}\n"
                f"  PCA          {errors['pca_mse']:.5f}  (scikit-learn, {args.latent} components)")
    rows = [test_images[:SHOWN], ours[:SHOWN], pca[:SHOWN]]
    save_grid(runtime, torch.cat(rows), args.out / "reconstructions.png", columns=SHOWN)
    return {name: round(value, 5) for name, value in errors.items()}


if __name__ == "__main__":
    sys.exit(run(main))
