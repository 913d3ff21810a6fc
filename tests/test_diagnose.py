"""explain's failures and notes, followed literally: each fix and note is applied as written to the model
(attributes set, weights reshaped), and real torch must then run it and give the size it promised."""

from __future__ import annotations

import ast
import contextlib
import copy
import itertools
import re
from typing import Any

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F

from autoshape import ShapeError, explain, fix
from tests import architectures as arch
from tests.test_fix import LeNetView, outputs_of, real_output, small_unet

_PARAMS = r"((?:\w+=(?:\([\d, ]+\)|\d+)(?:, )?)+)"
_PASS = re.compile(rf"pass {_PARAMS} to '([^']*)'")
_BUILD = re.compile(rf"build '([^']*)' \w+ with {_PARAMS}")


def _values(text: str) -> dict[str, Any]:
    return {name: ast.literal_eval(value) for name, value in re.findall(r"(\w+)=(\([\d, ]+\)|\d+)", text)}


def _set(module: Any, params: dict[str, Any]) -> None:
    """Set the constructor arguments on the layer and give it a weight of the shape they imply."""
    for name, value in params.items():
        n = len(getattr(module, "kernel_size", ()))
        setattr(module, name, value if isinstance(value, tuple) or name.startswith("in_") else (value,) * n)
    if isinstance(module, nn.Linear):
        module.weight = nn.Parameter(torch.zeros(module.out_features, module.in_features))
    elif {"kernel_size", "in_channels"} & set(params):
        transposed = isinstance(module, nn.modules.conv._ConvTransposeNd)
        channels = (module.in_channels, module.out_channels // module.groups) if transposed else (
            module.out_channels, module.in_channels // module.groups)
        module.weight = nn.Parameter(torch.zeros(*channels, *module.kernel_size))


def followed(model: nn.Module, text: str) -> nn.Module:
    """A copy of ``model`` with every ``pass X to 'path'`` and ``build 'path' ... with X`` in ``text`` done."""
    model = copy.deepcopy(model)
    changes = [(path, params) for params, path in _PASS.findall(text)] + _BUILD.findall(text)
    assert changes, text
    for path, params in changes:
        _set(model.get_submodule(path if path != "(model)" else ""), _values(params))
    return model


# --- a failing forward -------------------------------------------------------------------------

def classifier() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(8 * 13 * 13, 10))


def test_a_crash_keeps_the_rows_up_to_it_and_says_where_on_what_and_how_to_fix_it() -> None:
    explanation = explain(classifier(), (2, 1, 28, 28))
    assert [(row.name, row.output_shape) for row in explanation] == [
        ("0", (2, 8, 28, 28)), ("1", (2, 8, 28, 28)), ("2", (2, 8, 14, 14)), ("3", (2, 1568)), ("4", None)]
    failure = explanation.failure
    assert failure is not None and explanation.output_shape is None
    assert (failure.path, failure.call, failure.input_shapes) == ("4", "Linear", ((2, 1568),))
    assert "mat1 and mat2 shapes cannot be multiplied (2x1568 and 1352x10)" in failure.message
    assert failure.fix == ("build '4' Linear with in_features=1568 (= 8·14·14, the size of 2×8×14×14 flattened): "
                           "nn.Linear(1568, 10)")
    text = str(explanation)
    table, failed, fix = text.index("layer  module"), text.index("\n\nfailed: '4' Linear on 2×1568: "), \
        text.index("\nfix: build '4' Linear")
    assert table < failed < fix
    assert real_output(followed(classifier(), failure.fix), (2, 1, 28, 28)) == (2, 10)


def test_the_conv_in_channels_fix_followed_literally_runs() -> None:
    model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(3, 16, 3))
    failure = explain(model, (1, 3, 8, 8)).failure
    assert failure is not None and failure.fix is not None
    assert failure.fix.startswith("build '2' Conv2d with in_channels=32, the channels of its input 1×32×8×8")
    assert real_output(followed(model, failure.fix), (1, 3, 8, 8)) == (1, 16, 6, 6)


@pytest.mark.parametrize("shape", [(24, 24), (1, 1, 3, 24, 24)])
def test_an_input_of_another_rank_is_told_the_shape_the_conv_takes_and_that_followed_runs(
        shape: tuple[int, ...]) -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.ConvTranspose2d(8, 3, 3, 2, 1))
    with pytest.raises(RuntimeError, match="Expected 3D"):
        real_output(model, shape)
    failure = explain(model, shape).failure
    assert failure is not None and failure.fix == (
        f"'0' Conv2d takes (N, C, H, W) or (C, H, W) and got {'×'.join(map(str, shape))}, {len(shape)} dimensions: "
        "give the model an input of shape (1, 3, 24, 24)")  # not in_channels: no Conv2d takes a 2-d input
    assert real_output(model, (1, 3, 24, 24)) == (1, 3, 23, 23)


