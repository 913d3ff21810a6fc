"""An encoder as the chain of steps on its data path, read from one traced record.

The chain runs from the encoder's input to the output it selects (``output=``), one step after
the other, each taking exactly what the previous one returned. A module whose own calls form
such a chain is read through to them; any other module (a residual block, say) stays one
step, a *unit*, and the reason is kept. Calls off the data path (a pooler computing an output
nobody selected) are not in the chain. Replaying the steps in order is the encoder's forward.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
from torch import Tensor, nn

from ..core.text import format_shape
from ..errors import ShapeError
from ..rules import rule_for, terms_of
from ..tracing import Call, Record, Selector, Value, as_input_shape, select, trace, trace_dtype
from ..tracing.record import suggest
from .replay import replay, why_not_replayable

__all__ = ["Break", "Chain", "Step", "breaks_its_rule", "chain_of", "child_that_returned", "encoder_chain",
           "path_between", "picked", "read_steps", "replays", "trace_encoder", "wrong_rank"]


@dataclass(frozen=True)
class Break:
    """Why a forward's calls are not a chain of replayable steps, and what makes them one."""

    reason: str
    fix: str

    def __str__(self) -> str:
        return self.reason


_MERGE_FIX = ("wrap the part from where the tensor splits to where it merges (a residual block, say) in its own "
              "nn.Module: it is then mirrored as one unit")


@dataclass(frozen=True)
class Step:
    """One call on the encoder's data path: from ``input`` to ``output``.

    ``opaque`` says why a module with inner calls is replayed as a whole (its calls are not a
    chain); it is None for a module without inner calls and for torch calls.
    """

    call: Call
    input: Value
    output: Value
    opaque: str | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.input.shape

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.output.shape

    @property
    def name(self) -> str:
        """A module's dotted path; ``'path:F.relu'`` for a torch call (just ``F.relu`` at the top)."""
        call = self.call
        if call.kind == "module":
            return call.path
        return f"{call.path}:{call.name}" if call.path else call.name

    def describe(self) -> str:
        """``'path' (Type)`` or ``F.relu in 'path' (Type)``, as error messages name a step."""
        return self.call.describe()


@dataclass(frozen=True)
class Chain:
    """The encoder's steps for one traced input shape (batch included), and the record they come from."""

    record: Record
    steps: tuple[Step, ...]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.record.input.shape

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.steps[-1].output_shape


def path_between(record: Record, call: Call, start: Value, end: Value) -> list[tuple[Call, Value, Value]] | Break:
    """The calls made in ``call``'s forward that take ``start`` to ``end`` one after the other,
    as ``(call, input, output)``; or why they do not form such a chain."""
    path: list[tuple[Call, Value, Value]] = []
    value = end
    while value.index != start.index:
        child = child_that_returned(record, call, value)
        if child is None:
            return Break(f"its output {value.shape} does not come from its input {start.shape} through its own calls",
                         "return a tensor computed from the input by the forward's own calls")
        inputs = child.data_inputs
        if len(inputs) != 1:
            shapes = ", ".join(str(v.shape) for v in inputs)
            return Break(f"{child.describe()} takes {len(inputs)} tensors computed from the input ({shapes}): a "
                         "residual sum, a concatenation or another merge", _MERGE_FIX)
        path.append((child, inputs[0], value))
        value = inputs[0]
    return path[::-1]


def child_that_returned(record: Record, call: Call, value: Value) -> Call | None:
    """The call made directly in ``call``'s forward that returned ``value`` (None if none did)."""
    index = value.producer
    while index is not None:
        producer = record.calls[index]
        if producer.parent == call.index:
            return producer if any(v.index == value.index for v in producer.outputs) else None
        index = producer.parent
    return None


def breaks_its_rule(call: Call) -> str | None:
    """Why a module call with a rule does not produce what the rule's formula says (a custom
    forward, such as a conv that pads itself), or None."""
    rule = rule_for(call)
    terms = None if rule is None else terms_of(call, rule)
    out = call.output_shape
    if rule is None or terms is None or out is None or tuple(t.value for t in terms) == out[len(out) - len(terms):]:
        return None
    return f"its forward does not follow torch's {rule.name} size rule"


def read_steps(record: Record, call: Call, start: Value, end: Value) -> list[Step] | Break:
    """The steps inside ``call`` from ``start`` to ``end``, each read through where it is a chain."""
    path = path_between(record, call, start, end)
    if isinstance(path, Break):
        return path
    steps: list[Step] = []
    for child, vin, vout in path:
        expanded = _expand(record, child, vin, vout)
        if isinstance(expanded, Break):
            return expanded
        steps += expanded
    return steps


