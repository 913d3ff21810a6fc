"""What one traced forward did: every module call and torch call, with shapes and data flow.

A :class:`Record` is plain data. Each :class:`Call` is a module call or a torch function / Tensor
method call; each :class:`Value` is one tensor as the forward saw it (an in-place change makes a
new value of the same tensor), so data flow is explicit: a call's ``inputs`` are the values it
read and its ``outputs`` the values it returned. The mirror, the U-Net, ``explain`` and ``fix``
all read this record; none of them walks the model on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from torch import Tensor, nn

from ..core.text import format_shape

__all__ = ["Call", "Failure", "Record", "Selector", "Value", "pick", "select", "select_all"]


@dataclass(frozen=True, eq=False)
class Value:
    """One tensor as the forward saw it.

    Attributes:
        index: its position in :attr:`Record.values`.
        shape: its shape.
        producer: the index of the call that returned it; None for the model's input and for
            tensors from outside the forward's data (parameters, buffers, constants).
        data: True when it depends on the model's input.
        name: the dotted name of the parameter or buffer it is, if it is one.
        floating: True when its dtype is a floating-point (or complex) one.
    """

    index: int
    shape: tuple[int, ...]
    producer: int | None
    data: bool
    name: str | None = None
    floating: bool = True


@dataclass(frozen=True, eq=False)
class Call:
    """One module call or torch call of the traced forward.

    Attributes:
        index: its position in :attr:`Record.calls` (calls are numbered in the order they start).
        kind: ``'module'`` or ``'function'`` (a torch function or Tensor method).
        path: the module's dotted path (``''`` for the model); for a function, the path of the
            module whose forward called it.
        owner: the type name of that module.
        name: the module's type name, or the function as users write it (``F.relu``, ``view``).
        target: the module object, or the function.
        parent: the index of the module call it ran in; None for the model's own call.
        args, kwargs: the arguments, with every tensor replaced by its :class:`Value`.
        inputs: the values among the arguments, in order.
        outputs: the values it returned (for a function, also the inputs it changed in place).
        result: the return value with each tensor replaced by its value (None while running).
        finished: False for the calls still running when the forward failed.
    """

    index: int
    kind: Literal["module", "function"]
    path: str
    owner: str
    name: str
    target: Any
    parent: int | None
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    inputs: tuple[Value, ...]
    outputs: tuple[Value, ...]
    result: Any = None
    finished: bool = True

    @property
    def module(self) -> nn.Module | None:
        """The module of a module call, else None."""
        return self.target if self.kind == "module" else None

    @property
    def data_inputs(self) -> tuple[Value, ...]:
        """The distinct input values that depend on the model's input, in order."""
        seen: dict[int, Value] = {}
        for value in self.inputs:
            if value.data:
                seen.setdefault(value.index, value)
        return tuple(seen.values())

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        """The shape of the first data input (of the first input for a call on constants only)."""
        first = (self.data_inputs or self.inputs or (None,))[0]
        return None if first is None else first.shape

    @property
    def output_shape(self) -> tuple[int, ...] | None:
        """The shape of the first output, None when it returned no tensor."""
        return self.outputs[0].shape if self.outputs else None

    def describe(self) -> str:
        """``'layer1.0' (BasicBlock)`` for a module, ``F.relu in 'layer1.0' (BasicBlock)`` for a function."""
        where = f"'{self.path or '<model>'}' ({self.owner})"
        return where if self.kind == "module" else f"{self.name} in {where}"


@dataclass(frozen=True)
class Failure:
    """Where and how a traced forward failed.

    Attributes:
        error: the exception the model raised.
        stack: the calls still running when it was raised, outermost first.
        mixed_devices: the failing torch call mixed meta tensors with real ones that the forward
            made itself (``torch.ones(...)`` on the CPU): a limit of meta tracing, not of the shapes.
    """

    error: BaseException
    stack: tuple[Call, ...]
    mixed_devices: bool = False

    def __str__(self) -> str:
        where = self.stack[-1].describe() if self.stack else "the forward"
        shapes = ", ".join(format_shape(v.shape) for v in (self.stack[-1].inputs if self.stack else ()))
        return f"{where} on {shapes or 'no tensor'}: {type(self.error).__name__}: {self.error}"


