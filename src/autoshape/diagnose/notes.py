"""Notes on an explained forward: the size mistakes people make, each with a concrete fix.

* checkerboard risk: a transposed conv whose neighbouring outputs sum unequal numbers of taps;
* a transposed conv that misses a size seen earlier, short of it (an unused output_padding) or
  past it by less than its stride (an overshoot): the parameters that restore it;
* a forward that used another output_padding than its module's (``output_size=...``);
* a strided conv that never reads its input's last rows: an exact alternative that reads them all;
* an upsampling by a scale that restores no size seen earlier (an odd size halved, then doubled).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from torch import nn

from ..core.arithmetic import max_output_padding, output_padding_for
from ..core.sizes import dim_names
from ..core.solver import ranked_solutions
from ..core.text import compact, format_shape
from ..rules import rule_for
from ..rules.conv import used_output_padding
from ..rules.registry import arg
from ..tracing import Call
from .batch import changed_batch, unbatched
from .rows import where
from .taps import interior_tap_counts

__all__ = ["notes_for"]

Shape = tuple[int, ...]
_TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _named(call: Call) -> str:
    """``'gen.0.0'`` for a module row (its path names it), ``'up' F.interpolate`` for a torch call."""
    return f"'{call.path}'" if call.kind == "module" else where(call)


def _spatial(shape: Shape | None, n: int) -> Shape | None:
    return None if shape is None or len(shape) <= n else shape[-n:]


def _checkerboard(call: Call) -> str | None:
    m: Any = call.target
    per_dim = zip(dim_names(len(m.kernel_size)), m.kernel_size, m.stride, m.dilation)
    uneven = {name: (k, s, d) for name, k, s, d in per_dim if len(set(interior_tap_counts(k, s, d))) > 1}
    if not uneven:
        return None
    k, s, d = (compact(column) for column in zip(*uneven.values()))
    counts = sorted({c for args in uneven.values() for c in interior_tap_counts(*args)})
    dilation = f", dilation {d}" if d != 1 else ""
    return (
        f"{where(call)}: kernel_size {k} with stride {s}{dilation} gives neighbouring outputs "
        f"{' or '.join(map(str, counts))} taps in {', '.join(uneven)}: checkerboard risk (see `autoshape taps`). "
        "Fix: a kernel_size divisible by the stride with dilation 1 (e.g. 4 for stride 2), "
        "or nn.Upsample followed by a convolution."
    )


def _forward_output_padding(call: Call, sizes: Shape, out: Shape) -> str | None:
    m: Any = call.target
    used = used_output_padding(m, sizes, out)
    if used == tuple(m.output_padding):
        return None
    return (f"{where(call)}: its forward used output_padding {compact(used)} instead of the module's "
            f"{compact(m.output_padding)} (forward(x, output_size=...)).")


def earlier_sizes(rows: Sequence[Call], model_input: Shape, n: int, rank: int) -> list[tuple[Shape, str]]:
    """Spatial sizes seen before the given rows end, most recent first, with where they were seen.

    A padding layer's output is no size to restore: a decoder restores the size before the padding
    (the padded 67×69 in front of a stride-2 conv stands for the 65×67 it was padded from)."""
    seen: list[tuple[Shape, str]] = [(model_input[-n:], "the model's input")] if len(model_input) == rank else []
    padded: set[int] = set()
    for call in rows:
        rule = rule_for(call)
        shape = call.input_shape
        if shape is not None and len(shape) == rank and not {v.index for v in call.data_inputs[:1]} & padded:
            seen.append((shape[-n:], f"the input of {_named(call)}"))
        if rule is not None and rule.name == "padding":
            padded.update(v.index for v in call.outputs)
        elif call.output_shape is not None and len(call.output_shape) == rank:
            seen.append((call.output_shape[-n:], f"the output of {_named(call)}"))
    return seen[::-1]


def restoring(m: Any, sizes: Shape, target: Shape) -> dict[str, int | tuple[int, ...]] | None:
    """The output_padding (and, where that is not enough, the padding) with which transposed conv
    ``m`` takes ``sizes`` to ``target``; None where no padding near its own reaches it."""
    paddings, output_paddings = [], []
    for i, t, k, s, p, d in zip(sizes, target, m.kernel_size, m.stride, m.padding, m.dilation):
        found = next(((q, op) for q in range(max(0, p - s), p + s + 1)
                      if (op := output_padding_for(t, i, k, s, q, d)) is not None), None)
        if found is None:
            return None
        paddings.append(found[0])
        output_paddings.append(found[1])
    change: dict[str, int | tuple[int, ...]] = {}
    if tuple(paddings) != tuple(m.padding):
        change["padding"] = compact(paddings)
    change["output_padding"] = compact(output_paddings)
    return change


def _missed_size(rows: Sequence[Call], index: int, model_input: Shape, sizes: Shape, out: Shape) -> str | None:
    """A transposed conv short of a size seen earlier, or past it by less than its stride."""
    call = rows[index]
    m: Any = call.target
    n = len(sizes)
    out_shape = call.output_shape or ()
    earlier = earlier_sizes(rows[:index], model_input, n, len(out_shape))
    if any(size == out for size, _ in earlier):
        return None
    used = used_output_padding(m, sizes, out)
    for size, source in earlier:
        diff = [e - o for e, o in zip(size, out)]
        room = [max_output_padding(s, d) - op for s, d, op in zip(m.stride, m.dilation, used)]
        if not all(-s < x <= r for x, s, r in zip(diff, m.stride, room)):
            continue
        change = restoring(m, sizes, size)
        if change is None:
            continue
        text = ", ".join(f"{name}={value}" for name, value in change.items())
        build = f"or build it with TargetConvTranspose{n}d(..., output_size={compact(size)})"
        if all(x >= 0 for x in diff):
            return (f"{where(call)} gives {format_shape(out)}, but {text} would give {format_shape(size)}, the size "
                    f"of {source}. If it should restore that size, pass {text} (or call it with output_size=...), "
                    f"{build}.")
        over = compact([-x for x in diff])
        by_output_size = "" if "padding" in change else " (or call it with output_size=...)"
        return (f"{where(call)} gives {format_shape(out)}, {over} more than {format_shape(size)}, the size of "
                f"{source}: it overshoots. If it should restore that size, pass {text}{by_output_size}, {build}.")
    return None


def unread_rows(i: int, o: int, k: int, s: int, p: int, d: int) -> int:
    """How many of the input's last rows no window of a conv reaches (its last window's last tap
    is at ``(o-1)·stride - padding + dilation·(kernel_size-1)``)."""
    return max(0, i - 1 - ((o - 1) * s - p + d * (k - 1)))


def _padded_after(rows: Sequence[Call], call: Call, n: int) -> Shape:
    """Per dimension, how many of the input's last rows a padding layer right before ``call`` added."""
    value = call.data_inputs[0] if call.data_inputs else None
    made = next((row for row in rows if value is not None and any(v.index == value.index for v in row.outputs)), None)
    rule = None if made is None else rule_for(made)
    if made is None or rule is None or rule.name != "padding":
        return (0,) * n
    pads = made.target.padding if made.kind == "module" else arg(made, 1, "pad")
    after = tuple(max(0, p) for p in pads[1::2])[::-1]  # (before, after) from the last dimension back
    return ((0,) * n + after)[-n:]


