"""An encoder as the chain of modules its forward runs one after the other, traced on meta tensors.

Every module call of one traced forward is recorded as a tree (which call ran inside which).
A call whose inner calls pass one tensor along, each taking exactly what the previous one
returned (same object, not modified in place since), is replaced by those calls; any other
call, a residual block say, stays one opaque step. Replaying the steps in order is then the
encoder's forward, which lets a mirror record every size on the way down.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..core.inversion import SizeFunction
from ..errors import ShapeError
from ..tracing.recorder import as_input_shape, trace, trace_dtype

__all__ = ["Chain", "Step", "encoder_chain", "size_functions"]


def _describe(path: str, module: nn.Module) -> str:
    """``'dotted.path' (Type)``, as error messages name a module."""
    return f"'{path or '<encoder>'}' ({type(module).__name__})"


@dataclass(frozen=True)
class Step:
    """One module call of the encoder's chain: replay it with ``module(x)``.

    ``opaque`` says why a module with submodules is replayed as a whole (its forward is not a
    chain of them); it is None for a module without inner calls or known parts.
    """

    path: str
    module: nn.Module
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    opaque: str | None = None

    def describe(self) -> str:
        """``'path' (Type)`` for error messages."""
        return _describe(self.path, self.module)


@dataclass(frozen=True)
class Chain:
    """The encoder's steps for one traced input shape (batch included)."""

    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    steps: tuple[Step, ...]


@dataclass
class _Call:
    path: str
    module: nn.Module
    input: Tensor | None  # the only argument, or None when called otherwise
    input_version: int
    output: Tensor | None = None
    output_version: int = -1
    inner: list[_Call] = field(default_factory=list)

    def describe(self) -> str:
        return _describe(self.path, self.module)


class _Recorder:
    """Forward pre- and post-hooks on every module that build the call tree of one forward."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.root: _Call | None = None
        self.stack: list[_Call] = []

    def before(self, path: str):  # type: ignore[no-untyped-def]
        def hook(module: nn.Module, args: tuple[object, ...], kwargs: dict[str, object]) -> None:
            first = args[0] if len(args) == 1 and not kwargs else None
            x = first if isinstance(first, Tensor) else None
            call = _Call(path, module, x, -1 if x is None else x._version)
            if module is self.model:  # a new forward (tracing may retry with a real one)
                self.root, self.stack = call, []
            elif self.stack:
                self.stack[-1].inner.append(call)
            self.stack.append(call)
        return hook

    def after(self, module: nn.Module, args: tuple[object, ...], kwargs: dict[str, object], output: object) -> None:
        call = self.stack.pop()
        if isinstance(output, Tensor):
            call.output, call.output_version = output, output._version

    @contextlib.contextmanager
    def hooked(self) -> Iterator[_Recorder]:
        handles = []
        for path, module in self.model.named_modules():
            handles.append(module.register_forward_pre_hook(self.before(path), with_kwargs=True))
            handles.append(module.register_forward_hook(self.after, with_kwargs=True))
        try:
            yield self
        finally:
            for handle in handles:
                handle.remove()


def _chain_break(call: _Call) -> str | None:
    """Why replaying ``call``'s inner calls one after the other would not be its forward, or None."""
    tensor, version, where = call.input, call.input_version, "its input"
    for inner in call.inner:
        if inner.input is None or inner.output is None:
            return f"{inner.describe()} is called with other than one tensor, or returns no tensor"
        if inner.input is not tensor or inner.input_version != version:
            before = "?" if tensor is None else tuple(tensor.shape)
            return (f"between {where} {before} and {inner.describe()} {tuple(inner.input.shape)} it applies "
                    "an operation that is not a module (a function call, a residual sum, an in-place change)")
        tensor, version, where = inner.output, inner.output_version, inner.describe()
    if call.output is not tensor or call.output_version != version:
        return f"after {where} it applies an operation that is not a module before returning"
    return None


def _steps(call: _Call) -> list[Step]:
    assert call.input is not None and call.output is not None
    reason = _chain_break(call) if call.inner else None
    if call.inner and reason is None:
        return [step for inner in call.inner for step in _steps(inner)]
    return [Step(call.path, call.module, tuple(call.input.shape), tuple(call.output.shape), reason)]


@dataclass(frozen=True)
class _Failure:
    """A forward's error and the innermost module call it happened in."""

    error: Exception
    where: str

    def __str__(self) -> str:
        return f"{self.where}: {self.error}"

    @property
    def meta_unsupported(self) -> bool:
        """True when the error says the encoder cannot run on meta tensors (not that the shape is wrong)."""
        return isinstance(self.error, NotImplementedError) or "meta" in str(self.error).lower()


