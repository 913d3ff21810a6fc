"""fix: the fewest layer changes that make a model run, or give the output size asked for.

The search (:mod:`.search`) reads the model's record and verifies every candidate by tracing the
patched model on meta tensors (by a real forward on zeros where the model cannot run on them, as
explain does); this module builds the patched deep copy and reports the changes.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from torch import Tensor, nn

from ..core.text import clause, format_inputs, format_shape
from ..errors import ShapeError, warn
from ..tracing import InputShapes, Record, as_examples, as_input_shape, shapes_of, trace_dtype
from .batch import changed_batch, unbatched
from .rows import rows_of
from .search import MAX_LAYERS, MAX_REAL_TRACES, build, quiet_trace, search

__all__ = ["Change", "Fix", "fix"]

Shape = tuple[int, ...]
_SAME_INTS = re.compile(r"\((\d+)(?:, \1)*,?\)")


def short_repr(module: nn.Module) -> str:
    """torch's repr with every tuple of equal ints as one int: ``ConvTranspose2d(64, 3, kernel_size=3, ...)``."""
    return _SAME_INTS.sub(r"\1", repr(module))


@dataclass(frozen=True)
class Change:
    """One layer that :func:`fix` rebuilt with other hyper-parameters.

    Args:
        path: the layer's dotted path in the model (``''`` when the model is the layer).
        before: the layer in the original model.
        after: the layer in the patched copy (:attr:`Fix.model`).
        params: the constructor arguments that changed, with their new values (an int where every
            spatial dimension agrees).
        reinitialised: True when the weight's shape changed, so the layer has fresh weights; False
            when it kept the original's weights.

    Shape:
        ``after`` takes the input ``before`` took and gives the size the fix needs.

    Examples:
        >>> model = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ConvTranspose2d(8, 3, 3, 2, 1))
        >>> change = fix(model, (1, 3, 24, 24), (1, 3, 24, 24)).changes[0]
        >>> change.path, dict(change.params), change.reinitialised
        ('1', {'output_padding': 1}, False)

    Raises:
        Nothing: a plain record.
    """

    path: str
    before: nn.Module
    after: nn.Module
    params: Mapping[str, int | tuple[int, ...]]
    reinitialised: bool

    def __str__(self) -> str:
        text = ", ".join(f"{name}={value}" for name, value in self.params.items())
        weights = " (re-initialised)" if self.reinitialised else ""
        return f"'{self.path or '(model)'}' {short_repr(self.before)} → {text}{weights}"


@dataclass(frozen=True)
class Fix:
    """A patched copy of a model and the changes that made it, as returned by :func:`fix`.

    Args:
        model: the patched deep copy (the original is untouched).
        changes: the :class:`Change` of each rebuilt layer, in the order of the problems they fix.
        output_shape: the patched model's output shape, as its verifying trace saw it (None when
            the output is not one tensor).
        input_shape: the input shape the fix was made and checked for (a tuple of shapes for a
            forward with several inputs). A changed ``output_padding``
            or ``padding`` gives the wanted size at this input size; another input size may need
            other values (a transposed conv called with ``output_size=`` adapts per call).
        suggested_output_shape: given when ``output_shape`` was not and the output has the input's rank and
            a spatial size a little off the input's (at most 2 in each dimension): the output shape with the
            input's spatial size, ``(N, C_out, *input_spatial)``, which a search for it verified that
            ``fix`` also reaches; None otherwise. ``str`` ends with it: ``to also give 101×67, pass
            output_shape=(1, 2, 101, 67)``.

    Shape:
        ``fix.model(x).shape == fix.output_shape`` for an input ``x`` of the shape fixed for.

    Examples:
        >>> model = nn.Sequential(nn.Conv2d(3, 64, 3, stride=2, padding=1), nn.ReLU(),
        ...                       nn.ConvTranspose2d(64, 3, kernel_size=3, stride=2, padding=1))
        >>> print(fix(model, (1, 3, 24, 24), output_shape=(1, 3, 24, 24)))
        '2' ConvTranspose2d(64, 3, kernel_size=3, stride=2, padding=1) → output_padding=1
        output: 1×3×24×24 for an input of 1×3×24×24 (checked at this size; other sizes may need other values)

    Raises:
        Nothing: a plain record.
    """

    model: nn.Module
    changes: tuple[Change, ...]
    output_shape: Shape | None
    input_shape: Shape | tuple[Shape, ...] = ()
    suggested_output_shape: Shape | None = None

    def __str__(self) -> str:
        output = format_shape(self.output_shape) if self.output_shape else "no single tensor"
        if not self.changes:
            lines = [f"no change needed: the model runs and gives {output}"]
        else:
            lines = [*map(str, self.changes), f"output: {output} for {format_inputs(self.input_shape)} (checked at "
                                               "this size; other sizes may need other values)"]
        if self.suggested_output_shape is not None:
            wanted = self.suggested_output_shape
            lines.append(f"to {'also ' if self.changes else ''}give {format_shape(wanted[2:])}, pass "
                         f"output_shape={wanted}")
        return "\n".join(lines)


