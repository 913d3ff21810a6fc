"""Target layers: torch convolutions that solve their own kernel, stride and padding at construction.

Each class subclasses the torch layer it replaces, so after ``__init__`` it is that layer:
same kernels, same state_dict, same repr plus the declared sizes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, cast

import torch
from torch import Tensor, nn

from ..core.arithmetic import scaled_size
from ..core.sizes import IntOrTuple, as_int, as_tuple
from ..core.solver import ConvParams, solve_conv, solve_conv_transpose
from ..errors import ShapeError
from .same import same_output, same_params


def _target_size(
    input_size: tuple[int, ...], output_size: IntOrTuple | None, scale_factor: float | Sequence[float] | None, n: int
) -> tuple[int, ...]:
    if (output_size is None) == (scale_factor is None):
        raise ValueError("give exactly one of output_size and scale_factor")
    if scale_factor is None:
        return as_tuple(output_size, "output_size", n)
    return as_tuple(scaled_size(input_size, scale_factor), "floor(input_size·scale_factor)", n)


def _shown(values: tuple[int, ...]) -> int | tuple[int, ...]:
    return values[0] if len(set(values)) == 1 else values


class _Asked(NamedTuple):
    """What a Target layer was asked for, kept so that its errors can check their fixes."""

    transposed: bool
    ndim: int
    output_size: IntOrTuple | None
    scale_factor: float | Sequence[float] | None
    fixed: dict[str, IntOrTuple | None]  # kernel_size, stride, padding, dilation, max_kernel_size, max_stride
    layer: str  # the class name, for messages
    same: bool = False  # padding='same' (transposed): nothing is solved, output = input·stride

    def solve(self, input_size: tuple[int, ...], **changes: IntOrTuple | None) -> tuple[tuple[int, ...], ConvParams]:
        """The target size and the solved parameters for ``input_size`` (ShapeError if none reach)."""
        if self.same:
            output, params = self.solve_same(input_size)
            return cast(tuple[int, ...], output), params  # an input size gives an output size
        output = _target_size(input_size, self.output_size, self.scale_factor, self.ndim)
        solve = solve_conv_transpose if self.transposed else solve_conv
        return output, solve(input_size, output, **{**self.fixed, **changes})

    def solve_same(self, input_size: tuple[int, ...] | None) -> tuple[tuple[int, ...] | None, ConvParams]:
        """padding='same': the output for ``input_size`` (None: every size), checked against the other sizes asked."""
        params = same_params(self.fixed, self.ndim)
        return same_output(params, self.fixed, input_size, self.output_size, self.scale_factor, self.layer), params


def _check_padding_mode(params: ConvParams, padding_mode: str, asked: _Asked, input_size: tuple[int, ...]) -> None:
    """torch pads 'reflect' by less than the size and 'circular' by at most the size."""
    if padding_mode not in ("reflect", "circular"):
        return
    limit = tuple(i - (padding_mode == "reflect") for i in input_size)
    if all(p <= top for p, top in zip(params.padding, limit)):
        return
    fixes = ["padding_mode='zeros'"]
    try:
        asked.solve(input_size, padding=limit)
        fixes.insert(0, f"padding={_shown(limit)}")
    except ShapeError:
        pass
    raise ShapeError(f"the solved padding {params.padding} is too large for padding_mode={padding_mode!r} "
                     f"on input size {input_size}. Fix: use {' or '.join(fixes)}.")


class _Target:
    """What the six Target layers share: the declared sizes, the forward check and the repr."""

    _ndim: int
    _transposed: bool
    input_size: tuple[int, ...] | None
    output_size: tuple[int, ...] | None
    conv_params: ConvParams
    _asked: _Asked

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        input_size: IntOrTuple | None = None,
        output_size: IntOrTuple | None = None,
        scale_factor: float | Sequence[float] | None = None,
        kernel_size: IntOrTuple | None = None,
        stride: IntOrTuple | None = None,
        padding: IntOrTuple | str | None = None,
        dilation: IntOrTuple | None = None,
        max_kernel_size: IntOrTuple | None = None,
        max_stride: IntOrTuple | None = None,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        n = self._ndim
        as_int(in_channels, "in_channels")
        as_int(out_channels, "out_channels")
        same = padding == "same" and self._transposed
        if isinstance(padding, str) and not same:
            raise ValueError(
                f"padding={padding!r} is not solvable here: give an int, a tuple or None"
                + (" ('same' is supported by the transposed layers)" if padding == "same" else "")
            )
        if input_size is None and not same:
            raise TypeError(f"{type(self).__name__} needs input_size (the spatial size it will receive)")
        size = None if input_size is None else as_tuple(input_size, "input_size", n)
        fixed = {"kernel_size": kernel_size, "stride": stride, "padding": None if isinstance(padding, str) else padding,
                 "dilation": dilation, "max_kernel_size": max_kernel_size, "max_stride": max_stride}
        self._asked = _Asked(self._transposed, n, output_size, scale_factor, fixed, type(self).__name__, same)
        output: tuple[int, ...] | None
        if same or size is None:  # no size only with padding='same'
            output, params = self._asked.solve_same(size)
        else:
            output, params = self._solve_declared(size, in_channels, out_channels)
            _check_padding_mode(params, padding_mode, self._asked, size)
        self.input_size, self.output_size, self.conv_params = size, output, params
        super().__init__(in_channels, out_channels, **params.as_kwargs(), groups=groups,  # type: ignore[call-arg]
                         bias=bias, padding_mode=padding_mode, device=device, dtype=dtype)

    def _solve_declared(self, size: tuple[int, ...], in_channels: int,
                        out_channels: int) -> tuple[tuple[int, ...], ConvParams]:
        """The target size and the solved parameters; a ShapeError names the layer and its sizes."""
        output = _target_size(size, self._asked.output_size, self._asked.scale_factor, self._ndim)
        try:
            return output, self._asked.solve(size)[1]
        except ShapeError as error:
            context = f"{type(self).__name__}({in_channels}, {out_channels}, input_size={size}, "
            raise ShapeError(f"{context}output_size={output}): {error}") from None

    def _accepts(self, input: Tensor) -> bool:
        """The forward check: one torch.Size comparison (about a microsecond), guarded away by compile."""
        return self.input_size is None or input.shape[-self._ndim:] == self.input_size

    def _wrong_input(self, input: Tensor) -> ShapeError:
        got = tuple(input.shape[-self._ndim:])
        fixes = [*self._rebuilt(got), f"resize the input to {self.input_size} (e.g. nn.functional.interpolate)"]
        if self._asked.same:
            sizes = "input_size and output_size" if self._asked.output_size is not None else "input_size"
            fixes.insert(-1, f"drop {sizes} (padding='same' then takes every size)")
        return ShapeError(
            f"{type(self).__name__} was built for input size {self.input_size} (to give {self.output_size}) "
            f"but got {got}. Fix: {', or '.join(fixes)}. MirrorAutoencoder passes the sizes of every call instead."
        )

    def _rebuilt(self, got: tuple[int, ...]) -> list[str]:
        """Build it for the new size: the same request if solvable there, else the size these parameters give."""
        try:
            self._asked.solve(got)
            return [f"build it with input_size={got}"]
        except (ShapeError, ValueError):
            gives = self.conv_params.output_size(got)
            instead = " instead of scale_factor" if self._asked.scale_factor is not None else ""
            return [f"build it with input_size={got} and output_size={gives}{instead}"] if min(gives) >= 1 else []

    def extra_repr(self) -> str:
        base: str = super().extra_repr()  # type: ignore[misc]
        if self.input_size is None:
            return base + ", output=input·stride"
        return base + f", input_size={self.input_size}, output_size={self.output_size}"


class _TargetConv(_Target):
    _transposed = False

    def forward(self, input: Tensor) -> Tensor:
        if not self._accepts(input):
            raise self._wrong_input(input)
        return super().forward(input)  # type: ignore[misc, no-any-return]


class _TargetConvTranspose(_Target):
    _transposed = True

    def forward(self, input: Tensor, output_size: list[int] | None = None) -> Tensor:
        if not self._accepts(input):
            raise self._wrong_input(input)
        if output_size is not None:  # torch would pick another output_padding for it
            self._check_call_size(input, output_size)
        return super().forward(input, output_size)  # type: ignore[misc, no-any-return]

    def _check_call_size(self, input: Tensor, output_size: Sequence[int]) -> None:
        """An ``output_size`` passed to forward must be the size the layer was built to give."""
        got = tuple(input.shape[-self._ndim:])
        gives = self.conv_params.output_size(got)
        asked = tuple(int(v) for v in output_size)[-self._ndim:]
        if asked == gives:
            return
        fixes = [f"call it without output_size (it gives {gives})"]
        changed = self._asked._replace(output_size=asked, scale_factor=None, same=False)
        try:
            changed.solve(got)
            instead = " instead of scale_factor" if self._asked.scale_factor is not None else ""
            unsame = " and without padding='same'" if self._asked.same else ""
            fixes.append(f"build it with input_size={got} and output_size={asked}{instead}{unsame}")
        except ValueError:
            pass
        built = "padding='same'" if self.output_size is None else f"output_size={self.output_size}"
        raise ShapeError(
            f"{type(self).__name__} gives {gives} for input size {got} ({built}), but forward got "
            f"output_size={list(output_size)}, which would change its output_padding. Fix: {', or '.join(fixes)}."
        )


_SHAPE_CONV = """
    Shape:
        Input ``(N, C_in, {dims})`` with ``{dims}`` equal to ``input_size``; output
        ``(N, C_out, {dims_out})`` equal to ``output_size``, where per dimension
        ``out = floor((in + 2·padding - dilation·(kernel_size-1) - 1) / stride) + 1``.
