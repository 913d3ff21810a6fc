"""The recorder: run a model's forward once, on meta tensors, and record every call it makes.

Forward hooks on the model's own modules record module calls; a ``TorchFunctionMode`` records
every torch function and Tensor method applied to data (tensors that depend on the input) in
between. Meta tensors carry shapes and dtypes but no data, so tracing a 3-d network on a 512³
volume costs the same as on 8³: no compute and no activation memory. The model's parameters,
buffers and training flags are left as they were.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Union

import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn.parameter import is_lazy
from torch.overrides import TorchFunctionMode

from ..core.sizes import as_int
from ..errors import warn
from .names import function_name
from .record import Call, Failure, Record, Value

__all__ = ["as_input_shape", "trace", "trace_dtype"]

_NEEDS_DATA = frozenset({"item", "tolist", "numpy", "__bool__", "__int__", "__float__", "__index__", "__complex__"})
"""Tensor methods that read values: on meta tensors they fail however right the shapes are."""


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


InputShapes = Union[Sequence[int], Tensor, Sequence[Union[Sequence[int], Tensor]]]
"""What a model is traced on: one input's shape (batch included) or example tensor, or, for a forward
with several positional inputs (``forward(x, t)``), a sequence of them: ``((8, 3, 32, 32), (8,))``."""


def _several(input_shape: object) -> bool:
    """A sequence holding a shape or a tensor (several inputs), rather than one shape (a sequence of ints)."""
    return (isinstance(input_shape, Sequence) and not isinstance(input_shape, (str, bytes))
            and any(isinstance(item, Tensor) or (isinstance(item, Sequence) and not isinstance(item, (str, bytes)))
                    for item in input_shape))


def as_examples(input_shape: InputShapes, dtype: torch.dtype, name: str = "input_shape") -> tuple[Tensor, ...]:
    """Meta tensors standing for the model's inputs, in order: each shape gets ``dtype``, each example
    tensor keeps its own (integer labels stay integers).

    Raises:
        TypeError: not a shape, a tensor, or a sequence of them.
        ValueError: a shape is empty or has an entry below 1.
    """
    items: Sequence[Any] = input_shape if _several(input_shape) else (input_shape,)  # type: ignore[assignment]
    return tuple(torch.empty(as_input_shape(item, name if len(items) == 1 else f"{name}[{n}]"), device="meta",
                             dtype=item.dtype if isinstance(item, Tensor) else dtype) for n, item in enumerate(items))


def shapes_of(inputs: Sequence[Tensor]) -> tuple[int, ...] | tuple[tuple[int, ...], ...]:
    """The input shape as a user gives it: one shape for one input, a tuple of shapes for several."""
    shapes = tuple(tuple(x.shape) for x in inputs)
    return shapes[0] if len(shapes) == 1 else shapes


def trace_dtype(model: nn.Module) -> torch.dtype:
    """The dtype of a traced input: the model's first floating-point parameter's, else torch's default."""
    floating = (p.dtype for p in model.parameters() if p.is_floating_point())
    return next(floating, torch.get_default_dtype())


def tensors_in(obj: Any) -> list[Tensor]:
    """The tensors in a nest of tuples, lists and mappings (a ``ModelOutput`` is a mapping), in order."""
    if isinstance(obj, Tensor):
        return [obj]
    if isinstance(obj, Mapping):
        return [t for item in obj.values() for t in tensors_in(item)]
    if isinstance(obj, (tuple, list)):
        return [t for item in obj for t in tensors_in(item)]
    return []


def _replace_tensors(obj: Any, substitute: Callable[[Tensor], Any]) -> Any:
    if isinstance(obj, Tensor):
        return substitute(obj)
    if isinstance(obj, Mapping):
        return {key: _replace_tensors(item, substitute) for key, item in obj.items()}
    if isinstance(obj, (tuple, list)):
        items = [_replace_tensors(item, substitute) for item in obj]
        return items if isinstance(obj, list) else tuple(items)
    return obj