def test_an_input_smaller_than_the_kernel_gets_the_padding_or_the_input_that_runs() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 5))
    with pytest.raises(RuntimeError, match="Kernel size can't be greater than actual input size"):
        real_output(model, (1, 3, 3, 3))
    failure = explain(model, (1, 3, 3, 3)).failure
    assert failure is not None and failure.fix == (
        "it gives no output for 3×3: pass padding=1 to '0' Conv2d, or give the model an input of at least 1×3×5×5")
    assert real_output(followed(model, failure.fix), (1, 3, 3, 3)) == (1, 4, 1, 1)
    assert real_output(model, (1, 3, 5, 5)) == (1, 4, 1, 1)  # the other way, followed
    deeper = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Conv2d(4, 4, 5))  # the model's input, not the inner layer's
    failure = explain(deeper, (1, 1, 5, 5)).failure
    assert failure is not None and failure.fix is not None and failure.fix.endswith(
        "or give the model an input of at least 1×1×7×7")
    assert real_output(deeper, (1, 1, 7, 7)) == (1, 4, 1, 1)
    with pytest.raises(RuntimeError):
        real_output(deeper, (1, 1, 6, 6))
    cropped = nn.Sequential(nn.Conv2d(3, 3, 1), nn.ConvTranspose2d(3, 4, 1, padding=2))
    failure = explain(cropped, (1, 3, 3, 3)).failure
    assert failure is not None and failure.fix == "it gives no output for 3×3: pass padding=0 to '1' ConvTranspose2d"
    assert real_output(followed(cropped, failure.fix), (1, 3, 3, 3)) == (1, 4, 3, 3)


def test_the_unet_cat_fix_at_101x67_followed_literally_runs_and_keeps_the_skips() -> None:
    model = small_unet()
    failure = explain(model, (1, 3, 101, 67)).failure
    assert failure is not None and (failure.path, failure.call) == ("", "torch.cat")
    assert failure.input_shapes == ((1, 32, 25, 16), (1, 32, 24, 16))
    assert failure.fix is not None and failure.fix.startswith(
        "'encoder.2.1.5' ReLU gives 1×32×25×16 and 'ups.1' ConvTranspose2d gives 1×32×24×16: pass "
        "output_padding=(1, 0) to 'ups.1' ConvTranspose2d (or call it with output_size=...) so that both are 25×16. "
        "The rest of the forward then needs: ")
    skips = [f"encoder.{n}" for n in range(4)]
    patched = followed(model, failure.fix)
    assert real_output(patched, (1, 3, 101, 67)) == (1, 2, 101, 67)
    assert outputs_of(patched, (1, 3, 101, 67), skips) == outputs_of(model, (1, 3, 101, 67), skips)


def test_the_fix_through_a_residual_unit_is_whole_and_followed_literally_runs() -> None:
    nets = pytest.importorskip("monai.networks.nets")
    model = nets.UNet(2, 1, 2, channels=(4, 8, 16), strides=(2, 2), num_res_units=1)
    failure = explain(model, (1, 1, 37, 29)).failure
    assert failure is not None and failure.fix is not None
    assert failure.fix.endswith("pass output_padding=0 to 'model.1.submodule.2.0.conv' ConvTranspose2d (or call it "
                                "with output_size=...) so that both are 19×15")  # no "found no fix for the whole"
    assert real_output(followed(model, failure.fix), (1, 1, 37, 29)) == (1, 2, 38, 30)


class _Branches(nn.Module):
    """A skip concatenated with a branch that downsamples and comes back through ``up`` and an activation."""

    def __init__(self, up: nn.Module) -> None:
        super().__init__()
        self.down, self.up, self.act = nn.Conv2d(4, 4, 3, stride=2, padding=1), up, nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.act(self.up(self.down(x)))], dim=1)


def test_the_cat_fix_names_the_layer_behind_an_activation_and_never_the_skip() -> None:
    model = _Branches(nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1))
    failure = explain(model, (1, 4, 24, 24)).failure
    assert failure is not None and failure.fix == (
        "the model's input is 1×4×24×24 and 'act' ReLU gives 1×4×23×23: pass output_padding=1 to 'up' "
        "ConvTranspose2d (or call it with output_size=...) so that both are 24×24")
    assert real_output(followed(model, failure.fix), (1, 4, 24, 24)) == (1, 8, 24, 24)