"""
_SHAPE_TRANSPOSE = """
    Shape:
        Input ``(N, C_in, {dims})`` with ``{dims}`` equal to ``input_size``; output
        ``(N, C_out, {dims_out})`` equal to ``output_size``, where per dimension
        ``out = (in-1)·stride - 2·padding + dilation·(kernel_size-1) + output_padding + 1``.
        With ``padding='same'`` ``out = in·stride``: for any input, or only ``input_size`` if given.
        An ``output_size`` passed to ``forward`` must be the size the layer gives (torch would pick
        another ``output_padding`` for it).
"""
_ARGS = """
    Args:
        in_channels: as for ``nn.{base}``.
        out_channels: as for ``nn.{base}``.
        input_size: the spatial size the layer receives (int or one per dimension).
        output_size: the spatial size it must produce. Give this or ``scale_factor``.
        scale_factor: ``output = floor(input·scale_factor)``, as in ``nn.Upsample``.
        kernel_size: fix it, or None (default) to have it solved. The solved values of
            ``kernel_size``, ``stride``, ``padding`` and ``dilation`` are the layer's usual attributes.
        stride: fix it, or None to have it solved.
        padding: fix it, or None to have it solved; the transposed layers also take ``'same'``
            (``output = input·stride`` at every input size; nothing is solved). With ``'same'``,
            ``input_size`` is optional (if given, it is checked on every call), and ``output_size``,
            ``scale_factor`` and the ``max_*`` bounds must agree with the kernel and stride.
        dilation: fix it, or None for 1.
        max_kernel_size: a bound for a free kernel_size.
        max_stride: a bound for a free stride.
        groups: as for ``nn.{base}``.
        bias: as for ``nn.{base}``.
        padding_mode: as for ``nn.{base}``.
        device: as for ``nn.{base}``.
        dtype: as for ``nn.{base}``.

    Raises:
        TypeError: a size is not an int or tuple of ints, or ``input_size`` is missing.
        ValueError: a value is out of range; both or neither of ``output_size``/``scale_factor``;
            a fixed ``kernel_size`` or ``stride`` above its ``max_*`` bound.
        ShapeError: the fixed values make the target unreachable (the message names the
            nearest reachable sizes); ``padding='same'`` with an ``output_size`` or ``scale_factor``
            other than ``input·stride`` (the message names both); ``forward`` gets another spatial
            size than ``input_size``, or (transposed) an ``output_size`` other than the layer's.
