"""transpose_taps and overlap_map against torch's own transposed convolutions."""

from __future__ import annotations

import itertools
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given
from hypothesis import strategies as st

from autoshape import ShapeError, overlap_map, transpose_taps
from autoshape.diagnose.taps import interior_tap_counts

_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d}


def _torch_conv_transpose(x: torch.Tensor, w: torch.Tensor, s: tuple[int, ...], p: tuple[int, ...],
                          d: tuple[int, ...], op: tuple[int, ...]) -> torch.Tensor | None:
    """One channel in, one out; None where torch refuses the configuration."""
    try:
        out = _CONV_T[x.dim()](x[None, None], w[None, None], stride=s, padding=p, output_padding=op, dilation=d)
    except RuntimeError:
        return None
    return out[0, 0] if out.numel() else None


def _sum_over_taps(x: torch.Tensor, w: torch.Tensor, taps: Sequence[tuple[Any, Any]]) -> float:
    return sum(float(x[xi] * w[j]) for xi, j in taps)


def test_the_classic_4x4_example_gives_6_and_12_as_torch_does() -> None:
    x = torch.ones(4, 4)
    w = torch.arange(1.0, 17.0).reshape(4, 4)
    out = _torch_conv_transpose(x, w, (2, 2), (1, 1), (1, 1), (0, 0))
    assert out is not None
    layer = {"input_size": (4, 4), "kernel_size": 4, "stride": 2, "padding": 1}
    for index, expected in (((0, 0), 6.0), ((0, 1), 12.0)):
        assert float(out[index]) == expected
        assert _sum_over_taps(x, w, transpose_taps(index, **layer)) == expected
    assert transpose_taps((0, 1), **layer) == [((0, 1), (1, 0)), ((0, 0), (1, 2))]


configs_1d = st.tuples(st.integers(1, 6), st.integers(1, 5), st.integers(1, 4), st.integers(0, 4), st.integers(1, 3))


@given(config=configs_1d, op_choice=st.integers(0, 3), seed=st.integers(0, 2**16))
def test_taps_reproduce_torch_in_1d(config: tuple[int, ...], op_choice: int, seed: int) -> None:
    i, k, s, p, d = config
    op = op_choice % max(s, d)
    generator = torch.Generator().manual_seed(seed)
    x, w = torch.randn(i, generator=generator, dtype=torch.float64), torch.randn(k, generator=generator,
                                                                               dtype=torch.float64)
    out = _torch_conv_transpose(x, w, (s,), (p,), (d,), (op,))
    assume(out is not None)
    assert out is not None
    for o in range(out.shape[0]):
        taps = transpose_taps(o, input_size=i, kernel_size=k, stride=s, padding=p, dilation=d, output_padding=op)
        assert all(isinstance(xi, int) and isinstance(j, int) for xi, j in taps)
        assert _sum_over_taps(x, w, taps) == pytest.approx(float(out[o]), abs=1e-9)


per_dim = st.integers
configs_2d = st.tuples(
    st.tuples(per_dim(1, 4), per_dim(1, 4)), st.tuples(per_dim(1, 4), per_dim(1, 4)),
    st.tuples(per_dim(1, 3), per_dim(1, 3)), st.tuples(per_dim(0, 3), per_dim(0, 3)),
    st.tuples(per_dim(1, 2), per_dim(1, 2)), st.tuples(per_dim(0, 2), per_dim(0, 2)),
)


@given(config=configs_2d, seed=st.integers(0, 2**16))
def test_taps_reproduce_torch_in_2d(config: tuple[tuple[int, int], ...], seed: int) -> None:
    i, k, s, p, d, op_choice = config
    op = tuple(c % max(si, di) for c, si, di in zip(op_choice, s, d))
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(*i, generator=generator, dtype=torch.float64)
    w = torch.randn(*k, generator=generator, dtype=torch.float64)
    out = _torch_conv_transpose(x, w, s, p, d, op)
    assume(out is not None)
    assert out is not None
    for index in itertools.product(*(range(n) for n in out.shape)):
        taps = transpose_taps(index, input_size=i, kernel_size=k, stride=s, padding=p, dilation=d, output_padding=op)
        assert _sum_over_taps(x, w, taps) == pytest.approx(float(out[index]), abs=1e-9)


@given(config=configs_2d)
def test_overlap_map_is_torch_on_ones(config: tuple[tuple[int, int], ...]) -> None:
    i, k, s, p, d, op_choice = config
    op = tuple(c % max(si, di) for c, si, di in zip(op_choice, s, d))
    out = _torch_conv_transpose(torch.ones(*i), torch.ones(*k), s, p, d, op)
    assume(out is not None)
    assert out is not None
    counts = overlap_map(input_size=i, kernel_size=k, stride=s, padding=p, dilation=d, output_padding=op)
    assert counts.size == tuple(out.shape)
    assert counts.counts == out.int().tolist()
    assert counts[tuple(n - 1 for n in counts.size)] == int(out[-1, -1])


@given(k=st.integers(1, 7), s=st.integers(1, 4), d=st.integers(1, 3))
def test_interior_tap_counts_are_the_middle_of_torchs_overlap(k: int, s: int, d: int) -> None:
    reach = d * (k - 1)
    i = reach + s + 2  # long enough for a full period of outputs that every kernel index reaches
    out = _torch_conv_transpose(torch.ones(i), torch.ones(k), (s,), (0,), (d,), (0,))
    assert out is not None
    assert interior_tap_counts(k, s, d) == tuple(int(c) for c in out[reach:reach + s])
    if d == 1:
        assert (len(set(interior_tap_counts(k, s))) == 1) == (k % s == 0)


