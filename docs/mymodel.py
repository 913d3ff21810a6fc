"""The model of the command-line guide (docs/cli.md): a stride-2 conv and its "mirror", 24 → 12 → 23."""

from torch import nn

model = nn.Sequential(
    nn.Conv2d(3, 64, kernel_size=3, stride=2, padding=1),           # 24 → 12
    nn.ReLU(),
    nn.ConvTranspose2d(64, 3, kernel_size=3, stride=2, padding=1),  # 12 → 24?
)