def _set(model: nn.Module, path: str, layer: nn.Module) -> nn.Module:
    """Put ``layer`` at ``path`` in ``model`` (``''``: ``layer`` is the model); return the model."""
    if not path:
        return layer
    parent_path, _, name = path.rpartition(".")
    setattr(model.get_submodule(parent_path), name, layer)
    return model


def _output_shape(value: Sequence[int] | Tensor | None) -> Shape | None:
    return None if value is None else as_input_shape(value, "output_shape")


def _input_sized(model: nn.Module, inputs: tuple[Tensor, ...], original: Record, out: Shape | None) -> Shape | None:
    """``(N, C_out, *input_spatial)`` where ``out``, the fixed model's output, has the input's rank and a
    spatial size at most 2 off the input's in each dimension (off in one at least), and a search for it
    (one, on meta tensors) finds a fix that keeps the batch; None otherwise."""
    shape = tuple(inputs[0].shape)
    if (out is None or not original.on_meta or len(out) != len(shape) or len(shape) < 3 or out[2:] == shape[2:]
            or any(abs(o - i) > 2 for o, i in zip(out[2:], shape[2:]))):
        return None
    wanted = (*out[:2], *shape[2:])
    try:
        found = search(model, inputs, wanted, original)
    except (ShapeError, ValueError):
        return None
    record = found.record
    if record.failure is not None or record.output_shape != wanted or changed_batch(rows_of(record), shape, wanted):
        return None
    return wanted


