"""Encoder steps called again on new inputs: how MirrorAutoencoder and MirrorUNet run the encoder
step by step and record every size on the way down.

A step is its module when the module took the data tensor alone, else a :class:`Replay` of the
recorded call: the same module or torch function with the same arguments, the data tensor
replaced by the new input, parameters and buffers looked up live in the encoder (so ``.to()`` and
``load_state_dict`` are seen), a dropout's ``training`` following the module that called it, and
a ``view``/``reshape`` that keeps the batch free of the traced batch size.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..tracing import Call, Value

__all__ = ["Replay", "replay", "why_not_replayable"]

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


def why_not_replayable(call: Call) -> str | None:
    """Why a call cannot be replayed on a new input (None when it can)."""
    if not isinstance(call.result, Value):
        return f"{call.describe()} returns {_kind(call.result)}, not one tensor"
    made_inside = [v for v in call.inputs if not v.data and v.name is None]
    if made_inside:
        return (f"{call.describe()} uses a tensor of shape {made_inside[0].shape} made inside the forward (not a "
                "parameter or buffer)")
    return None


def _kind(result: Any) -> str:
    return f"a {type(result).__name__}" if not isinstance(result, (tuple, list)) else (
        f"a {type(result).__name__} of {len(result)}")


def _template(obj: Any, buffers: set[str]) -> Any:
    if isinstance(obj, Value):
        return _Input() if obj.data else _Parameter(obj.name or "", obj.name in buffers)
    if isinstance(obj, (tuple, list)):
        items = [_template(item, buffers) for item in obj]
        return items if isinstance(obj, list) else tuple(items)
    if isinstance(obj, dict):
        return {key: _template(item, buffers) for key, item in obj.items()}
    return obj


class Replay:
    """One recorded call, called again on a new input (see the module docstring)."""

    def __init__(self, call: Call, encoder: nn.Module, owner: nn.Module) -> None:
        self.target: Callable[..., Any] = call.target
        self.name = call.name
        buffers = {name for name, _ in encoder.named_buffers()}
        self.args = _template(call.args, buffers)
        self.kwargs = _template(dict(call.kwargs), buffers)
        position = _TRAINING.get(call.target)
        if position is not None:
            if len(self.args) > position:
                self.args = (*self.args[:position], _Training(), *self.args[position + 1:])
            else:
                self.kwargs["training"] = _Training()
        self.encoder = encoder
        self.owner = owner

    def _resolve(self, obj: Any, x: Tensor) -> Any:
        if isinstance(obj, _Input):
            return x
        if isinstance(obj, _Parameter):
            return self.encoder.get_buffer(obj.name) if obj.buffer else self.encoder.get_parameter(obj.name)
        if isinstance(obj, _Training):
            return self.owner.training
        if isinstance(obj, (tuple, list)):
            items = [self._resolve(item, x) for item in obj]
            return items if isinstance(obj, list) else tuple(items)
        if isinstance(obj, dict):
            return {key: self._resolve(item, x) for key, item in obj.items()}
        return obj

    def __call__(self, x: Tensor) -> Tensor:
        result: Tensor = self.target(*self._resolve(self.args, x), **self._resolve(self.kwargs, x))
        return result

    def __repr__(self) -> str:
        return f"Replay({self.name})"


class _BatchReshape:
    """``x.reshape(x.shape[0], *tail)``: a recorded view or reshape, free of the traced batch size."""

    def __init__(self, tail: tuple[int, ...]) -> None:
        self.tail = tail

    def __call__(self, x: Tensor) -> Tensor:
        return x.reshape(x.shape[0], *self.tail)

    def __repr__(self) -> str:
        return f"reshape(N, {', '.join(map(str, self.tail))})"


def replay(call: Call, vin: Value, vout: Value, encoder: nn.Module, owner: nn.Module) -> Callable[[Tensor], Tensor]:
    """The callable that replays one step on a new input."""
    module = call.module
    if module is not None and len(call.args) == 1 and isinstance(call.args[0], Value) and not call.kwargs:
        return module
    if call.target in _RESHAPES and vin.shape[:1] == vout.shape[:1]:
        return _BatchReshape(vout.shape[1:])
    return Replay(call, encoder, owner)
