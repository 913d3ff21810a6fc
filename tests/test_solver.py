"""The solver: exact against torch, complete by brute force, ranked as documented, clear when impossible."""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autoshape import ConvParams, ShapeError, ranked_solutions, solve_conv, solve_conv_transpose
from tests.torch_reference import torch_conv_size, torch_conv_transpose_size, torch_rows_read, torch_size

MAX_K, MAX_S = 4, 3


def solve(transposed: bool, *args: object, **kwargs: object) -> ConvParams:
    return (solve_conv_transpose if transposed else solve_conv)(*args, **kwargs)  # type: ignore[arg-type]


# -- brute force: every configuration in a small box, sized by torch -------------------------------------------------

Config = tuple[int, int, int, int]  # kernel, stride, padding, output_padding


def box(transposed: bool, i: int, d: int) -> Iterator[tuple[Config, int]]:
    """Every (k, s, p, op) with k <= MAX_K, s <= MAX_S and the output size torch gives it."""
    for k, s in itertools.product(range(1, MAX_K + 1), range(1, MAX_S + 1)):
        for p in range(max(d * (k - 1), 1) + 1):
            for op in range(max(s, d)) if transposed else (0,):
                size = (torch_conv_transpose_size([i], [k], [s], [p], [d], [op]) if transposed
                        else torch_conv_size([i], [k], [s], [p], [d]))
                if size is not None:
                    yield (k, s, p, op), size[0]


def allowed(config: Config, d: int, kernel: int | None, stride: int | None, padding: int | None) -> bool:
    k, s, p, _ = config
    return ((kernel is None or k == kernel) and (stride is None or s == stride)
            and (p == padding if padding is not None else p <= d * (k - 1)))


@pytest.mark.parametrize("transposed", [True, False], ids=["transposed", "conv"])
@pytest.mark.parametrize("d", [1, 2])
@pytest.mark.parametrize("i", [1, 2, 3, 5])
def test_complete_and_exact_on_a_small_grid(transposed: bool, d: int, i: int) -> None:
    table = list(box(transposed, i, d))
    for kernel, stride, padding in itertools.product((None, 2, 3), (None, 1, 2), (None, 0, 1)):
        reachable = {size for config, size in table if allowed(config, d, kernel, stride, padding)}
        for o in range(1, 13):
            kwargs = dict(kernel_size=kernel, stride=stride, padding=padding, dilation=d,
                          max_kernel_size=None if kernel else MAX_K, max_stride=None if stride else MAX_S)
            if o in reachable:
                params = solve(transposed, i, o, **kwargs)
                assert torch_size(params, (i,)) == (o,), (o, kwargs, params)
                continue
            with pytest.raises(ShapeError) as caught:
                solve(transposed, i, o, **kwargs)
            below = max((r for r in reachable if r < o), default=None)
            above = min((r for r in reachable if r > o), default=None)
            message = str(caught.value)
            assert (f"{below} below" if below else "none below") in message, (o, kwargs, message)
            assert (f"{above} above" if above else "none above") in message, (o, kwargs, message)


# -- properties over random requests, checked by running torch --------------------------------------------------------

dims = st.integers(1, 3)


@st.composite
def requests(draw: st.DrawFn, transposed: bool) -> tuple[tuple[int, ...], tuple[int, ...], dict[str, object]]:
    n = draw(dims)
    sizes = st.integers(1, 20 if n < 3 else 9)
    i = tuple(draw(sizes) for _ in range(n))
    o = tuple(draw(sizes) for _ in range(n))
    kwargs: dict[str, object] = {}
    for name, values in (("kernel_size", st.integers(1, 5)), ("stride", st.integers(1, 3)),
                         ("padding", st.integers(0, 3)), ("dilation", st.integers(1, 2))):
        if draw(st.booleans()):
            kwargs[name] = draw(values)
    return i, o, kwargs


@given(request=requests(True))
def test_transposed_solutions_are_exact_or_refused(request: tuple[tuple[int, ...], tuple[int, ...], dict]) -> None:
    i, o, kwargs = request
    try:
        params = solve_conv_transpose(i, o, **kwargs)
    except ShapeError as error:
        assert re.search(r"Nearest reachable sizes: .* Fix: ", str(error))
        return
    assert torch_size(params, i) == o
    assert all(getattr(params, name) == (value,) * len(i) for name, value in kwargs.items())


@given(request=requests(False))
def test_conv_solutions_are_exact_or_refused(request: tuple[tuple[int, ...], tuple[int, ...], dict]) -> None:
    i, o, kwargs = request
    try:
        params = solve_conv(i, o, **kwargs)
    except ShapeError:
        return
    assert torch_size(params, i) == o
    assert all(getattr(params, name) == (value,) * len(i) for name, value in kwargs.items())


