"""Output sizes measured by running torch itself: the ground truth the tests compare against.

Nothing here uses autoshape's arithmetic. Shapes come from torch's functional ops on
small real CPU tensors (faster than meta at these sizes, and meta skips some of torch's checks).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from autoshape import ConvParams

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def torch_conv_size(
    i: Sequence[int], k: Sequence[int], s: Sequence[int], p: Sequence[int], d: Sequence[int]
) -> tuple[int, ...] | None:
    """Spatial output of F.convNd on an input of spatial size ``i``; None where torch refuses."""
    n = len(i)
    x = torch.zeros(1, 1, *i)
    w = torch.zeros(1, 1, *k)
    try:
        return tuple(_CONV[n](x, w, stride=list(s), padding=list(p), dilation=list(d)).shape[2:])
    except RuntimeError:
        return None


def torch_conv_transpose_size(
    i: Sequence[int],
    k: Sequence[int],
    s: Sequence[int],
    p: Sequence[int],
    d: Sequence[int],
    op: Sequence[int],
) -> tuple[int, ...] | None:
    """Spatial output of F.conv_transposeNd; None where torch refuses (e.g. invalid output_padding)."""
    n = len(i)
    x = torch.zeros(1, 1, *i)
    w = torch.zeros(1, 1, *k)
    try:
        out = _CONV_T[n](x, w, stride=list(s), padding=list(p), output_padding=list(op), dilation=list(d))
    except RuntimeError:
        return None
    return tuple(out.shape[2:]) if min(out.shape[2:], default=1) >= 1 else None


def torch_size(params: ConvParams, input_size: Sequence[int]) -> tuple[int, ...] | None:
    """What torch itself makes of solved ``params`` on ``input_size``."""
    args = (input_size, params.kernel_size, params.stride, params.padding, params.dilation)
    if params.transposed:
        return torch_conv_transpose_size(*args, params.output_padding)
    return torch_conv_size(*args)


@contextmanager
def hooked(modules: Iterable[nn.Module], hook: Callable[..., Any], *, pre: bool = False) -> Iterator[None]:
    """``hook`` on every module's forward (``pre``: before it, on its arguments), removed afterwards."""
    handles = [m.register_forward_pre_hook(hook) if pre else m.register_forward_hook(hook) for m in modules]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def torch_rows_read(i: int, k: int, s: int, p: int, d: int) -> list[bool]:
    """Which of the ``i`` input rows a 1-d convolution reads: where the gradient of its summed output is nonzero."""
    x = torch.ones(1, 1, i, requires_grad=True)
    F.conv1d(x, torch.ones(1, 1, k), stride=s, padding=p, dilation=d).sum().backward()
    assert x.grad is not None
    return [bool(g) for g in x.grad[0, 0]]
