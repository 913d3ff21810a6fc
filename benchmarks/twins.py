"""Plain-torch twins of autoshape modules, holding identical weights.

A Target layer's twin is the torch class it subclasses, built with the solved values. Larger
modules are compared against networks written out by hand (in the benchmark modules), whose
weights are copied over in state_dict order.
"""

from __future__ import annotations

from torch import nn


def torch_base(layer: nn.Module) -> type[nn.Module]:
    """The first torch.nn class in the layer's MRO (``nn.Conv2d`` for ``TargetConv2d``)."""
    return next(c for c in type(layer).__mro__ if c.__module__.startswith("torch.nn."))


def plain_conv(layer: nn.Module) -> nn.Module:
    """The plain ``nn.ConvNd``/``nn.ConvTransposeNd`` a Target layer is, with the same weights."""
    base = torch_base(layer)
    twin = base(layer.in_channels, layer.out_channels, **layer.conv_params.as_kwargs(), groups=layer.groups,
                bias=layer.bias is not None, padding_mode=layer.padding_mode,
                device=layer.weight.device, dtype=layer.weight.dtype)
    twin.load_state_dict(layer.state_dict())
    return twin.train(layer.training)


def copy_weights(source: nn.Module, target: nn.Module) -> None:
    """Copy every parameter and buffer of ``source`` into ``target``, matched by order and shape.

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