def _expand(record: Record, call: Call, vin: Value, vout: Value) -> list[Step] | Break:
    """A torch call or a module with a rule is one step; any other module is read through when its
    calls form a chain (a leaf that keeps the shape, such as a norm, stays whole), else it is one
    step, a unit. A step must be replayable on a new input, else its caller is not a chain."""
    module = call.module
    custom = None if module is None else breaks_its_rule(call)
    ruled = module is None or (rule_for(call) is not None and custom is None)
    atomic = ruled or custom is not None or (record.is_leaf(call) and (vin.shape == vout.shape or
                                                                       not record.children(call)))
    inner = None if atomic else read_steps(record, call, vin, vout)
    if isinstance(inner, list) and inner:
        return inner
    reason = why_not_replayable(call, vout)
    if reason is not None:
        return Break(reason, f"wrap {call.describe()} in a module whose forward takes and returns one tensor: it "
                             "is then mirrored as one unit")
    opaque = custom if custom is not None else (str(inner) if isinstance(inner, Break) else None)
    return [Step(call, vin, vout, opaque)]


def _meant(shape: tuple[int, ...], channels: int, n: int) -> tuple[int, ...]:
    """The sample shape ``(C, *spatial)`` a conv of ``n`` spatial dimensions taking ``channels`` was most likely
    meant to get from ``shape``: its channels moved first when they came last (an image as loaded), its
    spatial sizes kept, anything else dropped."""
    if len(shape) > n and shape[-1] == channels != shape[-n - 1]:
        return (channels, *shape[-n - 1:-1])
    return (channels, *shape[-n:])


def _layer_refusing(record: Record) -> nn.Module | None:
    """The conv that failed on the model's input for its channels or rank, if that is what failed."""
    failure = record.failure
    modules = [call for call in (failure.stack if failure else ()) if call.module is not None]
    layer = modules[-1] if modules else None
    module: Any = layer.module if layer is not None else None
    if layer is None or not isinstance(getattr(module, "in_channels", None), int) or \
            record.input not in layer.inputs or not isinstance(getattr(module, "kernel_size", None), tuple):
        return None
    got = record.input.shape
    fits = len(got) == len(module.kernel_size) + 2 and got[1] == module.in_channels
    return None if fits else module  # a right shape that fails for its size is another story


def _first_conv(record: Record) -> Call | None:
    """The first convolution module the traced forward ran."""
    return next((call for call in record.calls if call.module is not None and (rule := rule_for(call)) is not None
                 and rule.name == "convolution"), None)


def _unbatched(record: Record, shape: tuple[int, ...]) -> ShapeError | None:
    """An encoder whose first conv got its input without a batch: torch read ``(1, *input_shape)`` as one sample,
    so ``input_shape`` lacks its channel dimension (``(28, 28)`` for a 1-channel image)."""
    conv = _first_conv(record)
    module: Any = conv.module if conv is not None else None
    got = conv.input_shape if conv is not None else None
    kernel = getattr(module, "kernel_size", None)
    if conv is None or got is None or not isinstance(kernel, tuple) or len(got) != len(kernel) + 1:
        return None
    meant = _meant(shape, module.in_channels, len(kernel))
    return ShapeError(
        f"the encoder's first convolution {conv.describe()} got {format_shape(got)} for input_shape {shape}: torch "
        f"reads that as one sample without a batch, so input_shape has no channel dimension and a mirror would be "
        f"built for the wrong sizes. Fix: input_shape={meant}, the channels it takes first."
    )


def trace_encoder(encoder: nn.Module, input_shape: Sequence[int] | Tensor) -> Record:
    """The record of one sample ``(1, *input_shape)``, or of ``input_shape`` itself when only that runs.

    Raises:
        TypeError, ValueError: not a module, or a bad shape.
        ShapeError: the encoder refuses both shapes (both of its messages are quoted; where its first
            layer takes other channels or another rank, the sample shape it takes), or its first
            convolution reads the sample as unbatched (``input_shape`` lacks its channels).
    """
    if not isinstance(encoder, nn.Module):
        raise TypeError(f"encoder must be an nn.Module, got {type(encoder).__name__}")
    shape = as_input_shape(input_shape)
    dtype = input_shape.dtype if isinstance(input_shape, Tensor) else trace_dtype(encoder)
    candidates = ((1, *shape), shape)
    records = []
    for candidate in candidates:
        record = trace(encoder, torch.empty(candidate, dtype=dtype, device="meta"))
        if record.failure is None:
            unbatched = _unbatched(record, shape)
            if unbatched is not None:
                raise unbatched
            return record
        records.append(record)
    layer: Any = _layer_refusing(records[0])
    kernel = getattr(layer, "kernel_size", ())
    fix = (f"input_shape={_meant(shape, layer.in_channels, len(kernel))}, the sample shape its "
           "first layer takes" if layer is not None and kernel else
           f"pass the shape of one sample the encoder accepts, (C, *spatial); explain(encoder, {candidates[0]}) "
           "shows every size up to the failure")
    raise ShapeError(
        f"the encoder {type(encoder).__name__} refuses input_shape {shape}: as one sample {candidates[0]}, "
        f"{records[0].failure}; as a batch {candidates[1]}, {records[1].failure}. Fix: {fix}."
    )


T = TypeVar("T")