def _version(tensor: Tensor) -> int:
    try:
        return tensor._version
    except RuntimeError:  # inference tensors keep no version counter
        return -1


_REAL_RETRY_ELEMENTS = 1 << 28
"""Largest total size of a failed meta call's tensors that is retried on real (uninitialised) CPU tensors."""


def _with_real_message(error: Exception, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Exception:
    """The error torch raises for the same call on real tensors: its messages name shapes and channels,
    where a meta kernel's can be terse ("Invalid channel dimensions"). Shape checks fail before any
    compute, and ``torch.empty`` memory is never touched, so the retry costs no compute."""
    tensors = tensors_in((args, kwargs))
    if not any(t.is_meta for t in tensors) or sum(t.numel() for t in tensors) > _REAL_RETRY_ELEMENTS:
        return error

    def real(t: Tensor) -> Tensor:
        return torch.empty(t.shape, dtype=t.dtype) if t.is_meta else t

    try:
        func(*_replace_tensors(args, real), **_replace_tensors(kwargs, real))
    except Exception as real_error:
        return real_error if type(real_error) is type(error) else error
    return error


@dataclass
class _Open:
    """A module call that has started and not yet returned."""

    index: int
    path: str
    module: nn.Module
    parent: int | None
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    inputs: tuple[Value, ...]
    first_value: int  # values from here on were made inside this call

    def call(self, outputs: tuple[Value, ...], result: Any = None, finished: bool = True) -> Call:
        name = type(self.module).__name__
        return Call(self.index, "module", self.path, name, name, self.module, self.parent, self.args, self.kwargs,
                    self.inputs, outputs, result, finished)


class _Recorder(TorchFunctionMode):
    """Module hooks and a torch-function mode that write one :class:`Record`."""

    def __init__(self, model: nn.Module, constants: Mapping[int, str]) -> None:
        super().__init__()
        self.paths = {id(module): path for path, module in model.named_modules()}
        self.constants = constants
        self.calls: list[Call | None] = []
        self.values: list[Value] = []
        self.latest: dict[int, tuple[Tensor, Value]] = {}
        self.stack: list[_Open] = []
        self.pending: Call | None = None
        self.mixed_devices = False
        self.quiet = False

    # --- values -------------------------------------------------------------------------------

    def value_of(self, tensor: Tensor) -> Value:
        """The tensor's latest value; a new constant value for a tensor not seen before."""
        entry = self.latest.get(id(tensor))
        if entry is not None and entry[0] is tensor:
            return entry[1]
        return self.new_value(tensor, None, False, self.constants.get(id(tensor)))

    def new_value(self, tensor: Tensor, producer: int | None, data: bool, name: str | None = None) -> Value:
        value = Value(len(self.values), tuple(tensor.shape), producer, data, name,
                      tensor.is_floating_point() or tensor.is_complex())
        self.values.append(value)
        self.latest[id(tensor)] = (tensor, value)
        return value

    def placeholders(self, obj: Any) -> Any:
        return _replace_tensors(obj, self.value_of)

    # --- module calls -------------------------------------------------------------------------

    @contextlib.contextmanager
    def quietly(self) -> Iterator[None]:
        """The recorder's own tensor reads (shapes, versions) are not the model's calls."""
        self.quiet = True
        try:
            yield
        finally:
            self.quiet = False

    def before(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        with self.quietly():
            inputs = tuple(self.value_of(t) for t in tensors_in((args, kwargs)))
            parent = self.stack[-1].index if self.stack else None
            opened = _Open(len(self.calls), self.paths.get(id(module), "?"), module, parent, self.placeholders(args),
                           self.placeholders(kwargs), inputs, len(self.values))
            self.calls.append(None)
            self.stack.append(opened)

    def after(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
        with self.quietly():
            opened = self.stack.pop()
            data = any(v.data for v in opened.inputs)
            outputs: dict[int, Value] = {}
            for tensor in tensors_in(output):
                entry = self.latest.get(id(tensor))
                made_inside = entry is not None and entry[0] is tensor and entry[1].index >= opened.first_value
                value = entry[1] if made_inside and entry is not None else self.new_value(tensor, opened.index, data)
                outputs.setdefault(value.index, value)
            self.calls[opened.index] = opened.call(tuple(outputs.values()), self.placeholders(output))

    # --- torch calls --------------------------------------------------------------------------

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if self.quiet or not self.stack:
            return func(*args, **kwargs)
        tensors = tensors_in((args, kwargs))
        if not tensors:
            return func(*args, **kwargs)
        inputs = tuple(self.value_of(t) for t in tensors)
        versions = [_version(t) for t in tensors]
        parent = self.stack[-1]
        call = Call(len(self.calls), "function", parent.path, type(parent.module).__name__, function_name(func), func,
                    parent.index, self.placeholders(args), self.placeholders(kwargs), inputs, (), finished=False)
        self.pending = call
        try:
            result = func(*args, **kwargs)
        except Exception as error:
            self.mixed_devices = len({t.is_meta for t in tensors}) > 1
            raise _with_real_message(error, func, args, kwargs) from None
        self.pending = None
        if not any(v.data for v in inputs):
            return result  # a computation on constants (parameters, buffers): not the model's data
        returned = tensors_in(result)
        changed = [t for t, v in zip(tensors, versions) if _version(t) != v and not any(t is r for r in returned)]
        if not returned and not changed:
            return result  # a size, a dtype, a bool: nothing on the data path
        outputs: dict[int, Value] = {}
        for tensor in [*returned, *changed]:
            if id(tensor) not in outputs:
                outputs[id(tensor)] = self.new_value(tensor, call.index, True)
        self.calls.append(replace(call, outputs=tuple(outputs.values()), result=self.placeholders(result),
                                  finished=True))
        return result

    # --- the record ---------------------------------------------------------------------------

    def record(self, output: Any, on_meta: bool) -> Record:
        calls = tuple(c for c in self.calls if c is not None)
        return Record(calls, tuple(self.values), self.placeholders(output), on_meta, None, output,
                      {id(t): self.value_of(t) for t in tensors_in(output)})

    def failed(self, error: BaseException, on_meta: bool) -> Record:
        stack = tuple(opened.call((), finished=False) for opened in self.stack)
        if self.pending is not None:
            stack += (self.pending,)
        done = {c.index: c for c in self.calls if c is not None}
        done.update({c.index: c for c in stack if c.kind == "module"})
        failure = Failure(error, stack, self.mixed_devices)
        return Record(tuple(done[i] for i in sorted(done)), tuple(self.values), None, on_meta, failure)


@contextlib.contextmanager
def _mode(model: nn.Module, training: bool) -> Iterator[None]:
    """Evaluation mode for the trace (batch statistics need no data), or training mode, restored afterwards."""
    modes = [(m, m.training) for m in model.modules()]
    model.train(training)
    try:
        yield
    finally:
        for module, was in modes:
            module.training = was


def _record(model: nn.Module, inputs: tuple[Tensor, ...], on_meta: bool, training: bool = False) -> Record:
    state = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    if on_meta:
        state = {name: torch.empty_like(t, device="meta") for name, t in state.items()}
    recorder = _Recorder(model, {id(t): name for name, t in state.items()})
    for x in inputs:
        recorder.new_value(x, None, True)
    handles = []
    for module in model.modules():
        handles.append(module.register_forward_pre_hook(recorder.before, with_kwargs=True))
        handles.append(module.register_forward_hook(recorder.after, with_kwargs=True))
    try:
        with _mode(model, training), torch.no_grad(), recorder:
            output = functional_call(model, state, inputs) if on_meta else model(*inputs)
    except Exception as error:
        return recorder.failed(error, on_meta)
    finally:
        for handle in handles:
            handle.remove()
    return recorder.record(output, on_meta)


def needs_data(failure: Failure) -> bool:
    """Whether a meta-tensor forward failed for want of data or of real tensors, not of right shapes:
    a value read (``.item()``), an op without a meta kernel, or a tensor the forward made on a device."""
    last = failure.stack[-1] if failure.stack else None
    read = last is not None and last.kind == "function" and last.name in _NEEDS_DATA
    return isinstance(failure.error, NotImplementedError) or read or failure.mixed_devices


def _check_initialised(model: nn.Module, examples: Sequence[Tensor]) -> None:
    """Lazy modules (``nn.LazyLinear``) learn their shapes from a first real forward, which a trace never runs.

    Raises:
        ValueError: a lazy module not yet initialised, named, with the forward that initialises it.
    """
    lazy = [path for path, module in model.named_modules()
            if any(is_lazy(t) for t in [*module.parameters(recurse=False), *module.buffers(recurse=False)])]
    if lazy:
        names = ", ".join(f"'{path}' {type(model.get_submodule(path)).__name__}" if path else type(model).__name__
                          for path in lazy)
        zeros = ", ".join(f"torch.zeros{tuple(x.shape)}" for x in examples)
        raise ValueError(f"{type(model).__name__} has lazy modules that are not initialised yet ({names}): their "
                         "shapes come from a first real forward, and autoshape traces without one. Fix: run the model "
                         f"once first, model({zeros}) (it sets the lazy layers up even where it fails later: "
                         "catch that error), then trace it again.")


def trace(model: nn.Module, input_shape: InputShapes, *, fallback: bool = True, training: bool = False) -> Record:
    """Record ``model``'s forward on an input of ``input_shape`` (batch included), without real compute.

    The forward runs on meta tensors through ``torch.func.functional_call`` in eval mode. A model
    that reads values (``.item()``, ``if x.sum() > 0``), uses an op without a meta kernel, or makes
    tensors of its own on a device (``x + torch.ones(3, 1, 1)``) is traced with a real forward on
    zeros instead, with a warning; ``fallback=False`` keeps the
    meta failure instead (for probing many shapes cheaply). A forward that fails is not an
    exception here: the record holds every call up to the failure and :attr:`Record.failure`
    (:meth:`Record.check` re-raises the model's own error). ``training=True`` traces the forward in
    training mode (on meta tensors, running statistics are left as they were).

    Shape:
        ``input_shape`` is the full input shape, e.g. ``(N, C, H, W)``, or an example tensor (its
        dtype is kept: integer class labels stay integers); for a forward with several positional
        inputs, a sequence of them, e.g. ``((8, 100), torch.zeros(8, dtype=torch.long))``. Every
        recorded shape is what torch's own forward produces.

    Examples:
        >>> model = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2), nn.ReLU())
        >>> record = trace(model, (1, 1, 29, 29))
        >>> [(c.path, c.name) for c in record.calls]
        [('', 'Sequential'), ('0', 'Conv2d'), ('0', 'F.conv2d'), ('1', 'ReLU'), ('1', 'F.relu')]
        >>> record.output_shape
        (1, 4, 14, 14)

    Raises:
        TypeError, ValueError: ``model`` is not a module, or ``input_shape`` is not a shape, a tensor
            or a sequence of them.
        ValueError: the model has a lazy module (``nn.LazyLinear``) not initialised yet.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected an nn.Module, got {type(model).__name__}")
    examples = as_examples(input_shape, trace_dtype(model))
    _check_initialised(model, examples)
    record = _record(model, examples, on_meta=True, training=training)
    if record.failure is None or not fallback or not needs_data(record.failure):
        return record
    device = next((t.device for t in model.parameters()), torch.device("cpu"))
    zeros = tuple(torch.zeros(x.shape, dtype=x.dtype, device=device) for x in examples)
    real = _record(model, zeros, on_meta=False, training=training)
    if real.failure is None:
        warn(f"{type(model).__name__} cannot run on meta tensors ({record.failure}); traced it with a real forward")
    return real
