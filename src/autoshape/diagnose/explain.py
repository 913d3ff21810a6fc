"""explain: every layer a model runs, with its shapes and its size formula with the numbers filled in.

The shapes come from a meta-tensor trace (:func:`autoshape.tracing.trace`); the formulas from the
modules' own hyper-parameters through :mod:`autoshape._formulas`. A formula is shown only when it
reproduces the traced size: anything else is reported in the notes, never shown wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Union, overload

from torch import Tensor, nn

from ..core.arithmetic import max_output_padding, output_padding_for
from ..core.formulas import (
    Term,
    conv_same_term,
    conv_term,
    conv_transpose_term,
    format_terms,
    pad_term,
    pool_term,
    scale_term,
    shuffle_term,
    unshuffle_term,
)
from ..core.sizes import as_tuple, dim_names
from ..core.text import aligned_table, format_shape
from ..tracing.recorder import TracedCall, as_input_shape, trace
from .taps import interior_tap_counts

__all__ = ["ExplainRow", "Explanation", "explain"]

Shape = tuple[int, ...]


@dataclass(frozen=True)
class ExplainRow:
    """One leaf-module call of an explained forward.

    Args:
        name: the module's dotted path in the model (``""`` for a model that is itself a leaf).
        module: the module object.
        input_shape: shape of the call's first tensor argument.
        output_shape: shape of its output (None when the output is not a tensor).
        formula: torch's size rule with this call's numbers filled in, one part per spatial
            dimension, e.g. ``"H, W: (1-1)·2 - 2·0 + 1·(3-1) + 0 + 1 = 3"``; None for layers that
            keep the spatial size or have no spatial rule (activations, norms, Linear, Flatten).

    Shape:
        ``output_shape[-n:]`` equals the values after ``=`` in ``formula`` (n spatial dimensions).

    Example:
        >>> row = explain(nn.Conv1d(1, 1, 3, stride=2), (1, 1, 9))[0]
        >>> row.output_shape, row.formula
        ((1, 1, 4), 'L: ⌊(9 + 2·0 - 1·(3-1) - 1) / 2⌋ + 1 = 4')

    Raises:
        Nothing: a plain record.
    """

    name: str
    module: nn.Module
    input_shape: Shape
    output_shape: Shape | None
    formula: str | None


@dataclass(frozen=True)
class Explanation(Sequence[ExplainRow]):
    """The rows of :func:`explain`, one per leaf-module call in execution order, and notes.

    Args:
        rows: the :class:`ExplainRow` records.
        notes: likely mistakes found (checkerboard risk, unused output_padding, forwards that do
            not follow their layer's size rule, a real-forward fallback).
        output_shape: the model's output shape (None if not a tensor).
        on_meta: False when the model could not run on meta tensors and a real forward was used.

    Shape:
        ``len(explanation)`` is the number of leaf calls; ``str()`` is an aligned table.

    Example:
        >>> model = nn.Sequential(nn.ConvTranspose2d(8, 4, 3, stride=2), nn.ReLU())
        >>> print(explain(model, (1, 8, 1, 1)))
        layer  module           input    output   formula
        0      ConvTranspose2d  1×8×1×1  1×4×3×3  H, W: (1-1)·2 - 2·0 + 1·(3-1) + 0 + 1 = 3
        1      ReLU             1×4×3×3  1×4×3×3
        <BLANKLINE>
        notes:
        - '0' ConvTranspose2d: kernel_size 3 with stride 2 gives neighbouring outputs 1 or 2 taps in H, W: ...

    Raises:
        IndexError: an index past the last row.
    """

    rows: tuple[ExplainRow, ...]
    notes: tuple[str, ...] = ()
    output_shape: Shape | None = None
    on_meta: bool = True

    @overload
    def __getitem__(self, index: int) -> ExplainRow: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[ExplainRow, ...]: ...
    def __getitem__(self, index: int | slice) -> ExplainRow | tuple[ExplainRow, ...]:
        return self.rows[index]

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[ExplainRow]:
        return iter(self.rows)

    def __str__(self) -> str:
        lines = [["layer", "module", "input", "output", "formula"]]
        lines += [[row.name or "(model)", type(row.module).__name__, format_shape(row.input_shape),
                   format_shape(row.output_shape), row.formula or ""] for row in self.rows]
        text = aligned_table(lines)
        if self.notes:
            text += "\n\nnotes:\n" + "\n".join(f"- {note}" for note in self.notes)
        return text

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON: rows (module as its type name), notes, output shape, on_meta."""
        rows = [{"name": r.name, "module": type(r.module).__name__, "input_shape": list(r.input_shape),
                 "output_shape": None if r.output_shape is None else list(r.output_shape), "formula": r.formula}
                for r in self.rows]
        return {"rows": rows, "notes": list(self.notes),
                "output_shape": None if self.output_shape is None else list(self.output_shape),
                "on_meta": self.on_meta}


# --- formulas: one rule per family of torch layers --------------------------------------------

Rule = Callable[[Any, Shape, Union[Shape, None]], list[Term]]

_POOL_NDIM = {
    cls: n
    for n, group in enumerate((
        (nn.MaxPool1d, nn.AvgPool1d, nn.LPPool1d, nn.AdaptiveAvgPool1d, nn.AdaptiveMaxPool1d),
        (nn.MaxPool2d, nn.AvgPool2d, nn.LPPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d),
        (nn.MaxPool3d, nn.AvgPool3d, nn.LPPool3d, nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool3d),
    ), start=1)
    for cls in group
}


def _spatial_ndim(module: Any, input_shape: Shape) -> int:
    """How many trailing dimensions of the input the layer's size rule acts on."""
    for cls, n in _POOL_NDIM.items():
        if isinstance(module, cls):
            return n
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d,
                           nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
        return len(module.kernel_size)
    if isinstance(module, (nn.PixelShuffle, nn.PixelUnshuffle)):
        return 2
    if isinstance(module, nn.Upsample):
        return len(input_shape) - 2
    return len(module.padding) // 2  # the padding layers: (left, right, top, bottom, ...)


def _used_output_padding(module: Any, sizes: Shape, out: Shape | None) -> Shape:
    """The output_padding a transposed conv's forward really used: its own, or the one
    ``forward(x, output_size=...)`` picked (recovered from the traced output size)."""
    used = []
    for n, (i, k, s, p, d) in enumerate(zip(sizes, module.kernel_size, module.stride, module.padding,
                                            module.dilation)):
        chosen = None if out is None else output_padding_for(out[n], i, k, s, p, d)
        used.append(module.output_padding[n] if chosen is None else chosen)
    return tuple(used)


def _conv(m: Any, sizes: Shape, out: Shape | None) -> list[Term]:
    if m.padding == "same":
        return [conv_same_term(*args) for args in zip(sizes, m.kernel_size, m.dilation)]
    padding = (0,) * len(sizes) if m.padding == "valid" else m.padding
    return [conv_term(*args) for args in zip(sizes, m.kernel_size, m.stride, padding, m.dilation)]


def _conv_transpose(m: Any, sizes: Shape, out: Shape | None) -> list[Term]:
    per_dim = zip(sizes, m.kernel_size, m.stride, m.padding, m.dilation, _used_output_padding(m, sizes, out))
    return [conv_transpose_term(*args) for args in per_dim]


def _pool(sizes: Shape, kernel_size: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: bool) -> list[Term]:
    n = len(sizes)
    k = as_tuple(kernel_size, "kernel_size", n)
    s = k if stride is None else as_tuple(stride, "stride", n)
    p, d = as_tuple(padding, "padding", n, minimum=0), as_tuple(dilation, "dilation", n)
    return [pool_term(*args, ceil_mode) for args in zip(sizes, k, s, p, d)]


def _max_pool(m: Any, sizes: Shape, out: Shape | None) -> list[Term]:
    return _pool(sizes, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode)


def _avg_pool(m: Any, sizes: Shape, out: Shape | None) -> list[Term]:
    return _pool(sizes, m.kernel_size, m.stride, m.padding, 1, m.ceil_mode)


def _lp_pool(m: Any, sizes: Shape, out: Shape | None) -> list[Term]:
    return _pool(sizes, m.kernel_size, m.stride, 0, 1, m.ceil_mode)


def _adaptive(m: Any, sizes: Shape, out: Shape | None) -> list[Term]:
    wanted = m.output_size if isinstance(m.output_size, Sequence) else (m.output_size,) * len(sizes)
    return [Term("input (output_size None)", i) if o is None else Term("output_size", o)
            for i, o in zip(sizes, wanted)]


def _upsample(m: Any, sizes: Shape, out: Shape | None) -> list[Term]:
    if m.size is not None:
        wanted = m.size if isinstance(m.size, Sequence) else (m.size,) * len(sizes)
        return [Term("size", o) for o in wanted]
    scales = m.scale_factor if isinstance(m.scale_factor, Sequence) else (m.scale_factor,) * len(sizes)
    return [scale_term(i, f) for i, f in zip(sizes, scales)]


def _pad(m: Any, sizes: Shape, out: Shape | None) -> list[Term]:
    pairs = list(zip(m.padding[::2], m.padding[1::2]))[::-1]  # torch lists the last dimension first
    return [pad_term(i, before, after) for i, (before, after) in zip(sizes, pairs)]


def _pixel_shuffle(m: Any, sizes: Shape, out: Shape | None) -> list[Term]:
    return [shuffle_term(i, m.upscale_factor) for i in sizes]


def _pixel_unshuffle(m: Any, sizes: Shape, out: Shape | None) -> list[Term]:
    return [unshuffle_term(i, m.downscale_factor) for i in sizes]


def _padding_layers() -> tuple[type[nn.Module], ...]:
    kinds = ("ConstantPad", "ReflectionPad", "ReplicationPad", "CircularPad")
    return tuple(getattr(nn, f"{kind}{n}d") for kind in kinds for n in (1, 2, 3) if hasattr(nn, f"{kind}{n}d"))


_RULES: tuple[tuple[tuple[type[nn.Module], ...], Rule], ...] = (
    ((nn.Conv1d, nn.Conv2d, nn.Conv3d), _conv),
    ((nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d), _conv_transpose),
    ((nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d), _max_pool),
    ((nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d), _avg_pool),
    ((nn.LPPool1d, nn.LPPool2d, nn.LPPool3d), _lp_pool),
    ((nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
      nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d), _adaptive),
    ((nn.Upsample,), _upsample),
    (_padding_layers(), _pad),
    ((nn.PixelShuffle,), _pixel_shuffle),
    ((nn.PixelUnshuffle,), _pixel_unshuffle),
)


def _spatial(shape: Shape | None, n: int) -> Shape | None:
    """The trailing ``n`` sizes, if the shape has them plus at least a channel dimension."""
    return None if shape is None or len(shape) <= n else shape[-n:]


def _where(call: TracedCall) -> str:
    return f"'{call.name or '(model)'}' {type(call.module).__name__}"


def _formula(call: TracedCall) -> tuple[str | None, str | None]:
    """The substituted formula of one call, or a note saying why the rule does not hold."""
    rule = next((rule for classes, rule in _RULES if isinstance(call.module, classes)), None)
    if rule is None:
        return None, None
    n = _spatial_ndim(call.module, call.input_shape)
    sizes, out = _spatial(call.input_shape, n), _spatial(call.output_shape, n)
    if sizes is None:
        return None, None
    terms = rule(call.module, sizes, out)
    values = tuple(t.value for t in terms)
    if out is not None and values != out:
        return None, (
            f"{_where(call)}: the standard size rule gives {format_shape(values)} but its forward produced "
            f"{format_shape(out)}: the forward does not follow the rule (custom forward?), so no formula is shown."
        )
    return format_terms(terms), None


# --- notes ------------------------------------------------------------------------------------

def _is_transposed(call: TracedCall) -> bool:
    return isinstance(call.module, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d))


