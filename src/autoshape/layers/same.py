"""``padding='same'`` for the transposed Target layers: ``output = input·stride`` at every input size.

Nothing is solved: the kernel and stride are given, the padding and output_padding follow. Every
other size the layer is given (``input_size``, ``output_size``, ``scale_factor``, ``max_kernel_size``,
``max_stride``) must agree with that; a contradiction is an error that names both, never a silent winner.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..core.arithmetic import max_output_padding, scaled_size
from ..core.sizes import IntOrTuple, as_tuple
from ..core.solver import ConvParams, check_bounds, solve_conv_transpose
from ..core.text import compact
from ..errors import ShapeError

__all__ = ["same_output", "same_params"]

Fixed = Mapping[str, IntOrTuple | None]
"""kernel_size, stride, dilation, max_kernel_size and max_stride as given (padding is 'same')."""


def _params(kernel_size: IntOrTuple | None, stride: IntOrTuple | None, dilation: IntOrTuple | None,
            n: int) -> ConvParams:
    """Keras' padding='same' for a transposed conv: ``2·padding - output_padding = dilation·(k-1) + 1 - stride``."""
    if kernel_size is None:
        raise ValueError("padding='same' needs kernel_size (and usually stride): nothing is solved")
    k = as_tuple(kernel_size, "kernel_size", n)
    s = as_tuple(1 if stride is None else stride, "stride", n)
    d = as_tuple(1 if dilation is None else dilation, "dilation", n)
    padding, output_padding = [], []
    for ki, si, di in zip(k, s, d):
        excess = di * (ki - 1) + 1 - si  # need 2·padding - output_padding == excess
        p = max(0, -(-excess // 2))
        if 2 * p - excess > max_output_padding(si, di):  # only stride 1, dilation 1 and an even kernel
            raise ShapeError(
                f"padding='same' cannot give output = input·stride with kernel_size={ki}, stride={si}, "
                f"dilation={di}: it needs output_padding={2 * p - excess}, but torch allows less than "
                f"max(stride, dilation)={max(si, di)}. Fix: use kernel_size={ki + 1} (odd: the padding is the "
                "same on both sides), or stride=2."
            )
        padding.append(p)
        output_padding.append(2 * p - excess)
    return ConvParams(k, s, tuple(padding), d, tuple(output_padding), transposed=True)


def _builds(fixed: Fixed, n: int, **changes: IntOrTuple | None) -> bool:
    """Whether padding='same' works with these changes (a fix an error offers must)."""
    try:
        same_params({**fixed, **changes}, n)
    except ValueError:
        return False
    return True


def same_params(fixed: Fixed, n: int) -> ConvParams:
    """The padding and output_padding that give ``output = input·stride``; the bounds must hold the kernel and stride.

    Raises:
        ValueError: no kernel_size, or a kernel_size or stride above its bound.
        ShapeError: stride 1 with an even kernel and dilation 1 (torch pads symmetrically).
    """
    params = _params(fixed["kernel_size"], fixed["stride"], fixed["dilation"], n)
    per_dim = {"kernel_size": params.kernel_size, "stride": (None,) * n if fixed["stride"] is None else params.stride,
               **{name: (None,) * n if fixed[name] is None else as_tuple(fixed[name], name, n)
                  for name in ("max_kernel_size", "max_stride")}}
    check_bounds(per_dim, lambda change: _builds(fixed, n, **change))  # type: ignore[arg-type]
    return params


def _stride_text(params: ConvParams, fixed: Fixed) -> str:
    return f"stride={compact(params.stride)}" + (" (the default)" if fixed["stride"] is None else "")


def _unsame(fixed: Fixed, input_size: tuple[int, ...] | None, target: tuple[int, ...], aim: str) -> list[str]:
    """``drop padding='same'``, where the solver then reaches the target with the other values kept."""
    if input_size is None:
        return []
    try:
        solve_conv_transpose(input_size, target, **{**fixed, "padding": None})
    except ValueError:
        return []
    free = "padding/output_padding" if fixed["stride"] is not None else "stride/padding/output_padding"
    return [f"drop padding='same' (the solver then picks {free} for {aim})"]


def _whole_stride(fixed: Fixed, n: int, ratios: Sequence[float]) -> list[str]:
    """``stride=<ratio>``, where every ratio is whole and padding='same' works with it."""
    if not all(r >= 1 and float(r).is_integer() for r in ratios):
        return []
    stride = compact([int(r) for r in ratios])
    return [f"stride={stride}"] if _builds(fixed, n, stride=stride) else []


def _check_scale(params: ConvParams, fixed: Fixed, input_size: tuple[int, ...] | None,
                 scale_factor: float | Sequence[float], layer: str) -> None:
    n = len(params.stride)
    scaled_size((1,) * n, scale_factor)  # checks the type, the sign and the length
    scales = tuple(scale_factor) if isinstance(scale_factor, Sequence) else (scale_factor,) * n
    if all(float(f) == s for f, s in zip(scales, params.stride)):
        return
    aim = f"scale_factor={scale_factor!r}"
    target = None if input_size is None else tuple(int(i * f // 1) for i, f in zip(input_size, scales))
    fixes = [*_whole_stride(fixed, n, scales), "drop scale_factor (padding='same' scales by the stride)",
             *([] if target is None or min(target) < 1 else _unsame(fixed, input_size, target, aim))]
    raise ShapeError(f"{layer}: padding='same' gives output = input·stride with {_stride_text(params, fixed)}, "
                     f"but {aim}. Fix: {', or '.join(fixes)}.")


def same_output(params: ConvParams, fixed: Fixed, input_size: tuple[int, ...] | None,
                output_size: IntOrTuple | None, scale_factor: float | Sequence[float] | None,
                layer: str) -> tuple[int, ...] | None:
    """``input_size·stride`` (None for a layer that takes every size), checked against what else was asked.

    Raises:
        TypeError: ``output_size`` without ``input_size``, or a size of the wrong type.
        ValueError: both ``output_size`` and ``scale_factor``, or a value out of range.
        ShapeError: an ``output_size`` or ``scale_factor`` other than ``input·stride``; the message
            names both and fixes that work as written.
    """
    n = len(params.stride)
    if output_size is not None and scale_factor is not None:
        raise ValueError("give at most one of output_size and scale_factor (padding='same' needs neither)")
    if scale_factor is not None:
        _check_scale(params, fixed, input_size, scale_factor, layer)
    asked = None if output_size is None else as_tuple(output_size, "output_size", n)
    if input_size is None:
        if asked is None:
            return None
        inputs = [o // s for o, s in zip(asked, params.stride) if o % s == 0]
        fixes = ([f"give input_size={compact(inputs)} too (checked on every call)"] if len(inputs) == n else []) + [
            "drop output_size (the layer then takes every input size)"]
        raise TypeError(f"{layer}: padding='same' with output_size={compact(asked)} needs input_size: output = "
                        f"input·stride holds at every input size, so output_size alone checks nothing. "
                        f"Fix: {', or '.join(fixes)}.")
    gives = tuple(i * s for i, s in zip(input_size, params.stride))
    if asked is not None and asked != gives:
        fixes = [*_unsame(fixed, input_size, asked, f"{compact(asked)}"), f"output_size={compact(gives)}",
                 *_whole_stride(fixed, n, [o / i for o, i in zip(asked, input_size)])]
        raise ShapeError(
            f"{layer}: padding='same' gives output = input·stride = {compact(gives)} (input_size="
            f"{compact(input_size)}, {_stride_text(params, fixed)}), but output_size={compact(asked)}. "
            f"Fix: {', or '.join(fixes)}."
        )
    return gives
