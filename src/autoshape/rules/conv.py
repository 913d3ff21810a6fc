"""Convolutions and transposed convolutions.

A conv is mirrored by the transposed conv with the same kernel, stride, padding, dilation and
groups, channels reversed, and the output_padding that restores the size exactly. Where no
transposed conv with that kernel can (an even kernel with ``padding='same'`` pads asymmetrically),
a ``TargetConvTranspose`` one size larger with ``padding='same'`` takes its place.
"""

from __future__ import annotations

import math
from typing import Any

from torch import nn

from ..core.arithmetic import output_padding_for, same_padding
from ..core.formulas import Term, conv_same_term, conv_term, conv_transpose_term
from ..errors import ShapeError
from ..layers import TargetConvTranspose1d, TargetConvTranspose2d, TargetConvTranspose3d
from ..tracing import Call
from .registry import Mirror, MirrorRequest, Rule, Shape

__all__ = ["RULES", "used_output_padding"]

_CONV_TRANSPOSE: dict[int, type[nn.Module]] = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_TARGET_SAME: dict[int, type[nn.Module]] = {1: TargetConvTranspose1d, 2: TargetConvTranspose2d,
                                            3: TargetConvTranspose3d}


def _ndim(call: Call) -> int:
    return len(call.target.kernel_size)


def _conv_terms(call: Call, sizes: Shape, out: Shape | None) -> list[Term]:
    m = call.target
    if m.padding == "same":
        return [conv_same_term(*args) for args in zip(sizes, m.kernel_size, m.dilation)]
    padding = (0,) * len(sizes) if m.padding == "valid" else m.padding
    return [conv_term(*args) for args in zip(sizes, m.kernel_size, m.stride, padding, m.dilation)]


def used_output_padding(module: Any, sizes: Shape, out: Shape | None) -> Shape:
    """The output_padding a transposed conv's forward used: its own, or the one that
    ``forward(x, output_size=...)`` picked (recovered from the traced output size)."""
    used = []
    for n, dims in enumerate(zip(sizes, module.kernel_size, module.stride, module.padding, module.dilation)):
        chosen = None if out is None else output_padding_for(out[n], *dims)
        used.append(module.output_padding[n] if chosen is None else chosen)
    return tuple(used)


def _conv_transpose_terms(call: Call, sizes: Shape, out: Shape | None) -> list[Term]:
    m = call.target
    per_dim = zip(sizes, m.kernel_size, m.stride, m.padding, m.dilation, used_output_padding(m, sizes, out))
    return [conv_transpose_term(*args) for args in per_dim]


def _padding(conv: Any) -> tuple[int, ...]:
    """Explicit padding: 'valid' is 0; 'same' (stride 1) pads d·(k-1), the odd one on the right."""
    if not isinstance(conv.padding, str):
        return tuple(conv.padding)
    dims = zip(conv.kernel_size, conv.dilation)
    return tuple(same_padding(k, d)[1] if conv.padding == "same" else 0 for k, d in dims)


def _mirror_conv(request: MirrorRequest) -> Mirror:
    conv = request.call.target
    n = len(conv.kernel_size)
    k, s, d, p = conv.kernel_size, conv.stride, conv.dilation, _padding(conv)
    dims = zip(request.input_shape[2:], request.output_shape[2:], k, s, p, d)
    output_padding = [output_padding_for(*dim) for dim in dims]
    cin, cout = request.in_channels, request.out_channels
    groups = math.gcd(conv.groups, cin, cout)
    bias = conv.bias is not None or request.head  # an output layer has no norm after it to stand in for a bias
    factory = request.options.factory
    layer: nn.Module
    if None not in output_padding:
        layer = _CONV_TRANSPOSE[n](cin, cout, k, s, p, tuple(output_padding), groups, bias, d, **factory)
    else:  # an even kernel with padding='same': no transposed conv with that kernel undoes it
        kernel = tuple(ki + (op is None) for ki, op in zip(k, output_padding))
        layer = _TARGET_SAME[n](cin, cout, kernel_size=kernel, stride=1, padding="same", dilation=d, groups=groups,
                                bias=bias, **factory)
    if request.options.tie_weights:
        _tie(layer, request.call)
    return Mirror((layer,), sized=any(si > 1 for si in s))


def _tie(layer: Any, call: Call) -> None:
    weight = call.target.weight
    if not isinstance(weight, nn.Parameter):
        raise ShapeError(
            f"tie_weights cannot tie the mirror of {call.describe()}: its weight is computed from other "
            "parameters (spectral_norm, weight_norm or another parametrization), so there is no Parameter to "
            "share. Fix: pass tie_weights=False."
        )
    if layer.weight.shape != weight.shape:
        raise ShapeError(
            f"tie_weights cannot tie the mirror of {call.describe()}: the exact mirror {layer} needs a weight of "
            f"shape {tuple(layer.weight.shape)}, the encoder's is {tuple(weight.shape)} (torch's transposed "
            "conv has no asymmetric padding for padding='same' with an even kernel). Fix: give that conv an odd "
            "kernel or explicit padding, or pass tie_weights=False."
        )
    layer.weight = weight


RULES = (
    Rule("convolution", modules=(nn.Conv1d, nn.Conv2d, nn.Conv3d), ndim=_ndim, terms=_conv_terms,
         mirror=_mirror_conv, scales=True),
    Rule("transposed convolution", modules=(nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d),
         ndim=_ndim, terms=_conv_transpose_terms, scales=True),
)
