"""The arithmetic functions against torch's own output sizes."""

from __future__ import annotations

import ast
import itertools
import math
import re
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from autoshape import (
    ShapeError,
    conv_output_size,
    conv_transpose_output_range,
    conv_transpose_output_size,
    pool_output_size,
)
from autoshape.core.factors import nearest_factors
from tests.torch_reference import torch_conv_size, torch_conv_transpose_size

small = st.integers(1, 12)
pad = st.integers(0, 6)


@given(i=small, k=st.integers(1, 6), s=st.integers(1, 4), p=pad, d=st.integers(1, 3))
def test_conv_output_size_matches_torch(i: int, k: int, s: int, p: int, d: int) -> None:
    expected = torch_conv_size([i], [k], [s], [p], [d])
    if expected is None:
        with pytest.raises(ShapeError):
            conv_output_size(i, k, s, p, d)
    else:
        assert conv_output_size(i, k, s, p, d) == expected[0]


@given(i=small, k=st.integers(1, 6), s=st.integers(1, 4), p=pad, d=st.integers(1, 3), op=st.integers(0, 4))
def test_conv_transpose_output_size_matches_torch(i: int, k: int, s: int, p: int, d: int, op: int) -> None:
    expected = torch_conv_transpose_size([i], [k], [s], [p], [d], [op])
    if expected is None:
        with pytest.raises((ShapeError, ValueError)):
            conv_transpose_output_size(i, k, s, p, d, op)
    else:
        assert conv_transpose_output_size(i, k, s, p, d, op) == expected[0]


@given(i=small, k=st.integers(1, 5), s=st.integers(1, 4), p=st.integers(0, 3), d=st.integers(1, 3))
def test_output_range_is_exactly_what_torch_reaches_through_output_padding(
    i: int, k: int, s: int, p: int, d: int
) -> None:
    reached = (torch_conv_transpose_size([i], [k], [s], [p], [d], [op]) for op in range(max(s, d) + 2))
    accepted = {size[0] for size in reached if size is not None}
    if not accepted:
        with pytest.raises(ShapeError):
            conv_transpose_output_range(i, k, s, p, d)
        return
    assert conv_transpose_output_range(i, k, s, p, d) == (min(accepted), max(accepted))
    assert accepted == set(range(min(accepted), max(accepted) + 1))


def test_classic_output_padding_case_from_torch_tests() -> None:
    # k=3, s=3 on 6×6 reaches 18 to 20 and nothing else.
    assert conv_transpose_output_range((6, 6), 3, 3) == ((18, 18), (20, 20))


@given(
    i=st.integers(1, 14),
    k=st.integers(1, 4),
    s=st.integers(1, 4),
    p=st.integers(0, 2),
    d=st.integers(1, 2),
    ceil_mode=st.booleans(),
)
def test_max_pool_output_size_matches_torch(i: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> None:
    x = torch.zeros(1, 1, i)
    try:
        expected = F.max_pool1d(x, k, s, p, d, ceil_mode=ceil_mode).shape[-1]
    except RuntimeError:
        with pytest.raises((ShapeError, ValueError)):
            pool_output_size(i, k, s, p, d, ceil_mode)
        return
    assert pool_output_size(i, k, s, p, d, ceil_mode) == expected


@given(i=st.integers(1, 14), k=st.integers(1, 4), s=st.integers(1, 4), p=st.integers(0, 2), ceil_mode=st.booleans())
def test_avg_pool_2d_output_size_matches_torch(i: int, k: int, s: int, p: int, ceil_mode: bool) -> None:
    x = torch.zeros(1, 1, i, i + 1)
    try:
        expected = tuple(F.avg_pool2d(x, k, s, p, ceil_mode=ceil_mode).shape[2:])
    except RuntimeError:
        with pytest.raises((ShapeError, ValueError)):
            pool_output_size((i, i + 1), k, s, p, 1, ceil_mode)
        return
    assert pool_output_size((i, i + 1), k, s, p, 1, ceil_mode) == expected


def test_pool_default_stride_is_kernel_size() -> None:
    assert pool_output_size(9, 3) == F.max_pool1d(torch.zeros(1, 1, 9), 3).shape[-1]


@pytest.mark.parametrize("i", [7, 8, 13])
@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("d", [1, 2])
def test_string_padding_matches_torch(i: int, k: int, d: int) -> None:
    for mode in ("same", "valid"):
        conv = torch.nn.Conv1d(1, 1, k, padding=mode, dilation=d)
        try:
            expected = conv(torch.zeros(1, 1, i)).shape[-1]
        except RuntimeError:
            with pytest.raises(ShapeError):
                conv_output_size(i, k, 1, mode, d)
            continue
        assert conv_output_size(i, k, 1, mode, d) == expected


@given(
    i=st.tuples(small, small, small),
    k=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)),
    s=st.integers(1, 3),
    p=st.integers(0, 2),
)
def test_3d_tuples_match_torch(i: tuple[int, int, int], k: tuple[int, int, int], s: int, p: int) -> None:
    expected = torch_conv_size(i, k, [s] * 3, [p] * 3, [1] * 3)
    if expected is None:
        with pytest.raises(ShapeError):
            conv_output_size(i, k, s, p)
    else:
        assert conv_output_size(i, k, s, p) == expected
    expected_t = torch_conv_transpose_size(i, k, [s] * 3, [p] * 3, [1] * 3, [0] * 3)
    if expected_t is not None:
        assert conv_transpose_output_size(i, k, s, p) == expected_t