def _call_tree(encoder: nn.Module, example: Tensor, on_meta: bool) -> _Call | _Failure:
    """The call tree of one forward (meta only, or through :func:`trace`), or where and how it failed."""
    recorder = _Recorder(encoder)
    try:
        with recorder.hooked():
            trace(encoder, example, fallback=not on_meta)
    except Exception as error:
        call = recorder.stack[-1] if recorder.stack else None
        where = "the forward" if call is None or call.input is None else (
            f"{call.describe()} on {tuple(call.input.shape)}")
        return _Failure(error, where)
    assert recorder.root is not None
    return recorder.root


def _root_call(encoder: nn.Module, input_shape: Sequence[int] | Tensor) -> _Call:
    """The call tree for one sample ``(1, *input_shape)``, or for ``input_shape`` itself when only that runs.

    Both are tried on meta tensors; a real forward (through :func:`trace`) only for an encoder that
    cannot run on meta tensors, so a shape the encoder refuses costs no compute.

    Raises:
        RuntimeError: the encoder refuses both shapes (both of its messages are quoted).
        TypeError: the encoder does not return one tensor.
    """
    shape = as_input_shape(input_shape)
    dtype = input_shape.dtype if isinstance(input_shape, Tensor) else trace_dtype(encoder)
    candidates = ((1, *shape), shape)
    failures: list[_Failure] = []
    for on_meta in (True, False):
        for candidate in candidates:
            example = torch.empty(candidate, dtype=dtype, device="meta")
            result = _call_tree(encoder, example, on_meta)
            if isinstance(result, _Call):
                return _returns_a_tensor(encoder, result)
            failures.append(result)
        if not any(failure.meta_unsupported for failure in failures):
            break
    raise RuntimeError(
        f"the encoder {type(encoder).__name__} refuses input_shape {shape}: as one sample {candidates[0]}, "
        f"{failures[0]}; as a batch {candidates[1]}, {failures[1]}. Fix: pass the shape of one sample the "
        "encoder accepts, (C, *spatial)."
    )


def _returns_a_tensor(encoder: nn.Module, root: _Call) -> _Call:
    if root.output is None:
        raise TypeError(f"the encoder {type(encoder).__name__} must return one tensor; "
                        "wrap it in a module whose forward returns the tensor to mirror")
    return root


def encoder_chain(encoder: nn.Module, input_shape: Sequence[int] | Tensor) -> Chain:
    """Trace ``encoder`` on meta tensors and return it as a chain of replayable steps.

    ``input_shape`` is one sample's shape ``(C, *spatial)``, or a full shape with the batch
    (recognised when the encoder refuses the shape with a batch of one prepended), or a tensor.

    Raises:
        TypeError, ValueError: not a module, or a bad shape.
        ShapeError: the encoder's own forward is not a chain of modules (the message says where).
        RuntimeError: the encoder's forward fails on this shape.
    """
    if not isinstance(encoder, nn.Module):
        raise TypeError(f"encoder must be an nn.Module, got {type(encoder).__name__}")
    root = _root_call(encoder, input_shape)
    reason = _chain_break(root) if root.inner else None
    if reason is not None:
        raise ShapeError(
            f"cannot mirror {type(encoder).__name__}: its forward is not a chain of modules; {reason}. "
            "A mirror replays the encoder's modules one after the other. Fix: make each such operation a "
            "module (nn.Flatten for torch.flatten or .view, nn.ReLU for F.relu, nn.MaxPool2d for "
            "F.max_pool2d), or wrap a non-chain part, such as a residual block, in its own nn.Module: "
            "it is then mirrored as one unit."
        )
    steps = tuple(_steps(root))
    return Chain(steps[0].input_shape, steps[-1].output_shape, steps)


def size_functions(step: Step) -> list[SizeFunction]:
    """The step's output size along each spatial dim as a function of its input size there.

    Each is probed on meta tensors. One probe moves every spatial size by the same offset and
    serves all dimensions at once (each output size is taken to depend on its own input size only).
    """
    rank = len(step.input_shape)

    @functools.cache
    def probe(offset: int) -> tuple[int, ...] | None:
        shape = (*step.input_shape[:2], *(n + offset for n in step.input_shape[2:]))
        if min(shape) < 1:
            return None
        try:
            out = trace(step.module, shape, fallback=False).output_shape
        except Exception:
            return None
        return out if out is not None and len(out) == rank else None

    def along(dim: int) -> SizeFunction:
        def size_of(n: int) -> int | None:
            out = probe(n - step.input_shape[dim])
            return None if out is None else out[dim]
        return size_of

    return [along(dim) for dim in range(2, rank)]
