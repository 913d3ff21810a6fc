"""The search behind ``fix``: the fewest layer changes that make a forward run, or give a size.

Each trace of the (patched) model on meta tensors shows the first problem left: a failure, or an
output of the wrong size. The problem names its candidate changes in closed form (a ``Linear``'s
``in_features`` or a conv's ``in_channels`` from the failing call's input; for a size, the
convolutions behind the value, see :mod:`.reach`). Candidates are tried breadth first, one more
changed layer per round and cheapest first within a round, each verified by one trace; a round
keeps only the candidates that got further. At most :data:`MAX_LAYERS` layers change and at most
:data:`MAX_TRACES` patched models are traced, so a search costs a few dozen traces at worst. A model
that cannot run on meta tensors (it reads values: ``if x.max() > 1``) is traced as :func:`explain`
traces it, by a real forward on zeros, and at most :data:`MAX_REAL_TRACES` patched models are run.

A change may not move a size that a later layer needs: the older input of a concatenation or sum
(the skip) and the input of a ``Linear`` keep the shapes they had in the original forward. A skip
may move only with the other inputs: in a residual block after the changed layer, ``x + f(x)``, both
sides are computed from the layer's output and change together.
"""

from __future__ import annotations

import contextlib
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..core.adjust import KINDS
from ..core.text import clause, format_shape
from ..errors import ShapeError
from ..tracing import Call, Record, Value, trace
from .batch import batch_changed_before
from .failure import (
    MERGES,
    channels_last,
    conv_channels,
    diagnose,
    failing_calls,
    flatten_missing,
    merge_sides,
    wanted_input,
)
from .reach import Proposal, changeable, emptied, proposals
from .rows import where

__all__ = ["MAX_LAYERS", "MAX_REAL_TRACES", "MAX_TRACES", "Found", "build", "quiet_trace", "search"]

Shape = tuple[int, ...]
MAX_LAYERS = 3
"""The most layers one fix changes."""
MAX_TRACES = 32
"""The most patched models one search traces."""
MAX_REAL_TRACES = 8
"""The most patched models one search runs on zeros, for a model that cannot run on meta tensors."""
_BEAM = 4
"""How many partial fixes (that got further) each round keeps to build on."""
_INPUT_SIZE = len(KINDS)
"""``Proposal.cost`` kind of a change to a layer's input size (``in_features``, ``in_channels``)."""


@dataclass(frozen=True)
class _Problem:
    position: int  # how far the forward got: the index of the failing call, or the number of calls
    text: str
    proposals: tuple[Proposal, ...]


@dataclass(frozen=True)
class _State:
    edits: tuple[Proposal, ...]
    record: Record
    problem: _Problem | None  # None: the goal is met
    holds: bool = True  # every size a later layer needs is as in the original forward


@dataclass(frozen=True)
class Found:
    """The changes that fix the model, in the order of the problems they fix, and the patched record."""

    edits: tuple[Proposal, ...]
    record: Record
    traces: int


# --- building a changed layer -----------------------------------------------------------------