def test_text_rendering_is_the_counts() -> None:
    flat = overlap_map(input_size=5, kernel_size=3, stride=2)
    assert [int(c) for c in str(flat).split()] == flat.counts
    grid = overlap_map(input_size=(3, 4), kernel_size=(3, 4), stride=(2, 3), padding=1)
    assert [[int(c) for c in line.split()] for line in str(grid).splitlines()] == grid.counts
    wide = overlap_map(input_size=(3, 3), kernel_size=8, stride=2)  # counts up to 16: columns stay aligned
    assert len({len(line) for line in str(wide).splitlines()}) == 1
    cube = overlap_map(input_size=(2, 2, 2), kernel_size=3, stride=2)
    blocks = str(cube).split("\n\n")
    assert len(blocks) == cube.size[0] and blocks[1].startswith("[1, :, :]")


def test_png_when_matplotlib_is_installed(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    path = tmp_path / "overlap.png"
    overlap_map(input_size=(4, 4), kernel_size=3, stride=2, padding=1).save_png(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    overlap_map(input_size=6, kernel_size=3, stride=2).save_png(tmp_path / "row.png")
    assert (tmp_path / "row.png").stat().st_size > 0
    with pytest.raises(ValueError, match="1-d and 2-d"):
        overlap_map(input_size=(2, 2, 2), kernel_size=2).save_png(tmp_path / "cube.png")


def test_png_without_matplotlib_says_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        overlap_map(input_size=4, kernel_size=3, stride=2).save_png(tmp_path / "x.png")


@pytest.mark.parametrize(("call", "error", "pattern"), [
    (lambda: transpose_taps(14, input_size=6, kernel_size=3, stride=2), ValueError, r"from 0 to 12 .*=12\.$"),
    (lambda: transpose_taps(-1, input_size=6, kernel_size=3), ValueError, r"output_index must be >= 0"),
    (lambda: transpose_taps((0, 0), input_size=(4, 4, 4), kernel_size=3), ValueError, r"different lengths"),
    (lambda: transpose_taps(0, input_size=4, kernel_size=0), ValueError, r"kernel_size must be >= 1"),
    (lambda: transpose_taps(0.5, input_size=4, kernel_size=3), TypeError, r"output_index must be an int"),
    (lambda: transpose_taps(0, input_size=1, kernel_size=1, padding=1), ShapeError, r"must be >= 1"),
    (lambda: overlap_map(input_size=4, kernel_size=3, stride=2, output_padding=2), ValueError, r"output_padding"),
    (lambda: overlap_map(input_size=1, kernel_size=1, padding=1), ShapeError, r"must be >= 1"),
])
def test_bad_arguments_are_named(call: Callable[[], object], error: type[Exception], pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        call()


@given(config=configs_1d, op_choice=st.integers(0, 3), past=st.integers(0, 3))
def test_an_index_past_torchs_output_is_refused_and_the_fixes_work(config: tuple[int, ...], op_choice: int,
                                                                   past: int) -> None:
    i, k, s, p, d = config
    op = op_choice % max(s, d)
    layer = {"input_size": i, "kernel_size": k, "stride": s, "padding": p, "dilation": d}
    out = _torch_conv_transpose(torch.ones(i), torch.ones(k), (s,), (p,), (d,), (op,))
    assume(out is not None)
    assert out is not None
    index = out.shape[0] + past  # one past torch's last output, or further
    with pytest.raises(ValueError, match=rf"outside the output: indices run from 0 to {out.shape[0] - 1} ") as caught:
        transpose_taps(index, **layer, output_padding=op)
    fix = str(caught.value).split("Fix: ", 1)[1]
    last = re.match(r"use output_index=(\d+)", fix)
    assert last is not None and int(last.group(1)) == out.shape[0] - 1
    assert len(transpose_taps(int(last.group(1)), **layer, output_padding=op)) == int(out[-1])
    uncovered = re.search(r"output_padding=(\d+)", fix)
    more = _torch_conv_transpose(torch.ones(i), torch.ones(k), (s,), (p,), (d,), (op + past + 1,))
    assert (uncovered is not None) == (op + past + 1 < max(s, d) and more is not None)  # torch allows it, or no fix
    if uncovered:
        bigger = int(uncovered.group(1))
        grown = _torch_conv_transpose(torch.ones(i), torch.ones(k), (s,), (p,), (d,), (bigger,))
        assert grown is not None and grown.shape[0] > index
        assert len(transpose_taps(index, **layer, output_padding=bigger)) == int(grown[index])


def test_the_reported_index_11_of_a_6_to_11_layer() -> None:
    layer = {"input_size": 6, "kernel_size": 3, "stride": 2, "padding": 1}
    assert F.conv_transpose1d(torch.ones(1, 1, 6), torch.ones(1, 1, 3), stride=2, padding=1).shape[-1] == 11
    with pytest.raises(ValueError, match=r"indices run from 0 to 10 .* Fix: use output_index=10, or "
                                         r"output_padding=1 \(the output then has size 12") as caught:
        transpose_taps(11, **layer)  # used to answer [(5, 2)], an output torch does not have
    assert "output_padding=1" in str(caught.value)
    out = F.conv_transpose1d(torch.ones(1, 1, 6), torch.ones(1, 1, 3), stride=2, padding=1, output_padding=1)
    assert out.shape[-1] == 12 and len(transpose_taps(11, **layer, output_padding=1)) == int(out[0, 0, 11])
