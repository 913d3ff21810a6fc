"""explain against real forwards: every row's shapes and every substituted formula, evaluated."""

from __future__ import annotations

import json
import math
import re
import time

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given
from hypothesis import strategies as st
from torch import nn

from autoshape import ExplainRow, Explanation, TargetConv2d, explain

# --- ground truth: shapes from a real forward, formulas evaluated as Python ---------------------


def real_calls(model: nn.Module, input_shape: tuple[int, ...]) -> list[tuple[str, tuple[int, ...], tuple[int, ...]]]:
    """(name, input shape, output shape) of every leaf call in a real CPU forward on zeros."""
    calls = []
    leaves = [(name, m) for name, m in model.named_modules() if next(m.children(), None) is None]
    handles = [m.register_forward_hook(lambda m, a, o, name=name: calls.append((name, tuple(a[0].shape),
                                                                                tuple(o.shape))))
               for name, m in leaves]
    with torch.no_grad():
        model.eval()(torch.zeros(input_shape))
    for handle in handles:
        handle.remove()
    return calls


_PART = re.compile(r"^(?P<dims>[A-Z](?:, [A-Z])*): (?P<expr>.+) = (?P<value>\d+)(?: \(.*\))?$")
_ARITHMETIC = {"·": "*", "⌊": "math.floor(", "⌋": ")", "⌈": "math.ceil(", "⌉": ")"}


def evaluate(formula: str) -> dict[str, int]:
    """Each dimension's stated value; arithmetic expressions are evaluated and must agree with it."""
    values = {}
    for part in formula.split("; "):
        match = _PART.match(part)
        assert match, f"unparsable formula part {part!r}"
        value = int(match["value"])
        expression = match["expr"]
        if re.fullmatch(r"[\d\s()+\-·/.⌊⌋⌈⌉]+", expression):
            python = "".join(_ARITHMETIC.get(c, c) for c in expression)
            assert eval(python, {"math": math}) == value, f"{expression} does not evaluate to {value}"
        for dim in match["dims"].split(", "):
            values[dim] = value
    return values


def assert_matches_real_torch(model: nn.Module, input_shape: tuple[int, ...]) -> Explanation:
    """Module rows are the real forward's leaf calls; torch-call rows are checked in test_functional_rows."""
    explanation = explain(model, input_shape)
    real = real_calls(model, input_shape)
    assert [(r.name, r.input_shape, r.output_shape) for r in explanation if r.module is not None] == real
    for row in explanation:
        if row.formula is not None:
            stated = evaluate(row.formula)
            assert row.output_shape is not None
            assert tuple(stated.values()) == row.output_shape[-len(stated):], row.formula
    return explanation


# --- widely copied networks, re-typed -----------------------------------------------------------


class MnistGenerator(nn.Module):
    """The widely copied (conditional) GAN generator for MNIST: noise vector → 1×1 → 3 → 6 → 13 → 28.

    As in the copies that prompt the question, ``make_gen_block`` takes a padding it never passes on:
    every transposed conv runs with padding 0.
    """

    def __init__(self, z_dim: int = 10, im_chan: int = 1, hidden_dim: int = 64) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.gen = nn.Sequential(
            self.make_gen_block(z_dim, hidden_dim * 4),
            self.make_gen_block(hidden_dim * 4, hidden_dim * 2, kernel_size=4, stride=1),
            self.make_gen_block(hidden_dim * 2, hidden_dim),
            self.make_gen_block(hidden_dim, im_chan, kernel_size=4, final_layer=True),
        )

    def make_gen_block(self, input_channels: int, output_channels: int, kernel_size: int = 3, stride: int = 2,
                       padding: int = 1, final_layer: bool = False) -> nn.Sequential:
        if not final_layer:
            return nn.Sequential(nn.ConvTranspose2d(input_channels, output_channels, kernel_size, stride),
                                 nn.BatchNorm2d(output_channels), nn.ReLU(inplace=True))
        return nn.Sequential(nn.ConvTranspose2d(input_channels, output_channels, kernel_size, stride), nn.Tanh())

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        return self.gen(noise.view(len(noise), self.z_dim, 1, 1))  # type: ignore[no-any-return]