"""


def _doc(summary: str, base: str, transposed: bool, dims: str, dims_out: str, example: str) -> str:
    shape = (_SHAPE_TRANSPOSE if transposed else _SHAPE_CONV).format(dims=dims, dims_out=dims_out)
    return f"{summary}\n{_ARGS.format(base=base)}{shape}\n    Examples:\n{example}"


class TargetConv1d(_TargetConv, nn.Conv1d):
    __doc__ = _doc(
        "An ``nn.Conv1d`` that solves kernel_size, stride and padding to reach ``output_size``.",
        "Conv1d", False, "L_in", "L_out",
        """        >>> layer = TargetConv1d(1, 8, input_size=16000, output_size=3199)
        >>> layer(torch.zeros(2, 1, 16000)).shape
        torch.Size([2, 8, 3199])
""")
    _ndim = 1


class TargetConv2d(_TargetConv, nn.Conv2d):
    __doc__ = _doc(
        "An ``nn.Conv2d`` that solves kernel_size, stride and padding to reach ``output_size``.",
        "Conv2d", False, "H_in, W_in", "H_out, W_out",
        """        >>> layer = TargetConv2d(3, 16, input_size=25, output_size=13)
        >>> layer
        TargetConv2d(3, 16, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), input_size=(25, 25), output_size=(13, 13))
        >>> layer(torch.zeros(1, 3, 25, 25)).shape
        torch.Size([1, 16, 13, 13])
