"""Notes on an explained forward: the size mistakes people make, each with a concrete fix.

* checkerboard risk: a transposed conv whose neighbouring outputs sum unequal numbers of taps;
* a transposed conv that misses a size seen earlier, short of it (an unused output_padding) or
  past it by less than its stride (an overshoot): the parameters that restore it (never a size at or
  below its own input in a dimension it upsamples: a U-Net's up-step restores the skip it meets, not
  the bottleneck it comes up from);
* a forward that used another output_padding than its module's (``output_size=...``);
* a strided conv that never reads its input's last rows: an exact alternative that reads them all,
  or, for non-overlapping patches (kernel_size = stride), the nearest input sizes they tile;
* an upsampling by a scale that restores no size seen earlier (an odd size halved, then doubled),
  again past its own input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

from torch import nn

from ..core.arithmetic import max_output_padding, nearest_read_sizes, output_padding_for, unread_rows
from ..core.sizes import dim_names
from ..core.solver import ranked_solutions, solve_conv_transpose
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
    even, shape, out = _even_taps(call), call.input_shape, call.output_shape
    fix = (f"build {where(call)} with {even} (the same {format_shape(shape[2:])} → {format_shape(out[2:])}, with "
           "even taps)" if even and shape and out else
           "a kernel_size divisible by the stride with dilation 1 (e.g. 4 for stride 2)")
    return (
        f"{where(call)}: kernel_size {k} with stride {s}{dilation} gives neighbouring outputs "
        f"{' or '.join(map(str, counts))} taps in {', '.join(uneven)}: checkerboard risk (see `autoshape taps`). "
        f"Fix: {fix}, or nn.Upsample followed by a convolution."
    )


def _even_taps(call: Call) -> str | None:
    """The arguments that give a transposed conv the same input and output sizes with a kernel divisible
    by its stride and dilation 1 (``kernel_size=4, padding=2, output_padding=1`` for 12 → 23 with stride 2),
    as the solver ranks them; None where the stride allows none."""
    m: Any = call.target
    shape, out = call.input_shape, call.output_shape
    n = len(m.kernel_size)
    if shape is None or out is None or len(shape) != n + 2 or len(out) != n + 2:
        return None
    try:
        params = solve_conv_transpose(shape[2:], out[2:], stride=tuple(m.stride), dilation=1)
    except ValueError:
        return None
    if any(k % s for k, s in zip(params.kernel_size, params.stride)):
        return None
    new = {"kernel_size": params.kernel_size, "padding": params.padding, "output_padding": params.output_padding,
           "dilation": params.dilation}
    old = {"kernel_size": m.kernel_size, "padding": m.padding, "output_padding": m.output_padding,
           "dilation": m.dilation}
    return ", ".join(f"{name}={compact(value)}" for name, value in new.items() if tuple(value) != tuple(old[name]))


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
    (the padded 67×69 in front of a stride-2 conv stands for the 65×67 it was padded from). A value
    that a row made is named by that row (``the output of 'downs.3.3'``), not by a row that reads it,
    which may be a module called at every level (a U-Net's one ``pool``)."""
    seen: list[tuple[Shape, str]] = [(model_input[-n:], "the model's input")] if len(model_input) == rank else []
    padded: set[int] = set()
    made: set[int] = set()
    for call in rows:
        rule = rule_for(call)
        shape = call.input_shape
        if shape is not None and len(shape) == rank and not {v.index for v in call.data_inputs[:1]} & (padded | made):
            seen.append((shape[-n:], f"the input of {_named(call)}"))
        if rule is not None and rule.name == "padding":
            padded.update(v.index for v in call.outputs)
        elif call.output_shape is not None and len(call.output_shape) == rank:
            seen.append((call.output_shape[-n:], f"the output of {_named(call)}"))
            made.add(call.outputs[0].index)
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


def _above(size: Shape, sizes: Shape, scales: Sequence[float]) -> bool:
    """Whether ``size`` is past ``sizes`` in every dimension that an up-step scales by more than 1: a size
    at or below the step's own input (its input itself, or the bottleneck it comes up from) is no size
    for it to restore."""
    return all(e > i for e, i, f in zip(size, sizes, scales) if f > 1)


def _missed_size(rows: Sequence[Call], index: int, model_input: Shape, sizes: Shape, out: Shape) -> str | None:
    """A transposed conv short of a size seen earlier, or past it by less than its stride; never a size at
    or below its own input in a dimension it upsamples."""
    call = rows[index]
    m: Any = call.target
    n = len(sizes)
    out_shape = call.output_shape or ()
    earlier = earlier_sizes(rows[:index], model_input, n, len(out_shape))
    if any(size == out for size, _ in earlier):
        return None
    used = used_output_padding(m, sizes, out)
    for size, source in earlier:
        if not _above(size, sizes, m.stride):
            continue
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


class _Dim(NamedTuple):
    """One spatial dimension of a conv call; ``spare``: how many of the input's last rows a padding
    layer added (they may go unread)."""

    name: str
    size: int
    out: int
    kernel: int
    stride: int
    padding: int
    dilation: int
    spare: int

    @property
    def unread(self) -> int:
        """Rows of data that no window of the conv reaches."""
        return max(0, unread_rows(self.size, self.out, self.kernel, self.stride, self.padding, self.dilation)
                   - self.spare)

    @property
    def patches(self) -> bool:
        """Windows that neither overlap nor skip rows: kernel_size = stride, no dilation (a patchify)."""
        return self.kernel == self.stride and self.dilation == 1


