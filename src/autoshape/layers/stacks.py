"""Generator and encoder stacks planned by target resolution: plain torch layers in an nn.Sequential.

Each stack plans its layers once (:mod:`autoshape.planning`) and builds plain
``nn.ConvTranspose*d`` / ``nn.Conv*d`` layers from the solved parameters, so it has no overhead
and its state_dict is that of the same stack written by hand.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import partial
from typing import Any, Callable, Union

import torch
from torch import nn

from ..core.planning import Plan, plan_downsampling, plan_upsampling
from ..core.sizes import IntOrTuple, as_int, as_tuple
from ..errors import ShapeError

__all__ = ["DownsamplingStack", "UpsamplingStack"]

NormFactory = Callable[[int], nn.Module]
"""A norm class or factory: called with the channel count, returns a module (e.g. ``nn.BatchNorm2d``)."""
ActivationFactory = Callable[[], nn.Module]
"""An activation class or factory: called with no argument (e.g. ``nn.ReLU``, ``lambda: nn.LeakyReLU(0.2)``)."""
Norm = Union[NormFactory, str, None]

_CONVS = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_CONV_TRANSPOSES = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
_BATCH_NORMS = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_LEAKY_RELU = partial(nn.LeakyReLU, 0.2)


def _made(factory: Callable[..., nn.Module], name: str, *args: int) -> nn.Module:
    """Call a class or factory; refuse module instances (they would be shared) and non-modules."""
    if isinstance(factory, nn.Module):
        raise TypeError(f"{name} must be a class or a factory, not the module instance {factory!r} "
                        f"(it would be shared by every layer). Fix: pass {type(factory).__name__} "
                        "or a lambda that builds one.")
    if not callable(factory):
        raise TypeError(f"{name} must be a class, a factory or None, got {factory!r}")
    module = factory(*args)
    if not isinstance(module, nn.Module):
        raise TypeError(f"{name} must build an nn.Module, but {factory!r} returned {module!r}")
    return module


def _in_stack_terms(message: str) -> str:
    """The planner's fixes speak of num_layers; a stack has one layer more than it has widths in channels."""
    return re.sub(r"num_layers=(\d+)", lambda m: f"{int(m.group(1)) - 1} widths in channels", message)


class _Stack(nn.Sequential):
    """What both stacks share: plan, build plain layers, check the input size, show the sizes."""

    plan: Plan
    input_size: tuple[int, ...]
    output_size: tuple[int, ...]
    _replan: Callable[[tuple[int, ...]], Plan]

    def __init__(
        self,
        transposed: bool,
        in_channels: int,
        channels: Sequence[int],
        out_channels: int,
        *,
        input_size: IntOrTuple,
        output_size: IntOrTuple,
        kernel_size: IntOrTuple | None,
        max_stride: IntOrTuple,
        max_kernel_size: IntOrTuple | None,
        norm: Norm,
        activation: ActivationFactory | None,
        final_activation: ActivationFactory | None,
        bias: bool | None,
        dims: int,
        norm_first: bool,
    ) -> None:
        name = type(self).__name__
        if dims not in _CONVS:
            raise ValueError(f"{name}: dims must be 1, 2 or 3, got {dims!r}")
        if isinstance(channels, (str, bytes)) or not isinstance(channels, Sequence):
            raise TypeError(f"{name}: channels must be a sequence of ints (the hidden widths), got {channels!r}")
        widths = [as_int(in_channels, "in_channels"), *(as_int(c, "channels") for c in channels),
                  as_int(out_channels, "out_channels")]
        if bias is not None and not isinstance(bias, bool):
            raise TypeError(f"{name}: bias must be True, False or None, got {bias!r}")
        if isinstance(norm, str) and norm != "batch":
            raise ValueError(f"{name}: norm must be 'batch', a class, a factory or None, got {norm!r}")
        make_norm = _BATCH_NORMS[dims] if isinstance(norm, str) else norm
        planner = plan_upsampling if transposed else plan_downsampling
        self._replan = partial(planner, output_size=as_tuple(output_size, "output_size", dims),
                               num_layers=len(widths) - 1, kernel_size=kernel_size, max_stride=max_stride,
                               max_kernel_size=max_kernel_size)
        try:
            plan = self._replan(as_tuple(input_size, "input_size", dims))
        except ShapeError as error:
            raise ShapeError(f"{name}(in_channels={in_channels}, channels={tuple(channels)}, "
                             f"out_channels={out_channels}) has len(channels)+1 = {len(widths) - 1} layers: "
                             f"{_in_stack_terms(str(error))}") from None
        conv = (_CONV_TRANSPOSES if transposed else _CONVS)[dims]
        layers: list[nn.Module] = []
        for n, (step, c_in, c_out) in enumerate(zip(plan, widths, widths[1:])):
            last = n == len(plan) - 1
            norm_here = None if last or (n == 0 and not norm_first) else make_norm
            layer_bias = norm_here is None if bias is None else bias
            solved: dict[str, Any] = step.params.as_kwargs()
            layers.append(conv(c_in, c_out, bias=layer_bias, **solved))
            if norm_here is not None:
                layers.append(_made(norm_here, "norm", c_out))
            act = final_activation if last else activation
            if act is not None:
                layers.append(_made(act, "final_activation" if last else "activation"))
        super().__init__(*layers)
        self.plan = plan
        self.input_size, self.output_size = plan.input_size, plan.output_size

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        got = tuple(input.shape[-len(self.input_size):])
        if got != self.input_size:
            raise self._wrong_input(got)
        return super().forward(input)  # type: ignore[no-untyped-call, no-any-return]

    def _wrong_input(self, got: tuple[int, ...]) -> ShapeError:
        fixes = [f"resize the input to {self.input_size} (e.g. nn.functional.interpolate)"]
        try:
            self._replan(got)
            fixes.insert(0, f"build it with input_size={got}")
        except ValueError:  # ShapeError included: no plan from that size
            pass
        return ShapeError(f"{type(self).__name__} was planned for input size {self.input_size} (to give "
                          f"{self.output_size}) but got {got}. Fix: {', or '.join(fixes)}.")

    def extra_repr(self) -> str:
        return f"input_size={self.input_size}, output_size={self.output_size}"


