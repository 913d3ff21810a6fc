"""Real architectures, re-typed as plain ``torch.nn`` code, used as test and benchmark fixtures.

Each builder returns an ordinary module (no autoshape inside) whose layers, kernels, strides
and paddings follow the published model; widths can be scaled down so tests run fast on a CPU.
The shapes quoted in each docstring are those of the published configuration.

Stable interface: other tests, benchmarks and examples import these builders by name.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = [
    "BasicBlock",
    "MnistNet",
    "ResNetPyramid",
    "TransformerNet",
    "TransformerNetEncoder",
    "UNet",
    "Vae",
    "alexnet_features",
    "dcgan_discriminator",
    "dcgan_generator",
    "encoder_3d",
    "lenet5",
    "resnet_encoder",
    "unet_encoder",
    "vgg11_features",
    "wav2vec2_feature_encoder",
]

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_BATCH_NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_MAX_POOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}


def dcgan_discriminator(nc: int = 3, ndf: int = 64) -> nn.Sequential:
    """The DCGAN discriminator (Radford et al. 2016, PyTorch DCGAN tutorial): 64×64 image to 1×1 score.

    Shapes: ``(N, nc, 64, 64) -> (N, 1, 1, 1)`` through 32, 16, 8, 4.
    """
    return nn.Sequential(
        nn.Conv2d(nc, ndf, 4, 2, 1, bias=False),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ndf * 2),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ndf * 4),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ndf * 8),
        nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False),
        nn.Sigmoid(),
    )


def dcgan_generator(nz: int = 100, ngf: int = 64, nc: int = 3) -> nn.Sequential:
    """The DCGAN generator (Radford et al. 2016, PyTorch DCGAN tutorial): 1×1 latent to 64×64 image.

    Shapes: ``(N, nz, 1, 1) -> (N, nc, 64, 64)`` through 4, 8, 16, 32.
    """
    return nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False),
        nn.BatchNorm2d(ngf * 8),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ngf * 4),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ngf * 2),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False),
        nn.BatchNorm2d(ngf),
        nn.ReLU(True),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False),
        nn.Tanh(),
    )


def vgg11_features(in_channels: int = 3, width: int = 64) -> nn.Sequential:
    """VGG-11 (configuration "A", Simonyan & Zisserman 2015) feature stack, torchvision's layout.

    Eight 3×3 convs (padding 1) with ReLU and five 2×2 max-pools; ``width`` is the first
    conv's channels (64 in the paper; the others scale with it).
    Shapes: ``(N, 3, 224, 224) -> (N, 512, 7, 7)``.
    """
    layers: list[nn.Module] = []
    channels = in_channels
    for item in (1, "M", 2, "M", 4, 4, "M", 8, 8, "M", 8, 8, "M"):
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            out = width * int(item)
            layers += [nn.Conv2d(channels, out, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = out
    return nn.Sequential(*layers)


def alexnet_features(in_channels: int = 3, width: int = 64) -> nn.Sequential:
    """AlexNet's feature stack as in torchvision (Krizhevsky et al. 2012, one-GPU variant).

    ``width`` scales the channels 64, 192, 384, 256, 256 (``width=64`` is the original).
    Shapes: ``(N, 3, 224, 224) -> (N, 256, 6, 6)``; the paper's 227×227 gives the same.
    """
    c = [width * m // 64 for m in (64, 192, 384, 256, 256)]
    return nn.Sequential(
        nn.Conv2d(in_channels, c[0], kernel_size=11, stride=4, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(c[0], c[1], kernel_size=5, padding=2),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(c[1], c[2], kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(c[2], c[3], kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(c[3], c[4], kernel_size=3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
    )


def lenet5(num_classes: int = 10) -> nn.Sequential:
    """LeNet-5 (LeCun et al. 1998) with tanh and average pooling, as a Flatten+Linear classifier.

    Shapes: ``(N, 1, 32, 32) -> (N, num_classes)`` through 6×28×28, 6×14×14, 16×10×10, 16×5×5, 400, 120, 84.
    """
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5),
        nn.Tanh(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5),
        nn.Tanh(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120),
        nn.Tanh(),
        nn.Linear(120, 84),
        nn.Tanh(),
        nn.Linear(84, num_classes),
    )


def wav2vec2_feature_encoder(channels: int = 512, dropout: float = 0.0) -> nn.Sequential:
    """wav2vec 2.0's convolutional feature encoder (Baevski et al. 2020, fairseq "default" mode).

    Seven bias-free Conv1d blocks, kernels 10,3,3,3,3,2,2 and strides 5,2,2,2,2,2,2, each with
    dropout and GELU; the first also has a per-channel GroupNorm. fairseq's forward takes
    ``(N, samples)`` and unsqueezes the channel; this one takes ``(N, 1, samples)``.
    Shapes: ``(N, 1, 16000) -> (N, 512, 49)`` (one second of 16 kHz audio: 20 ms frames).
    """
    blocks: list[nn.Module] = []
    in_channels = 1
    for index, (kernel, stride) in enumerate(zip((10, 3, 3, 3, 3, 2, 2), (5, 2, 2, 2, 2, 2, 2))):
        parts: list[nn.Module] = [nn.Conv1d(in_channels, channels, kernel, stride=stride, bias=False),
                                  nn.Dropout(dropout)]
        if index == 0:
            parts.append(nn.GroupNorm(channels, channels, affine=True))
        parts.append(nn.GELU())
        blocks.append(nn.Sequential(*parts))
        in_channels = channels
    return nn.Sequential(*blocks)


def encoder_3d(in_channels: int = 1, width: int = 32, num_classes: int | None = None) -> nn.Sequential:
    """VoxNet's 3-d convolutional encoder (Maturana & Scherer 2015), optionally with its classifier.

    Conv3d 5³ stride 2, leaky ReLU, Conv3d 3³, leaky ReLU, 2³ max-pool (dropout as in the paper);
    with ``num_classes``, Flatten and the two Linear layers of the paper (for 32³ inputs).
    Shapes: ``(N, 1, 32, 32, 32) -> (N, 32, 6, 6, 6)``, or ``(N, num_classes)``.
    """
    layers: list[nn.Module] = [
        nn.Conv3d(in_channels, width, kernel_size=5, stride=2),
        nn.LeakyReLU(0.1),
        nn.Dropout(0.2),
        nn.Conv3d(width, width, kernel_size=3),
        nn.LeakyReLU(0.1),
        nn.MaxPool3d(2),
        nn.Dropout(0.3),
    ]
    if num_classes is not None:
        layers += [nn.Flatten(), nn.Linear(width * 6 * 6 * 6, 128), nn.ReLU(), nn.Dropout(0.4),
                   nn.Linear(128, num_classes)]
    return nn.Sequential(*layers)


def _double_conv(conv: type[nn.Module], norm: type[nn.Module], cin: int, cout: int, padding: int) -> nn.Sequential:
    return nn.Sequential(conv(cin, cout, 3, padding=padding, bias=False), norm(cout), nn.ReLU(inplace=True),
                         conv(cout, cout, 3, padding=padding, bias=False), norm(cout), nn.ReLU(inplace=True))


def unet_encoder(in_channels: int = 1, widths: Sequence[int] = (64, 128, 256, 512, 1024), dims: int = 2,
                 padding: int = 1) -> nn.Sequential:
    """The contracting path of U-Net (Ronneberger et al. 2015; 3-d as in Çiçek et al. 2016).

    A double 3×3 conv block (conv, batch norm, ReLU, twice) per width, with a 2×2 max-pool
    before each block after the first. ``padding=1`` is the common "same" variant;
    ``padding=0`` is the paper's unpadded one (572×572 -> 1024×28×28).
    Shapes (``padding=1``): ``(N, 1, 256, 256) -> (N, 1024, 16, 16)``.
    """
    conv, norm, pool = _CONV[dims], _BATCH_NORM[dims], _MAX_POOL[dims]
    stages: list[nn.Module] = []
    channels = in_channels
    for index, width in enumerate(widths):
        block = _double_conv(conv, norm, channels, width, padding)
        stages.append(block if index == 0 else nn.Sequential(pool(2), block))
        channels = width
    return nn.Sequential(*stages)


class BasicBlock(nn.Module):
    """ResNet's basic residual block (He et al. 2016), torchvision's layout: not a chain of modules.

    Two 3×3 convs with batch norm; the input is added back (through a strided 1×1 conv and
    batch norm when the shape changes) before the last ReLU.
    """

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(channels))

    def forward(self, x: Tensor) -> Tensor:
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        out = self.relu(out)
        return out


def resnet_encoder(in_channels: int = 3, width: int = 64, blocks: Sequence[int] = (2, 2, 2, 2)) -> nn.Sequential:
    """ResNet's feature stack (ResNet-18 with the default ``blocks``), without pooling and classifier.

    Stem: 7×7 conv stride 2, batch norm, ReLU, 3×3 max-pool stride 2; then one stage of
    :class:`BasicBlock` per entry of ``blocks``, widths ``width·2^i``, stride 2 from the second.
    Shapes: ``(N, 3, 224, 224) -> (N, 512, 7, 7)``.
    """
    layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False),
                               nn.BatchNorm2d(width), nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1)]
    channels = width
    for stage, count in enumerate(blocks):
        out = width * 2 ** stage
        first = BasicBlock(channels, out, stride=2 if stage else 1)
        layers.append(nn.Sequential(first, *(BasicBlock(out, out) for _ in range(count - 1))))
        channels = out
    return nn.Sequential(*layers)


class UNet(nn.Module):
    """U-Net (Ronneberger et al. 2015) as most PyTorch copies write it: padded convs, so sizes survive.

    The contracting path of :func:`unet_encoder`; per level up, a 2×2 stride-2 transposed conv, the
    skip concatenated first, and a double conv; a 1×1 conv head. Exact where the size divides by
    ``2^(len(widths)-1)``; at 101×67 the first concatenation whose sizes disagree fails.
    Shapes: ``(N, 1, 256, 256) -> (N, num_classes, 256, 256)``.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 2,
                 widths: Sequence[int] = (64, 128, 256, 512, 1024)) -> None:
        super().__init__()
        self.encoder = unet_encoder(in_channels, widths)
        pairs = list(zip(widths[::-1][:-1], widths[::-1][1:]))
        self.ups = nn.ModuleList(nn.ConvTranspose2d(high, low, 2, stride=2) for high, low in pairs)
        self.decoders = nn.ModuleList(_double_conv(nn.Conv2d, nn.BatchNorm2d, 2 * low, low, 1) for _, low in pairs)
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
        skips.pop()
        for up, decode in zip(self.ups, self.decoders):
            x = decode(torch.cat([skips.pop(), up(x)], dim=1))
        return self.head(x)  # type: ignore[no-any-return]


