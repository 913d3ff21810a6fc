"""Shape tracing: run a model's real forward on meta tensors and record every leaf module call.

Meta tensors carry shapes and dtypes but no data, so tracing a 3-d network on a
512³ volume costs the same as on 8³: no compute and no activation memory. The
model's own parameters, buffers and training flags are left as they were.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call

from ..core.sizes import as_int

__all__ = ["Trace", "TracedCall", "as_input_shape", "trace", "trace_dtype"]


@dataclass(frozen=True)
class TracedCall:
    """One call of a leaf module (a module without children) during a traced forward.

    Attributes:
        name: the module's dotted path in the model (``""`` for the model itself).
        module: the module (the model's own object, not a copy).
        input_shape: shape of the call's first tensor argument.
        output_shape: shape of the call's output, or None when it is not a tensor.
        follows_previous: True when the call's input is exactly the previous call's output
            (or the model's input, for the first call): the calls so far form a plain chain.
    """

    name: str
    module: nn.Module
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...] | None
    follows_previous: bool


@dataclass(frozen=True)
class Trace:
    """The leaf calls of one forward, in execution order, and the model's output shape.

    ``on_meta`` is False when the model could not run on meta tensors and a real forward was used.
    """

    calls: tuple[TracedCall, ...]
    output_shape: tuple[int, ...] | None
    on_meta: bool


def as_input_shape(input_shape: Sequence[int] | Tensor, name: str = "input_shape") -> tuple[int, ...]:
    """A checked full input shape (batch included) from a shape or an example tensor.

    Raises:
        TypeError: not a sequence of ints or a tensor.
        ValueError: empty, or an entry below 1.
    """
    if isinstance(input_shape, Tensor):
        return tuple(input_shape.shape)
    if isinstance(input_shape, (str, bytes)) or not isinstance(input_shape, Sequence):
        raise TypeError(f"{name} must be a tuple of ints or a tensor, got {input_shape!r}")
    if len(input_shape) == 0:
        raise ValueError(f"{name} must not be empty")
    return tuple(as_int(v, name) for v in input_shape)


def _leaves(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    for name, module in model.named_modules():
        if next(module.children(), None) is None:
            yield name, module


def _first_tensor(value: object) -> Tensor | None:
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], Tensor):
        return value[0]
    return None


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Evaluation mode for the trace (batch statistics need no data), restored afterwards."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in modes:
            module.training = training


def trace_dtype(model: nn.Module) -> torch.dtype:
    """The dtype of a traced input: the model's first floating-point parameter's, else torch's default."""
    floating = (p.dtype for p in model.parameters() if p.is_floating_point())
    return next(floating, torch.get_default_dtype())


def _run(model: nn.Module, x: Tensor, on_meta: bool) -> object:
    if not on_meta:
        with torch.no_grad():
            return model(x)
    state = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    meta_state = {name: torch.empty_like(t, device="meta") for name, t in state.items()}
    return functional_call(model, meta_state, (x,))


def _record(model: nn.Module, x: Tensor, on_meta: bool) -> Trace:
    calls: list[TracedCall] = []
    last: list[Tensor] = [x]

    def hook_for(name: str):  # type: ignore[no-untyped-def]
        def hook(module: nn.Module, args: tuple[object, ...], output: object) -> None:
            first_in, out = _first_tensor(args), _first_tensor(output)
            if first_in is None:
                return
            calls.append(TracedCall(name, module, tuple(first_in.shape),
                                    None if out is None else tuple(out.shape), first_in is last[0]))
            if out is not None:
                last[0] = out
        return hook

    handles = [module.register_forward_hook(hook_for(name)) for name, module in _leaves(model)]
    try:
        with _eval_mode(model):
            result = _first_tensor(_run(model, x, on_meta))
    finally:
        for handle in handles:
            handle.remove()
    return Trace(tuple(calls), None if result is None else tuple(result.shape), on_meta)


def trace(model: nn.Module, input_shape: Sequence[int] | Tensor, *, fallback: bool = True) -> Trace:
    """Trace ``model`` on an input of ``input_shape`` (batch included) without running real compute.

    The forward runs on meta tensors through ``torch.func.functional_call`` in eval mode; a
    model that cannot run on meta tensors is traced with a real forward on zeros instead, with a
    warning (``fallback=False`` raises the meta error instead: for probing many shapes cheaply).

    Shape:
        ``input_shape`` is the full input shape, e.g. ``(N, C, H, W)``; every recorded shape is
        what torch's own forward produces.

    Example:
        >>> model = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2), nn.ReLU())
        >>> [(c.name, c.output_shape) for c in trace(model, (1, 1, 29, 29)).calls]
        [('0', (1, 4, 14, 14)), ('1', (1, 4, 14, 14))]

    Raises:
        TypeError, ValueError: ``input_shape`` is not a shape or a tensor.
        RuntimeError: the model's own forward fails on this input (the real forward's message, which
            names the problem better than the meta one; the meta one with ``fallback=False``).
    """
    example = input_shape if isinstance(input_shape, Tensor) else None
    shape = as_input_shape(input_shape)
    dtype = trace_dtype(model) if example is None else example.dtype
    try:
        return _record(model, torch.empty(shape, dtype=dtype, device="meta"), on_meta=True)
    except (NotImplementedError, RuntimeError) as meta_error:
        if not fallback:
            raise
        device = next((t.device for t in model.parameters()), torch.device("cpu"))
        traced = _record(model, torch.zeros(shape, dtype=dtype, device=device), on_meta=False)
        warnings.warn(
            f"{type(model).__name__} cannot run on meta tensors ({meta_error}); traced it with a real forward",
            RuntimeWarning,
            stacklevel=2,
        )
        return traced
