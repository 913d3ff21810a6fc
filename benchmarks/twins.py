"""Plain-torch twins of autoshape modules: the same networks written by hand, with identical weights.

A Target layer's twin is the torch class it subclasses, built with the solved values. The
builders' twins are written out below layer by layer (or taken from the re-typed published
architectures in tests/architectures.py); ``copy_weights`` then gives them the autoshape
module's weights, refusing any difference in structure.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn
from torch.nn.modules.conv import _ConvNd, _ConvTransposeNd

from tests.architectures import ResNetPyramid, unet_encoder


@contextmanager
def full_fp32() -> Iterator[None]:
    """cuDNN convolutions in full fp32 (no TF32) inside, as on a CPU: twins that compute one function
    with different operators (a conv and its transposed twin) then agree to fp32 rounding on a GPU too."""
    saved = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32 = saved


def torch_base(layer: nn.Module) -> type[nn.Module]:
    """The first torch.nn class in the layer's MRO (``nn.Conv2d`` for ``TargetConv2d``)."""
    return next(c for c in type(layer).__mro__ if c.__module__.startswith("torch.nn."))


def plain_conv(layer: nn.Module) -> nn.Module:
    """The plain ``nn.ConvNd``/``nn.ConvTransposeNd`` a Target layer is (freshly initialised weights)."""
    base = torch_base(layer)
    twin = base(layer.in_channels, layer.out_channels, **layer.conv_params.as_kwargs(), groups=layer.groups,
                bias=layer.bias is not None, padding_mode=layer.padding_mode,
                device=layer.weight.device, dtype=layer.weight.dtype)
    return twin.train(layer.training)


def plain_sequential(module: nn.Module) -> nn.Module:
    """An ``nn.Sequential`` of re-initialised copies of the module's children: the same state_dict keys."""
    return reinitialised(nn.Sequential(*module.children())).train(module.training)


def _holders(module: nn.Module) -> list[nn.Module]:
    """The submodules that hold parameters or buffers themselves, in registration order."""
    return [m for m in module.modules() if any(True for _ in m.parameters(recurse=False))
            or any(True for _ in m.buffers(recurse=False))]


def _state_for(source: nn.Module, target: nn.Module) -> dict[str, Tensor]:
    """``source``'s state for ``target``; a stride-1 transposed conv's weight becomes the equivalent conv's."""
    state = source.state_dict()
    if isinstance(source, _ConvTransposeNd) and isinstance(target, _ConvNd) and not target.transposed:
        spatial = tuple(range(2, state["weight"].dim()))
        state["weight"] = state["weight"].transpose(0, 1).flip(spatial)
    return state


def copy_weights(source: nn.Module, target: nn.Module) -> nn.Module:
    """Copy every parameter and buffer of ``source`` into ``target``, layer by layer in order; returns target.

    A stride-1 ``ConvTranspose`` may face the equivalent ``Conv`` (padding ``k-1-p``): its weight
    is transposed and flipped, so both compute the same function.

    Raises:
        ValueError: the networks have different numbers of weight-holding layers.
        RuntimeError: a layer's state does not fit its counterpart (torch names the shapes).
    """
    sources, targets = _holders(source), _holders(target)
    if len(sources) != len(targets):
        raise ValueError(f"{type(source).__name__} has {len(sources)} weight-holding layers, "
                         f"the hand-written twin {len(targets)}")
    for src, dst in zip(sources, targets):
        dst.load_state_dict(_state_for(src, dst))
    return target.train(source.training)


