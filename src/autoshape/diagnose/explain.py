"""explain: every layer and torch call a model runs, with its shapes and size formula, and what failed.

The shapes come from the one recorder (:func:`autoshape.tracing.trace`, on meta tensors); the
formulas from the registry of layer rules. A formula is shown only when it reproduces the traced
size: anything else is reported in the notes, never shown wrong. A forward that fails is not an
exception here: the rows up to the failure are kept, and :attr:`Explanation.failure` says where.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, overload

from torch import Tensor, nn

from ..core.formulas import format_terms
from ..core.text import aligned_table, format_shape
from ..errors import ShapeError
from ..rules import rule_for, spatial_sizes, terms_of
from ..tracing import Call, InputShapes, Record, as_examples, trace, trace_dtype
from .batch import unbatched_input
from .failure import ExplainFailure, diagnose
from .notes import notes_for
from .rows import rows_of, where
from .search import search

__all__ = ["ExplainRow", "Explanation", "explain"]

Shape = tuple[int, ...]


@dataclass(frozen=True)
class ExplainRow:
    """One row of an explained forward: a leaf-module call, or a torch call made between modules.

    Args:
        name: the module's dotted path in the model (``""`` for the model itself); for a torch
            call, the path of the module whose forward made it.
        module: the module object; None for a torch call.
        input_shape: shape of the first tensor computed from the model's input that it received.
        output_shape: shape of its output (None when the output is not a tensor).
        formula: torch's size rule with this call's numbers filled in, one part per spatial
            dimension, e.g. ``"H, W: (1-1)·2 - 2·0 + 1·(3-1) + 0 + 1 = 3"``; None for layers that
            keep the spatial size or have no spatial rule (activations, norms, Linear, Flatten).
        call: the module's type name, or the torch call as written (``F.interpolate``, ``view``).
        input_shapes: the shapes of every such input (two for a ``torch.cat`` of two tensors).

    Shape:
        ``output_shape[-n:]`` equals the values after ``=`` in ``formula`` (n spatial dimensions).

    Examples:
        >>> row = explain(nn.Conv1d(1, 1, 3, stride=2), (1, 1, 9))[0]
        >>> row.output_shape, row.formula
        ((1, 1, 4), 'L: ⌊(9 + 2·0 - 1·(3-1) - 1) / 2⌋ + 1 = 4')

    Raises:
        Nothing: a plain record.
    """

    name: str
    module: nn.Module | None
    input_shape: Shape
    output_shape: Shape | None
    formula: str | None
    call: str = ""
    input_shapes: tuple[Shape, ...] = ()


@dataclass(frozen=True)
class Explanation(Sequence[ExplainRow]):
    """The rows of :func:`explain` in execution order, notes, and the failure if the forward failed.

    Args:
        rows: the :class:`ExplainRow` records (up to the failure, if any).
        notes: likely mistakes found, each with a fix (see :func:`explain`).
        output_shape: the model's output shape (None if not a tensor, or if the forward failed).
        on_meta: False when the model could not run on meta tensors and a real forward was used.
        failure: None when the forward ran; else an :class:`ExplainFailure`.

    Shape:
        ``len(explanation)`` is the number of rows; ``str()`` is an aligned table.

    Examples:
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
    failure: ExplainFailure | None = None

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
        lines += [[row.name or "(model)", row.call, ", ".join(map(format_shape, row.input_shapes)),
                   format_shape(row.output_shape), row.formula or ""] for row in self.rows]
        text = aligned_table(lines)
        if self.failure is not None:
            text += f"\n\n{self.failure}"
        if self.notes:
            text += "\n\nnotes:\n" + "\n".join(f"- {note}" for note in self.notes)
        return text

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON: rows (module as its type name or torch call), notes, output shape,
        on_meta and the failure (None, or its fields)."""
        rows = [{"name": r.name, "module": r.call, "input_shape": list(r.input_shape),
                 "output_shape": None if r.output_shape is None else list(r.output_shape), "formula": r.formula}
                for r in self.rows]
        failure = None if self.failure is None else {
            "path": self.failure.path, "call": self.failure.call, "message": self.failure.message,
            "input_shapes": [list(s) for s in self.failure.input_shapes], "fix": self.failure.fix}
        return {"rows": rows, "notes": list(self.notes),
                "output_shape": None if self.output_shape is None else list(self.output_shape),
                "on_meta": self.on_meta, "failure": failure}


def _formula(call: Call) -> tuple[str | None, str | None]:
    """The substituted formula of one call, or a note saying why the rule does not hold."""
    rule = rule_for(call)
    terms = None if rule is None else terms_of(call, rule)
    sizes = None if rule is None else spatial_sizes(call, rule)
    if terms is None or sizes is None:
        return None, None
    values, out = tuple(t.value for t in terms), sizes[1]
    if out is not None and values != out:
        return None, (
            f"{where(call)}: the standard size rule gives {format_shape(values)} but its forward produced "
            f"{format_shape(out)}: the forward does not follow the rule (custom forward?), so no formula is shown."
        )
    return format_terms(terms), None


def _row(call: Call, formula: str | None) -> ExplainRow:
    shapes = tuple(v.shape for v in (call.data_inputs or call.inputs))
    return ExplainRow(call.path, call.module, shapes[0] if shapes else (), call.output_shape, formula, call.name,
                      shapes)


def _failure(model: nn.Module, inputs: tuple[Tensor, ...], record: Record) -> ExplainFailure:
    """The failure with its fix: all the changes ``fix`` verifies (on meta tensors only: no real
    forwards), or the one this call needs."""
    no_batch = unbatched_input(rows_of(record))
    if no_batch is not None:  # every size after it is read wrongly: the input shape is the fix
        return replace(diagnose(record, ()), fix=no_batch[1])
    if not record.on_meta:
        return diagnose(record)
    try:
        edits = search(model, inputs, record=record).edits
    except ShapeError:
        edits = ()
    return diagnose(record, edits)


def explain(model: nn.Module, input_shape: InputShapes) -> Explanation:
    """Explain every output size of ``model``: one row per leaf module and per torch call between
    modules (``F.relu``, ``torch.cat``, ``view``), with the size formula where torch has one.

    The forward runs on meta tensors (no compute, no memory), so a 3-d network on a 512³ volume is
    explained in milliseconds; a model that reads values (``.item()``) runs a real forward on zeros
    instead, with a RuntimeWarning. Formulas cover convolutions, transposed convolutions, max/avg/LP
    and adaptive pooling (modules and ``F.*`` calls), upsampling and ``F.interpolate``, padding
    layers and ``F.pad``, and pixel (un)shuffle; a formula that would disagree with the traced size
    is replaced by a note.

    A forward that fails does not raise: the explanation holds the rows up to the failure and
    ``failure`` says where it failed, on which shapes, with torch's message and, where autoshape can
    compute one, the fix (a ``Linear``'s ``in_features``, or the flatten it lacks; a conv's
    ``in_channels``; the padding or least model input with which a conv or pooling gives an output;
    the map size a failed ``view`` asks for; the layer and parameter that make the newer of two
    concatenated or summed branches agree with the skip; and, where the input itself is the problem,
    the shape to give: with its batch, its channels second, or one per input of the forward). When
    :func:`autoshape.fix` finds changes that make the whole forward run (a U-Net at 101×67 has a
    mismatched skip at several levels), the fix names them all; only then does explain trace more
    than once (a few patched copies, on meta tensors).

    Notes flag likely mistakes, each with a fix:

    * checkerboard risk: a transposed conv whose neighbouring outputs sum unequal numbers of
      taps (with dilation 1: its kernel is not divisible by its stride);
    * a transposed conv that misses a size seen earlier in the forward: short of it, while a
      larger output_padding would reach it (23×23 where the encoder saw 24×24), or past it by
      less than its stride (26×26 where the input was 25×25);
    * a strided conv that never reads its input's last rows, with an exact alternative (for patches,
      kernel_size = stride, the nearest input sizes they tile; a kernel smaller than its stride
      skips rows by design);
    * an upsampling by a scale that restores no size seen earlier (17 doubled to 34, not 33);
    * a ``view``, ``reshape`` or ``flatten`` that changes the batch (``x.view(-1, 400)`` written for
      another input size turns 25 samples into 16 rows; ``torch.flatten(x)`` folds it in), and an
      input shape without a batch (or without its channel dimension);
    * a forward that used another output_padding than the module's (``output_size=...``);
    * a forward that does not follow its layer's size rule, and the real-forward fallback.

    Args:
        model: any ``nn.Module``.
        input_shape: the full input shape, batch dimension included (e.g. ``(1, 3, 64, 64)``), or
            an example tensor (its dtype is kept: integer labels stay integers); for a forward with
            several positional inputs, a sequence of them (``((8, 100), labels)`` for ``forward(z, y)``).

    Shape:
        per spatial dimension, e.g. transposed conv:
        ``out = (in-1)·stride - 2·padding + dilation·(kernel_size-1) + output_padding + 1``.

    Examples:
        >>> model = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ConvTranspose2d(8, 3, 3, 2, 1))
        >>> explanation = explain(model, (1, 3, 24, 24))
        >>> explanation.output_shape
        (1, 3, 23, 23)
        >>> print(explanation[1].formula)
        H, W: (12-1)·2 - 2·1 + 1·(3-1) + 0 + 1 = 23
        >>> print(explanation.notes[1])
        '1' ConvTranspose2d gives 23×23, but output_padding=1 would give 24×24, the size of the input of '0'. ...

    Raises:
        TypeError: ``model`` is not an ``nn.Module``, or ``input_shape`` is not a shape, a tensor or
            a sequence of them.
        ValueError: a shape is empty or has an entry below 1.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"explain needs an nn.Module, got {type(model).__name__}")
    inputs = as_examples(input_shape, trace_dtype(model))
    record = trace(model, inputs)
    calls = rows_of(record)
    rows, notes = [], []
    for call in calls:
        formula, mismatch = _formula(call)
        rows.append(_row(call, formula))
        notes += [mismatch] if mismatch else []
    notes += notes_for(calls, tuple(inputs[0].shape), record.output_shape)
    if not record.on_meta:
        notes.append(f"{type(model).__name__} cannot run on meta tensors: these shapes come from a real forward.")
    failure = None if record.failure is None else _failure(model, inputs, record)
    return Explanation(tuple(rows), tuple(notes), record.output_shape, record.on_meta, failure)