def follow_fixes(message: str) -> list[dict[str, object]]:
    """The changes each fix of a refusal asks for, as keyword arguments (None frees a value)."""
    fix = message.split("Fix: ", 1)[1]
    changes: list[dict[str, object]] = [{"output_size": ast.literal_eval(size)}
                                        for size in re.findall(r"output_size=(\(.*?\)|\d+)", fix)]
    freed = re.search(r"leave (\S+) free \(None\)", fix)
    if freed:
        changes.append(dict.fromkeys(freed.group(1).split("/")))
    return changes


@settings(max_examples=300)
@given(transposed=st.booleans(), request=requests(True), bounds=st.fixed_dictionaries(
    {}, optional={"max_kernel_size": st.integers(1, 5), "max_stride": st.integers(1, 3)}))
def test_every_fix_of_a_refusal_works_when_followed_literally(transposed: bool, request: tuple, bounds: dict) -> None:
    i, o, kwargs = request
    kwargs = {**kwargs, **({} if "kernel_size" in kwargs else bounds)}
    if kwargs.get("max_stride", 99) < kwargs.get("stride", 0):
        del kwargs["max_stride"]  # a contradiction, refused on its own (test_a_fixed_value_above_its_bound_...)
    try:
        solve(transposed, i, o, **kwargs)
        return
    except ShapeError as error:
        changes = follow_fixes(str(error))
    assert changes
    for change in changes:
        target = change.pop("output_size", o)
        params = solve(transposed, i, target, **{**kwargs, **change})
        expected = target if isinstance(target, tuple) else (target,) * len(i)
        assert torch_size(params, i) == expected, (change, target)


@given(transposed=st.booleans(), i=st.integers(1, 40), o=st.integers(1, 40), d=st.integers(1, 3))
def test_with_no_bounds_every_target_is_reachable(transposed: bool, i: int, o: int, d: int) -> None:
    params = solve(transposed, i, o, dilation=d)
    assert torch_size(params, (i,)) == (o,)
    k, s, p, op = params.kernel_size[0], params.stride[0], params.padding[0], params.output_padding[0]
    assert 0 <= p <= d * (k - 1)
    assert op < max(s, d)


@given(transposed=st.booleans(), i=st.integers(1, 8), o=st.integers(1, 12), kernel=st.integers(1, 4),
       padding=st.integers(0, 3))
def test_unbounded_refusals_are_confirmed_by_a_larger_box(
    transposed: bool, i: int, o: int, kernel: int, padding: int
) -> None:
    try:
        solve(transposed, i, o, kernel_size=kernel, padding=padding)
        return
    except ShapeError:
        pass
    for s in range(1, 4 * (i + o) + 8):
        for op in range(s) if transposed else (0,):
            size = (torch_conv_transpose_size([i], [kernel], [s], [padding], [1], [op]) if transposed
                    else torch_conv_size([i], [kernel], [s], [padding], [1]))
            assert size != (o,), f"stride={s}, output_padding={op} reaches {o}"


# -- the ranking rules -----------------------------------------------------------------------------------------------

@given(i=st.integers(2, 30), r=st.integers(1, 6))
def test_whole_ratio_gives_that_stride(i: int, r: int) -> None:
    assert solve_conv_transpose(i, r * i).stride == (r,)
    assert solve_conv(r * i, i).stride == (r,)


@given(o=st.integers(1, 64))
def test_input_of_size_one_prefers_stride_one(o: int) -> None:
    assert solve_conv_transpose(1, o).stride == (1,)
    assert solve_conv(o, 1).stride == (1,)


@given(i=st.integers(1, 40), o=st.integers(1, 80))
def test_transposed_kernel_divisible_by_stride_when_free(i: int, o: int) -> None:
    params = solve_conv_transpose(i, o)
    assert params.kernel_size[0] % params.stride[0] == 0


def conventional(transposed: bool, i: int, o: int, stride: int) -> bool:
    """The first half of the ranking: the stride's lattice fits the sizes, (small-1)·stride <= big-1."""
    small, big = (i, o) if transposed else (o, i)
    return (small - 1) * stride <= big - 1


