"""Max, average, LP and adaptive pooling, as modules and as ``F.*_pool*d`` calls.

Pooling is mirrored by interpolation to the exact recorded size (``pool_mirror='nearest'`` or
``'linear'``: no parameters, like the pooling it undoes) or by a learned transposed conv fitted to
the pooling's own size rule (``'conv'``). Adaptive pooling is always interpolated: its stride
depends on the input size, so no fixed transposed conv undoes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn
from torch.nn import functional as F

from ..core.arithmetic import pool_out
from ..core.formulas import Term, pool_term
from ..core.inversion import SizeFunction
from ..core.sizes import as_tuple
from ..tracing import Call
from .fitting import fitted, interpolated
from .registry import Mirror, MirrorRequest, Rule, Shape, arg

__all__ = ["RULES"]

_WINDOWED: dict[str, dict[object, int]] = {
    "max": {nn.MaxPool1d: 1, nn.MaxPool2d: 2, nn.MaxPool3d: 3, F.max_pool1d: 1, F.max_pool2d: 2, F.max_pool3d: 3},
    "avg": {nn.AvgPool1d: 1, nn.AvgPool2d: 2, nn.AvgPool3d: 3, F.avg_pool1d: 1, F.avg_pool2d: 2, F.avg_pool3d: 3},
    "lp": {nn.LPPool1d: 1, nn.LPPool2d: 2, nn.LPPool3d: 3, F.lp_pool1d: 1, F.lp_pool2d: 2, F.lp_pool3d: 3},
}
_ADAPTIVE: dict[str, dict[object, int]] = {"adaptive": {
    nn.AdaptiveAvgPool1d: 1, nn.AdaptiveAvgPool2d: 2, nn.AdaptiveAvgPool3d: 3,
    nn.AdaptiveMaxPool1d: 1, nn.AdaptiveMaxPool2d: 2, nn.AdaptiveMaxPool3d: 3,
    F.adaptive_avg_pool1d: 1, F.adaptive_avg_pool2d: 2, F.adaptive_avg_pool3d: 3,
    F.adaptive_max_pool1d: 1, F.adaptive_max_pool2d: 2, F.adaptive_max_pool3d: 3,
}}


def _find(tables: dict[str, dict[object, int]], call: Call) -> tuple[str, int]:
    """The kind (``'max'``, ``'avg'``, ``'lp'``, ``'adaptive'``) and spatial dims of a pooling call."""
    for kind, table in tables.items():
        for key, n in table.items():
            if key is call.target or (isinstance(key, type) and isinstance(call.target, key)):
                return kind, n
    raise LookupError(f"{call.describe()} is not a pooling")


@dataclass(frozen=True)
class _Window:
    """A pooling's window per spatial dimension."""

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    ceil_mode: bool

    def size_functions(self) -> list[SizeFunction]:
        def along(k: int, s: int, p: int, d: int) -> SizeFunction:
            def size_of(n: int) -> int | None:
                out = pool_out(n, k, s, p, d, self.ceil_mode)
                return out if out >= 1 else None
            return size_of
        return [along(*dim) for dim in zip(self.kernel, self.stride, self.padding, self.dilation)]


def _window(call: Call, n: int) -> _Window:
    """The window of a pooling module or call: ``F.max_pool2d(x, k, stride, padding, dilation, ceil_mode)``,
    ``F.avg_pool2d(x, k, stride, padding, ceil_mode)``, ``F.lp_pool2d(x, norm, k, stride, ceil_mode)``."""
    m, kind = call.target, _find(_WINDOWED, call)[0]
    if call.kind == "module":
        kernel, stride, ceil_mode = m.kernel_size, m.stride, m.ceil_mode
        padding, dilation = getattr(m, "padding", 0), getattr(m, "dilation", 1)
    elif kind == "lp":
        kernel, stride, padding, dilation = arg(call, 2, "kernel_size"), arg(call, 3, "stride"), 0, 1
        ceil_mode = arg(call, 4, "ceil_mode", False)
    else:
        is_max = kind == "max"
        kernel, stride, padding = arg(call, 1, "kernel_size"), arg(call, 2, "stride"), arg(call, 3, "padding", 0)
        dilation = arg(call, 4, "dilation", 1) if is_max else 1
        ceil_mode = arg(call, 5 if is_max else 4, "ceil_mode", False)
    k = as_tuple(kernel, "kernel_size", n)
    s = k if stride is None or stride == [] else as_tuple(stride, "stride", n)
    return _Window(k, s, as_tuple(padding, "padding", n, 0), as_tuple(dilation, "dilation", n), bool(ceil_mode))


def _ndim(call: Call) -> int:
    return _find(_WINDOWED, call)[1]


def _terms(call: Call, sizes: Shape, out: Shape | None) -> list[Term]:
    w = _window(call, len(sizes))
    return [pool_term(*dim, w.ceil_mode) for dim in zip(sizes, w.kernel, w.stride, w.padding, w.dilation)]


def _mirror(request: MirrorRequest) -> Mirror:
    if request.options.pool_mirror != "conv":
        return interpolated(request)
    window = _window(request.call, len(request.input_shape) - 2)
    return fitted(request, window.size_functions(), "it is a pooling")


def _adaptive_ndim(call: Call) -> int:
    return _find(_ADAPTIVE, call)[1]


def _adaptive_terms(call: Call, sizes: Shape, out: Shape | None) -> list[Term]:
    wanted = call.target.output_size if call.kind == "module" else arg(call, 1, "output_size")
    per_dim = wanted if isinstance(wanted, (tuple, list)) else (wanted,) * len(sizes)
    return [Term("input (output_size None)", i) if o is None else Term("output_size", o)
            for i, o in zip(sizes, per_dim)]


def _keys(tables: dict[str, dict[object, int]], classes: bool) -> tuple[Any, ...]:
    return tuple(key for table in tables.values() for key in table if isinstance(key, type) == classes)


RULES = (
    Rule("pooling", modules=_keys(_WINDOWED, True), functions=_keys(_WINDOWED, False), ndim=_ndim, terms=_terms,
         mirror=_mirror, scales=True),
    Rule("adaptive pooling", modules=_keys(_ADAPTIVE, True), functions=_keys(_ADAPTIVE, False), ndim=_adaptive_ndim,
         terms=_adaptive_terms, mirror=interpolated, scales=True),
)