def fix(model: nn.Module, input_shape: InputShapes,
        output_shape: Sequence[int] | Tensor | None = None) -> Fix:
    """Change the fewest layers of ``model`` so that its forward runs on ``input_shape`` and, if
    given, gives ``output_shape``; return a patched deep copy and the changes.

    Without ``output_shape`` the fix makes a failing forward run: a ``Linear``'s ``in_features``, a
    conv's ``in_channels``, the least padding (or kernel) with which a conv on an input smaller than
    its kernel gives an output, and the convolution behind the newer side of a concatenation or sum
    whose sizes disagree, behind a pooling whose input is too small for an output, or behind a
    ``view``/``reshape`` whose samples hold other than the entries it asks for (it makes the map the
    nearest size that holds them: ``x.view(-1, 400)`` on ``16×4×4`` samples wants ``16×5×5``).
    Sizes that later layers need keep the shapes they had: the older input of
    every concatenation or sum (the skip; in a residual block after a changed layer, ``x + f(x)``,
    both sides move together) and the input of every ``Linear``. With ``output_shape``,
    the patched model also gives exactly that shape (spatial sizes only: channels never change).
    Without it, where the output then has the input's rank and a spatial size at most 2 off the input's
    in each dimension (a U-Net whose last transposed conv doubles 51 to 102 for an input of 101), one
    more search looks for ``(N, C_out, *input_spatial)``; where it finds a fix, the :class:`Fix` says so
    (:attr:`Fix.suggested_output_shape`, and ``str`` ends with ``to also give 101×67, pass
    output_shape=(1, 2, 101, 67)``). That search runs on meta tensors only: a model traced by real
    forwards gets no suggestion.

    What may change, in order of preference: the fewest layers; then the least change, trying
    ``output_padding``, then ``padding``, then ``kernel_size``, then ``stride``, then a kernel
    more than doubled (a 3×3 grown to 13×13 to undo a stride elsewhere is a last resort); dilation
    and groups stay. Only plain torch convolutions, transposed convolutions and ``Linear`` layers are
    rebuilt, in place in the copy, however deeply nested (MONAI's ``Convolution`` wraps its conv).
    Pooling and upsampling layers never change: an ``nn.Upsample`` given a fixed ``size`` would fit
    one input size only (``explain`` notes the size it should restore). A layer whose weight keeps
    its shape keeps its weights; one whose weight changes shape is re-initialised, and its
    :class:`Change` says so.

    Every candidate is computed in closed form from the record of one traced forward and verified
    by tracing the patched model on meta tensors; at most 3 layers change and at most 32 patched
    models are traced, so a fix costs milliseconds per trace, not a search over every combination.
    A model that cannot run on meta tensors (it reads values, ``if x.max() > 1``) is traced as
    :func:`explain` traces it, by a real forward on zeros (with a RuntimeWarning), and at most 8
    patched copies are run.

    Args:
        model: any ``nn.Module``.
        input_shape: the full input shape, batch included, or an example tensor (its dtype is kept);
            for a forward with several positional inputs, a sequence of them.
        output_shape: the full output shape wanted, or None (the forward must run, nothing more).

    Shape:
        ``fix(model, x.shape, y_shape).model(x).shape == y_shape``.

    Examples:
        >>> model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.MaxPool2d(2), nn.Flatten(),
        ...                       nn.Linear(8 * 13 * 13, 10))
        >>> fixed = fix(model, (1, 1, 28, 28))
        >>> print(fixed)
        '3' Linear(in_features=1352, out_features=10, bias=True) → in_features=1568 (re-initialised)
        output: 1×10 for an input of 1×1×28×28 (checked at this size; other sizes may need other values)
        >>> import torch
        >>> fixed.model(torch.randn(1, 1, 28, 28)).shape
        torch.Size([1, 10])

    Raises:
        TypeError: ``model`` is not an ``nn.Module``, or a shape is not a shape or tensor.
        ValueError: a shape is empty or has an entry below 1, the input shape has no batch dimension
            (the first convolution gets one sample, ``(C, *spatial)``), or ``output_shape`` has another
            number of dimensions, batch or channels than the model's output (the message gives the
            ``output_shape`` to pass instead).
        ShapeError: no fix changes at most 3 layers (the message says what failed and what was tried),
            or a ``view``/``reshape`` in the forward changes the batch (the message names it and the fix).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"fix needs an nn.Module, got {type(model).__name__}")
    inputs, goal = as_examples(input_shape, trace_dtype(model)), _output_shape(output_shape)
    shape = tuple(inputs[0].shape)
    original = quiet_trace(model, inputs)
    if not original.on_meta:
        warn(f"{type(model).__name__} cannot run on meta tensors: fix runs it, and each patched copy it checks "
             f"(at most {MAX_REAL_TRACES}), with a real forward on zeros")
    no_batch = unbatched(rows_of(original))
    if no_batch is not None:
        raise ValueError(f"fix needs the input shape with the batch: {no_batch}")
    found = search(model, inputs, goal, original)
    patched = copy.deepcopy(model)
    changes = []
    for edit in found.edits:
        layer, keeps = build(patched.get_submodule(edit.path), edit.params)
        patched = _set(patched, edit.path, layer)
        changes.append(Change(edit.path, model.get_submodule(edit.path), layer, dict(edit.params), not keeps))
    record = quiet_trace(patched, inputs) if found.edits else found.record
    if record.failure is not None or (goal is not None and record.output_shape != goal):
        raise ShapeError(f"fix verified {len(found.edits)} change(s) to {type(model).__name__}, but "
                         f"the patched copy does not run as verified: {clause(record.failure or record.output_shape)}. "
                         f"Fix: report this; at most {MAX_LAYERS} layers are changed.")
    mixed = changed_batch(rows_of(record), shape, record.output_shape)
    if mixed is not None:
        on = ", ".join(format_shape(tuple(x.shape)) for x in inputs)
        raise ShapeError(f"{type(model).__name__} runs on {on}{' once fixed' if found.edits else ''}"
                         f" but does not keep its batch, and fix changes layers, not the forward's code: {mixed}")
    suggested = None if goal is not None else _input_sized(model, inputs, original, record.output_shape)
    return Fix(patched, tuple(changes), record.output_shape, shapes_of(inputs), suggested)