class UpsamplingStack(_Stack):
    """A generator or decoder: ``len(channels)+1`` transposed convolutions planned to hit ``output_size``.

    The layers come from :func:`plan_upsampling` (scale spread geometrically, whole strides and
    checkerboard-free kernels wherever the kernel bounds allow them: the free cap, ``4·max_stride+1``,
    is odd) and are plain ``nn.ConvTranspose*d``. Every
    layer but the last is followed by ``norm`` and ``activation``; the last by
    ``final_activation``. The plan is the attribute ``plan`` (``print(stack.plan)`` shows it).

    Args:
        in_channels: channels of the input (e.g. the latent size, 100 in DCGAN).
        channels: the widths between layers, one per hidden layer (e.g. ``(512, 256, 128, 64)``).
        out_channels: channels of the output (e.g. 3 for RGB).
        input_size: the spatial input size (1 for a latent vector seen as a 1×1 image).
        output_size: the spatial size to produce.
        kernel_size: fix every kernel (4 reproduces DCGAN; a fixed kernel's plan may shrink before
            it grows); None lets the planner choose, up to ``4·max_stride+1`` (see :func:`plan_upsampling`).
        max_stride: the largest stride of any layer.
        max_kernel_size: bound the chosen kernels (with ``kernel_size=None``).
        norm: ``"batch"`` (``nn.BatchNorm1d/2d/3d`` to match ``dims``), a class or factory called
            with the channel count (e.g. ``lambda c: nn.GroupNorm(8, c)``), or None.
        activation: a class or factory called with no argument, or None.
        final_activation: the same, after the last layer (``nn.Tanh`` for images in [-1, 1]).
        bias: None gives a bias exactly to the layers no norm follows; True or False sets all.
        dims: 1, 2 or 3 spatial dimensions.

    Shape:
        Input ``(N, in_channels, *input_size)``, output ``(N, out_channels, *output_size)``;
        each layer follows ``out = (in-1)·stride - 2·padding + (kernel_size-1) + output_padding + 1``.

    Examples:
        >>> dcgan = UpsamplingStack(100, (512, 256, 128, 64), 3, input_size=1, output_size=64,
        ...                         kernel_size=4, bias=False)
        >>> dcgan(torch.zeros(2, 100, 1, 1)).shape
        torch.Size([2, 3, 64, 64])
        >>> mnist = UpsamplingStack(64, (128, 64), 1, input_size=1, output_size=28)
        >>> [step.output_size for step in mnist.plan]
        [(7, 7), (14, 14), (28, 28)]

    Raises:
        TypeError: a size, width or bias of the wrong type; a module instance or a non-module
            factory given as norm or activation.
        ValueError: a value out of range, or dims not in 1, 2, 3.
        ShapeError: no plan reaches ``output_size`` (the message names the reachable sizes and
            a fix), or ``forward`` gets another spatial size than ``input_size``.
    """

    def __init__(
        self,
        in_channels: int,
        channels: Sequence[int],
        out_channels: int,
        *,
        input_size: IntOrTuple,
        output_size: IntOrTuple,
        kernel_size: IntOrTuple | None = None,
        max_stride: IntOrTuple = 2,
        max_kernel_size: IntOrTuple | None = None,
        norm: Norm = "batch",
        activation: ActivationFactory | None = nn.ReLU,
        final_activation: ActivationFactory | None = nn.Tanh,
        bias: bool | None = None,
        dims: int = 2,
    ) -> None:
        super().__init__(True, in_channels, channels, out_channels, input_size=input_size, output_size=output_size,
                         kernel_size=kernel_size, max_stride=max_stride, max_kernel_size=max_kernel_size, norm=norm,
                         activation=activation, final_activation=final_activation, bias=bias, dims=dims,
                         norm_first=True)


