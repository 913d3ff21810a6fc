"""Exact output-size arithmetic of torch's convolutions and poolings, as pure integer functions.

Every public function takes an int or one int per spatial dimension for each
argument and answers in the same form: ints in, int out; a tuple anywhere, tuples out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union, overload

from .empty_output import CONV_CHANGES, POOL_CHANGES, Layer, check_output, transpose_changes
from .sizes import IntOrTuple, as_tuple, like, spatial_ndim

__all__ = [
    "conv_out",
    "conv_output_size",
    "conv_transpose_out",
    "conv_transpose_output_range",
    "conv_transpose_output_size",
    "max_output_padding",
    "nearest_read_sizes",
    "output_padding_for",
    "pool_out",
    "pool_output_size",
    "same_padding",
    "scaled_size",
    "unread_rows",
]

Padding = Union[IntOrTuple, str]


def conv_out(i: int, k: int, s: int, p: int, d: int) -> int:
    """One dimension of ``nn.Conv*d``: ``floor((i + 2p - d(k-1) - 1) / s) + 1`` (may be < 1)."""
    return (i + 2 * p - d * (k - 1) - 1) // s + 1


def conv_transpose_out(i: int, k: int, s: int, p: int, d: int, op: int) -> int:
    """One dimension of ``nn.ConvTranspose*d``: ``(i-1)s - 2p + d(k-1) + op + 1`` (may be < 1)."""
    return (i - 1) * s - 2 * p + d * (k - 1) + op + 1


def max_output_padding(s: int, d: int) -> int:
    """The largest ``output_padding`` torch accepts: ``max(stride, dilation) - 1`` (torch's rule)."""
    return max(s, d) - 1


def output_padding_for(target: int, i: int, k: int, s: int, p: int, d: int) -> int | None:
    """The output_padding with which a transposed conv takes ``i`` to ``target``; None where torch cannot."""
    op = target - conv_transpose_out(i, k, s, p, d, 0)
    return op if 0 <= op <= max_output_padding(s, d) else None


def unread_rows(i: int, o: int, k: int, s: int, p: int, d: int) -> int:
    """How many of the input's last rows no window of a conv reaches (its last window's last tap
    is at ``(o-1)·stride - padding + dilation·(kernel_size-1)``)."""
    return max(0, i - 1 - ((o - 1) * s - p + d * (k - 1)))


def nearest_read_sizes(i: int, k: int, s: int, p: int, d: int, spare: int = 0) -> tuple[int | None, int]:
    """The input sizes nearest ``i``, below and above, whose last rows a conv reads (all but the last
    ``spare``, which a padding layer added); None below where no smaller size gives an output.
    Which sizes are read repeats every ``stride`` sizes, so each lies within a stride of ``i``."""
    def read(n: int) -> bool:
        out = conv_out(n, k, s, p, d)
        return out >= 1 and unread_rows(n, out, k, s, p, d) <= spare

    below = next((n for n in range(i - 1, max(0, i - s - 1), -1) if read(n)), None)
    return below, next(n for n in range(i + 1, i + s + 1) if read(n))


def pool_out(i: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """One dimension of torch's max/avg pooling, ``ceil_mode`` included (may be < 1)."""
    span = i + 2 * p - d * (k - 1) - 1
    out = (span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= i + p:
        out -= 1  # torch drops a last window that would start inside the right padding
    return out


def same_padding(k: int, d: int) -> tuple[int, int]:
    """Left and right padding of torch's ``padding='same'`` (stride 1): ``d(k-1)`` split, extra on the right."""
    total = d * (k - 1)
    return total // 2, total - total // 2


def _ndim(*values: object) -> int:
    return spatial_ndim(*values) or 1


def _form(args: tuple[object, ...], sizes: tuple[int, ...]) -> int | tuple[int, ...]:
    return like(*args, values=sizes)


def _layers(**values: tuple[int, ...]) -> list[Layer]:
    """One dict of named arguments per dimension."""
    return [dict(zip(values, column)) for column in zip(*values.values())]


def _conv_size(x: Layer) -> int:
    return conv_out(x["input_size"], x["kernel_size"], x["stride"], x["padding"], x["dilation"])


def _conv_transpose_size(x: Layer) -> int:
    return conv_transpose_out(x["input_size"], x["kernel_size"], x["stride"], x["padding"], x["dilation"],
                              x["output_padding"])


def _string_padding(padding: str, stride: tuple[int, ...]) -> str:
    if padding not in ("same", "valid"):
        raise ValueError(f"padding must be an int, a tuple, 'same' or 'valid', got {padding!r}")
    if padding == "same" and any(s != 1 for s in stride):
        raise ValueError(f"padding='same' needs stride 1 (as in torch), got stride={stride}")
    return padding


@overload
def conv_output_size(
    input_size: int, kernel_size: int, stride: int = ..., padding: int | str = ..., dilation: int = ...
) -> int: ...
@overload
def conv_output_size(
    input_size: IntOrTuple,
    kernel_size: IntOrTuple,
    stride: IntOrTuple = ...,
    padding: Padding = ...,
    dilation: IntOrTuple = ...,
) -> int | tuple[int, ...]: ...
def conv_output_size(
    input_size: IntOrTuple,
    kernel_size: IntOrTuple,
    stride: IntOrTuple = 1,
    padding: Padding = 0,
    dilation: IntOrTuple = 1,
) -> int | tuple[int, ...]:
    """Output size of ``nn.Conv1d/2d/3d``, exactly as torch computes it.

    Args:
        input_size: spatial input size, an int or one int per dimension.
        kernel_size: as for ``nn.Conv2d``.
        stride: as for ``nn.Conv2d``.
        dilation: as for ``nn.Conv2d``.
        padding: an int, a tuple, ``'valid'`` (0) or ``'same'`` (output = input; stride 1).

    Shape:
        ``out = floor((in + 2·padding - dilation·(kernel_size - 1) - 1) / stride) + 1``

    Examples:
        >>> conv_output_size(24, kernel_size=3, stride=2, padding=1)
        12
        >>> conv_output_size((25, 24), kernel_size=3, stride=2, padding=1)
        (13, 12)

    Raises:
        TypeError: a size is not an int or tuple of ints.
        ValueError: a value is out of range, or tuples disagree in length.
        ShapeError: the input is too small for the kernel.
    """
    n = _ndim(input_size, kernel_size, stride, padding, dilation)
    i = as_tuple(input_size, "input_size", n)
    k = as_tuple(kernel_size, "kernel_size", n)
    s = as_tuple(stride, "stride", n)
    d = as_tuple(dilation, "dilation", n)
    if isinstance(padding, str) and _string_padding(padding, s) == "same":
        return _form((input_size, kernel_size, stride, padding, dilation), i)
    p = (0,) * n if isinstance(padding, str) else as_tuple(padding, "padding", n, minimum=0)
    layers = _layers(input_size=i, kernel_size=k, stride=s, padding=p, dilation=d)
    sizes = check_output("this convolution", _conv_size, layers, CONV_CHANGES)
    return _form((input_size, kernel_size, stride, padding, dilation), sizes)


@overload
def conv_transpose_output_size(
    input_size: int,
    kernel_size: int,
    stride: int = ...,
    padding: int = ...,
    dilation: int = ...,
    output_padding: int = ...,
) -> int: ...
@overload
def conv_transpose_output_size(
    input_size: IntOrTuple,
    kernel_size: IntOrTuple,
    stride: IntOrTuple = ...,
    padding: IntOrTuple = ...,
    dilation: IntOrTuple = ...,
    output_padding: IntOrTuple = ...,
) -> int | tuple[int, ...]: ...
def conv_transpose_output_size(
    input_size: IntOrTuple,
    kernel_size: IntOrTuple,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    output_padding: IntOrTuple = 0,
) -> int | tuple[int, ...]:
    """Output size of ``nn.ConvTranspose1d/2d/3d``, exactly as torch computes it.

    Shape:
        ``out = (in - 1)·stride - 2·padding + dilation·(kernel_size - 1) + output_padding + 1``

    Examples:
        >>> conv_transpose_output_size(12, kernel_size=3, stride=2, padding=1)
        23
        >>> conv_transpose_output_size(12, kernel_size=3, stride=2, padding=1, output_padding=1)
        24

    Raises:
        TypeError: a size is not an int or tuple of ints.
        ValueError: a value is out of range, or ``output_padding`` is not below stride or dilation
            (torch's own rule).
        ShapeError: the output would be smaller than 1.
    """
    n = _ndim(input_size, kernel_size, stride, padding, dilation, output_padding)
    i = as_tuple(input_size, "input_size", n)
    k = as_tuple(kernel_size, "kernel_size", n)
    s = as_tuple(stride, "stride", n)
    p = as_tuple(padding, "padding", n, minimum=0)
    d = as_tuple(dilation, "dilation", n)
    op = as_tuple(output_padding, "output_padding", n, minimum=0)
    largest = tuple(max_output_padding(si, di) for si, di in zip(s, d))
    if any(o > top for o, top in zip(op, largest)):
        allowed = tuple(min(o, top) for o, top in zip(op, largest))
        raise ValueError(
            f"output_padding={op} must be smaller than stride={s} or dilation={d} in every dimension (torch's rule). "
            f"Fix: use output_padding={allowed[0] if len(set(allowed)) == 1 else allowed}."
        )
    layers = _layers(input_size=i, kernel_size=k, stride=s, padding=p, dilation=d, output_padding=op)
    sizes = _transposed_sizes(layers)
    return _form((input_size, kernel_size, stride, padding, dilation, output_padding), sizes)


def _transposed_sizes(layers: list[Layer]) -> tuple[int, ...]:
    deficit = max(1 - _conv_transpose_size(x) for x in layers)
    return check_output("this transposed convolution", _conv_transpose_size, layers, transpose_changes(deficit))


def conv_transpose_output_range(
    input_size: IntOrTuple,
    kernel_size: IntOrTuple,
    stride: IntOrTuple = 1,
    padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
) -> tuple[int | tuple[int, ...], int | tuple[int, ...]]:
    """Smallest and largest output sizes a transposed convolution reaches through ``output_padding``.

    ``output_padding`` runs from 0 to ``max(stride, dilation) - 1`` (torch's rule). Note that
    ``ConvTranspose2d.forward(x, output_size=...)`` reaches only the first ``stride`` of these.

    Shape:
        ``lo = (in - 1)·stride - 2·padding + dilation·(kernel_size - 1) + 1``,
        ``hi = lo + max(stride, dilation) - 1``

    Examples:
        >>> conv_transpose_output_range(6, kernel_size=3, stride=3)
        (18, 20)
        >>> conv_transpose_output_range((12, 12), kernel_size=3, stride=2, padding=1)
        ((23, 23), (24, 24))

    Raises:
        TypeError: a size is not an int or tuple of ints.
        ValueError: a value is out of range.
        ShapeError: even the largest output would be smaller than 1.
    """
    n = _ndim(input_size, kernel_size, stride, padding, dilation)
    i = as_tuple(input_size, "input_size", n)
    k = as_tuple(kernel_size, "kernel_size", n)
    s = as_tuple(stride, "stride", n)
    p = as_tuple(padding, "padding", n, minimum=0)
    d = as_tuple(dilation, "dilation", n)
    top = tuple(max_output_padding(si, di) for si, di in zip(s, d))
    hi = _transposed_sizes(_layers(input_size=i, kernel_size=k, stride=s, padding=p, dilation=d, output_padding=top))
    lo = tuple(max(1, conv_transpose_out(*args, 0)) for args in zip(i, k, s, p, d))
    args = (input_size, kernel_size, stride, padding, dilation)
    return _form(args, lo), _form(args, hi)


def pool_output_size(
    input_size: IntOrTuple,
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None = None,
    padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    ceil_mode: bool = False,
) -> int | tuple[int, ...]:
    """Output size of ``nn.MaxPool*d`` / ``nn.AvgPool*d``, ``ceil_mode`` included, exactly as torch.

    ``stride=None`` means ``stride = kernel_size``, as in torch. Average pooling has no
    dilation: leave it at 1.

    Shape:
        ``out = floor_or_ceil((in + 2·padding - dilation·(kernel_size - 1) - 1) / stride) + 1``;
        with ``ceil_mode`` a last window that would start in the right padding is dropped.

    Examples:
        >>> pool_output_size(7, kernel_size=2)
        3
        >>> pool_output_size(7, kernel_size=2, ceil_mode=True)
        4
        >>> pool_output_size((5, 5), kernel_size=2, stride=2, padding=1, ceil_mode=True)
        (3, 3)

    Raises:
        TypeError: a size is not an int or tuple of ints.
        ValueError: padding is more than half the kernel size, as torch forbids.
        ShapeError: the input is too small for the window.
    """
    n = _ndim(input_size, kernel_size, stride, padding, dilation)
    i = as_tuple(input_size, "input_size", n)
    k = as_tuple(kernel_size, "kernel_size", n)
    s = k if stride is None else as_tuple(stride, "stride", n)
    p = as_tuple(padding, "padding", n, minimum=0)
    d = as_tuple(dilation, "dilation", n)
    if not isinstance(ceil_mode, bool):
        raise TypeError(f"ceil_mode must be a bool, got {ceil_mode!r}")
    if any(2 * pi > ki for pi, ki in zip(p, k)):
        raise ValueError(f"pool padding={p} must be at most half of kernel_size={k} (torch's rule)")
    def size(x: Layer) -> int:
        return pool_out(x["input_size"], x["kernel_size"], x["stride"], x["padding"], x["dilation"], ceil_mode)

    layers = _layers(input_size=i, kernel_size=k, stride=s, padding=p, dilation=d)
    return _form((input_size, kernel_size, stride, padding, dilation), check_output("this pooling", size, layers,
                                                                                   POOL_CHANGES))


def scaled_size(input_size: IntOrTuple, scale_factor: float | Sequence[float]) -> IntOrTuple:
    """``floor(input·scale)`` per dimension, as ``nn.Upsample`` computes its output size.

    Raises:
        TypeError: a scale is not a real number.
        ValueError: a scale is not positive, or tuples disagree in length.
    """
    n = spatial_ndim(input_size, scale_factor) or 1
    sizes = as_tuple(input_size, "input_size", n)
    scales = tuple(scale_factor) if isinstance(scale_factor, Sequence) else (scale_factor,) * n
    for scale in scales:
        if isinstance(scale, bool) or not isinstance(scale, (int, float)):
            raise TypeError(f"scale_factor must be a number or a tuple of numbers, got {scale_factor!r}")
        if not scale > 0:
            raise ValueError(f"scale_factor must be > 0, got {scale_factor!r}")
    return like(input_size, scale_factor, values=tuple(int(i * f // 1) for i, f in zip(sizes, scales)))
