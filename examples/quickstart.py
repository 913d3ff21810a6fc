"""The 24→12→24 autoencoder from the classic question, built by declaring sizes.

A stride-2 Conv2d takes 24×24 to 12×12; the "mirrored" ConvTranspose2d gives 23×23.
Here both layers are declared by the sizes they must produce, and every shape is printed.

    python examples/quickstart.py
"""

import torch
from torch import nn

from autoshape import TargetConv2d, TargetConvTranspose2d, conv_transpose_output_size


def main() -> None:
    naive = conv_transpose_output_size(12, kernel_size=3, stride=2, padding=1)
    print(f"ConvTranspose2d(k=3, s=2, p=1) on 12x12 gives {naive}x{naive}, not 24x24.")
    for size in (24, 25):
        half = (size + 1) // 2
        model = nn.Sequential(
            TargetConv2d(128, 256, input_size=size, output_size=half),
            nn.ReLU(),
            TargetConvTranspose2d(256, 128, input_size=half, output_size=size),
        )
        x = torch.randn(2, 128, size, size)
        print(f"\n{size}x{size} autoencoder:")
        for layer in model:
            y = layer(x)
            print(f"  {tuple(x.shape)} -> {tuple(y.shape)}  {layer}")
            x = y


if __name__ == "__main__":
    main()
