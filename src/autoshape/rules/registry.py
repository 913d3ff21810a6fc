"""The shape of a layer rule: what autoshape knows about one family of torch layers.

A :class:`Rule` is keyed by public torch classes and by the torch functions that do the same
thing (``nn.MaxPool2d`` and ``F.max_pool2d`` share one rule). It holds the family's spatial
dimensions, its size formula for ``explain``, whether it always keeps the shape, its mirror,
and whether a U-Net may hold it and end a stage at it. The families are listed in
:mod:`autoshape.rules`; adding a layer type is one entry in one family file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from ..core.formulas import Term
from ..tracing import Call

__all__ = ["POOL_MIRRORS", "Mirror", "MirrorRequest", "Options", "PoolMirror", "Rule", "Shape", "arg"]

Shape = tuple[int, ...]
PoolMirror = Literal["nearest", "linear", "conv"]
POOL_MIRRORS: tuple[PoolMirror, ...] = ("nearest", "linear", "conv")


@dataclass(frozen=True)
class Options:
    """How to mirror: pooling by interpolation or a learned transposed conv; tied conv weights;
    the device and dtype of new layers (those of the encoder's first parameter)."""

    pool_mirror: PoolMirror
    tie_weights: bool
    device: torch.device | None
    dtype: torch.dtype | None

    @classmethod
    def for_encoder(cls, encoder: nn.Module, pool_mirror: object, tie_weights: object) -> Options:
        """Checked options for ``encoder``.

        Raises:
            TypeError: ``tie_weights`` is not a bool.
            ValueError: an unknown ``pool_mirror``.
        """
        if pool_mirror not in POOL_MIRRORS:
            raise ValueError(f"pool_mirror must be one of {POOL_MIRRORS}, got {pool_mirror!r}")
        if not isinstance(tie_weights, bool):
            raise TypeError(f"tie_weights must be a bool, got {tie_weights!r}")
        first = next(encoder.parameters(), None) if isinstance(encoder, nn.Module) else None
        device = None if first is None else first.device
        dtype = first.dtype if first is not None and first.is_floating_point() else None
        return cls(pool_mirror, tie_weights, device, dtype)

    @property
    def factory(self) -> dict[str, Any]:
        """``device=`` and ``dtype=`` for a new layer."""
        return {"device": self.device, "dtype": self.dtype}


@dataclass(frozen=True)
class MirrorRequest:
    """One encoder step to undo: from ``in_channels`` at its output back to ``out_channels`` at its input.

    Attributes:
        call: the step's call in the record.
        input_shape, output_shape: the step's shapes on the encoder's data path.
        in_channels: the decoder's channels where the mirror starts (the step's output side).
        out_channels: the channels it must give back.
        options: the mirror options.
        head: the mirror is the network's output layer (a conv gets a bias: no norm follows it).
    """

    call: Call
    input_shape: Shape
    output_shape: Shape
    in_channels: int
    out_channels: int
    options: Options
    head: bool = False


@dataclass(frozen=True)
class Mirror:
    """The decoder layers that undo one step; the first one undoes it.

    ``sized``: the first layer takes the step's recorded input shape per call (``output_size``),
    which makes it exact at every input size.
    """

    layers: tuple[nn.Module, ...]
    sized: bool = False


Terms = Callable[[Call, Shape, "Shape | None"], list[Term]]


@dataclass(frozen=True)
class Rule:
    """What autoshape knows about one family of layers.

    Attributes:
        name: the family, for messages (``'convolution'``).
        modules: the torch module classes it covers (subclasses included).
        functions: the torch functions and Tensor methods that do the same.
        ndim: how many trailing dimensions its size rule acts on, for a call (None: no spatial rule).
        terms: torch's size formula per spatial dimension, with the call's numbers filled in, from
            the input sizes and the traced output sizes (None: no formula to show).
        keeps_shape: it never changes the shape (activations, dropout): a mirror copies it.
        mirror: the decoder layers that undo a call (None: it cannot be mirrored).
        spatial: it keeps ``(N, C, *spatial)``, so a U-Net may hold it (False for Linear, reshapes).
        scales: it may change the scale (a stride), so a U-Net stage may end at it.
    """

    name: str
    modules: tuple[type[nn.Module], ...] = ()
    functions: tuple[Callable[..., Any], ...] = ()
    ndim: Callable[[Call], int] | None = None
    terms: Terms | None = None
    keeps_shape: bool = False
    mirror: Callable[[MirrorRequest], Mirror] | None = None
    spatial: bool = True
    scales: bool = False


def arg(call: Call, position: int, name: str, default: Any = None) -> Any:
    """A function call's argument, given by position (counting the input as 0) or by name."""
    if len(call.args) > position:
        return call.args[position]
    return call.kwargs.get(name, default)