def _conv_dims(call: Call, sizes: Shape, out: Shape, padded: Shape) -> list[_Dim]:
    """The dimensions of a conv call; none for string padding (``'same'`` reads every row)."""
    m: Any = call.target
    if isinstance(m.padding, str):
        return []
    return [_Dim(*dim) for dim in zip(dim_names(len(sizes)), sizes, out, m.kernel_size, m.stride, m.padding,
                                      m.dilation, padded)]


def _last_rows(dropped: Sequence[_Dim]) -> str:
    """``the last row of its input in H, W``, or ``the last rows of its input in H (4), W (12)``."""
    counts = [dim.unread for dim in dropped]
    if len(set(counts)) > 1:
        return "the last rows of its input in " + ", ".join(f"{dim.name} ({n})" for dim, n in zip(dropped, counts))
    rows = "row" if counts[0] == 1 else f"{counts[0]} rows"
    return f"the last {rows} of its input in {', '.join(dim.name for dim in dropped)}"


def _dropped_rows(call: Call, dims: Sequence[_Dim]) -> str | None:
    """A strided conv whose overlapping windows never reach the input's last rows of data, and an
    exact one that reads them all. A kernel smaller than its stride skips rows by design; one equal
    to it makes patches (:func:`_patch_rows`)."""
    dropped = [dim for dim in dims if dim.kernel >= dim.stride and not dim.patches and dim.unread]
    if not dropped:
        return None
    kernels, paddings = [dim.kernel for dim in dims], [dim.padding for dim in dims]  # the others keep theirs
    for n, dim in enumerate(dims):
        if dim not in dropped:
            continue
        found = [c for c in ranked_solutions(dim.size, dim.out, transposed=False, stride=dim.stride,
                                             dilation=dim.dilation, limit=None)
                 if c.kernel_size[0] > dim.stride
                 and not dim._replace(kernel=c.kernel_size[0], padding=c.padding[0]).unread]
        if not found:
            return None
        best = min(found, key=lambda c: (abs(c.kernel_size[0] - dim.kernel), c.padding[0]))
        kernels[n], paddings[n] = best.kernel_size[0], best.padding[0]
    return (f"{where(call)} never reads {_last_rows(dropped)}: its last window stops short of them. Fix: "
            f"kernel_size={compact(kernels)}, padding={compact(paddings)} gives the same "
            f"{format_shape(tuple(dim.out for dim in dims))} and reads every row.")


def _patch_rows(call: Call, dims: Sequence[_Dim]) -> str | None:
    """A conv whose kernel equals its stride (non-overlapping patches, a ViT's patch embedding) on an
    input its patches do not tile: the nearest input sizes they tile."""
    dropped = [dim for dim in dims if dim.patches and dim.unread]
    if not dropped:
        return None
    sizes = []
    for dim in dropped:
        below, above = nearest_read_sizes(dim.size, dim.kernel, dim.stride, dim.padding, dim.dilation, dim.spare)
        sizes.append(f"{dim.name} {above}" if below is None else f"{dim.name} {below} or {above}")
    patch = compact([dim.kernel for dim in dropped])
    tiled = (f"multiples of {patch}" if all(dim.padding == dim.spare == 0 for dim in dropped)
             else "sizes its patches tile")
    return (f"{where(call)} never reads {_last_rows(dropped)}: its kernel_size equals its stride ({patch}, "
            f"patches that do not overlap), and the patches do not tile the input. Fix: give it an input of "
            f"{', '.join(sizes)} ({tiled}: crop or pad to one).")


def _upsample_scale(call: Call) -> float | None:
    if call.kind == "module":
        return None if getattr(call.target, "size", None) is not None else call.target.scale_factor
    scale = call.args[2] if len(call.args) > 2 else call.kwargs.get("scale_factor")
    size = call.args[1] if len(call.args) > 1 else call.kwargs.get("size")
    return None if size is not None else scale


def _unrestored(rows: Sequence[Call], index: int, model_input: Shape, sizes: Shape, out: Shape) -> str | None:
    """An upsampling by a scale that gives no size seen earlier, next to one past its input that it likely
    should."""
    call = rows[index]
    scale = _upsample_scale(call)
    if scale is None:
        return None
    scales = scale if isinstance(scale, (tuple, list)) else (scale,) * len(out)
    earlier = earlier_sizes(rows[:index], model_input, len(out), len(call.output_shape or ()))
    if any(size == out for size, _ in earlier) or any(f <= 1 for f in scales):
        return None
    for size, source in earlier:
        if _above(size, sizes, scales) and all(abs(e - o) < math.ceil(f) for e, o, f in zip(size, out, scales)):
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
            dims = _conv_dims(call, sizes, out, _padded_after(rows[:index], call, n))
            found = (_dropped_rows(call, dims), _patch_rows(call, dims))
        elif rule.name == "interpolation":
            found = (_unrestored(rows, index, model_input, sizes, out),)
        notes += [note for note in found if note is not None]
    return notes