def picked(record: Record, encoder: nn.Module, output: Selector, pick: Callable[[Record, Selector], T],
           wanted: str) -> T:
    """``pick(record, output)``, its errors told in the encoder's terms (``wanted``: "one tensor").

    Raises:
        TypeError: the encoder returns nothing ``output`` can pick.
        ValueError: ``output`` names nothing in what the encoder returns.
    """
    try:
        return pick(record, output)
    except TypeError as error:
        raise TypeError(f"the encoder {type(encoder).__name__} must return {wanted}, or output= must pick "
                        f"{'one' if wanted == 'one tensor' else 'them'}: {error}") from None
    except (KeyError, IndexError, AttributeError) as error:
        returned = type(encoder).__name__
        raise ValueError(f"output={output!r} picks nothing from what the encoder {returned} returned: {error}. "
                         f"Fix: pick {wanted}, e.g. {suggest(record.raw_output)}.") from None


def encoder_chain(encoder: nn.Module, input_shape: Sequence[int] | Tensor, output: Selector = None) -> Chain:
    """Trace ``encoder`` on meta tensors and return its data path to the selected output as steps.

    ``input_shape`` is one sample's shape ``(C, *spatial)``, or a full shape with the batch
    (recognised when the encoder refuses the shape with a batch of one prepended), or a tensor.

    Raises:
        TypeError: not a module, or the encoder returns no tensor that ``output`` picks.
        ValueError: a bad shape, or ``output`` names nothing the encoder returns.
        ShapeError: the encoder's data path is not a chain (the message says where), or its forward
            fails on this shape.
    """
    return chain_of(trace_encoder(encoder, input_shape), encoder, output)


def chain_of(record: Record, encoder: nn.Module, output: Selector = None) -> Chain:
    """The data path of a traced encoder to the output that ``output`` selects, as steps.

    Raises:
        TypeError, ValueError, ShapeError: as :func:`encoder_chain`.
    """
    latent = picked(record, encoder, output, select, "one tensor")
    if not latent.shape or (output is not None and latent.shape[0] != record.input.shape[0]):
        fix = ("make its forward return a tensor with the batch dimension first" if output is None else
               f"pick a per-sample tensor with output=, e.g. {suggest(record.raw_output)}")
        raise ShapeError(
            f"{'the encoder' if output is None else f'output={output!r}'} gives a latent of shape "
            f"{format_shape(latent.shape)} for an input of {format_shape(record.input.shape)}: a mirror needs the "
            f"batch dimension first (a tensor per sample). Fix: {fix}."
        )
    root = record.root
    assert root is not None
    if root.module is not None and record.is_leaf(root):
        return Chain(record, (Step(root, record.input, latent),))
    steps = read_steps(record, root, record.input, latent)
    if isinstance(steps, list) and not steps:
        steps = Break("it returns its input unchanged", "give it at least one layer")
    if isinstance(steps, Break):
        raise ShapeError(
            f"cannot mirror {type(encoder).__name__}: its forward is not a chain of steps; {steps.reason}. A mirror "
            f"replays the encoder's steps one after the other. Fix: {steps.fix}."
        )
    return Chain(record, tuple(steps))


def replays(chain: Chain, encoder: nn.Module) -> list[Callable[[Tensor], Tensor]]:
    """The encoder's steps as callables that replay them on new inputs (its own modules where it can)."""
    calls = chain.record.calls
    return [replay(step.call, step.input, step.output, encoder,
                   calls[step.call.parent].target if step.call.parent is not None else encoder)
            for step in chain.steps]


def check_activation(final_activation: object) -> None:
    """``final_activation`` is a module or None; a class or a function is told the module to pass.

    Raises:
        TypeError: anything else, with the instance to pass (``nn.Sigmoid()`` for ``nn.Sigmoid`` or
            ``torch.sigmoid``) where one is known.
    """
    if final_activation is None or isinstance(final_activation, nn.Module):
        return
    got = type(final_activation).__name__
    if isinstance(final_activation, type) and issubclass(final_activation, nn.Module):
        prefix = "nn." if getattr(nn, final_activation.__name__, None) is final_activation else ""
        fix = f" Fix: pass an instance, final_activation={prefix}{final_activation.__name__}()."
        got = f"the class {final_activation.__name__}"
    else:
        name = getattr(final_activation, "__name__", "")
        module = {attribute.lower(): attribute for attribute in dir(nn)}.get(name.lower())
        fix = f" Fix: pass its module, final_activation=nn.{module}()." if callable(final_activation) and module else ""
    raise TypeError(f"final_activation must be an nn.Module or None, got {got}.{fix}")


def wrong_rank(module: nn.Module, x: Tensor, traced: tuple[int, ...]) -> ShapeError:
    """The error for an input with another number of dimensions than the traced one (a missing batch)."""
    return ShapeError(
        f"{type(module).__name__} was built for inputs of shape (N, {', '.join(map(str, traced[1:]))}) (any size "
        f"the encoder accepts), but got {tuple(x.shape)}: {x.dim()} dimensions instead of {len(traced)}. Fix: pass "
        f"a batch, e.g. x.unsqueeze(0) for one sample."
    )