def test_form_follows_input_form() -> None:
    assert isinstance(conv_output_size(8, 3), int)
    assert conv_output_size((8,), 3) == (6,)
    assert conv_output_size(8, (3, 3)) == (6, 6)


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"input_size": 0, "kernel_size": 3}, ValueError, "input_size must be >= 1, got 0"),
        ({"input_size": -4, "kernel_size": 3}, ValueError, "input_size must be >= 1"),
        ({"input_size": 8.0, "kernel_size": 3}, TypeError, "input_size must be an int, got 8.0"),
        ({"input_size": True, "kernel_size": 3}, TypeError, "input_size must be an int, got True"),
        ({"input_size": "8", "kernel_size": 3}, TypeError, "input_size must be an int"),
        ({"input_size": (8, 8), "kernel_size": (3, 3, 3)}, ValueError, "different lengths"),
        ({"input_size": 8, "kernel_size": 0}, ValueError, "kernel_size must be >= 1"),
        ({"input_size": 8, "kernel_size": 3, "stride": 0}, ValueError, "stride must be >= 1"),
        ({"input_size": 8, "kernel_size": 3, "padding": -1}, ValueError, "padding must be >= 0"),
        ({"input_size": 8, "kernel_size": 3, "padding": "full"}, ValueError, "'same' or 'valid'"),
        ({"input_size": 8, "kernel_size": 3, "stride": 2, "padding": "same"}, ValueError, "needs stride 1"),
        ({"input_size": 2, "kernel_size": 5}, ShapeError, "must be >= 1"),
    ],
)
def test_conv_output_size_errors(kwargs: dict[str, object], error: type[Exception], pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        conv_output_size(**kwargs)  # type: ignore[arg-type]


def test_invalid_output_padding_names_torch_rule() -> None:
    with pytest.raises(ValueError, match="smaller than stride"):
        conv_transpose_output_size(4, 3, stride=2, output_padding=2)


def test_pool_padding_rule() -> None:
    with pytest.raises(ValueError, match="half of kernel_size"):
        pool_output_size(8, 2, padding=2)
    with pytest.raises(TypeError, match="ceil_mode"):
        pool_output_size(8, 2, ceil_mode=1)  # type: ignore[arg-type]


# -- every "Fix:" of an empty output, followed literally and checked by torch ------------------------------------------

FIX = re.compile(r"\((\w+)=(\d+|\([\d, ]+\))\)")
BACK = {"input_size": -1, "padding": -1, "kernel_size": 1, "dilation": 1}  # one step back towards the original value
BACK_TRANSPOSED = {"input_size": -1, "padding": 1, "kernel_size": -1}


def fixes_in(message: str) -> list[tuple[str, Any]]:
    assert "Fix: " in message, message
    return [(name, ast.literal_eval(value)) for name, value in FIX.findall(message.split("Fix: ", 1)[1])]


def torch_runs(layer: str, kwargs: dict[str, Any]) -> bool:
    """Whether torch itself runs the layer on an input of that size (and gives a non-empty output)."""
    args = {name: list(value) if isinstance(value, tuple) else [value]
            for name, value in kwargs.items() if name != "ceil_mode"}
    i, k = args.pop("input_size"), args.pop("kernel_size")
    s, p, d = args.get("stride", [1]), args.get("padding", [0]), args.get("dilation", [1])
    n = max(len(v) for v in (i, k, s, p, d))
    i, k, s, p, d = ([v[0]] * n if len(v) == 1 else v for v in (i, k, s, p, d))
    if layer == "conv":
        return torch_conv_size(i, k, s, p, d) is not None
    if layer == "pool":
        try:
            F.max_pool1d(torch.zeros(1, 1, i[0]), k[0], s[0], p[0], d[0], ceil_mode=kwargs["ceil_mode"])
        except RuntimeError:
            return False
        return True
    op = args.get("output_padding", [0]) * (n if len(args.get("output_padding", [0])) == 1 else 1)
    return torch_conv_transpose_size(i, k, s, p, d, op) is not None


CALLS = {"conv": conv_output_size, "transposed": conv_transpose_output_size, "pool": pool_output_size,
         "range": conv_transpose_output_range}


@st.composite
def empty_layers(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    layer = draw(st.sampled_from(list(CALLS)))
    n = 1 if layer == "pool" else draw(st.integers(1, 2))

    def value(strategy: st.SearchStrategy[int]) -> int | tuple[int, ...]:
        return draw(strategy) if n == 1 else tuple(draw(strategy) for _ in range(n))

    kwargs: dict[str, Any] = {"input_size": value(st.integers(1, 6)), "kernel_size": value(st.integers(1, 9)),
                              "stride": draw(st.integers(1, 3)), "dilation": draw(st.integers(1, 3))}
    if layer == "pool":
        kwargs["padding"] = draw(st.integers(0, kwargs["kernel_size"] // 2))
        kwargs["ceil_mode"] = draw(st.booleans())
    else:
        kwargs["padding"] = value(st.integers(0, 12 if layer in ("transposed", "range") else 3))
    return layer, kwargs


@settings(max_examples=300)
@given(request=empty_layers())
def test_every_fix_of_an_empty_output_works_when_followed_and_is_the_nearest(request: tuple[str, dict]) -> None:
    layer, kwargs = request
    call = CALLS[layer]
    try:
        call(**kwargs)
    except ShapeError as error:
        fixes = fixes_in(str(error))
    else:
        return
    assert fixes
    torch_layer, widest = layer, {}
    if layer == "range":  # the largest output: the most output_padding torch allows
        torch_layer, widest = "transposed", {"output_padding": max(kwargs["stride"], kwargs["dilation"]) - 1}
    assert not torch_runs(torch_layer, {**kwargs, **widest})  # the refusal is torch's too
    for name, value in fixes:
        fixed = {**kwargs, name: value}
        call(**fixed)  # no error
        assert torch_runs(torch_layer, {**fixed, **widest}), (name, value)
        if isinstance(value, int) and isinstance(kwargs[name], int):  # one step back towards the original fails
            back = value + (BACK_TRANSPOSED if torch_layer == "transposed" else BACK)[name]
            if back != kwargs[name] and back >= 0:
                assert not torch_runs(torch_layer, {**kwargs, name: back, **widest}), (name, back)


def test_transposed_advice_is_less_padding() -> None:
    """The issue's case: more padding shrinks a transposed convolution's output, so the fix is less."""
    with pytest.raises(ShapeError, match=r"less padding \(padding=\d+\)") as caught:
        conv_transpose_output_size(4, 4, 2, 9)
    assert "more padding" not in str(caught.value)


def test_output_padding_fix_works_when_followed() -> None:
    with pytest.raises(ValueError, match="Fix: ") as caught:
        conv_transpose_output_size((4, 4), 3, stride=(2, 3), output_padding=(2, 2))
    fixed = ast.literal_eval(re.findall(r"Fix: use output_padding=(\(.*?\)|\d+)", str(caught.value))[0])
    assert conv_transpose_output_size((4, 4), 3, stride=(2, 3), output_padding=fixed)
    assert torch_conv_transpose_size([4, 4], [3, 3], [2, 3], [0, 0], [1, 1], list(fixed)) is not None


@given(total=st.integers(1, 720), current=st.lists(st.integers(1, 40), min_size=1, max_size=3))
def test_nearest_factors_is_the_nearest_split_by_brute_force(total: int, current: list[int]) -> None:
    def distance(sizes: tuple[int, ...]) -> float:
        return sum(math.log(a / b) ** 2 for a, b in zip(sizes, current))

    splits = [split for split in itertools.product(range(1, total + 1), repeat=len(current))
              if math.prod(split) == total] if len(current) < 3 else [
        (a, b, total // (a * b)) for a in range(1, total + 1) for b in range(1, total // a + 1) if total % (a * b) == 0]
    found = nearest_factors(total, current)
    assert found is not None and math.prod(found) == total and len(found) == len(current)
    assert distance(found) == pytest.approx(min(distance(split) for split in splits))