def _compact(values: Sequence[int]) -> int | tuple[int, ...]:
    return values[0] if len(set(values)) == 1 else tuple(values)


def _checkerboard_note(call: TracedCall) -> str | None:
    m: Any = call.module
    per_dim = zip(dim_names(len(m.kernel_size)), m.kernel_size, m.stride, m.dilation)
    uneven = {name: (k, s, d) for name, k, s, d in per_dim if len(set(interior_tap_counts(k, s, d))) > 1}
    if not uneven:
        return None
    dims = ", ".join(uneven)
    k, s, d = (_compact(column) for column in zip(*uneven.values()))
    counts = sorted({c for args in uneven.values() for c in interior_tap_counts(*args)})
    dilation = f", dilation {d}" if d != 1 else ""
    return (
        f"{_where(call)}: kernel_size {k} with stride {s}{dilation} gives neighbouring outputs "
        f"{' or '.join(map(str, counts))} taps in {dims}: checkerboard risk (see `autoshape taps`). "
        "Fix: a kernel_size divisible by the stride with dilation 1 (e.g. 4 for stride 2), "
        "or nn.Upsample followed by a convolution."
    )


def _forward_output_padding_note(call: TracedCall) -> str | None:
    m: Any = call.module
    n = len(m.kernel_size)
    sizes = _spatial(call.input_shape, n)
    if sizes is None:
        return None
    used = _used_output_padding(m, sizes, _spatial(call.output_shape, n))
    if used == tuple(m.output_padding):
        return None
    return (f"{_where(call)}: its forward used output_padding {_compact(used)} instead of the module's "
            f"{_compact(m.output_padding)} (forward(x, output_size=...)).")