def _dropped_rows(call: Call, sizes: Shape, out: Shape, padded: Shape) -> str | None:
    """A strided conv whose windows never reach the input's last rows of data (rows a padding layer
    added may go unread), and an exact one that reads them all."""
    m: Any = call.target
    if isinstance(m.padding, str):
        return None
    dims = list(zip(dim_names(len(sizes)), sizes, out, m.kernel_size, m.stride, m.padding, m.dilation, padded))

    def dropped(i: int, o: int, k: int, s: int, p: int, d: int, after: int) -> int:
        return max(0, unread_rows(i, o, k, s, p, d) - after)

    left = {dropped(*dim[1:]) for dim in dims} - {0}
    if not left:
        return None
    kernels, paddings = list(m.kernel_size), list(m.padding)  # the dimensions that read every row keep theirs
    for n, (_, i, o, k, s, p, d, after) in enumerate(dims):
        if not dropped(i, o, k, s, p, d, after):
            continue
        found = [c for c in ranked_solutions(i, o, transposed=False, stride=s, dilation=d, limit=None)
                 if not dropped(i, o, c.kernel_size[0], s, c.padding[0], d, after)]
        if not found:
            return None
        best = min(found, key=lambda c: (abs(c.kernel_size[0] - k), c.padding[0]))
        kernels[n], paddings[n] = best.kernel_size[0], best.padding[0]
    names = ", ".join(dim[0] for dim in dims if dropped(*dim[1:]))
    rows = "row" if left == {1} else f"{max(left)} rows"
    return (f"{where(call)} never reads the last {rows} of its input in {names}: its last window stops short "
            f"of them. Fix: kernel_size={compact(kernels)}, padding={compact(paddings)} gives the same "
            f"{format_shape(out)} and reads every row.")


