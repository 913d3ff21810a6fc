"""Layers and calls that rearrange a tensor's entries: Linear, Flatten, Unflatten, view, permute, indexing.

A reshape (``nn.Flatten``, ``torch.flatten``, ``view``, ``reshape``, ``unsqueeze``, ``x[:, None]``)
is mirrored by the inverse reshape to the recorded shape, a permutation by the inverse
permutation, ``nn.Unflatten`` by ``nn.Flatten``, ``Linear`` by ``Linear`` with its features
swapped, and a crop by slicing (``x[..., 1:-1]``) by zero padding back to the recorded size.
None of them is a convolutional step, so a U-Net holds none of them.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..core.text import format_shape
from ..errors import ShapeError
from ..layers.resize import PadTo, Permute, ReshapeTo, UnflattenTo
from ..tracing import Call
from .registry import Mirror, MirrorRequest, Rule, arg

__all__ = ["RULES", "permutation"]


def _mirror_linear(request: MirrorRequest) -> Mirror:
    linear = request.call.target
    layer = nn.Linear(linear.out_features, linear.in_features, linear.bias is not None, **request.options.factory)
    return Mirror((layer,))


def _mirror_flatten(request: MirrorRequest) -> Mirror:
    rank = len(request.input_shape)
    if request.call.kind == "module":
        start, end = request.call.target.start_dim, request.call.target.end_dim
    else:
        start, end = arg(request.call, 1, "start_dim", 0), arg(request.call, 2, "end_dim", -1)
    start, end = start % rank, end % rank
    return Mirror((UnflattenTo(start, request.input_shape[start:end + 1]),), sized=True)


def _mirror_unflatten(request: MirrorRequest) -> Mirror:
    unflatten = request.call.target
    start = int(unflatten.dim) % len(request.input_shape)
    return Mirror((nn.Flatten(start, start + len(unflatten.unflattened_size) - 1),))


def _numel(shape: tuple[int, ...]) -> int:
    count = 1
    for n in shape:
        count *= n
    return count


def _mirror_reshape(request: MirrorRequest) -> Mirror:
    before, after = request.input_shape, request.output_shape
    if _numel(before) != _numel(after) or before[0] != after[0]:
        what = "does not keep the number of entries" if _numel(before) != _numel(after) else "changes the batch"
        raise ShapeError(
            f"cannot mirror {request.call.describe()}: it maps {format_shape(before)} to {format_shape(after)} and "
            f"{what}, so it is not a reshape of each sample. Fix: keep the batch dimension first and reshape only "
            "the others (e.g. torch.flatten(x, 1)), or move this part out of the encoder."
        )
    return Mirror((ReshapeTo(before),), sized=True)


def _mirror_index(request: MirrorRequest) -> Mirror:
    """``x[:, None]`` is a reshape; ``x[..., 1:-1]`` crops, and zero padding back to the recorded size undoes it."""
    before, after = request.input_shape, request.output_shape
    if _numel(before) == _numel(after):
        return _mirror_reshape(request)
    index = arg(request.call, 1, "index")
    parts = index if isinstance(index, tuple) else (index,)
    if len(before) != len(after) or not all(p is Ellipsis or isinstance(p, slice) for p in parts) or any(
            isinstance(p, slice) and p.step not in (None, 1) for p in parts):
        raise ShapeError(
            f"cannot mirror {request.call.describe()}: it indexes {format_shape(before)} down to "
            f"{format_shape(after)} with {index!r}, and only slices without a step (crops) have a mirror. Fix: "
            "shrink sizes with a strided convolution or a pooling instead, or move this part out of the encoder."
        )
    return Mirror((PadTo(_fronts(parts, before), before),), sized=True)


def _fronts(parts: tuple[object, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    """How many entries each dimension's slice cut from its front (an Ellipsis stands for the dims it skips)."""
    skipped = len(shape) - (len(parts) - (1 if Ellipsis in parts else 0))
    per_dim: list[object] = []
    for part in parts:
        per_dim += [slice(None)] * skipped if part is Ellipsis else [part]
    per_dim += [slice(None)] * (len(shape) - len(per_dim))
    return tuple(0 if not isinstance(p, slice) else p.indices(n)[0] for p, n in zip(per_dim, shape))


def permutation(call: Call, rank: int) -> tuple[int, ...]:
    """The dimension order a ``permute``/``transpose``/``swapaxes`` call produces."""
    if call.name.endswith("permute"):
        dims = call.args[1:] if len(call.args) > 2 else arg(call, 1, "dims")
        return tuple(int(d) % rank for d in dims)
    first, second = int(arg(call, 1, "dim0")) % rank, int(arg(call, 2, "dim1")) % rank
    order = list(range(rank))
    order[first], order[second] = second, first
    return tuple(order)


def _mirror_permute(request: MirrorRequest) -> Mirror:
    order = permutation(request.call, len(request.input_shape))
    inverse = tuple(sorted(range(len(order)), key=order.__getitem__))
    return Mirror((Permute(inverse),))


_RESHAPES = (Tensor.view, Tensor.reshape, torch.reshape, Tensor.squeeze, torch.squeeze, Tensor.unsqueeze,
             torch.unsqueeze, Tensor.view_as, Tensor.reshape_as, Tensor.unflatten, torch.unflatten)
_PERMUTES = (Tensor.permute, torch.permute, Tensor.transpose, torch.transpose, Tensor.swapaxes, torch.swapaxes,
             Tensor.swapdims, torch.swapdims)

RULES = (
    Rule("linear", modules=(nn.Linear,), mirror=_mirror_linear, spatial=False),
    Rule("flatten", modules=(nn.Flatten,), functions=(torch.flatten, Tensor.flatten), mirror=_mirror_flatten,
         spatial=False),
    Rule("unflatten", modules=(nn.Unflatten,), mirror=_mirror_unflatten, spatial=False),
    Rule("reshape", functions=_RESHAPES, mirror=_mirror_reshape, spatial=False),
    Rule("indexing", functions=(Tensor.__getitem__,), mirror=_mirror_index),
    Rule("permutation", functions=_PERMUTES, mirror=_mirror_permute, spatial=False),
)
