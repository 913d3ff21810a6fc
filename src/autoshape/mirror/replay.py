"""Encoder steps called again on new inputs: how MirrorAutoencoder and MirrorUNet run the encoder
step by step and record every size on the way down.

A step is its module when the module took the data tensor alone and returned one tensor, else a
:class:`Replay` of the recorded call: the same module or torch function with the same arguments,
the data tensor replaced by the new input, parameters and buffers looked up live in the encoder
(so ``.to()`` and ``load_state_dict`` are seen), a dropout's ``training`` following the module that
called it, a ``view``/``reshape``'s batch size following the input, and, for a call that returns
a tuple (``MaxPool2d(return_indices=True)``), the element on the data path.

:func:`signature` says how a step is replayed, as plain data: two traces of one encoder whose
steps have equal signatures are replayed alike, which is how a replay is checked against the
encoder's own forward at another input size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..tracing import Call, Value
from ..tracing.names import function_name, function_named

__all__ = ["Replay", "replay", "signature", "why_not_replayable"]

_TRAINING = {F.dropout: 2, F.dropout1d: 2, F.dropout2d: 2, F.dropout3d: 2, F.alpha_dropout: 2,
             F.feature_alpha_dropout: 2, F.batch_norm: 5}
"""Functions whose ``training`` argument (at this position) a module passes from its own flag."""
_RESHAPES = (Tensor.view, Tensor.reshape, torch.reshape)


class _Input:
    """Where the data tensor goes."""


class _Parameter:
    """A parameter or buffer of the encoder, by dotted name."""

    def __init__(self, name: str, buffer: bool) -> None:
        self.name = name
        self.buffer = buffer


class _Training:
    """The calling module's ``training`` flag."""


class _Batch:
    """The input's batch size (a ``view``/``reshape`` written with ``x.size(0)``)."""


def _element(call: Call, out: Value) -> int | None:
    """Where ``out`` is in what the call returned: None for the return value itself, else its index."""
    if isinstance(call.result, Value):
        return None
    if isinstance(call.result, (tuple, list)):
        return next((n for n, item in enumerate(call.result) if isinstance(item, Value) and item.index == out.index),
                    -1)
    return -1


def why_not_replayable(call: Call, out: Value) -> str | None:
    """Why a call cannot be replayed on a new input to give ``out`` (None when it can)."""
    if _element(call, out) == -1:
        return f"{call.describe()} returns {_kind(call.result)}, and its output on the data path is not one element"
    made_inside = [v for v in call.inputs if not v.data and v.name is None]
    if made_inside:
        return (f"{call.describe()} uses a tensor of shape {made_inside[0].shape} made inside the forward (not a "
                "parameter or buffer)")
    return None


def _kind(result: Any) -> str:
    return f"a {type(result).__name__}" if not isinstance(result, (tuple, list)) else (
        f"a {type(result).__name__} of {len(result)}")


def _with_markers(call: Call, vin: Value, buffers: set[str]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The call's arguments with the data tensor, parameters, ``training`` and a reshape's batch as markers."""
    def mark(obj: Any) -> Any:
        if isinstance(obj, Value):
            return _Input() if obj.data else _Parameter(obj.name or "", obj.name in buffers)
        if isinstance(obj, (tuple, list)):
            items = [mark(item) for item in obj]
            return items if isinstance(obj, list) else tuple(items)
        if isinstance(obj, dict):
            return {key: mark(item) for key, item in obj.items()}
        return obj

    args, kwargs = list(mark(call.args)), dict(mark(dict(call.kwargs)))
    position = _TRAINING.get(call.target)
    if position is not None:
        if len(args) > position:
            args[position] = _Training()
        else:
            kwargs["training"] = _Training()
    if call.target in _RESHAPES and len(args) > 1:
        sizes = args[1] if len(args) == 2 and isinstance(args[1], (tuple, list)) else None
        first = sizes[0] if sizes else args[1]
        if first == vin.shape[0] and not isinstance(first, bool):
            args[1] = (_Batch(), *sizes[1:]) if sizes else _Batch()
    return tuple(args), kwargs


class Replay:
    """One recorded call, called again on a new input (see the module docstring)."""

    def __init__(self, call: Call, vin: Value, vout: Value, encoder: nn.Module, owner: nn.Module) -> None:
        self.target: Callable[..., Any] = call.target
        self.name = call.name
        self.args, self.kwargs = _with_markers(call, vin, {name for name, _ in encoder.named_buffers()})
        self.element = _element(call, vout)
        self.encoder = encoder
        self.owner = owner

    def _resolve(self, obj: Any, x: Tensor) -> Any:
        if isinstance(obj, _Input):
            return x
        if isinstance(obj, _Parameter):
            return self.encoder.get_buffer(obj.name) if obj.buffer else self.encoder.get_parameter(obj.name)
        if isinstance(obj, _Training):
            return self.owner.training
        if isinstance(obj, _Batch):
            return x.shape[0]
        if isinstance(obj, (tuple, list)):
            items = [self._resolve(item, x) for item in obj]
            return items if isinstance(obj, list) else tuple(items)
        if isinstance(obj, dict):
            return {key: self._resolve(item, x) for key, item in obj.items()}
        return obj

    def __call__(self, x: Tensor) -> Tensor:
        result = self.target(*self._resolve(self.args, x), **self._resolve(self.kwargs, x))
        out: Tensor = result if self.element is None else result[self.element]
        return out

    def __repr__(self) -> str:
        return f"Replay({self.name})"

    def __getstate__(self) -> dict[str, Any]:
        """A torch function pickles by its name (``F.max_pool2d`` is a local function in torch)."""
        state = dict(self.__dict__)
        if not isinstance(self.target, nn.Module):
            state["target"] = function_name(self.target)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        if isinstance(state["target"], str):
            state["target"] = function_named(state["target"])
        self.__dict__.update(state)


def replay(call: Call, vin: Value, vout: Value, encoder: nn.Module, owner: nn.Module) -> Callable[[Tensor], Tensor]:
    """The callable that replays one step on a new input."""
    module = call.module
    alone = len(call.args) == 1 and isinstance(call.args[0], Value) and not call.kwargs
    if module is not None and alone and _element(call, vout) is None:
        return module
    return Replay(call, vin, vout, encoder, owner)


def _plain(obj: Any) -> Any:
    """Markers as their names, so that two recorded calls compare as data."""
    if isinstance(obj, (_Input, _Training, _Batch)):
        return f"<{type(obj).__name__.strip('_').lower()}>"
    if isinstance(obj, _Parameter):
        return f"<{obj.name}>"
    if isinstance(obj, (tuple, list)):
        return tuple(_plain(item) for item in obj)
    if isinstance(obj, dict):
        return tuple(sorted((key, _plain(item)) for key, item in obj.items()))
    return obj


def signature(call: Call, vin: Value, vout: Value) -> tuple[Any, ...]:
    """How a step is replayed, as plain data: its target, its arguments with markers, its element."""
    args, kwargs = _with_markers(call, vin, set())
    target = id(call.target) if call.module is not None else call.name
    return (target, _plain(args), _plain(kwargs), _element(call, vout))