def _earlier_sizes(calls: Sequence[TracedCall], model_input: Shape, n: int, rank: int) -> list[tuple[Shape, str]]:
    """Spatial sizes seen before a call, most recent first, with where they were seen."""
    seen: list[tuple[Shape, str]] = [(model_input[-n:], "the model's input")] if len(model_input) == rank else []
    for call in calls:
        if len(call.input_shape) == rank:
            seen.append((call.input_shape[-n:], f"the input of '{call.name}'"))
        if call.output_shape is not None and len(call.output_shape) == rank:
            seen.append((call.output_shape[-n:], f"the output of '{call.name}'"))
    return seen[::-1]


def _unused_output_padding_note(calls: Sequence[TracedCall], index: int, model_input: Shape) -> str | None:
    """A transposed conv one or more short of a size seen earlier that output_padding would reach."""
    call = calls[index]
    m: Any = call.module
    out_shape = call.output_shape
    n = len(m.kernel_size)
    sizes, out = _spatial(call.input_shape, n), _spatial(out_shape, n)
    if sizes is None or out is None or out_shape is None:
        return None
    used = _used_output_padding(m, sizes, out)
    room = [max_output_padding(s, d) - op for s, d, op in zip(m.stride, m.dilation, used)]
    earlier = _earlier_sizes(calls[:index], model_input, n, len(out_shape))
    if any(size == out for size, _ in earlier):
        return None
    for size, source in earlier:
        extra = [e - o for e, o in zip(size, out)]
        if all(0 <= x <= r for x, r in zip(extra, room)):
            wanted = _compact([op + x for op, x in zip(used, extra)])
            return (
                f"{_where(call)} gives {format_shape(out)}, but output_padding={wanted} would give "
                f"{format_shape(size)}, the size of {source}. If it should restore that size, pass "
                f"output_padding={wanted} (or call it with output_size=...), or build it with "
                f"TargetConvTranspose{n}d(..., output_size={_compact(size)})."
            )
    return None