def test_an_upsampling_branch_is_told_its_size_and_that_fix_cannot_change_it() -> None:
    model = _Branches(nn.Upsample(scale_factor=2))
    failure = explain(model, (1, 4, 25, 25)).failure
    assert failure is not None and failure.fix is not None
    assert failure.fix == ("the model's input is 1×4×25×25 and 'act' ReLU gives 1×4×26×26: make 'up' Upsample "
                           "upsample to size=25 so that both are 25×25 (this call only: autoshape fix, which "
                           "changes convolutions and Linear layers only, found no fix for the whole forward)")
    model.up = nn.Upsample(size=25)  # the advice, literally
    assert real_output(model, (1, 4, 25, 25)) == (1, 8, 25, 25)


# --- notes -------------------------------------------------------------------------------------

_PROMISE = re.compile(r"(?:would give|more than) (\d+(?:×\d+)*)")


def _note(notes: tuple[str, ...], *words: str) -> str:
    (note,) = [note for note in notes if all(word in note for word in words)]
    return note


def test_an_overshoot_note_followed_literally_restores_the_size() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ConvTranspose2d(8, 3, 3, 2, 1, output_padding=1))
    assert real_output(model, (1, 3, 25, 25)) == (1, 3, 26, 26)
    note = _note(explain(model, (1, 3, 25, 25)).notes, "overshoots")
    assert note.startswith("'1' ConvTranspose2d gives 26×26, 1 more than 25×25, the size of the input of '0'")
    assert "pass output_padding=0" in note
    fixed = copy.deepcopy(model)
    _set(fixed[1], _values(note.split("pass ")[1].split(" (or")[0]))
    assert real_output(fixed, (1, 3, 25, 25)) == (1, 3, 25, 25)