@dataclass(frozen=True)
class Record:
    """Every call of one traced forward, and the values between them.

    Attributes:
        calls: module and function calls in the order they started; ``calls[0]`` is the model.
        values: every tensor value seen; ``values[0]`` is the model's input.
        output: the model's return value with each tensor replaced by its :class:`Value`
            (None when the forward failed).
        on_meta: False when the model could not run on meta tensors and a real forward was used.
        failure: None when the forward ran, else where and how it failed.
    """

    calls: tuple[Call, ...]
    values: tuple[Value, ...]
    output: Any
    on_meta: bool
    failure: Failure | None = None
    raw_output: Any = field(default=None, repr=False)
    """The model's own return value (meta tensors when ``on_meta``), for :func:`select`."""
    output_values: Mapping[int, Value] = field(default_factory=dict, repr=False)
    """The values of the tensors in ``raw_output``, by ``id``."""
    _children: dict[int | None, tuple[Call, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        children: dict[int | None, list[Call]] = {}
        for call in self.calls:
            children.setdefault(call.parent, []).append(call)
        object.__setattr__(self, "_children", {k: tuple(v) for k, v in children.items()})

    @property
    def input(self) -> Value:
        """The model's (first) input value."""
        return self.values[0]

    @property
    def inputs(self) -> tuple[Value, ...]:
        """The model's input values, one per positional input of its forward."""
        return tuple(v for v in self.values if v.producer is None and v.data)

    @property
    def root(self) -> Call | None:
        """The model's own call (None when the forward failed before it started)."""
        return self.calls[0] if self.calls else None

    @property
    def output_shape(self) -> tuple[int, ...] | None:
        """The shape of the model's output when it is one tensor, else None."""
        return self.output.shape if isinstance(self.output, Value) else None

    def children(self, call: Call) -> tuple[Call, ...]:
        """The calls made directly in ``call``'s forward, in order."""
        return self._children.get(call.index, ())

    def descendants(self, call: Call) -> Iterator[Call]:
        """Every call made inside ``call``'s forward, at any depth, in order."""
        for child in self.children(call):
            yield child
            yield from self.descendants(child)

    def is_leaf(self, call: Call) -> bool:
        """A module without submodules: ``explain`` shows it as one row."""
        module = call.module
        return module is not None and next(module.children(), None) is None

    def check(self) -> Record:
        """Return the record, or raise the model's own error when its forward failed."""
        if self.failure is not None:
            raise self.failure.error
        return self


Selector = int | str | Callable[[Any], Any] | None


def select(record: Record, output: Selector) -> Value:
    """The value of the model output that ``output`` picks: the whole output when it is a tensor
    (``None``), an index of a list, a tuple or an HF ``ModelOutput`` (its fields that are not None, in
    order, as ``out[0]`` reads them), a key of a dict, an attribute (``ModelOutput``), or a callable
    applied to the return value.

    Raises:
        TypeError: the pick is not a tensor the model returned, or ``output`` is of another type.
        KeyError, IndexError, AttributeError: ``output`` names nothing in the return value.
    """
    picked = pick(record.raw_output, output)
    if not isinstance(picked, Tensor) or id(picked) not in record.output_values:
        raise TypeError(_not_a_tensor(record.raw_output, output, picked))
    return record.output_values[id(picked)]


def select_all(record: Record, output: Selector) -> list[tuple[int | str, Value]] | None:
    """The values of the tensors in the list, tuple or mapping that ``output`` picks, with their
    indices or keys; None when it picks one tensor.

    Raises:
        TypeError: the pick holds no tensor the model returned.
        KeyError, IndexError, AttributeError: ``output`` names nothing in the return value.
    """
    picked = pick(record.raw_output, output)
    if isinstance(picked, Tensor):
        return None
    items = list(picked.items()) if isinstance(picked, Mapping) else (
        list(enumerate(picked)) if isinstance(picked, (list, tuple)) else [])
    found = [(key, record.output_values[id(v)]) for key, v in items
             if isinstance(v, Tensor) and id(v) in record.output_values]
    if not found:
        raise TypeError(_not_a_tensor(record.raw_output, output, picked))
    return found


def pick(returned: Any, output: Selector) -> Any:
    """What ``output`` picks from a return value (itself for None): see :func:`select`.

    Raises:
        TypeError: ``output`` is of another type, or an int for a return value it cannot index.
        KeyError, IndexError, AttributeError: ``output`` names nothing in the return value.
    """
    if output is None:
        return returned
    if callable(output) and not isinstance(output, (int, str)):
        return output(returned)
    if isinstance(output, bool) or not isinstance(output, (int, str)):
        raise TypeError(f"output must be an int, a str, a callable or None, got {output!r}")
    if isinstance(returned, Mapping) and output in returned:
        return returned[output]
    if isinstance(output, int):
        fields = _fields(returned)
        if fields is None:
            raise TypeError(f"output={output} indexes a list, a tuple or an HF ModelOutput, but the model returned "
                            f"{describe(returned)}. Fix: pick it with {_ways_to_pick(returned)}, e.g. "
                            f"{suggest(returned)}.")
        return fields[output]
    if hasattr(returned, output):
        return getattr(returned, output)
    raise KeyError(f"output={output!r} is neither a key nor an attribute of what the model returned: "
                   f"{describe(returned)}")


def _not_a_tensor(returned: Any, output: Selector, picked: Any) -> str:
    what = "the model returned" if output is None else f"output={output!r} picks"
    if isinstance(picked, Tensor):
        return (f"{what} a tensor of shape {format_shape(tuple(picked.shape))} that the forward did not return "
                f"(one computed from its output afterwards). Fix: pick a tensor the forward returns, e.g. "
                f"{suggest(returned)}.")
    if picked is None and isinstance(output, str):
        return (f"{what} None: the model returned no {output!r} this time (a model returns some outputs only when "
                f"asked: for an HF model, set output_hidden_states=True in its config for 'hidden_states'). Fix: "
                f"ask the model for it, or pick another output, e.g. {suggest(returned)}.")
    fix = (f"pick one tensor with output= ({_ways_to_pick(returned)}), e.g. "
           f"{suggest(returned)}" if output is None else f"pick a tensor that the model's forward returns, e.g. "
           f"{suggest(returned)}")
    return f"{what} {describe(picked)}, not one tensor. Fix: {fix}."


def _fields(returned: Any) -> Any:
    """What an int ``output=`` indexes: a list or tuple itself, an HF ``ModelOutput``'s fields that are not
    None, in order (``to_tuple()``, as ``out[0]`` reads them); None for anything else."""
    if isinstance(returned, (list, tuple)):
        return returned
    to_tuple = getattr(returned, "to_tuple", None)
    return to_tuple() if isinstance(returned, Mapping) and callable(to_tuple) else None


def _ways_to_pick(returned: Any) -> str:
    """The kinds of ``output=`` that can pick from ``returned``: an int index only where it indexes."""
    ways = ["an int index"] if _fields(returned) is not None else []
    ways += ["a key or attribute name"] if not isinstance(returned, (list, tuple)) else []
    return ", ".join(ways) + (", or a callable" if ways else "a callable")


def describe(returned: Any) -> str:
    """A short description of a return value: ``a tuple of 2 (Tensor 1×8×4×4, list of 3)``."""
    if isinstance(returned, Tensor):
        return f"a tensor of shape {format_shape(tuple(returned.shape))}"
    if isinstance(returned, Mapping):
        keys = ", ".join(f"{k!r}" for k in list(returned)[:6])
        return f"a {type(returned).__name__} with keys {keys}"
    if isinstance(returned, (list, tuple)):
        return f"a {type(returned).__name__} of {len(returned)}"
    return f"a {type(returned).__name__}"


def suggest(returned: Any) -> str:
    """An ``output=`` value that picks the first tensor in ``returned`` (a key, an index, or a callable)."""
    path = _first_tensor(returned)
    if path is None:
        return "output=lambda out: <the tensor in out>"
    if len(path) == 1:
        return f"output={path[0]!r}"
    return "output=lambda out: out" + "".join(f"[{step!r}]" for step in path)


def _first_tensor(returned: Any) -> list[Any] | None:
    """The keys and indices that lead to the first tensor in a nest of mappings, lists and tuples."""
    items = list(returned.items()) if isinstance(returned, Mapping) else (
        list(enumerate(returned)) if isinstance(returned, (list, tuple)) else [])
    for key, value in items:
        if isinstance(value, Tensor):
            return [key]
        deeper = _first_tensor(value)
        if deeper is not None:
            return [key, *deeper]
    return None
