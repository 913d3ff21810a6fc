"""The parameter solver: the kernel, stride, padding and output_padding that hit a size exactly."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields

from ..errors import ShapeError
from .arithmetic import conv_out, conv_transpose_out
from .reachable import nearest_reachable
from .search import candidates
from .sizes import IntOrTuple, as_tuple, dim_labels, spatial_ndim
from .text import compact
from .window import Candidate, Request

__all__ = ["ConvParams", "check_bounds", "ranked_solutions", "solve_conv", "solve_conv_transpose"]

@dataclass(frozen=True)
class ConvParams:
    """Solved hyper-parameters of one convolution, one entry per spatial dimension.

    Args:
        kernel_size: one int per spatial dimension.
        stride: one int per spatial dimension.
        padding: one int per spatial dimension.
        dilation: one int per spatial dimension.
        output_padding: one int per spatial dimension (zeros for a plain convolution).
        transposed: True for ``nn.ConvTranspose*d``, False for ``nn.Conv*d``.

    Shape:
        transposed: ``out = (in-1)·stride - 2·padding + dilation·(kernel_size-1) + output_padding + 1``;
        plain: ``out = floor((in + 2·padding - dilation·(kernel_size-1) - 1) / stride) + 1``.

    Examples:
        >>> params = solve_conv_transpose(12, 24)
        >>> params.as_kwargs()
        {'kernel_size': (4,), 'stride': (2,), 'padding': (1,), 'dilation': (1,), 'output_padding': (0,)}
        >>> params.output_size((12,))
        (24,)

    Raises:
        ValueError: ``output_size`` gets an input with another number of dimensions.
    """

    kernel_size: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    output_padding: tuple[int, ...]
    transposed: bool = True

    def as_kwargs(self) -> dict[str, tuple[int, ...]]:
        """The keyword arguments of the matching torch layer (no output_padding for a plain conv)."""
        kwargs = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "transposed"}
        if not self.transposed:
            del kwargs["output_padding"]
        return kwargs

    def output_size(self, input_size: Sequence[int]) -> tuple[int, ...]:
        """The output size these parameters give for ``input_size`` (one int per dimension)."""
        if len(input_size) != len(self.kernel_size):
            raise ValueError(f"input_size {tuple(input_size)} needs {len(self.kernel_size)} dimension(s)")
        per_dim = zip(input_size, self.kernel_size, self.stride, self.padding, self.dilation, self.output_padding)
        if self.transposed:
            return tuple(conv_transpose_out(*args) for args in per_dim)
        return tuple(conv_out(*args[:5]) for args in per_dim)


def _requests(
    transposed: bool,
    input_size: IntOrTuple,
    output_size: IntOrTuple,
    kernel_size: IntOrTuple | None,
    stride: IntOrTuple | None,
    padding: IntOrTuple | None,
    dilation: IntOrTuple | None,
    max_kernel_size: IntOrTuple | None,
    max_stride: IntOrTuple | None,
) -> list[Request]:
    """Check every argument once and split the request into one Request per dimension."""
    given = {
        "kernel_size": kernel_size,
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "max_kernel_size": max_kernel_size,
        "max_stride": max_stride,
    }
    n = spatial_ndim(input_size, output_size, *given.values()) or 1
    sizes = [as_tuple(input_size, "input_size", n), as_tuple(output_size, "output_size", n)]
    per_dim = {
        name: (None,) * n if value is None else as_tuple(value, name, n, minimum=0 if name == "padding" else 1)
        for name, value in given.items()
    }
    check_bounds(per_dim, lambda change: _reaches(transposed, input_size, output_size, {**given, **change}))
    return [
        Request(transposed=transposed, i=i, o=o, kernel=k, stride=s, padding=p, dilation=d or 1, max_kernel=mk,
                max_stride=ms)
        for i, o, k, s, p, d, mk, ms in zip(*sizes, *per_dim.values())
    ]


def _reaches(transposed: bool, input_size: IntOrTuple, output_size: IntOrTuple, given: dict[str, object]) -> bool:
    """Whether a solve with these values finds a solution (a fix offered by an error must)."""
    try:
        requests = _requests(transposed, input_size, output_size, **given)  # type: ignore[arg-type]
    except ValueError:
        return False
    return all(next(candidates(r), None) is not None for r in requests)


def check_bounds(per_dim: Mapping[str, Sequence[int | None]], works: Callable[[dict[str, object]], bool]) -> None:
    """Refuse a fixed ``kernel_size`` or ``stride`` above its ``max_*`` bound: the two contradict.

    Args:
        per_dim: the values by argument name, one entry per dimension (None: not given).
        works: whether the request succeeds with a change, e.g. ``{"max_stride": None}``; the
            error offers only the changes it accepts (``drop`` the bound when none is accepted).

    Raises:
        ValueError: naming both values, with a fix.
    """
    for name, bound_name in (("kernel_size", "max_kernel_size"), ("stride", "max_stride")):
        pairs = [(v, b) for v, b in zip(per_dim[name], per_dim[bound_name]) if v is not None and b is not None]
        if all(v <= b for v, b in pairs):
            continue
        values, bounds = (compact([pair[j] for pair in pairs]) for j in (0, 1))  # both given: one per dimension
        capped = compact([min(pair) for pair in pairs])
        fixes = [f"drop {bound_name} (it bounds a free {name})"] if works({bound_name: None}) else []
        fixes += [f"{name}={capped}"] if works({name: capped}) else []
        raise ValueError(f"{name}={values} is above {bound_name}={bounds}: the two contradict. "
                         f"Fix: {', or '.join(fixes) or f'drop {bound_name}'}.")


def _describe_fixed(r: Request) -> str:
    parts = [f"{name}={value}" for name, value in
             (("kernel_size", r.kernel), ("stride", r.stride), ("padding", r.padding)) if value is not None]
    parts.append(f"dilation={r.dilation}")
    parts += [f"{name}={value}" for name, value in
              (("max_kernel_size", r.max_kernel), ("max_stride", r.max_stride)) if value is not None]
    return ", ".join(parts)


def _unreachable(requests: Sequence[Request], failing: Sequence[int]) -> ShapeError:
    """The error for the first failing dimension, with fixes that mend every failing dimension at once."""
    r, names = requests[failing[0]], dim_labels(len(requests))
    nearest = {d: nearest_reachable(requests[d]) for d in failing}
    below, above = nearest[failing[0]]
    near = [f"{below} below" if below is not None else "none below",
            f"{above} above" if above is not None else "none above"]
    asks = []
    for prefer_above in (False, True):  # one target per side: each failing dimension at its nearest size
        sizes = [req.o if d not in nearest else (nearest[d][prefer_above] or nearest[d][not prefer_above] or req.o)
                 for d, req in enumerate(requests)]
        shown = f"output_size={sizes[0] if len(set(sizes)) == 1 else tuple(sizes)}"
        if all(d in nearest and any(nearest[d]) for d in failing) and shown not in asks:
            asks.append(shown)
    freeable = [n for n, v in (("kernel_size", r.kernel), ("stride", r.stride), ("padding", r.padding),
                               ("max_kernel_size", r.max_kernel), ("max_stride", r.max_stride)) if v is not None]
    fixes = ([f"ask for {' or '.join(asks)}"] if asks else []) + (
        [f"leave {'/'.join(freeable)} free (None)"] if freeable else [])
    layer = "transposed convolution" if r.transposed else "convolution"
    return ShapeError(
        f"no {layer} takes size {r.i} to {r.o} in {names[failing[0]]} with {_describe_fixed(r)}. "
        f"Nearest reachable sizes: {', '.join(near)}. Fix: {', or '.join(fixes)}."
    )


def _combine(per_dim: Sequence[Candidate], requests: Sequence[Request]) -> ConvParams:
    k, s, p, op = (tuple(column) for column in zip(*per_dim))  # Candidate fields, one tuple per field
    transposed = requests[0].transposed
    return ConvParams(k, s, p, tuple(r.dilation for r in requests), op if transposed else (0,) * len(k), transposed)


def _solve(requests: list[Request]) -> ConvParams:
    best = [next(candidates(r), None) for r in requests]
    failing = [d for d, found in enumerate(best) if found is None]
    if failing:
        raise _unreachable(requests, failing)
    return _combine([found for found in best if found is not None], requests)


def solve_conv_transpose(
    input_size: IntOrTuple,
    output_size: IntOrTuple,
    *,
    kernel_size: IntOrTuple | None = None,
    stride: IntOrTuple | None = None,
    padding: IntOrTuple | None = None,
    dilation: IntOrTuple | None = None,
    max_kernel_size: IntOrTuple | None = None,
    max_stride: IntOrTuple | None = None,
) -> ConvParams:
    """Solve a transposed convolution that takes ``input_size`` to exactly ``output_size``.

    Every dimension is solved on its own; a tuple anywhere means n-d. Fixed values are
    honoured as given; ``None`` leaves a value free, ``dilation`` defaults to 1, and the
    ``max_*`` arguments bound the free ones (a fixed value above its bound is an error).

    Rules:
        * Exact: torch's ``ConvTranspose*d`` with these values gives ``output_size``.
        * Valid: ``output_padding < max(stride, dilation)``; a padding the solver picks lies in
          ``[0, dilation·(kernel_size-1)]``.
        * Complete: if any parameters within the bounds reach the target, one is returned;
          with no bounds every target is reachable (a transposed conv may also shrink).
        * Ranked, deterministically: first the conventional strides, whose lattice fits the sizes
          (``(in-1)·stride <= out-1``: the output spans every input's position), then the tail,
          which needs windows over the padding; within each, the stride closest to
          ``output/input`` (exactly the ratio when it is whole; stride 1 for an input of size 1),
          then a kernel divisible by the stride (no checkerboard), then the smallest kernel larger
          than the stride (else the largest up to it), then the least padding and output_padding.
          12→24 gives the conventional kernel 4, stride 2, padding 1; 1→4 gives kernel 4, stride
          1, padding 0, as in DCGAN.
        * Bounded cost: closed forms over the strides and kernels, never a loop over sizes, so a
          solve takes well under a millisecond at any size (benchmarks/RESULTS.md).

    Shape:
        ``out = (in-1)·stride - 2·padding + dilation·(kernel_size-1) + output_padding + 1``

    Examples:
        >>> solve_conv_transpose(12, 24)
        ConvParams(kernel_size=(4,), stride=(2,), padding=(1,), dilation=(1,), output_padding=(0,), transposed=True)
        >>> solve_conv_transpose((1, 7), (4, 28)).kernel_size
        (4, 8)

    Raises:
        TypeError: a size or value is not an int or tuple of ints.
        ValueError: a value is out of range, tuples disagree in length, or a fixed ``kernel_size`` or
            ``stride`` is above its ``max_kernel_size`` or ``max_stride`` (the message names both).
        ShapeError: nothing within the fixed values and bounds reaches the target; the message
            names the nearest reachable sizes and a fix.
    """
    requests = _requests(True, input_size, output_size, kernel_size, stride, padding, dilation,
                         max_kernel_size, max_stride)
    return _solve(requests)


def solve_conv(
    input_size: IntOrTuple,
    output_size: IntOrTuple,
    *,
    kernel_size: IntOrTuple | None = None,
    stride: IntOrTuple | None = None,
    padding: IntOrTuple | None = None,
    dilation: IntOrTuple | None = None,
    max_kernel_size: IntOrTuple | None = None,
    max_stride: IntOrTuple | None = None,
) -> ConvParams:
    """Solve a plain convolution that takes ``input_size`` to exactly ``output_size``.

    The same rules as :func:`solve_conv_transpose`, mirrored: conventional strides first
    (``(out-1)·stride <= in-1``: the windows' starts span no more than the input), then the stride
    closest to ``input/output`` (stride 1 where the output has size 1), then a convolution whose last window
    reaches the last input row (the rows the floor drops, ``(in + 2·padding - dilation·(kernel_size-1)
    - 1) mod stride``, all lie in the padding: 26→12 gives kernel 4, stride 2, which reads all 26
    rows, not kernel 3, which drops one), then the smallest kernel larger than the stride, then the
    least padding. A convolution may also grow (padding larger than the kernel's reach is never
    chosen, so growth is bounded by ``dilation·(kernel_size-1)``); growing is in the tail.

    Shape:
        ``out = floor((in + 2·padding - dilation·(kernel_size-1) - 1) / stride) + 1``

    Examples:
        >>> solve_conv(24, 12)
        ConvParams(kernel_size=(3,), stride=(2,), padding=(1,), dilation=(1,), output_padding=(0,), transposed=False)
        >>> solve_conv((64, 64), (1, 1), kernel_size=4).as_kwargs()["kernel_size"]
        (4, 4)

    Raises:
        TypeError: a size or value is not an int or tuple of ints.
        ValueError: a value is out of range, tuples disagree in length, or a fixed ``kernel_size`` or
            ``stride`` is above its ``max_kernel_size`` or ``max_stride`` (the message names both).
        ShapeError: nothing within the fixed values and bounds reaches the target.
    """
    requests = _requests(False, input_size, output_size, kernel_size, stride, padding, dilation,
                         max_kernel_size, max_stride)
    return _solve(requests)


def ranked_solutions(
    input_size: IntOrTuple,
    output_size: IntOrTuple,
    *,
    transposed: bool = True,
    kernel_size: IntOrTuple | None = None,
    stride: IntOrTuple | None = None,
    padding: IntOrTuple | None = None,
    dilation: IntOrTuple | None = None,
    max_kernel_size: IntOrTuple | None = None,
    max_stride: IntOrTuple | None = None,
    limit: int | None = 10,
) -> list[ConvParams]:
    """Every solution within the bounds, best first; the first is what the solve functions return.

    With no bounds the search covers strides up to just past the scale ratio and, at each stride,
    kernels up to one stride past the smallest that reaches the target. The conventional strides
    come first; the tail after them (windows mostly over the padding, such as kernel 9, stride 3,
    padding 8 for a convolution from 26 to 12, or a convolution that grows) is exact and valid for
    torch, and is listed for completeness, e.g. for a stride you must keep. Dimensions with identical requests get
    identical (square) solutions; otherwise combinations are ordered by their summed ranks.
    ``limit`` bounds the cost: up to ``limit`` solutions per dimension are ranked, lazily, so the
    default answers as fast as a solve; ``limit=None`` lists every solution, whose number grows
    with the sizes.

    Shape:
        as :func:`solve_conv_transpose` or :func:`solve_conv`.

    Examples:
        >>> [p.kernel_size[0] for p in ranked_solutions(12, 24, limit=3)]
        [4, 2, 3]
        >>> ranked_solutions(6, 21, kernel_size=3, stride=3)
        []

    Raises:
        TypeError, ValueError: as the solve functions; ``limit`` below 1.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1 or None, got {limit}")
    requests = _requests(transposed, input_size, output_size, kernel_size, stride, padding, dilation,
                         max_kernel_size, max_stride)
    ranked = [list(itertools.islice(candidates(r), limit)) for r in requests]
    if all(r == requests[0] for r in requests):
        combos: Iterator[tuple[Candidate, ...]] = ((c,) * len(requests) for c in ranked[0])
    else:
        combos = (tuple(ranked[d][j] for d, j in enumerate(ix)) for ix in _by_rank_sum([len(r) for r in ranked]))
    return [_combine(c, requests) for c in itertools.islice(combos, limit)]


def _by_rank_sum(lengths: list[int]) -> Iterator[tuple[int, ...]]:
    """Every index tuple below ``lengths``, by increasing sum, then lexicographically; lazily."""
    def split(total: int, dims: list[int]) -> Iterator[tuple[int, ...]]:
        if not dims:
            yield from [()] if total == 0 else []
            return
        rest = sum(n - 1 for n in dims[1:])
        for j in range(max(0, total - rest), min(total, dims[0] - 1) + 1):
            for tail in split(total - j, dims[1:]):
                yield (j, *tail)

    if min(lengths) > 0:
        for total in range(sum(n - 1 for n in lengths) + 1):
            yield from split(total, lengths)