def generator_5_12_26_28() -> nn.Sequential:
    """The other common MNIST generator: 1×1 → 5 → 12 → 26 → 28 with kernels 5, 4, 4, 3."""
    return nn.Sequential(
        nn.ConvTranspose2d(100, 256, 5, 1), nn.BatchNorm2d(256), nn.ReLU(True),
        nn.ConvTranspose2d(256, 128, 4, 2), nn.BatchNorm2d(128), nn.ReLU(True),
        nn.ConvTranspose2d(128, 64, 4, 2), nn.BatchNorm2d(64), nn.ReLU(True),
        nn.ConvTranspose2d(64, 1, 3, 1), nn.Tanh(),
    )


def autoencoder(output_padding: int = 0) -> nn.Sequential:
    """The 24 → 12 → 23 question: a stride-2 conv and its 'mirror' transposed conv."""
    return nn.Sequential(nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.ReLU(),
                         nn.ConvTranspose2d(16, 1, 3, stride=2, padding=1, output_padding=output_padding))


def _transposed_rows(explanation: Explanation) -> list[ExplainRow]:
    return [row for row in explanation if isinstance(row.module, nn.ConvTranspose2d)]


def test_mnist_generator_rows_and_formulas() -> None:
    explanation = assert_matches_real_torch(MnistGenerator(), (2, 10))
    rows = _transposed_rows(explanation)
    assert [row.output_shape for row in rows] == [(2, 256, 3, 3), (2, 128, 6, 6), (2, 64, 13, 13), (2, 1, 28, 28)]
    assert [row.formula for row in rows] == [
        "H, W: (1-1)·2 - 2·0 + 1·(3-1) + 0 + 1 = 3",
        "H, W: (3-1)·1 - 2·0 + 1·(4-1) + 0 + 1 = 6",
        "H, W: (6-1)·2 - 2·0 + 1·(3-1) + 0 + 1 = 13",
        "H, W: (13-1)·2 - 2·0 + 1·(4-1) + 0 + 1 = 28",
    ]
    assert [row.name for row in rows] == ["gen.0.0", "gen.1.0", "gen.2.0", "gen.3.0"]
    assert all(row.formula is None for row in explanation if not isinstance(row.module, nn.ConvTranspose2d))
    checkerboard = [note for note in explanation.notes if "checkerboard" in note]
    assert [note.split()[0] for note in checkerboard] == ["'gen.0.0'", "'gen.2.0'"]  # the k3 s2 blocks only
    assert len(explanation.notes) == 2


def test_generator_5_12_26_28() -> None:
    explanation = assert_matches_real_torch(generator_5_12_26_28(), (1, 100, 1, 1))
    rows = _transposed_rows(explanation)
    assert [row.output_shape[-1] for row in rows if row.output_shape] == [5, 12, 26, 28]
    assert [row.formula for row in rows] == [
        "H, W: (1-1)·1 - 2·0 + 1·(5-1) + 0 + 1 = 5",
        "H, W: (5-1)·2 - 2·0 + 1·(4-1) + 0 + 1 = 12",
        "H, W: (12-1)·2 - 2·0 + 1·(4-1) + 0 + 1 = 26",
        "H, W: (26-1)·1 - 2·0 + 1·(3-1) + 0 + 1 = 28",
    ]
    assert explanation.notes == ()  # kernels divisible by their strides; nothing to restore
    assert explanation.output_shape == (1, 1, 28, 28)


def _sizes_note(note: str) -> bool:
    """A note about an output_padding that would restore a size (not the checkerboard note's replacement)."""
    return "output_padding" in note and "checkerboard" not in note


def test_23_instead_of_24_names_the_output_padding_that_restores_it() -> None:
    explanation = assert_matches_real_torch(autoencoder(), (1, 1, 24, 24))
    assert explanation[2].formula == "H, W: (12-1)·2 - 2·1 + 1·(3-1) + 0 + 1 = 23"
    (note,) = [note for note in explanation.notes if "output_padding=1 would give 24×24" in note]
    assert "the input of '0'" in note and "TargetConvTranspose2d(..., output_size=24)" in note
    fixed = nn.Sequential(*autoencoder(output_padding=1))
    assert [note for note in explain(fixed, (1, 1, 24, 24)).notes if _sizes_note(note)] == []
    assert real_calls(fixed, (1, 1, 24, 24))[-1][2] == (1, 1, 24, 24)  # the note's advice, checked in torch


def test_no_output_padding_note_when_the_size_is_already_restored_or_out_of_reach() -> None:
    unet_like = nn.Sequential(nn.Conv2d(1, 4, 4, 2, 1), nn.ConvTranspose2d(4, 1, 4, 2, 1))  # 24 → 12 → 24
    assert explain(unet_like, (1, 1, 24, 24)).notes == ()
    far = nn.Sequential(nn.Conv2d(1, 4, 3, 4), nn.ConvTranspose2d(4, 1, 3, 2))  # 25 → 6 → 13; 25 out of reach
    assert [note for note in explain(far, (1, 1, 25, 25)).notes if _sizes_note(note)] == []


