"""Plans for stacks of convolutions: the size after every layer, and the parameters of each layer.

Pure integer planning, no modules: the per-dimension search lives in :mod:`autoshape.core.plan_search`,
whose docstring gives the cost that ranks plans; :mod:`autoshape.core.plan_errors` explains refusals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, overload

from .plan_errors import DimRequest, unreachable
from .plan_search import describe_layers, plan_dim
from .sizes import IntOrTuple, as_int, as_tuple, dim_labels, spatial_ndim
from .solver import ConvParams
from .text import aligned_table, format_shape

__all__ = ["Plan", "PlanStep", "plan_downsampling", "plan_upsampling"]


@dataclass(frozen=True)
class PlanStep:
    """One layer of a :class:`Plan`: its spatial input and output sizes and its solved parameters.

    Sizes are always tuples, one int per spatial dimension, even when the plan was asked for
    with ints.

    Args:
        input_size: the spatial size the layer receives.
        output_size: the spatial size it produces.
        params: the layer's kernel_size, stride, padding, dilation and output_padding.

    Shape:
        ``output_size == params.output_size(input_size)``, the torch formula of the layer.

    Examples:
        >>> step = plan_upsampling(12, 24, 1)[0]
        >>> step.input_size, step.output_size, step.params.kernel_size
        ((12,), (24,), (4,))

    Raises:
        Nothing: a plain record; :class:`Plan` checks its steps.
    """

    input_size: tuple[int, ...]
    output_size: tuple[int, ...]
    params: ConvParams


@dataclass(frozen=True)
class Plan(Sequence[PlanStep]):
    """A checked chain of convolution layers: an immutable sequence of :class:`PlanStep`.

    Iterate over it or index it for the steps; ``str()`` gives an aligned table and
    :meth:`to_dict` a JSON-ready dict.

    Args:
        steps: the layers in order; each one's input size is the previous one's output size.

    Shape:
        ``steps[0].input_size → steps[-1].output_size``, each step by its layer's torch formula.

    Examples:
        >>> plan = plan_upsampling(1, 28, 3)
        >>> len(plan), plan.input_size, plan.output_size
        (3, (1,), (28,))
        >>> print(plan)
        3 transposed convolutions: 1 → 28
        layer  input  output  kernel  stride  padding  output_padding
        1      1      7       7       1       0        0
        2      7      14      4       2       1        0
        3      14     28      4       2       1        0

    Raises:
        ValueError: no steps, a step that is not a PlanStep, steps that do not chain, a step
            whose parameters do not give its output size, or a mix of plain and transposed layers.
    """

    steps: tuple[PlanStep, ...]

    def __post_init__(self) -> None:
        steps = tuple(self.steps)
        object.__setattr__(self, "steps", steps)
        if not steps or not all(isinstance(step, PlanStep) for step in steps):
            raise ValueError(f"a Plan needs one or more PlanStep, got {steps!r}")
        for n, step in enumerate(steps, 1):
            if step.params.output_size(step.input_size) != step.output_size:
                raise ValueError(f"step {n}: {step.params} takes {step.input_size} to "
                                 f"{step.params.output_size(step.input_size)}, not {step.output_size}")
            if n > 1 and step.input_size != steps[n - 2].output_size:
                raise ValueError(f"step {n} takes {step.input_size} but step {n - 1} gives {steps[n - 2].output_size}")
            if step.params.transposed != steps[0].params.transposed:
                raise ValueError("a Plan is all transposed convolutions or all plain ones")

    @property
    def input_size(self) -> tuple[int, ...]:
        """The spatial size the first layer receives."""
        return self.steps[0].input_size

    @property
    def output_size(self) -> tuple[int, ...]:
        """The spatial size the last layer produces."""
        return self.steps[-1].output_size

    @property
    def transposed(self) -> bool:
        """True for a plan of transposed convolutions (upsampling)."""
        return self.steps[0].params.transposed

    def __len__(self) -> int:
        return len(self.steps)

    @overload
    def __getitem__(self, index: int) -> PlanStep: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[PlanStep, ...]: ...
    def __getitem__(self, index: int | slice) -> PlanStep | tuple[PlanStep, ...]:
        return self.steps[index]

    def __str__(self) -> str:
        names = ["kernel_size", "stride", "padding"] + (["output_padding"] if self.transposed else [])
        header = ["layer", "input", "output", *(name.replace("_size", "") for name in names)]
        rows = [[str(n), format_shape(step.input_size), format_shape(step.output_size),
                 *(_value(getattr(step.params, name)) for name in names)] for n, step in enumerate(self, 1)]
        sizes = f"{format_shape(self.input_size)} → {format_shape(self.output_size)}"
        title = f"{describe_layers(len(self), self.transposed)}: {sizes}"
        return f"{title}\n{aligned_table([header, *rows])}"

    def to_dict(self) -> dict[str, Any]:
        """The plan as plain lists and ints, ready for ``json.dumps``.

        Each step holds its ``input_size`` and ``output_size`` and every :class:`ConvParams`
        field, with lists for tuples, so the command line can print it and a reader rebuild it.
        """
        steps = [{"input_size": list(step.input_size), "output_size": list(step.output_size),
                  **{f.name: _plain(getattr(step.params, f.name)) for f in fields(ConvParams)}} for step in self]
        return {"transposed": self.transposed, "input_size": list(self.input_size),
                "output_size": list(self.output_size), "steps": steps}


def _value(values: tuple[int, ...]) -> str:
    return str(values[0]) if len(set(values)) == 1 else format_shape(values)


def _plain(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value



def _merge(per_dim: Sequence[ConvParams]) -> ConvParams:
    """One n-d ConvParams from n one-dimensional ones."""
    names = [f.name for f in fields(ConvParams) if f.name != "transposed"]
    return ConvParams(**{name: tuple(getattr(p, name)[0] for p in per_dim) for name in names},
                      transposed=per_dim[0].transposed)


def _plan(transposed: bool, input_size: IntOrTuple, output_size: IntOrTuple, num_layers: int,
          kernel_size: IntOrTuple | None, max_stride: IntOrTuple, max_kernel_size: IntOrTuple | None) -> Plan:
    name = "plan_upsampling" if transposed else "plan_downsampling"
    given = {"kernel_size": kernel_size, "max_stride": max_stride, "max_kernel_size": max_kernel_size}
    call = f"{name}({input_size!r}, {output_size!r}, {num_layers!r}" + "".join(
        f", {key}={value!r}" for key, value in given.items() if value is not None) + ")"
    layers = as_int(num_layers, "num_layers")
    if kernel_size is not None and max_kernel_size is not None:
        raise ValueError(f"{call}: give kernel_size or max_kernel_size, not both")
    n = spatial_ndim(input_size, output_size, kernel_size, max_stride, max_kernel_size) or 1
    starts, targets = as_tuple(input_size, "input_size", n), as_tuple(output_size, "output_size", n)
    kernels: Sequence[int | None] = (None,) * n if kernel_size is None else as_tuple(kernel_size, "kernel_size", n)
    caps: Sequence[int | None] = (None,) * n if max_kernel_size is None else as_tuple(
        max_kernel_size, "max_kernel_size", n)
    strides = as_tuple(max_stride, "max_stride", n)
    wrong = [o < i if transposed else o > i for i, o in zip(starts, targets)]
    if any(wrong):
        other = "plan_downsampling" if transposed else "plan_upsampling"
        kept = tuple(i if turned else o for i, o, turned in zip(starts, targets, wrong))
        fix = (f"use {other} for the other direction" if all(wrong) else
               f"use output_size={kept} (those dimensions keep their size), and resize them separately")
        relation = "at least" if transposed else "at most"
        raise ValueError(f"{call}: {name} needs an output_size {relation} the input_size in every dimension, "
                         f"got {targets} from {starts}. Fix: {fix}.")
    dims = [DimRequest(*request) for request in zip(starts, targets, kernels, caps, strides)]
    found = [plan_dim(transposed, dim.start, dim.target, layers, dim.kernel, dim.max_kernel, dim.max_stride, n)
             for dim in dims]
    paths = [path for path in found if path is not None]
    if len(paths) < n:
        failing = [d for d, path in enumerate(found) if path is None]
        raise unreachable(transposed, dims, layers, failing, dim_labels(n), call)
    sizes = [starts, *(tuple(path[j][0] for path in paths) for j in range(layers))]
    return Plan(tuple(PlanStep(sizes[j], sizes[j + 1], _merge([path[j][1] for path in paths]))
                      for j in range(layers)))


def plan_upsampling(
    input_size: IntOrTuple,
    output_size: IntOrTuple,
    num_layers: int,
    *,
    kernel_size: IntOrTuple | None = None,
    max_stride: IntOrTuple = 2,
    max_kernel_size: IntOrTuple | None = None,
) -> Plan:
    """Plan ``num_layers`` transposed convolutions that take ``input_size`` to exactly ``output_size``.

    Every kernel is divisible by its stride wherever the kernel bound (``kernel_size``,
    ``max_kernel_size`` or the free cap) allows one, so there is no checkerboard; otherwise a layer
    gets a kernel that is not (the cap is odd: 4×6 → 88×104 in 3 layers takes kernel 9, stride 2 in
    each), which :func:`~autoshape.explain` notes. Every layer
    changes the size wherever the sizes leave room, whole strides (``out = in·stride``) are used
    wherever possible and the scale is spread geometrically over all the layers, every stride
    ``<= max_stride``. A layer on a 1×1 input is a projection to its kernel's footprint, as DCGAN's
    first layer. The ranking is documented in :mod:`autoshape.core.plan_search`; the cost does not
    grow with the sizes.

    Args:
        input_size: the spatial input size, an int or one int per dimension (1-d, 2-d or 3-d).
        output_size: the spatial size to reach, at least ``input_size`` in every dimension.
        num_layers: how many layers.
        kernel_size: fix every layer's kernel (e.g. 4, as DCGAN); None lets the planner choose, up to
            the largest free kernel, ``4·max_stride+1`` (9 at the default stride 2), except in a
            projection from size 1, whose kernel is its footprint; no layer then shrinks the size. A
            fixed kernel's plan may shrink where no other plan exists (25 → 24 → 23 → 44 → 86 with
            ``kernel_size=2``).
        max_stride: the largest stride of any layer.
        max_kernel_size: bound the chosen kernels instead (only with ``kernel_size=None``): a hard
            bound, which may exceed the free cap; within it a plan is missing only if none exists.

    Returns:
        A :class:`Plan`; its sizes are tuples even when ints were given.

    Shape:
        per layer and dimension, ``out = (in-1)·stride - 2·padding + (kernel_size-1) + output_padding + 1``,
        with padding in ``[0, kernel_size-1]`` and dilation 1.

    Examples:
        >>> plan = plan_upsampling(1, 64, 5, kernel_size=4)
        >>> [step.output_size for step in plan]
        [(4,), (8,), (16,), (32,), (64,)]
        >>> [(s.params.stride[0], s.params.padding[0]) for s in plan]
        [(1, 0), (2, 1), (2, 1), (2, 1), (2, 1)]
        >>> [s.output_size for s in plan_upsampling((3, 5), (48, 80), 4)]
        [(6, 10), (12, 20), (24, 40), (48, 80)]
        >>> [s.output_size[0] for s in plan_upsampling(25, 86, 4, kernel_size=2)]  # shrinks first
        [24, 23, 44, 86]

    Raises:
        TypeError: a size or bound is not an int or a tuple of ints.
        ValueError: a value is out of range, tuples disagree in length, ``output_size`` is smaller
            than ``input_size``, or both ``kernel_size`` and ``max_kernel_size`` are given.
        ShapeError: no plan within the bounds (a free kernel's cap among them) reaches the target; the
            message names the largest (or nearest) reachable size and fixes, each confirmed: the
            fewest layers, the smallest larger ``max_stride``, the smallest ``max_kernel_size``.
    """
    return _plan(True, input_size, output_size, num_layers, kernel_size, max_stride, max_kernel_size)


def plan_downsampling(
    input_size: IntOrTuple,
    output_size: IntOrTuple,
    num_layers: int,
    *,
    kernel_size: IntOrTuple | None = None,
    max_stride: IntOrTuple = 2,
    max_kernel_size: IntOrTuple | None = None,
) -> Plan:
    """Plan ``num_layers`` convolutions that take ``input_size`` to exactly ``output_size``.

    The mirror of :func:`plan_upsampling`: whole strides (``in = out·stride``) wherever possible,
    the scale spread roughly geometrically, every stride ``<= max_stride``; a layer with a 1×1
    output is a projection of its whole input, as the last layer of DCGAN's discriminator.

    Args:
        input_size: the spatial input size, an int or one int per dimension (1-d, 2-d or 3-d).
        output_size: the spatial size to reach, at most ``input_size`` in every dimension.
        num_layers: how many layers.
        kernel_size: fix every layer's kernel; None lets the planner choose, up to the largest free
            kernel, ``4·max_stride+1`` (9 at the default stride 2), except in a projection to size 1,
            whose kernel is its input; no layer then grows the size. A fixed kernel's plan may grow
            where no other plan exists (86 → 44 → 23 → 24 → 25 with ``kernel_size=2``).
        max_stride: the largest stride of any layer.
        max_kernel_size: bound the chosen kernels instead (only with ``kernel_size=None``): a hard
            bound, which may exceed the free cap; within it a plan is missing only if none exists.

    Returns:
        A :class:`Plan`; its sizes are tuples even when ints were given.

    Shape:
        per layer and dimension, ``out = floor((in + 2·padding - (kernel_size-1) - 1) / stride) + 1``,
        with padding in ``[0, kernel_size-1]`` and dilation 1.

    Examples:
        >>> plan = plan_downsampling(64, 1, 5, kernel_size=4)
        >>> [step.output_size[0] for step in plan]
        [32, 16, 8, 4, 1]
        >>> plan[-1].params.as_kwargs()
        {'kernel_size': (4,), 'stride': (1,), 'padding': (0,), 'dilation': (1,)}
        >>> [s.output_size[0] for s in plan_downsampling(86, 25, 4, kernel_size=2)]  # grows last
        [44, 23, 24, 25]

    Raises:
        TypeError: a size or bound is not an int or a tuple of ints.
        ValueError: a value is out of range, tuples disagree in length, ``output_size`` is larger
            than ``input_size``, or both ``kernel_size`` and ``max_kernel_size`` are given.
        ShapeError: no plan within the bounds (a free kernel's cap among them) reaches the target; the
            message names the smallest (or nearest) reachable size and fixes, each confirmed: the
            fewest layers, the smallest larger ``max_stride``, the smallest ``max_kernel_size``.
    """
    return _plan(False, input_size, output_size, num_layers, kernel_size, max_stride, max_kernel_size)