""")
    _ndim = 2


class TargetConv3d(_TargetConv, nn.Conv3d):
    __doc__ = _doc(
        "An ``nn.Conv3d`` that solves kernel_size, stride and padding to reach ``output_size``.",
        "Conv3d", False, "D_in, H_in, W_in", "D_out, H_out, W_out",
        """        >>> layer = TargetConv3d(1, 4, input_size=(9, 16, 16), scale_factor=0.5)
        >>> layer(torch.zeros(1, 1, 9, 16, 16)).shape
        torch.Size([1, 4, 4, 8, 8])
""")
    _ndim = 3


class TargetConvTranspose1d(_TargetConvTranspose, nn.ConvTranspose1d):
    __doc__ = _doc(
        "An ``nn.ConvTranspose1d`` that solves kernel_size, stride, padding and output_padding.",
        "ConvTranspose1d", True, "L_in", "L_out",
        """        >>> layer = TargetConvTranspose1d(8, 1, input_size=4, output_size=250)
        >>> layer(torch.zeros(2, 8, 4)).shape
        torch.Size([2, 1, 250])
""")
    _ndim = 1


class TargetConvTranspose2d(_TargetConvTranspose, nn.ConvTranspose2d):
    __doc__ = _doc(
        "An ``nn.ConvTranspose2d`` that solves kernel_size, stride, padding and output_padding.",
        "ConvTranspose2d", True, "H_in, W_in", "H_out, W_out",
        """        >>> layer = TargetConvTranspose2d(256, 128, input_size=12, output_size=24)
        >>> layer
        TargetConvTranspose2d(256, 128, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1), input_size=(12, 12), output_size=(24, 24))
        >>> layer(torch.zeros(1, 256, 12, 12)).shape
        torch.Size([1, 128, 24, 24])
        >>> same = TargetConvTranspose2d(4, 4, kernel_size=3, stride=2, padding="same")
        >>> same(torch.zeros(1, 4, 7, 10)).shape
        torch.Size([1, 4, 14, 20])
""")
    _ndim = 2


class TargetConvTranspose3d(_TargetConvTranspose, nn.ConvTranspose3d):
    __doc__ = _doc(
        "An ``nn.ConvTranspose3d`` that solves kernel_size, stride, padding and output_padding.",
        "ConvTranspose3d", True, "D_in, H_in, W_in", "D_out, H_out, W_out",
        """        >>> layer = TargetConvTranspose3d(4, 1, input_size=(5, 8, 8), output_size=(9, 16, 16))
        >>> layer(torch.zeros(1, 4, 5, 8, 8)).shape
        torch.Size([1, 1, 9, 16, 16])
""")
    _ndim = 3