def _transposed_notes(calls: Sequence[TracedCall], index: int, model_input: Shape) -> list[str]:
    call = calls[index]
    if not _is_transposed(call):
        return []
    notes = (_checkerboard_note(call), _forward_output_padding_note(call),
             _unused_output_padding_note(calls, index, model_input))
    return [note for note in notes if note is not None]


def explain(model: nn.Module, input_shape: Sequence[int] | Tensor) -> Explanation:
    """Explain every output size of ``model``: one row per leaf-module call, with the formula.

    The forward runs on meta tensors (no compute, no memory), so a 3-d network on a 512³ volume is
    explained in milliseconds; a model that cannot run on meta tensors runs a real forward on zeros
    instead, with a RuntimeWarning. Formulas cover convolutions, transposed convolutions, max/avg/LP
    and adaptive pooling, upsampling, padding layers and pixel (un)shuffle; a formula that would
    disagree with the traced size is replaced by a note.

    Notes flag likely mistakes:
        * checkerboard risk: a transposed conv whose neighbouring outputs sum unequal numbers of
          taps (with dilation 1: its kernel is not divisible by its stride);
        * unused output_padding: a transposed conv whose output is not a size seen earlier in the
          forward, while a larger output_padding (within torch's limit) would give exactly such a
          size, e.g. 23×23 where the encoder saw 24×24: the decoder most likely should restore it;
        * a forward that used another output_padding than the module's (``output_size=...``);
        * a forward that does not follow its layer's size rule, and the real-forward fallback.

    Args:
        model: any ``nn.Module``.
        input_shape: the full input shape, batch dimension included (e.g. ``(1, 3, 64, 64)``), or
            an example tensor.

    Shape:
        per spatial dimension, e.g. transposed conv:
        ``out = (in-1)·stride - 2·padding + dilation·(kernel_size-1) + output_padding + 1``.

    Example:
        >>> model = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ConvTranspose2d(8, 3, 3, 2, 1))
        >>> explanation = explain(model, (1, 3, 24, 24))
        >>> explanation.output_shape
        (1, 3, 23, 23)
        >>> print(explanation[1].formula)
        H, W: (12-1)·2 - 2·1 + 1·(3-1) + 0 + 1 = 23
        >>> print(explanation.notes[1])
        '1' ConvTranspose2d gives 23×23, but output_padding=1 would give 24×24, the size of the input of '0'. ...

    Raises:
        TypeError: ``model`` is not an ``nn.Module``, or ``input_shape`` is not a shape or tensor.
        ValueError: ``input_shape`` is empty or has an entry below 1.
        RuntimeError: the model's own forward fails on this input (its message is kept).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"explain needs an nn.Module, got {type(model).__name__}")
    traced = trace(model, input_shape)
    model_input = as_input_shape(input_shape)
    rows, notes = [], []
    for index, call in enumerate(traced.calls):
        formula, mismatch = _formula(call)
        rows.append(ExplainRow(call.name, call.module, call.input_shape, call.output_shape, formula))
        notes += [mismatch] if mismatch else []
        notes += _transposed_notes(traced.calls, index, model_input)
    if not traced.on_meta:
        notes.append(f"{type(model).__name__} cannot run on meta tensors: these shapes come from a real forward.")
    return Explanation(tuple(rows), tuple(notes), traced.output_shape, traced.on_meta)