class SkipDecoder(nn.Module):
    """A U-Net step that passes the skip's size to the transposed conv's forward."""

    def __init__(self) -> None:
        super().__init__()
        self.down = nn.Conv2d(1, 4, 3, stride=2, padding=1)
        self.up = nn.ConvTranspose2d(4, 1, 4, stride=2, padding=1, dilation=1)
        self.odd = nn.ConvTranspose2d(4, 1, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.down(x)
        return self.odd(h, output_size=x.shape[-2:]) + self.up(h)[..., :x.shape[-2], :x.shape[-1]]


def test_output_padding_chosen_by_forward_is_the_one_in_the_formula() -> None:
    explanation = assert_matches_real_torch(SkipDecoder(), (1, 1, 24, 24))
    odd = next(row for row in explanation if row.name == "odd")
    assert odd.formula == "H, W: (12-1)·2 - 2·1 + 1·(3-1) + 1 + 1 = 24"
    assert any("'odd' ConvTranspose2d: its forward used output_padding 1 instead of the module's 0" in note
               for note in explanation.notes)


class PaddedConv(nn.Conv2d):
    """A conv whose forward pads by itself (as 'same'-padding wrappers do): torch's rule no longer holds."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (2, 2, 2, 2)))


def test_a_forward_that_breaks_the_rule_gets_a_note_not_a_wrong_formula() -> None:
    explanation = assert_matches_real_torch(nn.Sequential(PaddedConv(1, 1, 3)), (1, 1, 10, 10))
    assert explanation[0].output_shape == (1, 1, 12, 12)
    assert explanation[0].formula is None
    assert "the standard size rule gives 8×8 but its forward produced 12×12" in explanation.notes[0]


LAYERS = [
    (nn.Conv2d(2, 2, 3, stride=2, padding=1, dilation=2), (1, 2, 17, 12)),
    (nn.Conv2d(2, 2, (3, 4), padding="same", dilation=(1, 2)), (1, 2, 9, 10)),
    (nn.Conv1d(2, 2, 5, padding="valid"), (1, 2, 11)),
    (nn.ConvTranspose3d(1, 1, (3, 4, 2), stride=(2, 3, 1), padding=(1, 0, 1), output_padding=(1, 2, 0)),
     (1, 1, 3, 4, 5)),
    (nn.MaxPool1d(2, stride=2, padding=1, ceil_mode=True), (1, 1, 5)),  # torch drops the last window
    (nn.MaxPool2d(3, stride=2, dilation=2, ceil_mode=True), (1, 1, 14, 15)),
    (nn.AvgPool2d((2, 3), stride=(2, 2), padding=1, ceil_mode=True), (1, 1, 7, 8)),
    (nn.AvgPool3d(2), (1, 1, 5, 6, 7)),
    (nn.LPPool1d(2, 3, stride=2, ceil_mode=True), (1, 1, 8)),
    (nn.AdaptiveAvgPool2d((None, 3)), (1, 1, 9, 10)),
    (nn.AdaptiveMaxPool1d(4), (1, 1, 11)),
    (nn.AdaptiveAvgPool3d(2), (1, 1, 5, 6, 7)),
    (nn.Upsample(scale_factor=2.5), (1, 1, 3, 5)),
    (nn.Upsample(scale_factor=1 / 3), (1, 1, 3, 9)),  # the scale is shown exactly: ⌊9·0.333…⌋ = 3
    (nn.Upsample(scale_factor=(1.5, 3.0), mode="bilinear"), (1, 1, 5, 3)),
    (nn.Upsample(size=(7, 9)), (1, 1, 3, 4)),
    (nn.UpsamplingNearest2d(scale_factor=2), (1, 1, 3, 4)),
    (nn.Upsample(size=10, mode="linear"), (1, 1, 3)),
    (nn.ZeroPad2d((1, 2, 0, -1)), (1, 1, 5, 5)),
    (nn.ReflectionPad1d((2, 1)), (1, 1, 6)),
    (nn.ReplicationPad3d(1), (1, 1, 2, 3, 4)),
    (nn.CircularPad2d((1, 0, 2, 1)), (1, 1, 4, 4)),
    (nn.ConstantPad1d(3, 0.5), (1, 1, 6)),
    (nn.PixelShuffle(2), (1, 8, 3, 5)),
    (nn.PixelUnshuffle(3), (1, 1, 6, 9)),
]


@pytest.mark.parametrize(("layer", "input_shape"), LAYERS, ids=lambda v: type(v).__name__ if isinstance(v, nn.Module)
                         else "x".join(map(str, v)))
def test_every_formula_family_agrees_with_torch(layer: nn.Module, input_shape: tuple[int, ...]) -> None:
    explanation = assert_matches_real_torch(nn.Sequential(layer), input_shape)
    assert explanation[0].formula is not None


def test_ceil_mode_formula_shows_the_dropped_window() -> None:
    (row,) = explain(nn.MaxPool1d(2, stride=2, padding=1, ceil_mode=True), (1, 1, 5))
    assert row.formula == ("L: ⌈(5 + 2·1 - 1·(2-1) - 1) / 2⌉ + 1 - 1 = 3 "
                           "(ceil_mode drops a last window starting in the padding)")


def test_shape_preserving_layers_have_no_formula() -> None:
    model = nn.Sequential(nn.BatchNorm2d(2), nn.ReLU(), nn.Dropout2d(), nn.Identity(), nn.Flatten(), nn.Linear(18, 4))
    explanation = assert_matches_real_torch(model, (1, 2, 3, 3))
    assert [row.formula for row in explanation] == [None] * 6


conv_configs = st.tuples(st.integers(1, 14), st.integers(1, 5), st.integers(1, 4), st.integers(0, 3),
                         st.integers(1, 3))


@given(config=conv_configs, kind=st.sampled_from(["conv", "transpose", "max", "avg"]), ceil_mode=st.booleans(),
       op=st.integers(0, 3))
def test_random_layers_formulas_match_torch(config: tuple[int, ...], kind: str, ceil_mode: bool, op: int) -> None:
    i, k, s, p, d = config
    layer: nn.Module
    if kind == "conv":
        layer = nn.Conv1d(1, 1, k, s, p, d)
    elif kind == "transpose":
        layer = nn.ConvTranspose1d(1, 1, k, s, p, op % max(s, d), dilation=d)
    elif kind == "max":
        assume(2 * p <= k)
        layer = nn.MaxPool1d(k, s, p, d, ceil_mode=ceil_mode)
    else:
        assume(2 * p <= k)
        layer = nn.AvgPool1d(k, s, p, ceil_mode=ceil_mode)
    try:
        real_calls(layer, (1, 1, i))
    except RuntimeError:
        assume(False)  # torch refuses this configuration (output size < 1)
    assert_matches_real_torch(layer, (1, 1, i))


def test_3d_model_on_512_cubed_is_traced_on_meta() -> None:
    model = nn.Sequential(nn.Conv3d(1, 8, 3, 2, 1), nn.ReLU(), nn.Conv3d(8, 8, 3, 2, 1), nn.ConvTranspose3d(8, 1, 4, 4))
    start = time.perf_counter()
    explanation = explain(model, (1, 1, 512, 512, 512))
    elapsed = time.perf_counter() - start
    assert explanation.on_meta
    assert explanation.output_shape == (1, 1, 512, 512, 512)
    assert explanation[2].formula == "D, H, W: ⌊(256 + 2·1 - 1·(3-1) - 1) / 2⌋ + 1 = 128"
    assert elapsed < 5.0  # a real forward would take minutes and gigabytes; meta takes milliseconds


class DataDependent(nn.Module):
    """A forward that branches on values: impossible on meta tensors."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x if bool(x.sum() >= 0) else -x)


def test_model_that_cannot_run_on_meta_falls_back_with_a_warning() -> None:
    with pytest.warns(RuntimeWarning, match="meta") as warned:
        explanation = explain(DataDependent(), (1, 1, 9, 9))
    assert [w.filename for w in warned] == [__file__]  # the user's line, not autoshape's
    assert not explanation.on_meta
    conv = next(row for row in explanation if row.call == "Conv2d")
    assert conv.formula == "H, W: ⌊(9 + 2·0 - 1·(3-1) - 1) / 2⌋ + 1 = 4"
    assert "real forward" in explanation.notes[-1]


def test_a_lazy_module_is_named_and_the_forward_its_error_asks_for_lets_explain_run() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.LazyLinear(10))
    with pytest.raises(ValueError, match=r"\('2' LazyLinear\).*Fix: run the model once first, "
                                         r"model\(torch\.zeros\(1, 3, 8, 8\)\) \(it sets the lazy layers up even"):
        explain(model, (1, 3, 8, 8))
    model(torch.zeros(1, 3, 8, 8))  # as the fix says
    assert explain(model, (1, 3, 8, 8)).output_shape == (1, 10)
    broken = nn.Sequential(nn.LazyConv2d(8, 3), nn.Flatten(), nn.Linear(100, 10))  # its forward fails later
    with pytest.raises(RuntimeError, match="mat1 and mat2"):
        broken(torch.zeros(2, 3, 28, 28))  # the fix, followed: it fails, and sets the lazy conv up all the same
    assert explain(broken, (2, 3, 28, 28)).failure is not None  # now explained: the Linear's fix is named