class _FourLevels(nn.Module):
    """A hand-written 4-level U-Net: two 3×3 convs per level, one shared MaxPool2d(2) down, per level up a
    ConvTranspose2d(k2, s2) (or nn.Upsample(scale_factor=2) and a 1×1 conv), the skip concatenated first."""

    def __init__(self, upsample: bool, widths: tuple[int, ...] = (4, 8, 16, 32, 64)) -> None:
        super().__init__()

        def double(a: int, b: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(a, b, 3, padding=1), nn.ReLU(), nn.Conv2d(b, b, 3, padding=1), nn.ReLU())

        self.downs = nn.ModuleList(double(a, b) for a, b in zip((1, *widths[:-2]), widths[:-1]))
        self.pool, self.bottom = nn.MaxPool2d(2), double(widths[-2], widths[-1])
        pairs = list(zip(widths[:0:-1], widths[-2::-1]))
        self.ups = nn.ModuleList(nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(high, low, 1)) if upsample
                                 else nn.ConvTranspose2d(high, low, 2, stride=2) for high, low in pairs)
        self.convs = nn.ModuleList(double(2 * low, low) for _, low in pairs)
        self.head = nn.Conv2d(widths[0], 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for down in self.downs:
            x = down(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottom(x)
        for up, conv, skip in zip(self.ups, self.convs, skips[::-1]):
            x = conv(torch.cat([skip, up(x)], dim=1))
        return self.head(x)  # type: ignore[no-any-return]


def _input_of(model: nn.Module, shape: tuple[int, ...], path: str) -> tuple[int, ...]:
    """The real input shape of the module at ``path`` (its first call), as far as the forward gets."""
    seen: list[tuple[int, ...]] = []
    handle = model.get_submodule(path).register_forward_pre_hook(lambda _, args: seen.append(tuple(args[0].shape)))
    with contextlib.suppress(RuntimeError):
        real_output(model, shape)
    handle.remove()
    return seen[0]


@pytest.mark.parametrize("upsample", [False, True], ids=["ConvTranspose2d", "Upsample"])
@pytest.mark.parametrize(("spatial", "step"), [
    ((30, 30), "gives 2×2{}, but {}3×3"),  # pooled 4 times: 15, 7, 3, 1
    ((17, 45), "gives 2×4{}, but {}2×5"),  # 8, 4, 2, 1 and 22, 11, 5, 2: H is restored, W is not
])
def test_a_unet_up_step_is_told_the_skip_it_meets_never_its_own_input_and_each_note_followed_keeps_it(
        upsample: bool, spatial: tuple[int, int], step: str) -> None:
    model, shape = _FourLevels(upsample), (1, 1, *spatial)
    with pytest.raises(RuntimeError, match="Sizes of tensors must match"):
        real_output(model, shape)
    assert _input_of(model, shape, "ups.0")[2] == 1
    first = _note(explain(model, shape).notes, "restore")
    opening = ("'ups.0.0' Upsample " + step.format(" by scaling", "") if upsample else
               "'ups.0' ConvTranspose2d " + step.format("", f"output_padding={1 if spatial[0] == 30 else (0, 1)} "
                                                            "would give "))
    assert first.startswith(f"{opening}, the size of the output of 'downs.3.3'")
    followed_notes = []
    while notes := [n for n in explain(model, shape).notes if "restore" in n]:
        note = notes[0]
        path = note.split("'")[1]
        if upsample:  # "upsample to it: size=3 instead of scale_factor (nn.Upsample(size=...))", literally
            size = ast.literal_eval(note.split("upsample to it: size=")[1].split(" instead")[0])
            model.ups[int(path.split(".")[1])][0] = nn.Upsample(size=size)
            promised = (size, size) if isinstance(size, int) else size
        else:
            _set(model.get_submodule(path), _values(note.split(" pass ")[1].split(" (or")[0]))
            promised = tuple(int(v) for v in _PROMISE.findall(note)[0].split("×"))
        sizes = _input_of(model, shape, path)[2:]
        assert all(p > i for p, i in zip(promised, sizes)), (note, sizes)  # an up-step restores a larger size
        assert outputs_of(model, shape, [path])[path][2:] == promised  # and the note keeps its promise
        followed_notes.append(path)
        assert len(followed_notes) <= 3
    if spatial == (30, 30):
        assert followed_notes == (["ups.0.0", "ups.1.0", "ups.2.0"] if upsample else ["ups.0", "ups.1", "ups.2"])
    assert real_output(model, shape) == (1, 2, *spatial)


def _interior_taps(layer: nn.ConvTranspose1d, size: int) -> set[int]:
    """How many taps each interior output sums, counted by torch: all-ones weights on all-ones input."""
    ones = F.conv_transpose1d(torch.ones(1, 1, size), torch.ones(1, 1, layer.kernel_size[0]), None, layer.stride[0],
                              layer.padding[0], layer.output_padding[0], 1, layer.dilation[0])[0, 0]
    reach = layer.dilation[0] * (layer.kernel_size[0] - 1)
    return {round(float(v)) for v in ones[reach:len(ones) - reach]}


@given(size=st.integers(2, 30), k=st.integers(1, 9), s=st.integers(2, 4), p=st.integers(0, 4), op=st.integers(0, 3),
       d=st.integers(1, 2))
def test_a_checkerboard_note_followed_literally_keeps_the_sizes_and_evens_the_taps(size: int, k: int, s: int, p: int,
                                                                                  op: int, d: int) -> None:
    assume(op < max(s, d) and p <= d * (k - 1))
    model = nn.Sequential(nn.ConvTranspose1d(1, 1, k, s, p, op, dilation=d))
    assume((size - 1) * s - 2 * p + d * (k - 1) + op + 1 >= 1)
    notes = [n for n in explain(model, (1, 1, size)).notes if "checkerboard" in n]
    assume(notes and "build '0'" in notes[0])
    fixed = followed(model, notes[0].split("Fix: ")[1])
    assert real_output(fixed, (1, 1, size)) == real_output(model, (1, 1, size))
    assert fixed[0].kernel_size[0] % s == 0 and fixed[0].dilation == (1,)
    assert len(_interior_taps(fixed[0], 64)) == 1 < len(_interior_taps(model[0], 64))  # taps depend on k, s, d only


def test_monai_autoencoder_at_101x67_notes_lead_back_to_101x67() -> None:
    nets = pytest.importorskip("monai.networks.nets")
    model = nets.AutoEncoder(spatial_dims=2, in_channels=1, out_channels=1, channels=(4, 8, 16), strides=(2, 2, 2))
    explanation = explain(model, (1, 1, 101, 67))
    assert explanation.output_shape == (1, 1, 104, 72) == real_output(model, (1, 1, 101, 67))
    followed_notes = 0
    while notes := [n for n in explain(model, (1, 1, 101, 67)).notes if ("output_padding=" in n and "would" in n)
                    or "overshoots" in n]:
        note = notes[0]
        path = note.split("'")[1]
        _set(model.get_submodule(path), _values(note.split(" pass ")[1].split(" (or")[0]))
        promised = tuple(int(v) for v in _PROMISE.findall(note)[0].split("×"))
        assert outputs_of(model, (1, 1, 101, 67), [path])[path][2:] == promised  # each note keeps its promise
        followed_notes += 1
        assert followed_notes <= 3
    assert followed_notes == 3 and real_output(model, (1, 1, 101, 67)) == (1, 1, 101, 67)


def test_dropped_rows_get_an_exact_alternative_that_reads_them() -> None:
    note = _note(explain(nn.Conv2d(1, 1, 3, stride=2), (1, 1, 26, 26)).notes, "never reads")
    assert "never reads the last row of its input in H, W" in note
    alternative = _values(note.split("Fix: ")[1].split(" gives")[0])
    assert alternative == {"kernel_size": 4, "padding": 0}
    k, p = alternative["kernel_size"], alternative["padding"]
    assert real_output(nn.Conv2d(1, 1, k, stride=2, padding=p), (1, 1, 26, 26)) == (1, 1, 12, 12)
    assert (12 - 1) * 2 - p + (k - 1) == 26 - 1  # its last window ends on the last row
    assert explain(nn.Conv2d(1, 1, 4, stride=2), (1, 1, 26, 26)).notes == ()
    uneven = _note(explain(nn.Conv2d(1, 1, 3, stride=2), (1, 1, 25, 26)).notes, "never reads")
    assert "in W:" in uneven and "kernel_size=(3, 4)" in uneven
    padded = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(1, 1, 3, stride=2))
    assert explain(padded, (1, 1, 34, 34)).notes == ()  # only the padding's last row goes unread


def _reads_last_row(conv: nn.Conv1d, size: int) -> bool:
    """Real torch: does any window of ``conv`` (weights 1, no bias) reach the last of ``size`` rows?"""
    x = torch.zeros(1, 1, size)
    x[..., -1] = 1
    with torch.no_grad():
        return bool(F.conv1d(x, torch.ones(1, 1, *conv.kernel_size), None, conv.stride, conv.padding,
                             conv.dilation).sum() > 0)


def test_a_kernel_smaller_than_its_stride_skips_rows_by_design_and_gets_no_note() -> None:
    shortcut = nn.Conv2d(8, 16, 1, stride=2)  # every ResNet projection shortcut
    assert not _reads_last_row(nn.Conv1d(1, 1, 1, stride=2), 8)  # by design: every other row
    assert real_output(shortcut, (1, 8, 8, 8)) == (1, 16, 4, 4)
    assert explain(shortcut, (1, 8, 8, 8)).notes == ()
    assert explain(nn.Conv2d(1, 1, 2, stride=3), (1, 1, 10, 10)).notes == ()


def test_patches_that_do_not_tile_the_input_are_told_the_nearest_sizes_they_tile() -> None:
    patchify = nn.Conv2d(3, 8, 16, stride=16)  # a ViT's patch embedding
    note = _note(explain(patchify, (1, 3, 36, 44)).notes, "never reads")
    assert note == ("'(model)' Conv2d never reads the last rows of its input in H (4), W (12): its kernel_size "
                    "equals its stride (16, patches that do not overlap), and the patches do not tile the input. "
                    "Fix: give it an input of H 32 or 48, W 32 or 48 (multiples of 16: crop or pad to one).")
    for size in (32, 48):  # followed: every row read, no note
        assert real_output(patchify, (1, 3, size, size)) == (1, 8, size // 16, size // 16)
        assert _reads_last_row(nn.Conv1d(1, 1, 16, stride=16), size)
        assert explain(patchify, (1, 3, size, size)).notes == ()
    for k, p, size in itertools.product((2, 3, 5), (0, 1, 2), range(6, 20)):
        conv = nn.Conv1d(1, 1, k, stride=k, padding=min(p, k - 1))
        if size + 2 * conv.padding[0] < k or _reads_last_row(conv, size):
            continue
        note = _note(explain(conv, (1, 1, size)).notes, "never reads")
        named = [int(n) for n in note.split("input of L ")[1].split(" (")[0].split(" or ")]
        read = [n for n in range(1, 3 * size) if n + 2 * conv.padding[0] >= k and _reads_last_row(conv, n)]
        assert named == [max(n for n in read if n < size), min(n for n in read if n > size)]


def test_a_view_that_changes_the_batch_is_noted_and_the_note_followed_keeps_it() -> None:
    assert real_output(LeNetView(), (25, 1, 28, 28)) == (16, 10)  # 25 samples in, 16 rows out, no error
    note = _note(explain(LeNetView(), (25, 1, 28, 28)).notes, "batch")
    assert note == ("'(model)' view turned 25×16×4×4 into 16×400: it changed the batch from 25 to 16, so its rows no "
                    "longer hold one sample each. Fix: keep the batch, x.view(x.size(0), -1) or torch.flatten(x, 1), "
                    "which gives 25×256; then build 'fc1' Linear with in_features=256: nn.Linear(256, 120).")
    model = followed(LeNetView(keep_batch=True), note)  # torch.flatten(x, 1), and fc1 as the note builds it
    assert real_output(model, (25, 1, 28, 28)) == (25, 10)
    assert not [n for n in explain(LeNetView(), (25, 1, 32, 32)).notes if "batch" in n]


def test_a_view_that_fails_at_another_size_gets_both_fixes_and_each_followed_runs() -> None:
    with pytest.raises(RuntimeError, match=r"shape '\[-1, 400\]' is invalid for input of size 512"):
        real_output(LeNetView(), (2, 1, 28, 28))
    failure = explain(LeNetView(), (2, 1, 28, 28)).failure
    assert failure is not None and (failure.path, failure.call, failure.input_shapes) == ("", "view", ((2, 16, 4, 4),))
    assert failure.fix == (
        "x.view(x.size(0), -1) or torch.flatten(x, 1) keeps the batch, giving 2×256: each sample of 2×16×4×4 holds "
        "256 entries (= 16·4·4), not 400; then give the layer that reads it 256 input features. Or, to keep the "
        "layers after it, make that input 2×16×5×5: pass padding=1 to 'conv2' Conv2d")
    assert real_output(LeNetView(features=256, keep_batch=True), (2, 1, 28, 28)) == (2, 10)  # the first way
    assert real_output(followed(LeNetView(), failure.fix), (2, 1, 28, 28)) == (2, 10)  # the other


class _Pooled(nn.Module):
    """A conv, then average pooling by a call in the forward with a window taller than the map."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.conv(x), 5)


@pytest.mark.parametrize(("model", "shape", "fix", "out"), [
    (nn.Sequential(nn.Conv2d(1, 8, 3, stride=2), nn.ReLU(), nn.MaxPool2d(4)), (1, 1, 7, 7),
     "it gives no output for 3×3: its input must be at least 4×4; pass padding=1 to '0' Conv2d, or give the model "
     "an input of at least 1×1×9×9", (1, 8, 1, 1)),
    (_Pooled(), (1, 1, 4, 6), "it gives no output for 4×6: its input must be at least 5×6; pass padding=(2, 1) to "
     "'conv' Conv2d, or give the model an input of at least 1×1×5×6", (1, 4, 1, 1)),
])
def test_a_pooling_on_too_small_an_input_is_told_what_it_needs_and_each_way_followed_runs(
        model: nn.Module, shape: tuple[int, ...], fix: str, out: tuple[int, ...]) -> None:
    with pytest.raises(RuntimeError, match=r"(?i)output size is too small"):
        real_output(model, shape)
    failure = explain(model, shape).failure
    assert failure is not None and failure.fix == fix
    assert real_output(followed(model, fix), shape) == out
    least = tuple(int(n) for n in fix.split("at least ")[-1].split("×"))
    assert real_output(model, least)[2:] == out[2:]
    for dim in (2, 3):  # the least: one less fails
        smaller = tuple(n - (d == dim) for d, n in enumerate(least))
        if smaller[dim] < shape[dim]:
            continue
        with pytest.raises(RuntimeError):
            real_output(model, smaller)


def test_a_pooling_with_no_conv_before_it_is_told_the_model_input_only() -> None:
    failure = explain(nn.MaxPool2d(4), (1, 1, 3, 3)).failure
    assert failure is not None and failure.fix == (
        "it gives no output for 3×3: its input must be at least 4×4; give the model an input of at least 1×1×4×4")
    assert real_output(nn.MaxPool2d(4), (1, 1, 4, 4)) == (1, 1, 1, 1)


class _PerPixel(nn.Module):
    """A per-pixel classifier: each sample split into H·W rows of C features, on purpose."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.head = nn.Conv2d(3, 8, 3, padding=1), nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x).permute(0, 2, 3, 1).reshape(-1, 8))


class _Groups(nn.Module):
    """Each sample's 8 channels as two rows of 4 through one conv, then one row per sample again."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.reshape(-1, 4, *x.shape[2:])).reshape(x.shape[0], -1, 4, 4)


def test_rows_split_from_whole_samples_or_a_batch_restored_are_no_mistake() -> None:
    assert real_output(_PerPixel(), (2, 3, 5, 5)) == (50, 4)
    assert not [n for n in explain(_PerPixel(), (2, 3, 5, 5)).notes if "batch" in n]
    assert real_output(_Groups(), (3, 8, 6, 6)) == (3, 8, 4, 4)
    assert explain(_Groups(), (3, 8, 6, 6)).notes == ()


def test_odd_sizes_upsampled_by_scale_are_told_the_size_to_restore() -> None:
    model = arch.TransformerNet(width=4, residual_blocks=1)
    assert real_output(model, (1, 3, 65, 67)) == (1, 3, 68, 68)
    notes = explain(model, (1, 3, 65, 67)).notes
    assert [n.split(" by scaling")[0] for n in notes if "by scaling" in n] == ["'deconv1' F.interpolate gives 34×34"]
    for layer in ("deconv1", "deconv2"):
        note = _note(explain(model, (1, 3, 65, 67)).notes, f"'{layer}' F.interpolate")
        size = ast.literal_eval(note.split("upsample to it: size=")[1].split(" instead")[0])
        getattr(model, layer).size = size  # the note, literally: F.interpolate(x, size=...)
        assert outputs_of(model, (1, 3, 65, 67), [f"{layer}.reflection_pad"])[f"{layer}.reflection_pad"][2:] == \
            tuple(n + 2 for n in size)
    assert real_output(model, (1, 3, 65, 67)) == (1, 3, 65, 67)
    assert not [n for n in explain(model, (1, 3, 65, 67)).notes if "by scaling" in n]


# --- the input's layout: batch, channels, flatten ------------------------------------------------

def _with_flatten_before(model: nn.Sequential, index: int) -> nn.Sequential:
    return nn.Sequential(*model[:index], nn.Flatten(), *model[index:])


@pytest.mark.parametrize(("model", "index", "out"), [
    (nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10)), 0, (2, 10)),
    (nn.Sequential(nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Linear(8 * 26 * 26, 10)), 2, (2, 10)),
])
def test_a_missing_flatten_before_a_linear_is_told_to_flatten_not_to_shrink_the_linear(
        model: nn.Sequential, index: int, out: tuple[int, ...]) -> None:
    failure = explain(model, (2, 1, 28, 28)).failure
    assert failure is not None and failure.fix is not None
    assert failure.fix.startswith(f"'{index}' Linear got 2×") and "flatten them first, nn.Flatten() before it" in \
        failure.fix and "in_features" not in failure.fix
    assert real_output(_with_flatten_before(model, index), (2, 1, 28, 28)) == out  # followed
    with pytest.raises(ShapeError, match=r"Fix: '\d' Linear got .*nn\.Flatten\(\) before it"):
        fix(model, (2, 1, 28, 28))  # never a Linear re-initialised to act on rows of pixels


class _FlattensAll(nn.Module):
    """``torch.flatten(x)`` without ``start_dim``: the batch is flattened in too."""

    def __init__(self, keep_batch: bool = False) -> None:
        super().__init__()
        self.conv, self.fc, self.keep_batch = nn.Conv2d(1, 16, 5), nn.Linear(16 * 12 * 12, 10), keep_batch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(self.conv(x), 2)
        return self.fc(torch.flatten(x, 1) if self.keep_batch else torch.flatten(x))


def test_a_flatten_that_folds_the_batch_in_is_told_to_keep_it_and_fix_refuses_it() -> None:
    failure = explain(_FlattensAll(), (4, 1, 28, 28)).failure
    assert failure is not None and failure.fix == (
        "keep the batch, torch.flatten(x, 1) (or nn.Flatten(), which starts at dimension 1), which gives 4×2304")
    assert real_output(_FlattensAll(keep_batch=True), (4, 1, 28, 28)) == (4, 10)  # followed
    note = _note(explain(_FlattensAll(), (1, 1, 28, 28)).notes, "folded the batch")  # runs, and loses the batch
    assert note.startswith("'(model)' torch.flatten turned 1×16×12×12 into 2304")
    for batch in (1, 4):
        with pytest.raises(ShapeError, match=r"torch\.flatten\(x, 1\)"):
            fix(_FlattensAll(), (batch, 1, 28, 28))


class _Unbatched(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc = nn.Conv2d(6, 16, 5), nn.Linear(400, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).view(-1, 400))


@pytest.mark.parametrize(("model", "shape", "meant"), [
    (_Unbatched(), (6, 9, 9), (1, 6, 9, 9)),  # (C, H, W): the batch is missing
    (nn.Sequential(nn.Conv1d(1, 8, 5), nn.ReLU(), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(8, 2)), (16, 100),
     (16, 1, 100)),  # (N, L): the channel is missing
    (nn.Sequential(nn.Conv3d(1, 2, 3)), (2, 16, 12, 12), (2, 1, 16, 12, 12)),
])
def test_an_input_without_a_batch_or_channel_dimension_is_told_the_shape_not_a_layer_change(
        model: nn.Module, shape: tuple[int, ...], meant: tuple[int, ...]) -> None:
    explanation = explain(model, shape)  # never raises, whatever a layer change would make of the shape
    note = _note(explanation.notes, "Fix: give the input shape")
    assert note.endswith(f"{meant}.")
    assert explanation.failure is None or explanation.failure.fix == note.split("Fix: ")[1][:-1]  # one advice
    real_output(model, meant)  # followed: it runs


@pytest.mark.parametrize(("model", "shape", "meant"), [
    (nn.Sequential(nn.ConvTranspose2d(100, 64, 4), nn.ReLU(), nn.ConvTranspose2d(64, 1, 4, 2, 1)), (16, 100),
     (16, 100, 1, 1)),  # a GAN's z without its 1×1
    (nn.Sequential(nn.Conv2d(3, 8, 3)), (2, 1, 3, 32, 32), (2, 3, 32, 32)),  # the batch is kept
    (nn.Sequential(nn.Conv1d(1, 8, 3)), (16, 1, 1, 100), (16, 1, 100)),
])
def test_an_input_of_another_rank_keeps_its_batch_and_channels_in_the_shape_named(
        model: nn.Module, shape: tuple[int, ...], meant: tuple[int, ...]) -> None:
    failure = explain(model, shape).failure
    assert failure is not None and failure.fix is not None
    assert f"give the model an input of shape {meant}" in failure.fix
    real_output(model, meant)


def test_a_channels_last_input_is_told_to_permute_and_fix_never_rebuilds_the_conv() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 30 * 30, 10))
    failure = explain(model, (2, 32, 32, 3)).failure
    assert failure is not None and failure.fix == (
        "'0' Conv2d got 2×32×32×3, its 3 channels last: give the model x.permute(0, 3, 1, 2), of shape (2, 3, 32, 32)")
    x = torch.zeros(2, 32, 32, 3)
    assert tuple(model(x.permute(0, 3, 1, 2)).shape) == (2, 10)  # followed
    with pytest.raises(ShapeError, match=r"Fix: '0' Conv2d got 2×32×32×3, its 3 channels last"):
        fix(model, (2, 32, 32, 3))


@pytest.mark.parametrize(("model", "shape", "least"), [
    (nn.Sequential(nn.Conv2d(3, 8, 4, 4), nn.Conv2d(8, 8, 2, 2), nn.Conv2d(8, 8, 2, 2)), (1, 3, 3, 3), 16),
    (nn.Sequential(*[nn.Sequential(nn.Conv2d(3 if i == 0 else 8, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
                     for i in range(6)]), (2, 3, 28, 28), 64),
])
def test_the_least_model_input_named_is_the_least_with_which_every_layer_gives_an_output(
        model: nn.Module, shape: tuple[int, ...], least: int) -> None:
    failure = explain(model, shape).failure
    assert failure is not None and failure.fix is not None
    assert f"give the model an input of at least {shape[0]}×{shape[1]}×{least}×{least}" in failure.fix
    real_output(model, (*shape[:2], least, least))
    with pytest.raises(RuntimeError):
        real_output(model, (*shape[:2], least - 1, least))


def test_a_forward_given_fewer_inputs_than_it_takes_is_told_to_give_one_per_input() -> None:
    from tests.test_fix import ConditionalGenerator
    failure = explain(ConditionalGenerator(), (4, 100)).failure
    assert failure is not None and failure.fix == (
        "its forward takes 2 inputs (z, labels) and got 1: give input_shape as one shape or example tensor per input, "
        "((4, 100), <labels>) (the command line takes one input)")
    assert explain(ConditionalGenerator(), ((4, 100), torch.zeros(4, dtype=torch.long))).failure is None  # followed
