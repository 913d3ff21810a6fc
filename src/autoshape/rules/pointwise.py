"""Activations and dropout called as functions (``F.relu``, ``torch.sigmoid``, ``F.dropout``).

They keep the shape, so a mirror places them as the encoder had them; the decoder gets their
module twin (``nn.ReLU``, ``nn.Dropout(p)``), which follows ``train()``/``eval()`` as a module
should. Activation and norm *modules* need no rule: any module that keeps the shape is copied.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..tracing import Call
from .registry import Mirror, MirrorRequest, Rule, arg

__all__ = ["RULES", "twin"]

_TWINS: dict[Any, Callable[[Call], nn.Module]] = {
    F.relu: lambda c: nn.ReLU(), torch.relu: lambda c: nn.ReLU(), Tensor.relu: lambda c: nn.ReLU(),
    F.relu_: lambda c: nn.ReLU(), Tensor.relu_: lambda c: nn.ReLU(), F.relu6: lambda c: nn.ReLU6(),
    F.gelu: lambda c: nn.GELU(approximate=arg(c, 1, "approximate", "none")),
    F.silu: lambda c: nn.SiLU(), F.hardswish: lambda c: nn.Hardswish(), F.mish: lambda c: nn.Mish(),
    F.selu: lambda c: nn.SELU(), F.sigmoid: lambda c: nn.Sigmoid(), torch.sigmoid: lambda c: nn.Sigmoid(),
    Tensor.sigmoid: lambda c: nn.Sigmoid(), F.tanh: lambda c: nn.Tanh(), torch.tanh: lambda c: nn.Tanh(),
    Tensor.tanh: lambda c: nn.Tanh(),
    F.leaky_relu: lambda c: nn.LeakyReLU(arg(c, 1, "negative_slope", 0.01)),
    F.elu: lambda c: nn.ELU(arg(c, 1, "alpha", 1.0)), F.celu: lambda c: nn.CELU(arg(c, 1, "alpha", 1.0)),
    F.softplus: lambda c: nn.Softplus(arg(c, 1, "beta", 1.0), arg(c, 2, "threshold", 20.0)),
    F.hardtanh: lambda c: nn.Hardtanh(arg(c, 1, "min_val", -1.0), arg(c, 2, "max_val", 1.0)),
    F.dropout: lambda c: nn.Dropout(arg(c, 1, "p", 0.5)), F.dropout1d: lambda c: nn.Dropout1d(arg(c, 1, "p", 0.5)),
    F.dropout2d: lambda c: nn.Dropout2d(arg(c, 1, "p", 0.5)), F.dropout3d: lambda c: nn.Dropout3d(arg(c, 1, "p", 0.5)),
    F.alpha_dropout: lambda c: nn.AlphaDropout(arg(c, 1, "p", 0.5)),
}


def twin(call: Call) -> nn.Module:
    """The module that does what a functional activation or dropout call does."""
    return _TWINS[call.target](call)


def _mirror(request: MirrorRequest) -> Mirror:
    return Mirror((twin(request.call),))


RULES = (
    Rule("activation", functions=tuple(_TWINS), keeps_shape=True, mirror=_mirror),
)