@given(transposed=st.booleans(), i=st.integers(1, 9), o=st.integers(1, 14), d=st.integers(1, 2))
def test_a_conventional_stride_is_chosen_whenever_one_reaches(transposed: bool, i: int, o: int, d: int) -> None:
    """Within the bounds, a stride whose lattice fits the sizes wins whenever one reaches (brute force)."""
    reaching = [config for config, size in box(transposed, i, d) if size == o and config[2] <= d * (config[0] - 1)]
    try:
        params = solve(transposed, i, o, dilation=d, max_kernel_size=MAX_K, max_stride=MAX_S)
    except ShapeError:
        assert not reaching
        return
    assert torch_size(params, (i,)) == (o,)
    chosen = conventional(transposed, i, o, params.stride[0])
    assert chosen == any(conventional(transposed, i, o, s) for _, s, _, _ in reaching)


@given(i=st.integers(1, 12), o=st.integers(1, 30), kernel=st.integers(1, 6))
def test_divisible_kernel_chosen_whenever_one_reaches(i: int, o: int, kernel: int) -> None:
    """With the stride fixed, a kernel divisible by it is chosen whenever one (up to a bound) reaches."""
    stride = 2
    try:
        params = solve_conv_transpose(i, o, stride=stride, max_kernel_size=kernel)
    except ShapeError:
        return
    divisible_reaches = any(
        torch_conv_transpose_size([i], [k], [stride], [p], [1], [op]) == (o,)
        for k in range(stride, kernel + 1, stride) for p in range(k) for op in range(stride)
    )
    assert (params.kernel_size[0] % stride == 0) == divisible_reaches


@given(i=st.integers(2, 40), o=st.integers(1, 20))
def test_a_conv_reads_every_input_row_whenever_one_at_its_stride_can(i: int, o: int) -> None:
    """If some kernel and padding at the chosen stride read every input row (by torch's gradient), the
    chosen one does too: the floor never drops a row it could have kept."""
    params = solve_conv(i, o)
    k, s, p = params.kernel_size[0], params.stride[0], params.padding[0]
    assert torch_conv_size([i], [k], [s], [p], [1]) == (o,)
    alternatives = [(k2, p2) for k2 in range(1, 2 * i + 4) for p2 in range(k2)
                    if torch_conv_size([i], [k2], [s], [p2], [1]) == (o,)]
    if any(all(torch_rows_read(i, k2, s, p2, 1)) for k2, p2 in alternatives):
        assert all(torch_rows_read(i, k, s, p, 1)), (k, s, p)


@pytest.mark.parametrize(
    ("transposed", "i", "o", "fixed", "expected"),
    [
        (True, 12, 24, {}, ((4,), (2,), (1,), (0,))),  # the conventional k4 s2 p1
        (True, 4, 8, {}, ((4,), (2,), (1,), (0,))),
        (True, 1, 4, {}, ((4,), (1,), (0,), (0,))),  # DCGAN's first block
        (True, 4, 8, {"kernel_size": 4}, ((4,), (2,), (1,), (0,))),
        (True, 7, 14, {}, ((4,), (2,), (1,), (0,))),
        (True, 24, 24, {}, ((3,), (1,), (1,), (0,))),
        (False, 24, 12, {}, ((3,), (2,), (1,), (0,))),  # the ResNet-style k3 s2 p1
        (False, 25, 13, {}, ((3,), (2,), (1,), (0,))),
        (False, 64, 32, {"kernel_size": 4}, ((4,), (2,), (1,), (0,))),  # DCGAN discriminator
        (False, 4, 1, {"kernel_size": 4}, ((4,), (1,), (0,), (0,))),
        (False, 10, 10, {}, ((3,), (1,), (1,), (0,))),
        (False, 26, 12, {}, ((4,), (2,), (0,), (0,))),  # k3 s2 p0 would drop the last row
        (False, 12, 5, {}, ((4,), (2,), (0,), (0,))),
        (False, 16000, 3199, {}, ((10,), (5,), (0,), (0,))),  # wav2vec 2.0's first layer: every sample read
    ],
)
def test_conventional_choices(transposed: bool, i: int, o: int, fixed: dict, expected: tuple) -> None:
    params = solve(transposed, i, o, **fixed)
    assert (params.kernel_size, params.stride, params.padding, params.output_padding) == expected
    assert torch_size(params, (i,)) == (o,)


def test_square_requests_give_square_solutions_and_dimensions_are_independent() -> None:
    params = solve_conv_transpose((12, 7), (24, 28))
    assert params.stride == (2, 4)
    assert torch_size(params, (12, 7)) == (24, 28)
    assert solve_conv_transpose((5, 5), (10, 10)).kernel_size == (4, 4)


def test_ranked_solutions_start_with_the_solve_result_and_are_all_exact() -> None:
    for transposed, (i, o) in itertools.product((True, False), ((12, 24), (24, 12), (7, 15), (3, 3))):
        ranked = ranked_solutions(i, o, transposed=transposed, limit=None)
        assert ranked[0] == solve(transposed, i, o)
        assert len(set(ranked)) == len(ranked)
        assert all(torch_size(p, (i,)) == (o,) for p in ranked)
    assert len(ranked_solutions((6, 6), (12, 13), limit=4)) == 4