def _arguments(module: Any) -> dict[str, Any]:
    if isinstance(module, nn.Linear):
        return {"in_features": module.in_features, "out_features": module.out_features, "bias": module.bias is not None}
    arguments = {name: getattr(module, name) for name in ("in_channels", "out_channels", "kernel_size", "stride",
                                                         "padding", "dilation", "groups", "padding_mode")}
    if isinstance(module, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
        arguments["output_padding"] = module.output_padding
    return {**arguments, "bias": module.bias is not None}


def build(module: nn.Module, params: Mapping[str, Any],
          device: torch.device | str | None = None) -> tuple[nn.Module, bool]:
    """A new layer of ``module``'s type with ``params`` changed, and whether it keeps the weights
    (same weight shape: the state and flags are copied) or has fresh ones. ``device`` None: the module's."""
    weight: Any = module.weight
    layer = type(module)(**{**_arguments(module), **params}, device=device or weight.device, dtype=weight.dtype)
    keeps = all(mine.shape == theirs.shape for mine, theirs in zip(layer.parameters(), module.parameters()))
    if keeps and device != "meta":
        layer.load_state_dict(module.state_dict())
        for mine, theirs in zip(layer.parameters(), module.parameters()):
            mine.requires_grad_(theirs.requires_grad)
    layer.train(module.training)
    return layer, keeps


@contextlib.contextmanager
def _patched(model: nn.Module, edits: Sequence[Proposal], device: str | None) -> Iterator[nn.Module]:
    """``model`` with new layers in place of the edited ones (on ``device``; None: each layer's own,
    with its weights where they keep their shape), put back afterwards."""
    swapped: list[tuple[nn.Module, str, nn.Module]] = []
    root = model
    try:
        for edit in edits:
            layer = build(edit.call.target, edit.params, device)[0]
            if not edit.path:
                root = layer
                continue
            parent_path, _, name = edit.path.rpartition(".")
            parent = model.get_submodule(parent_path)
            swapped.append((parent, name, getattr(parent, name)))
            setattr(parent, name, layer)
        yield root
    finally:
        for parent, name, original in reversed(swapped):
            setattr(parent, name, original)


def quiet_trace(model: nn.Module, inputs: tuple[Tensor, ...]) -> Record:
    """:func:`~autoshape.tracing.trace` without its warning that a real forward was used (``fix`` says it once)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return trace(model, inputs)


# --- sizes later layers need ------------------------------------------------------------------

Key = tuple[str, str, int, int]


def _keys(record: Record) -> dict[int, Key]:
    """Each value's producer as (path, name, occurrence, output position): the same in two traces of
    models that differ in a layer's parameters, up to where their forwards part."""
    seen: Counter[tuple[str, str]] = Counter()
    keys = {}
    for call in record.calls:
        occurrence = seen[call.path, call.name]
        seen[call.path, call.name] += 1
        keys.update({value.index: (call.path, call.name, occurrence, n) for n, value in enumerate(call.outputs)})
    return keys


def _moved(record: Record, paths: set[str]) -> set[int]:
    """The values (by index) computed from the output of a layer at one of ``paths``."""
    calls = {call.index: call for call in record.calls}
    moved: set[int] = set()
    for value in record.values:
        call = calls.get(value.producer) if value.producer is not None else None
        if call is not None and (call.path in paths or any(v.index in moved for v in call.inputs)):
            moved.add(value.index)
    return moved


def _needed(record: Record, moved: set[int]) -> Iterator[Value]:
    """The older input of every concatenation or sum (the skip), unless every other input moves with it
    (a residual block after a changed layer: its identity path follows the layer), and the input of
    every Linear."""
    calls = {call.index: call for call in record.calls}
    calls.update({call.index: call for call in (record.failure.stack if record.failure else ())})
    for call in calls.values():
        if call.kind == "function" and call.name in MERGES and len(call.data_inputs) > 1:
            held = min(call.data_inputs, key=lambda v: v.index)
            if not all(v.index in moved for v in call.data_inputs if v is not held):
                yield held
        elif isinstance(call.target, nn.Linear) and call.data_inputs:
            yield call.data_inputs[0]


def _shapes(record: Record) -> dict[Key, Shape]:
    keys = _keys(record)
    return {keys[v.index]: v.shape for v in record.values if v.index in keys}


def _holds(record: Record, original: dict[Key, Shape], edits: Sequence[Proposal]) -> bool:
    keys, moved = _keys(record), _moved(record, {edit.path for edit in edits})
    return all(original.get(keys.get(v.index, ("", "", -1, -1)), v.shape) == v.shape for v in _needed(record, moved))


# --- problems and their candidate changes -----------------------------------------------------

def _input_size(call: Call) -> Proposal | None:
    """A Linear's in_features or a conv's in_channels that its input does not have."""
    shape, module = call.input_shape, call.target
    if shape is None:
        return None
    if changeable(module, (nn.Linear,)) and shape[-1] != module.in_features and not flatten_missing(call):
        return Proposal(call, {"in_features": shape[-1]}, (_INPUT_SIZE, 0, 0, abs(shape[-1] - module.in_features)))
    channels = conv_channels(call) if changeable(module) and channels_last(call) is None else None
    if channels is not None and channels != module.in_channels and channels % module.groups == 0:
        return Proposal(call, {"in_channels": channels}, (_INPUT_SIZE, 0, 0, abs(channels - module.in_channels)))
    return None


def _failure(record: Record) -> _Problem:
    failure = record.failure
    assert failure is not None
    row, innermost = failing_calls(record)
    position = innermost.index if innermost is not None else 0
    shapes = ", ".join(format_shape(v.shape) for v in (row.data_inputs if row else ())) or "no tensor"
    text = f"the forward fails at {where(row) if row else 'the start'} on {shapes}: {clause(failure.error)}"
    if row is not None and batch_changed_before(record, row) is not None:
        return _Problem(position, text, ())  # the forward's code is wrong (its batch), not a layer
    found = (_input_size(row) or emptied(row)) if row is not None else None
    if found is not None:
        return _Problem(position, text, (found,))
    needed = wanted_input(row) if row is not None and row.data_inputs else None
    if row is not None and needed is not None:
        size, at_least = needed
        return _Problem(position, text, tuple(proposals(record, row.data_inputs[0], size, at_least=at_least)))
    sides = merge_sides(innermost) if innermost is not None else None
    if sides is None:
        return _Problem(position, text, ())
    held, changing, wanted = sides
    return _Problem(position, text, tuple(proposals(record, changing, wanted, stop=held.index)))


def _not_spatial(out: Shape, goal: Shape) -> str:
    """Why an ``output_shape`` asks for what no layer change gives: another batch, other channels, no space."""
    head = f"output_shape {goal} asks for"
    if len(out) < 3:
        return (f"{head} {format_shape(goal)}, but the model's output {format_shape(out)} has no spatial size, and fix "
                "changes spatial sizes only. Fix: leave output_shape out (fix then makes the forward run), and change "
                "the features of the last layer by hand.")
    if out[0] != goal[0]:
        return (f"{head} a batch of {goal[0]}, but the model's output keeps its input's, {out[0]}: no layer change "
                f"moves it. Fix: output_shape={(out[0], *goal[1:])}.")
    return (f"{head} {goal[1]} channels, but the model gives {out[1]}, and fix changes spatial sizes only. Fix: "
            f"output_shape={(goal[0], out[1], *goal[2:])}, and change the out_channels of the last layer by hand.")


def _problem(record: Record, goal: Shape | None) -> _Problem | None:
    """The first problem left in a record: a failure, or an output that is not ``goal``.

    Raises:
        ValueError: ``goal`` has another number of dimensions, batch or channels than the output, or the
            output has no spatial size (no layer change that fix makes moves them).
    """
    if record.failure is not None:
        return _failure(record)
    out = record.output_shape
    if goal is None or out == goal:
        return None
    if out is not None and len(out) != len(goal):
        shape = (out[0], *goal) if len(goal) == len(out) - 1 else out
        raise ValueError(f"output_shape {goal} has {len(goal)} dimensions, but the model's output has {len(out)} "
                         f"({format_shape(out)}). Fix: pass the full output shape, batch first, e.g. "
                         f"output_shape={shape}.")
    if out is not None and (len(out) < 3 or out[:2] != goal[:2]):
        raise ValueError(_not_spatial(out, goal))
    text = f"it gives {format_shape(out) if out else 'no single tensor'}, not {format_shape(goal)}"
    if out is None:
        return _Problem(len(record.calls), text, ())
    assert isinstance(record.output, Value)
    return _Problem(len(record.calls), text, tuple(proposals(record, record.output, goal[2:])))


# --- the search -------------------------------------------------------------------------------

def _cost(edits: Sequence[Proposal]) -> tuple[Any, ...]:
    """Fewest layers; then the least disruptive kinds (output_padding first); then the least moves."""
    return (len(edits), sorted((e.cost[0] for e in edits), reverse=True), [sum(c) for c in zip(*(e.cost[1:]
                                                                                                 for e in edits))])


def _children(level: Sequence[_State]) -> list[tuple[_State, tuple[Proposal, ...]]]:
    children: dict[frozenset[tuple[str, str]], tuple[_State, tuple[Proposal, ...]]] = {}
    for parent in level:
        assert parent.problem is not None
        changed = {edit.path for edit in parent.edits}
        for proposal in parent.problem.proposals:
            if proposal.path in changed:
                continue
            edits = (*parent.edits, proposal)
            children.setdefault(frozenset((e.path, repr(sorted(e.params.items()))) for e in edits), (parent, edits))
    return sorted(children.values(), key=lambda child: _cost(child[1]))


class _Searcher:
    def __init__(self, model: nn.Module, inputs: tuple[Tensor, ...], goal: Shape | None, record: Record) -> None:
        self.model, self.inputs, self.goal = model, inputs, goal
        self.original = _shapes(record)
        self.tried: list[tuple[Proposal, ...]] = []  # each traced once
        self.device = "meta" if record.on_meta else None  # a real forward needs real layers
        self.limit = MAX_TRACES if record.on_meta else MAX_REAL_TRACES
        self.traced_on = "on meta tensors" if record.on_meta else "by real forwards on zeros"

    @property
    def traces(self) -> int:
        return len(self.tried)

    def state(self, edits: tuple[Proposal, ...], record: Record | None = None) -> _State:
        if record is None:
            self.tried.append(edits)
            with _patched(self.model, edits, self.device) as patched:
                record = quiet_trace(patched, self.inputs)
        return _State(edits, record, _problem(record, self.goal), _holds(record, self.original, edits))

    def run(self, root: _State) -> Found | None:
        level = [root]
        for _ in range(MAX_LAYERS):
            survivors: list[_State] = []
            for parent, edits in _children(level):
                if self.traces >= self.limit:
                    return None
                state = self.state(edits)
                if not state.holds:
                    continue
                if state.problem is None:
                    return Found(edits, state.record, self.traces)
                assert parent.problem is not None
                if state.problem.position > parent.problem.position and state.problem.proposals:
                    survivors.append(state)  # it got further: build on it
            level = sorted(survivors, key=lambda s: -s.problem.position if s.problem else 0)[:_BEAM]
        return None

    def no_fix(self, root: _State) -> str:
        """What failed, what was tried, and what to do instead."""
        assert root.problem is not None
        model = type(self.model).__name__
        on = ", ".join(format_shape(tuple(x.shape)) for x in self.inputs)
        head = f"no fix for {model} on {on} with at most {MAX_LAYERS} changed layers: "
        if not root.problem.proposals:
            known = diagnose(root.record).fix if root.record.failure is not None else None
            return (f"{head}{root.problem.text}. No change of one layer fixes that: fix changes the output_padding, "
                    "padding, kernel_size or stride of the plain convolutions that make a size, a Linear's "
                    "in_features and a conv's in_channels; pooling and upsampling layers never change. " + (
                        f"Fix: {known}." if known else
                        "Fix: explain(model, input_shape) shows every size and formula; change the layers by hand."))
        layers = sorted({edit.path for edits in self.tried for edit in edits})
        limit = f" (the limit of {self.limit})" if self.traces >= self.limit else ""
        return (f"{head}{root.problem.text}. Tried {self.traces} candidate fixes {self.traced_on}{limit}, changing "
                f"{', '.join(repr(path) for path in layers)}: each failed later, moved a size that a later layer "
                "needs (a skip, a Linear's input), or needed more layers. Fix: explain(model, input_shape) shows "
                "every size and formula; change the layers by hand.")


def search(model: nn.Module, inputs: tuple[Tensor, ...], output_shape: Shape | None = None,
           record: Record | None = None) -> Found:
    """The cheapest verified fix (see the module's docstring); ``record``: the model's trace, if known.

    Raises:
        ShapeError: no fix within :data:`MAX_LAYERS` changed layers and :data:`MAX_TRACES` traces
            (:data:`MAX_REAL_TRACES` real forwards).
        ValueError: ``output_shape`` has another number of dimensions, batch or channels than the
            model's output.
    """
    record = record if record is not None else trace(model, inputs)
    searcher = _Searcher(model, inputs, output_shape, record)
    root = searcher.state((), record)
    if root.problem is None:
        return Found((), record, 0)
    found = searcher.run(root)
    if found is None:
        raise ShapeError(searcher.no_fix(root))
    return found