def _upsample_scale(call: Call) -> float | None:
    if call.kind == "module":
        return None if getattr(call.target, "size", None) is not None else call.target.scale_factor
    scale = call.args[2] if len(call.args) > 2 else call.kwargs.get("scale_factor")
    size = call.args[1] if len(call.args) > 1 else call.kwargs.get("size")
    return None if size is not None else scale


def _unrestored(rows: Sequence[Call], index: int, model_input: Shape, out: Shape) -> str | None:
    """An upsampling by a scale that gives no size seen earlier, next to one it likely should."""
    call = rows[index]
    scale = _upsample_scale(call)
    if scale is None:
        return None
    scales = scale if isinstance(scale, (tuple, list)) else (scale,) * len(out)
    earlier = earlier_sizes(rows[:index], model_input, len(out), len(call.output_shape or ()))
    if any(size == out for size, _ in earlier) or any(f <= 1 for f in scales):
        return None
    for size, source in earlier:
        if all(abs(e - o) < math.ceil(f) for e, o, f in zip(size, out, scales)):
            wanted = compact(size)
            how = ("nn.Upsample(size=...)" if call.kind == "module"
                   else "F.interpolate(x, size=...), e.g. size=<that tensor>.shape[2:]")
            return (f"{where(call)} gives {format_shape(out)} by scaling, but {format_shape(size)}, the size of "
                    f"{source}, is within the scale of it. If it should restore that size, upsample to it: "
                    f"size={wanted} instead of scale_factor ({how}).")
    return None


def notes_for(rows: Sequence[Call], model_input: Shape, output: Shape | None) -> list[str]:
    """Every note on the explained rows (``output``: the model's output shape, None when unknown):
    the batch first, then in row order."""
    notes = [note for note in (unbatched(rows), changed_batch(rows, model_input, output)) if note is not None]
    for index, call in enumerate(rows):
        rule = rule_for(call)
        n = rule.ndim(call) if rule is not None and rule.ndim is not None else 0
        sizes, out = _spatial(call.input_shape, n), _spatial(call.output_shape, n)
        if rule is None or sizes is None or out is None:
            continue
        found: tuple[str | None, ...] = ()
        if isinstance(call.target, _TRANSPOSED):
            found = (_checkerboard(call), _forward_output_padding(call, sizes, out),
                     _missed_size(rows, index, model_input, sizes, out))
        elif isinstance(call.target, _CONVS):
            found = (_dropped_rows(call, sizes, out, _padded_after(rows[:index], call, n)),)
        elif rule.name == "interpolation":
            found = (_unrestored(rows, index, model_input, out),)
        notes += [note for note in found if note is not None]
    return notes