def test_ranked_solutions_within_bounds_match_brute_force_count() -> None:
    expected = {c for c, size in box(True, 5, 1) if size == 10 and c[2] <= c[0] - 1}
    ranked = ranked_solutions(5, 10, max_kernel_size=MAX_K, max_stride=MAX_S, limit=None)
    assert {(p.kernel_size[0], p.stride[0], p.padding[0], p.output_padding[0]) for p in ranked} == expected


def documented_rank(transposed: bool, i: int, o: int, d: int, config: Config) -> tuple[object, ...]:
    """The ranking as docs/target-layers.md states it, written out independently of the solver."""
    k, s, p, op = config
    small, big = (i, o) if transposed else (o, i)
    stride_key = (s, s) if small == 1 else (abs(s * small - big), s)
    group = k % s != 0 if transposed else (i + 2 * p - d * (k - 1) - 1) % s > p  # checkerboard / dropped rows
    kernel_key = (0, k) if k > s else (1, -k)
    return (not conventional(transposed, i, o, s), stride_key, group, kernel_key, p, op)


@settings(max_examples=150)
@given(transposed=st.booleans(), i=st.integers(1, 8), o=st.integers(1, 14), d=st.integers(1, 2),
       kernel=st.sampled_from([None, 2, 3]), stride=st.sampled_from([None, 1, 2]),
       padding=st.sampled_from([None, 0, 1]))
def test_ranked_solutions_are_the_brute_force_set_in_the_documented_order(
    transposed: bool, i: int, o: int, d: int, kernel: int | None, stride: int | None, padding: int | None
) -> None:
    ranked = ranked_solutions(i, o, transposed=transposed, kernel_size=kernel, stride=stride, padding=padding,
                              dilation=d, max_kernel_size=None if kernel else MAX_K,
                              max_stride=None if stride else MAX_S, limit=None)
    found = [(p.kernel_size[0], p.stride[0], p.padding[0], p.output_padding[0]) for p in ranked]
    expected = {config for config, size in box(transposed, i, d)
                if size == o and allowed(config, d, kernel, stride, padding)}
    assert len(found) == len(set(found)) and set(found) == expected
    keys = [documented_rank(transposed, i, o, d, config) for config in found]
    assert keys == sorted(keys)


def test_solutions_are_deterministic() -> None:
    assert solve_conv_transpose((9, 31), (20, 64)) == solve_conv_transpose((9, 31), (20, 64))


def test_pytorch_suite_case_k3_s3_on_6_reaches_18_to_20_only() -> None:
    reached = set()
    for o in range(10, 26):
        try:
            params = solve_conv_transpose((6, 6), (o, o), kernel_size=3, stride=3, padding=0)
        except ShapeError:
            continue
        assert torch_size(params, (6, 6)) == (o, o)
        reached.add(o)
    assert reached == {18, 19, 20}


def test_as_kwargs_fit_the_torch_layers() -> None:
    import torch

    up = solve_conv_transpose((5, 6), (11, 12))
    down = solve_conv((11, 12), (5, 6))
    assert "output_padding" not in down.as_kwargs()
    x = torch.zeros(1, 2, 5, 6)
    y = torch.nn.ConvTranspose2d(2, 3, **up.as_kwargs())(x)
    assert y.shape[2:] == (11, 12)
    assert torch.nn.Conv2d(3, 2, **down.as_kwargs())(y).shape[2:] == (5, 6)
    assert up.output_size((5, 6)) == (11, 12)
    with pytest.raises(ValueError, match="needs 2 dimension"):
        up.output_size((5,))