def test_explanation_is_a_sequence_with_an_aligned_table_and_json() -> None:
    explanation = explain(autoencoder(), torch.zeros(1, 1, 24, 24))  # an example tensor works too
    assert len(explanation) == 3 and explanation[-1] is explanation.rows[-1]
    assert list(explanation[1:]) == list(explanation.rows[1:]) == [row for row in explanation][1:]
    table = str(explanation).split("\n\n")[0].splitlines()
    header = table[0]
    for column in ("module", "input", "output", "formula"):
        start = header.index(column)
        cells = [(line, value) for line, value in zip(table[1:], _column(explanation, column)) if value]
        assert cells
        for line, value in cells:
            assert line[start - 2:start] == "  " and line[start:].startswith(value), (column, line)
    assert str(explanation).split("\n\nnotes:\n")[1].count("\n- ") == len(explanation.notes) - 1
    data = json.loads(json.dumps(explanation.to_dict()))
    assert data["rows"][2] == {"name": "2", "module": "ConvTranspose2d", "input_shape": [1, 16, 12, 12],
                               "output_shape": [1, 1, 23, 23], "formula": explanation[2].formula}
    assert data["output_shape"] == [1, 1, 23, 23] and data["on_meta"] is True


def _column(explanation: Explanation, column: str) -> list[str]:
    def shape(s: tuple[int, ...] | None) -> str:
        return "×".join(map(str, s or ()))
    return [{"module": type(r.module).__name__, "input": shape(r.input_shape), "output": shape(r.output_shape),
             "formula": r.formula or ""}[column] for r in explanation]