def small_generator() -> nn.Sequential:
    """A 28×28 MNIST-style generator by hand: 8×1×1 → 16×7×7 → 8×14×14 → 1×28×28."""
    return nn.Sequential(
        nn.ConvTranspose2d(8, 16, 7, bias=False), nn.BatchNorm2d(16), nn.ReLU(True),
        nn.ConvTranspose2d(16, 8, 4, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU(True),
        nn.ConvTranspose2d(8, 1, 4, 2, 1), nn.Tanh(),
    )


def small_encoder() -> nn.Sequential:
    """A 28×28 encoder by hand: 1×28×28 → 8×14×14 → 16×7×7 → 4×1×1."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, 2, 1), nn.LeakyReLU(0.2, True),
        nn.Conv2d(8, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.LeakyReLU(0.2, True),
        nn.Conv2d(16, 4, 7),
    )


def reinitialised(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` with every parameter and buffer reset to a fresh initialisation."""
    twin = copy.deepcopy(module)
    for child in twin.modules():
        if hasattr(child, "reset_parameters"):
            child.reset_parameters()
    return twin


class PlainAutoencoder(nn.Module):
    """An autoencoder as written by hand: ``decoder(encoder(x))``, nothing else."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x))  # type: ignore[no-any-return]


def small_autoencoder_parts() -> tuple[nn.Sequential, nn.Sequential]:
    """An encoder 1×29×29 → 16×8×8 and its decoder by hand (odd size: no output_padding needed here)."""
    encoder = nn.Sequential(nn.Conv2d(1, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU())
    decoder = nn.Sequential(nn.ConvTranspose2d(16, 8, 3, 2, 1), nn.ReLU(), nn.ConvTranspose2d(8, 1, 3, 2, 1))
    return encoder, decoder


def conv_autoencoder_parts() -> tuple[nn.Sequential, nn.Sequential]:
    """A DCGAN-style encoder 3×64×64 → 256×4×4 (k4 s2 p1, BatchNorm, ReLU) and its decoder by hand."""
    widths = (3, 32, 64, 128, 256)
    encoder: list[nn.Module] = []
    decoder: list[nn.Module] = []
    for c_in, c_out in zip(widths, widths[1:]):
        encoder += [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), nn.ReLU()]
    for c_in, c_out in zip(widths[:0:-1], widths[-2::-1]):
        decoder.append(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1))
        if c_out != widths[0]:
            decoder += [nn.BatchNorm2d(c_out), nn.ReLU()]
    return nn.Sequential(*encoder), nn.Sequential(*decoder)


class HandWrittenUNet(nn.Module):
    """The U-Net on ``unet_encoder(in_channels, widths)`` written by hand for one input size.

    The decoder is laid out as MirrorUNet lays it out, level by level from the deepest: an up
    step (2×2 transposed conv, stride 2, ``output_padding`` fixed by hand for the size, then
    BatchNorm and ReLU), the skip concatenated after it, then a block of two 3×3 ``conv`` layers.
    ``conv=nn.Conv2d`` is how a U-Net is usually written; ``conv=nn.ConvTranspose2d`` uses the
    same operator as MirrorUNet's mirrored blocks.
    """

    def __init__(self, in_channels: int, widths: tuple[int, ...], out_channels: int,
                 output_paddings: tuple[int, ...], conv: type[nn.Module] = nn.Conv2d) -> None:
        super().__init__()
        self.encoder = unet_encoder(in_channels, widths)
        self.decoder = nn.ModuleList()
        deepest = len(widths) - 1
        for level, padding in zip(range(deepest, 0, -1), output_paddings):
            width = widths[level - 1]
            up_from = widths[level] if level == deepest else width
            after = widths[level - 2] if level >= 2 else out_channels
            self.decoder.append(nn.Sequential(
                nn.ConvTranspose2d(up_from, width, 2, stride=2, output_padding=padding),
                nn.BatchNorm2d(width), nn.ReLU(inplace=True)))
            self.decoder.append(nn.Sequential(
                conv(2 * width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
                conv(width, after, 3, padding=1, bias=level == 1)))

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        for stage in self.encoder:
            x = stage(x)
            skips.append(x)
        for up, block, skip in zip(self.decoder[::2], self.decoder[1::2], reversed(skips[:-1])):
            x = block(torch.cat([up(x), skip], dim=1))
        return x


class HandWrittenPyramidUNet(nn.Module):
    """A U-Net on a ResNet feature pyramid written by hand, laid out as MirrorUNet lays it out.

    From the coarsest map up, each stage is a 3×3 stride-2 transposed conv (padding 1: ResNet's
    convs and pooling take n to ⌈n/2⌉) called with the skip's size as ``output_size``, the skip
    concatenated, and two 3×3 conv-BatchNorm-ReLU blocks; a last stage up to the input's size
    without a skip; a 1×1 head. The backbone's maps are taken as its ``widths``.
    """

    def __init__(self, backbone: nn.Module, widths: tuple[int, ...], out_channels: int) -> None:
        super().__init__()
        self.encoder = backbone
        self.decoder = nn.Module()
        self.decoder.stages = nn.ModuleList()
        below = widths[-1]
        for index, width in enumerate([*widths[-2::-1], widths[0]]):
            skip = widths[-2 - index] if index < len(widths) - 1 else 0
            blocks = nn.Sequential(nn.Conv2d(width + skip, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                                   nn.ReLU(inplace=True), nn.Conv2d(width, width, 3, padding=1, bias=False),
                                   nn.BatchNorm2d(width), nn.ReLU(inplace=True))
            up = nn.ModuleDict({"conv": nn.ConvTranspose2d(below, width, 3, stride=2, padding=1)})
            self.decoder.stages.append(nn.ModuleDict({"up": up, "blocks": blocks}))
            below = width
        self.decoder.head = nn.Conv2d(widths[0], out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        features = self.encoder(x)
        y = features[-1]
        for stage, skip in zip(self.decoder.stages, [*reversed(features[:-1]), None]):
            size = list((skip if skip is not None else x).shape[2:])
            y = stage["up"]["conv"](y, output_size=size)
            y = stage["blocks"](y if skip is None else torch.cat([y, skip], dim=1))
        return self.decoder.head(y)  # type: ignore[no-any-return]


def small_pyramid() -> ResNetPyramid:
    """A ResNet pyramid of three maps (1/2, 1/4, 1/8) and widths 4, 4, 8."""
    return ResNetPyramid(3, 4, blocks=(1, 1))
