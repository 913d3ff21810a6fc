"""The arithmetic functions against torch's own output sizes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from autoshape import (
    ShapeError,
    conv_output_size,
    conv_transpose_output_range,
    conv_transpose_output_size,
    pool_output_size,
)
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