class _ConvLayer(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv2d = nn.Conv2d(in_channels, out_channels, kernel_size, stride)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2d(self.reflection_pad(x))  # type: ignore[no-any-return]


class _UpsampleConvLayer(_ConvLayer):
    """Nearest upsampling by ``upsample`` (``F.interpolate``), then a conv; ``size``, when set,
    upsamples to that size instead (what explain suggests for odd sizes)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, upsample: int) -> None:
        super().__init__(in_channels, out_channels, kernel_size, 1)
        self.upsample = upsample
        self.size: tuple[int, ...] | None = None

    def forward(self, x: Tensor) -> Tensor:
        if self.size is not None:
            x = F.interpolate(x, mode="nearest", size=self.size)
        else:
            x = F.interpolate(x, mode="nearest", scale_factor=self.upsample)
        return super().forward(x)


class _ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1, self.in1 = _ConvLayer(channels, channels, 3, 1), nn.InstanceNorm2d(channels, affine=True)
        self.conv2, self.in2 = _ConvLayer(channels, channels, 3, 1), nn.InstanceNorm2d(channels, affine=True)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.in2(self.conv2(F.relu(self.in1(self.conv1(x)))))  # type: ignore[no-any-return]


class TransformerNetEncoder(nn.Module):
    """The down half of fast-neural-style's TransformerNet (Johnson et al. 2016, pytorch/examples):
    reflection-padded convs, a 9×9 then two stride-2 3×3 with instance norm and ``F.relu``, and the
    residual blocks. Shapes: ``(N, 3, 256, 256) -> (N, 4·width, 64, 64)`` (``width=32`` is the original).
    """

    def __init__(self, width: int = 32, residual_blocks: int = 5) -> None:
        super().__init__()
        self.conv1, self.in1 = _ConvLayer(3, width, 9, 1), nn.InstanceNorm2d(width, affine=True)
        self.conv2, self.in2 = _ConvLayer(width, 2 * width, 3, 2), nn.InstanceNorm2d(2 * width, affine=True)
        self.conv3, self.in3 = _ConvLayer(2 * width, 4 * width, 3, 2), nn.InstanceNorm2d(4 * width, affine=True)
        self.residuals = nn.Sequential(*(_ResidualBlock(4 * width) for _ in range(residual_blocks)))

    def forward(self, x: Tensor) -> Tensor:
        y = F.relu(self.in1(self.conv1(x)))
        y = F.relu(self.in2(self.conv2(y)))
        y = F.relu(self.in3(self.conv3(y)))
        return self.residuals(y)  # type: ignore[no-any-return]


class TransformerNet(TransformerNetEncoder):
    """The fast style-transfer network (Johnson et al. 2016), as in pytorch/examples' fast_neural_style.

    :class:`TransformerNetEncoder`, then two nearest upsamplings by 2 each followed by a 3×3 conv,
    and a 9×9 conv out. Exact where the size divides by 4; a 65×67 image comes back as 68×68.
    Shapes: ``(N, 3, 256, 256) -> (N, 3, 256, 256)``.
    """

    def __init__(self, width: int = 32, residual_blocks: int = 5) -> None:
        super().__init__(width, residual_blocks)
        self.deconv1 = _UpsampleConvLayer(4 * width, 2 * width, 3, upsample=2)
        self.in4 = nn.InstanceNorm2d(2 * width, affine=True)
        self.deconv2 = _UpsampleConvLayer(2 * width, width, 3, upsample=2)
        self.in5 = nn.InstanceNorm2d(width, affine=True)
        self.deconv3 = _ConvLayer(width, 3, 9, 1)

    def forward(self, x: Tensor) -> Tensor:
        y = super().forward(x)
        y = F.relu(self.in4(self.deconv1(y)))
        y = F.relu(self.in5(self.deconv2(y)))
        return self.deconv3(y)  # type: ignore[no-any-return]


class MnistNet(nn.Module):
    """The pytorch/examples MNIST classifier, as written there: functional calls in ``forward``.

    Two 3×3 convs (32, 64), ``F.relu``, ``F.max_pool2d(2)``, dropout, ``torch.flatten`` and two
    Linear layers, ``F.log_softmax`` at the end. ``width`` scales the convs (32 is the original).
    Shapes: ``(N, 1, 28, 28) -> (N, 10)`` through 26, 24 and 12 (9216 features at width 32).
    """

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, 3, 1)
        self.conv2 = nn.Conv2d(width, 2 * width, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.dropout2 = nn.Dropout(0.5)
        self.fc1 = nn.Linear(2 * width * 12 * 12, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = self.dropout2(x)
        return F.log_softmax(self.fc2(x), dim=1)


class Vae(nn.Module):
    """The pytorch/examples VAE for MNIST: a 784-400-20 MLP encoder returning ``(mu, logvar)``.

    ``forward`` returns ``(reconstruction, mu, logvar)``, reshaping the input with ``x.view(-1, 784)``.
    Shapes: ``(N, 1, 28, 28) -> ((N, 784), (N, 20), (N, 20))``.
    """

    def __init__(self, hidden: int = 400, latent: int = 20) -> None:
        super().__init__()
        self.fc1 = nn.Linear(784, hidden)
        self.fc21 = nn.Linear(hidden, latent)
        self.fc22 = nn.Linear(hidden, latent)
        self.fc3 = nn.Linear(latent, hidden)
        self.fc4 = nn.Linear(hidden, 784)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        mu, logvar = self.encode(x.view(-1, 784))
        z = mu + torch.randn_like(logvar) * torch.exp(0.5 * logvar)
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar


class ResNetPyramid(nn.Module):
    """ResNet-18's feature pyramid, as timm's ``features_only=True`` returns it: the stem's ReLU
    output (1/2) and each stage's output (1/4 to 1/32), from :func:`resnet_encoder`'s layers.

    Shapes: ``(N, 3, 224, 224) -> [(N, 64, 112, 112), (N, 64, 56, 56), …, (N, 512, 7, 7)]``.
    """

    def __init__(self, in_channels: int = 3, width: int = 64, blocks: Sequence[int] = (2, 2, 2, 2)) -> None:
        super().__init__()
        layers = list(resnet_encoder(in_channels, width, blocks))
        self.stem = nn.Sequential(*layers[:3])
        self.pool = layers[3]
        self.stages = nn.ModuleList(layers[4:])

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.stem(x)
        features = [x]
        x = self.pool(x)
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features
