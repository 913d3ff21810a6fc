"""Plain-torch twins of autoshape modules: the same networks written by hand, with identical weights.

A Target layer's twin is the torch class it subclasses, built with the solved values. The
builders' twins are written out below layer by layer (or taken from the re-typed published
architectures in tests/architectures.py); ``copy_weights`` then gives them the autoshape
module's weights, refusing any difference in structure.
"""

from __future__ import annotations

import copy

from torch import nn


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


def plain_sequential(module: nn.Module) -> nn.Sequential:
    """An ``nn.Sequential`` of copies of the module's children, re-initialised: the same state_dict keys."""
    twin = nn.Sequential(*copy.deepcopy(list(module.children())))
    for child in twin.modules():
        if hasattr(child, "reset_parameters"):
            child.reset_parameters()
    return twin.train(module.training)


def copy_weights(source: nn.Module, target: nn.Module) -> nn.Module:
    """Copy every parameter and buffer of ``source`` into ``target``, matched by order and shape; returns target.

    Raises:
        ValueError: the two state_dicts differ in length or in a shape (the networks differ).
    """
    src, dst = source.state_dict(), target.state_dict()
    if len(src) != len(dst):
        raise ValueError(f"{type(source).__name__} has {len(src)} state entries, the hand-written twin {len(dst)}")
    for (name_s, value_s), (name_d, value_d) in zip(src.items(), dst.items()):
        if value_s.shape != value_d.shape:
            raise ValueError(f"{name_s} {tuple(value_s.shape)} does not match {name_d} {tuple(value_d.shape)}")
    target.load_state_dict(dict(zip(dst, src.values())))
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