class DownsamplingStack(_Stack):
    """An encoder or discriminator: ``len(channels)+1`` convolutions planned to hit ``output_size``.

    The layers come from :func:`plan_downsampling` and are plain ``nn.Conv*d``. Every layer but
    the last is followed by ``activation``, and by ``norm`` before it except after the first
    layer unless ``norm_first=True``: as in DCGAN's discriminator, whose first layer sees raw
    pixels and is not normalised. The last layer is followed by ``final_activation``.

    Args:
        in_channels: channels of the input (e.g. 3 for RGB).
        channels: the widths between layers, one per hidden layer (e.g. ``(64, 128, 256, 512)``).
        out_channels: channels of the output (e.g. 1 for a discriminator's score).
        input_size: the spatial input size.
        output_size: the spatial size to produce (1 for a score per image).
        kernel_size: fix every kernel (4 reproduces DCGAN; a fixed kernel's plan may grow before
            it shrinks); None lets the planner choose, up to ``4·max_stride+1`` (see :func:`plan_downsampling`).
        max_stride: the largest stride of any layer.
        max_kernel_size: bound the chosen kernels (with ``kernel_size=None``).
        norm: ``"batch"`` (``nn.BatchNorm1d/2d/3d`` to match ``dims``), a class or factory called
            with the channel count, or None.
        activation: a class or factory called with no argument (default LeakyReLU(0.2)), or None.
        final_activation: the same, after the last layer; None gives logits (for
            ``BCEWithLogitsLoss``), ``nn.Sigmoid`` gives DCGAN's probabilities.
        bias: None gives a bias exactly to the layers no norm follows; True or False sets all.
        dims: 1, 2 or 3 spatial dimensions.
        norm_first: also normalise after the first layer.

    Shape:
        Input ``(N, in_channels, *input_size)``, output ``(N, out_channels, *output_size)``;
        each layer follows ``out = floor((in + 2·padding - (kernel_size-1) - 1) / stride) + 1``.

    Examples:
        >>> critic = DownsamplingStack(3, (64, 128, 256, 512), 1, input_size=64, output_size=1, kernel_size=4)
        >>> critic(torch.zeros(2, 3, 64, 64)).shape
        torch.Size([2, 1, 1, 1])
        >>> [step.output_size[0] for step in critic.plan]
        [32, 16, 8, 4, 1]

    Raises:
        TypeError: a size, width or bias of the wrong type; a module instance or a non-module
            factory given as norm or activation.
        ValueError: a value out of range, or dims not in 1, 2, 3.
        ShapeError: no plan reaches ``output_size`` (the message names the reachable sizes and
            a fix), or ``forward`` gets another spatial size than ``input_size``.
    """

    def __init__(
        self,
        in_channels: int,
        channels: Sequence[int],
        out_channels: int,
        *,
        input_size: IntOrTuple,
        output_size: IntOrTuple,
        kernel_size: IntOrTuple | None = None,
        max_stride: IntOrTuple = 2,
        max_kernel_size: IntOrTuple | None = None,
        norm: Norm = "batch",
        activation: ActivationFactory | None = _LEAKY_RELU,
        final_activation: ActivationFactory | None = None,
        bias: bool | None = None,
        dims: int = 2,
        norm_first: bool = False,
    ) -> None:
        if not isinstance(norm_first, bool):
            raise TypeError(f"DownsamplingStack: norm_first must be a bool, got {norm_first!r}")
        super().__init__(False, in_channels, channels, out_channels, input_size=input_size, output_size=output_size,
                         kernel_size=kernel_size, max_stride=max_stride, max_kernel_size=max_kernel_size, norm=norm,
                         activation=activation, final_activation=final_activation, bias=bias, dims=dims,
                         norm_first=norm_first)