# -- bad input -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("args", "kwargs", "error", "pattern"),
    [
        ((0, 4), {}, ValueError, "input_size must be >= 1, got 0"),
        ((4, -2), {}, ValueError, "output_size must be >= 1, got -2"),
        ((4.5, 8), {}, TypeError, "input_size must be an int, got 4.5"),
        ((True, 8), {}, TypeError, "input_size must be an int, got True"),
        (("4", 8), {}, TypeError, "input_size must be an int, got '4'"),
        (((4, 4), (8, 8, 8)), {}, ValueError, "different lengths"),
        ((4, 8), {"kernel_size": 0}, ValueError, "kernel_size must be >= 1, got 0"),
        ((4, 8), {"stride": -1}, ValueError, "stride must be >= 1, got -1"),
        ((4, 8), {"padding": -1}, ValueError, "padding must be >= 0, got -1"),
        ((4, 8), {"max_stride": 0}, ValueError, "max_stride must be >= 1"),
        ((6, 21), {"kernel_size": 3, "stride": 3},
         ShapeError, r"takes size 6 to 21 in dimension 1 of 1 \(length\) with kernel_size=3, stride=3, dilation=1\. "
                     r"Nearest reachable sizes: 20 below, none above\. "
                     r"Fix: ask for output_size=20, or leave kernel_size/stride free \(None\)\."),
        (((8, 6), (16, 15)), {"kernel_size": 4, "stride": 2, "padding": 1},
         ShapeError, r"takes size 6 to 15 in dimension 2 of 2 \(width\) .* 13 below, none above"),
        ((10, 40), {"max_kernel_size": 3, "max_stride": 2}, ShapeError, r"22 below, none above.*max_kernel_size"),
        (((4, 4, 4), (10, 10, 9)), {"kernel_size": 4, "stride": 2, "padding": 0},
         ShapeError, r"takes size 4 to 9 in dimension 3 of 3 \(width\) with .* none below, 10 above"),
    ],
)
def test_errors_name_the_value_the_range_and_a_fix(
    args: tuple, kwargs: dict, error: type[Exception], pattern: str
) -> None:
    with pytest.raises(error, match=pattern):
        solve_conv_transpose(*args, **kwargs)


def test_conv_growth_beyond_fixed_padding_is_refused_with_the_maximum() -> None:
    with pytest.raises(ShapeError, match="12 below, none above"):
        solve_conv(10, 14, padding=1)


def test_ranked_solutions_rejects_bad_limit() -> None:
    with pytest.raises(ValueError, match="limit"):
        ranked_solutions(4, 8, limit=0)


def test_pytorch_suite_downsample_upsample_mirror_is_always_solvable() -> None:
    """From torch's test_ConvTranspose2d_output_size_downsample_upsample: the mirror of any conv exists."""
    for h, k, d, s, p in itertools.product(range(13, 24), range(2, 5), range(1, 5), range(1, 4), range(3)):
        down = torch_conv_size([h], [k], [s], [p], [d])
        if down is None:
            continue
        params = solve_conv_transpose(down[0], h, kernel_size=k, stride=s, padding=p, dilation=d)
        assert torch_size(params, down) == (h,)


# -- a fixed value and its bound: they agree, or the error names both ---------------------------------------------

@pytest.mark.parametrize(("transposed", "args", "kwargs", "name", "bound"), [
    (False, (24, 12), {"kernel_size": 5, "max_kernel_size": 3}, "kernel_size=5", "max_kernel_size=3"),
    (False, (24, 6), {"stride": 4, "max_stride": 2}, "stride=4", "max_stride=2"),
    (True, ((12, 5), (24, 9)), {"stride": 2, "padding": 1, "max_stride": (1, 3)}, "stride=2", r"max_stride=\(1, 3\)"),
], ids=["kernel", "stride", "per-dimension"])
def test_a_fixed_value_above_its_bound_is_refused_and_both_fixes_work(
        transposed: bool, args: tuple, kwargs: dict, name: str, bound: str) -> None:
    with pytest.raises(ValueError, match=rf"^{name} is above {bound}: .*Fix: drop ") as caught:
        solve(transposed, *args, **kwargs)  # used to solve with the fixed value, ignoring the bound
    fix = str(caught.value).split("Fix: ", 1)[1]
    dropped = re.search(r"drop (\w+)", fix)
    assert dropped is not None
    changes = [{dropped.group(1): None}]
    changes += [{key: ast.literal_eval(value)}
                for key, value in re.findall(r"\b(kernel_size|stride)=(\(.*?\)|\d+)", fix)]
    assert len(changes) == 2
    for change in changes:
        params = solve(transposed, *args, **{**kwargs, **change})
        i, o = (a if isinstance(a, tuple) else (a,) for a in args)
        assert torch_size(params, i) == o


def test_a_fixed_value_within_its_bound_is_kept() -> None:
    params = solve_conv(24, 12, kernel_size=3, stride=2, max_kernel_size=3, max_stride=4)
    assert (params.kernel_size, params.stride) == ((3,), (2,))
    assert torch_size(params, (24,)) == (12,)
    assert ranked_solutions(24, 12, transposed=False, kernel_size=3, max_kernel_size=5)[0].kernel_size == (3,)
    with pytest.raises(ValueError, match="kernel_size=4 is above max_kernel_size=3"):
        ranked_solutions(12, 24, kernel_size=4, max_kernel_size=3)