def test_errors() -> None:
    with pytest.raises(TypeError, match=r"nn\.Module"):
        explain("model", (1, 3, 8, 8))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="input_shape"):
        explain(nn.Conv2d(1, 1, 3), (1, 1, 0, 8))



def test_a_failing_forward_is_explained_not_raised() -> None:
    failure = explain(nn.Sequential(nn.Flatten(), nn.Linear(10, 2)), (1, 1, 3, 3)).failure
    assert failure is not None and (failure.path, failure.call, failure.input_shapes) == ("1", "Linear", ((1, 9),))
    target = explain(nn.Sequential(TargetConv2d(1, 1, input_size=24, output_size=12)), (1, 1, 25, 25)).failure
    assert target is not None and target.path == "0" and "was built for input size" in target.message


class ConvReluPoolConv(nn.Module):
    """Classic code: the activation and the pooling are torch calls in ``forward``, not modules."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(8, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.max_pool2d(F.relu(self.conv1(x)), 2))


def test_functional_rows() -> None:
    """Each torch call between modules is a row of its own, with real torch's shapes; ``F.max_pool2d``
    gets ``nn.MaxPool2d``'s formula, whose value is what real torch gives."""
    model, shape = ConvReluPoolConv(), (2, 3, 29, 31)
    explanation = explain(model, shape)
    with torch.no_grad():
        x = torch.zeros(shape)
        a = model.conv1(x)
        r = F.relu(a)
        p = F.max_pool2d(r, 2)
        b = model.conv2(p)
    expected = [("conv1", "Conv2d", x, a), ("", "F.relu", a, r), ("", "F.max_pool2d", r, p), ("conv2", "Conv2d", p, b)]
    assert [(row.name, row.call, row.input_shape, row.output_shape) for row in explanation] == [
        (name, call, tuple(i.shape), tuple(o.shape)) for name, call, i, o in expected]
    pool = next(row for row in explanation if row.call == "F.max_pool2d")
    assert pool.formula is not None and tuple(evaluate(pool.formula).values()) == tuple(p.shape[2:])
    assert "F.relu" in str(explanation).splitlines()[2]
