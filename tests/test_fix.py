"""fix against real torch: every patched model is run on real tensors, never checked by autoshape's arithmetic.

The forum cases (a generator with one wrong layer, the 24 → 12 → 23 autoencoder, a U-Net at 101×67,
a classifier with a wrong in_features), MONAI's AutoEncoder, and random chains of convolutions.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Callable
from typing import Any

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from torch import Tensor, nn
from torch.nn import functional as F

from autoshape import Change, Fix, ShapeError, explain, fix
from autoshape.core.adjust import KINDS, nearest_change
from tests import architectures as arch
from tests.test_explain import MnistGenerator
from tests.torch_reference import torch_conv_size, torch_conv_transpose_size


def real_output(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    with torch.no_grad():
        return tuple(model.eval()(torch.zeros(input_shape)).shape)


def outputs_of(model: nn.Module, input_shape: tuple[int, ...], paths: list[str]) -> dict[str, tuple[int, ...]]:
    """The real output shapes of the modules at ``paths``, as far as the forward gets."""
    seen: dict[str, tuple[int, ...]] = {}

    def record(path: str) -> Callable[[nn.Module, Any, Tensor], None]:
        def hook(module: nn.Module, args: Any, out: Tensor) -> None:
            seen.setdefault(path, tuple(out.shape))
        return hook

    handles = [model.get_submodule(path).register_forward_hook(record(path)) for path in paths]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(input_shape))
    except RuntimeError:
        pass
    for handle in handles:
        handle.remove()
    return seen


def assert_untouched(original: nn.Module, before: dict[str, Tensor], patched: nn.Module) -> None:
    assert patched is not original
    after = original.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)


def assert_weights(change: Change) -> None:
    """A kept weight is the original's; a changed weight shape is said so."""
    same = [a.shape == b.shape for a, b in zip(change.before.parameters(), change.after.parameters())]
    assert change.reinitialised == (not all(same))
    if not change.reinitialised:
        for mine, theirs in zip(change.after.state_dict().values(), change.before.state_dict().values()):
            assert torch.equal(mine, theirs)


# --- the forum cases ----------------------------------------------------------------------------

def readme_autoencoder() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(3, 64, kernel_size=3, stride=2, padding=1), nn.ReLU(),
                         nn.ConvTranspose2d(64, 3, kernel_size=3, stride=2, padding=1))


def test_the_24_12_23_autoencoder_gets_output_padding_and_keeps_its_weights() -> None:
    model = readme_autoencoder()
    before = copy.deepcopy(model.state_dict())
    fixed = fix(model, (1, 3, 24, 24), output_shape=(1, 3, 24, 24))
    assert str(fixed) == ("'2' ConvTranspose2d(64, 3, kernel_size=3, stride=2, padding=1) → output_padding=1\n"
                          "output: 1×3×24×24 for an input of 1×3×24×24 (checked at this size; other sizes "
                          "may need other values)")
    (change,) = fixed.changes
    assert (change.path, dict(change.params), change.reinitialised) == ("2", {"output_padding": 1}, False)
    assert change.before is model[2] and change.after is fixed.model[2]
    assert_weights(change)
    assert real_output(fixed.model, (1, 3, 24, 24)) == (1, 3, 24, 24)
    assert_untouched(model, before, fixed.model)
    assert real_output(model, (1, 3, 24, 24)) == (1, 3, 23, 23)


@pytest.mark.parametrize(("block", "layer"), [
    (2, nn.ConvTranspose2d(128, 64, 4, 2)),           # 6 → 14 instead of 13: 30×30
    (1, nn.ConvTranspose2d(256, 128, 3, 1)),          # 3 → 5 instead of 6: 24×24
    (3, nn.ConvTranspose2d(64, 1, 4, 2, 1)),          # padding=1 passed on: 26×26
    (0, nn.ConvTranspose2d(10, 256, 3, 2, 1)),        # 1 → 1: 16×16
])
def test_the_1_3_6_13_28_generator_with_one_wrong_layer(block: int, layer: nn.Module) -> None:
    model = MnistGenerator()
    model.gen[block][0] = layer
    wrong = real_output(model, (2, 10))
    assert wrong != (2, 1, 28, 28)
    fixed = fix(model, (2, 10), (2, 1, 28, 28))
    assert len(fixed.changes) == 1 and fixed.output_shape == (2, 1, 28, 28)
    assert real_output(fixed.model, (2, 10)) == (2, 1, 28, 28)
    assert real_output(model, (2, 10)) == wrong
    assert_weights(fixed.changes[0])


def small_unet() -> arch.UNet:
    return arch.UNet(3, 2, widths=(8, 16, 32, 64, 128))


def test_a_unet_at_101x67_gets_one_output_padding_per_mismatched_skip() -> None:
    model = small_unet()
    with pytest.raises(RuntimeError, match="Sizes of tensors must match"):
        real_output(model, (1, 3, 101, 67))
    skips = [f"encoder.{n}" for n in range(4)]
    before = outputs_of(model, (1, 3, 101, 67), skips)
    fixed = fix(model, (1, 3, 101, 67))
    assert [(c.path, dict(c.params)) for c in fixed.changes] == [
        ("ups.1", {"output_padding": (1, 0)}), ("ups.2", {"output_padding": (0, 1)}), ("ups.3", {"output_padding": 1})]
    assert not any(c.reinitialised for c in fixed.changes)
    assert real_output(fixed.model, (1, 3, 101, 67)) == (1, 2, 101, 67)
    assert outputs_of(fixed.model, (1, 3, 101, 67), skips) == before  # the skips hold
    assert fix(model, (1, 3, 101, 67), (1, 2, 101, 67)).changes[0].path == "ups.1"


class _Residual(nn.Module):
    """``x + relu(conv(x))``: the identity path is the block's input, computed from the layer before it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return x + torch.relu(self.conv(x))


class _UpThenResidual(nn.Module):
    """A skip concatenated with a branch that goes down, up (``up``: 8 → 16, not 15) and through a residual block."""

    def __init__(self) -> None:
        super().__init__()
        self.down, self.up, self.block = nn.Conv2d(3, 8, 3, 2, 1), nn.ConvTranspose2d(8, 3, 2, 2), _Residual()

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([x, self.block(self.up(self.down(x)))], dim=1)


def test_a_residual_sum_after_the_changed_layer_moves_with_it() -> None:
    model = _UpThenResidual()
    with pytest.raises(RuntimeError, match="Sizes of tensors must match"):
        real_output(model, (1, 3, 15, 15))
    (change,) = fix(model, (1, 3, 15, 15)).changes
    assert change.path == "up"
    patched = copy.deepcopy(model)
    patched.up = change.after
    assert real_output(patched, (1, 3, 15, 15)) == (1, 6, 15, 15)


def test_monai_unet_with_residual_units_at_37x29_is_fixed() -> None:
    nets = pytest.importorskip("monai.networks.nets")
    model = nets.UNet(2, 1, 2, channels=(4, 8, 16), strides=(2, 2), num_res_units=1)
    with pytest.raises(RuntimeError, match="Sizes of tensors must match"):
        real_output(model, (1, 1, 37, 29))
    fixed = fix(model, (1, 1, 37, 29))
    assert [(c.path, dict(c.params)) for c in fixed.changes] == [("model.1.submodule.2.0.conv", {"output_padding": 0})]
    assert real_output(fixed.model, (1, 1, 37, 29)) == fixed.output_shape == (1, 2, 38, 30)


def test_a_classifier_with_a_wrong_in_features_gets_a_new_linear() -> None:
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(8 * 13 * 13, 10))
    fixed = fix(model, (4, 1, 28, 28))
    (change,) = fixed.changes
    assert (change.path, dict(change.params), change.reinitialised) == ("4", {"in_features": 1568}, True)
    assert str(change) == ("'4' Linear(in_features=1352, out_features=10, bias=True) → in_features=1568 "
                           "(re-initialised)")
    assert real_output(fixed.model, (4, 1, 28, 28)) == (4, 10)
    assert torch.equal(fixed.model[0].weight, model[0].weight)  # the conv, whose size the Linear needs, stays


def test_a_conv_with_wrong_in_channels() -> None:
    model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 8, 3, groups=2))
    fixed = fix(model, (1, 3, 9, 9))
    assert [dict(c.params) for c in fixed.changes] == [{"in_channels": 32}]
    assert fixed.model[2].groups == 2 and real_output(fixed.model, (1, 3, 9, 9)) == (1, 8, 7, 7)


def test_a_conv_on_an_input_smaller_than_its_kernel_gets_the_least_padding() -> None:
    fixed = fix(nn.Sequential(nn.Conv2d(3, 4, (5, 3)), nn.ReLU(), nn.Conv2d(4, 4, 3)), (1, 3, 3, 3))
    assert [(c.path, dict(c.params)) for c in fixed.changes] == [("0", {"padding": (1, 0)}), ("2", {"padding": 1})]
    assert real_output(fixed.model, (1, 3, 3, 3)) == (1, 4, 1, 1)


def test_monai_autoencoder_at_101x67_is_patched_in_place_in_a_copy() -> None:
    nets = pytest.importorskip("monai.networks.nets")
    blocks = pytest.importorskip("monai.networks.blocks")
    model = nets.AutoEncoder(spatial_dims=2, in_channels=1, out_channels=1, channels=(4, 8, 16), strides=(2, 2, 2))
    assert real_output(model, (1, 1, 101, 67)) == (1, 1, 104, 72)
    fixed = fix(model, (1, 1, 101, 67), (1, 1, 101, 67))
    assert 1 <= len(fixed.changes) <= 3
    assert real_output(fixed.model, (1, 1, 101, 67)) == (1, 1, 101, 67)
    assert real_output(model, (1, 1, 101, 67)) == (1, 1, 104, 72)
    for change in fixed.changes:
        assert change.path.endswith(".conv.conv")  # the torch conv inside MONAI's Convolution
        wrapper = fixed.model.get_submodule(change.path.rsplit(".", 1)[0])
        assert isinstance(wrapper, blocks.Convolution) and wrapper.conv is change.after
        assert_weights(change)


def test_nothing_to_fix() -> None:
    model = readme_autoencoder()
    fixed = fix(model, (1, 3, 24, 24))
    assert isinstance(fixed, Fix) and fixed.changes == () and fixed.model is not model
    assert str(fixed) == ("no change needed: the model runs and gives 1×3×23×23\n"
                          "to give 24×24, pass output_shape=(1, 3, 24, 24)")  # a pixel off the input's size
    assert real_output(fix(model, (1, 3, 24, 24), output_shape=(1, 3, 24, 24)).model, (1, 3, 24, 24)) == (1, 3, 24, 24)
    assert fix(model, torch.zeros(1, 3, 25, 25), (1, 3, 25, 25)).changes == ()


class _StridedUNet(nn.Module):
    """MONAI's UNet written by hand: a stride-2 3×3 conv per level down, a stride-2 3×3 transposed conv with
    output_padding=1 per level up, the skip concatenated after it, and the last one up to the input's
    resolution with no skip (so a fix that only makes it run leaves it ``2·ceil(size/2)``)."""

    def __init__(self) -> None:
        super().__init__()
        self.downs = nn.ModuleList(nn.Conv2d(a, b, 3, stride=2, padding=1) for a, b in ((1, 8), (8, 16), (16, 32)))
        self.ups = nn.ModuleList(nn.ConvTranspose2d(a, b, 3, stride=2, padding=1, output_padding=1)
                                 for a, b in ((32, 16), (32, 8), (16, 2)))

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        for down in self.downs:
            x = F.relu(down(x))
            skips.append(x)
        for up, skip in zip(self.ups, skips[-2::-1]):
            x = torch.cat([skip, F.relu(up(x))], dim=1)
        return self.ups[-1](x)  # type: ignore[no-any-return]


def _monai_unet() -> nn.Module:
    nets = pytest.importorskip("monai.networks.nets")
    return nets.UNet(spatial_dims=2, in_channels=1, out_channels=2, channels=(8, 16, 32, 64),  # type: ignore[no-any-return]
                     strides=(2, 2, 2))


@pytest.mark.parametrize("make", [_monai_unet, _StridedUNet], ids=["monai", "by-hand"])
def test_a_unet_fixed_to_run_a_pixel_off_its_input_is_told_the_output_shape_of_its_input_and_that_followed_gives_it(
        make: Callable[[], nn.Module]) -> None:
    model, shape = make(), (1, 1, 101, 67)
    with pytest.raises(RuntimeError, match="Sizes of tensors must match"):
        real_output(model, shape)
    fixed = fix(model, shape)
    assert real_output(fixed.model, shape) == (1, 2, 102, 68) == fixed.output_shape
    text = str(fixed)
    assert text.endswith("\noutput: 1×2×102×68 for an input of 1×1×101×67 (checked at this size; other sizes may "
                         "need other values)\nto also give 101×67, pass output_shape=(1, 2, 101, 67)")
    wanted = ast.literal_eval(text.rsplit("pass output_shape=", 1)[1])  # the hint, literally
    assert wanted == fixed.suggested_output_shape
    again = fix(model, shape, output_shape=wanted)
    assert len(again.changes) == 3 and again.suggested_output_shape is None
    assert real_output(again.model, shape) == (1, 2, 101, 67)


@pytest.mark.parametrize(("model", "shape", "output"), [
    (nn.Sequential(nn.MaxPool2d(2), nn.Upsample(scale_factor=2)), (1, 1, 25, 25), (1, 1, 24, 24)),  # nothing to fix
    (nn.Sequential(nn.Conv2d(1, 1, 1, stride=8), nn.ConvTranspose2d(1, 1, 1, stride=8)), (1, 1, 30, 30),
     (1, 1, 25, 25)),  # more than 2 off
    (nn.Sequential(nn.Conv2d(1, 1, 3, padding=1)), (1, 1, 25, 25), (1, 1, 25, 25)),  # the input's size already
    (nn.Sequential(nn.Conv1d(1, 1, 2), nn.Flatten()), (1, 1, 25), (1, 24)),  # another rank
])
def test_no_output_shape_is_suggested_where_fix_would_not_reach_it_or_none_is_near(
        model: nn.Module, shape: tuple[int, ...], output: tuple[int, ...]) -> None:
    fixed = fix(model, shape)
    assert real_output(fixed.model, shape) == output and fixed.changes == ()
    assert fixed.suggested_output_shape is None and str(fixed).count("\n") == 0
    if isinstance(model[-1], nn.Upsample):  # a pixel off, but fix changes no pooling or upsampling
        with pytest.raises(ShapeError):
            fix(model, shape, (1, 1, 25, 25))


def test_the_model_may_be_the_layer() -> None:
    fixed = fix(nn.ConvTranspose1d(2, 2, 3, stride=2, padding=1), (1, 2, 12), (1, 2, 24))
    assert fixed.changes[0].path == "" and str(fixed).startswith("'(model)' ConvTranspose1d(2, 2, kernel_size=3")
    assert real_output(fixed.model, (1, 2, 12)) == (1, 2, 24)


@pytest.mark.parametrize(("layer", "size", "wanted", "kind"), [
    (nn.ConvTranspose1d(1, 1, 3, stride=2, padding=1), 12, 24, "output_padding"),
    (nn.ConvTranspose1d(1, 1, 3, stride=2, padding=1), 12, 21, "padding"),
    (nn.ConvTranspose1d(1, 1, 3, stride=2, padding=1), 12, 27, "kernel_size"),
    (nn.Conv1d(1, 1, 3, dilation=2), 10, 7, "stride"),  # stride 1 with dilation 2 keeps the parity
])
def test_preference_output_padding_then_padding_then_kernel_then_stride(layer: nn.Module, size: int, wanted: int,
                                                                        kind: str) -> None:
    (change,) = fix(nn.Sequential(layer), (1, 1, size), (1, 1, wanted)).changes
    rank = ("output_padding", "padding", "kernel_size", "stride").index
    assert max(map(rank, change.params)) == rank(kind)  # the least kind that can, nothing beyond it
    assert change.reinitialised == ("kernel_size" in change.params)
    assert real_output(nn.Sequential(change.after), (1, 1, size)) == (1, 1, wanted)


def test_a_stride_beats_a_kernel_grown_past_double() -> None:
    block = arch.BasicBlock(8, 8)
    block.conv1 = nn.Conv2d(8, 8, 3, stride=2, padding=1, bias=False)  # strided, but no downsample for the sum
    with pytest.raises(RuntimeError, match="must match"):
        real_output(block, (1, 8, 24, 24))
    (change,) = fix(block, (1, 8, 24, 24)).changes  # not conv2 with kernel_size=13, padding=12
    assert (change.path, dict(change.params), change.reinitialised) == ("conv1", {"stride": 1}, False)
    assert real_output(nn.Sequential(change.after), (1, 8, 24, 24)) == (1, 8, 24, 24)


def test_one_layer_beats_three_and_the_cheapest_layer_wins() -> None:
    model = nn.Sequential(nn.Conv1d(1, 1, 3), nn.ConvTranspose1d(1, 1, 3, 2, 1))  # 9 → 7 → 13
    (change,) = fix(model, (1, 1, 9), (1, 1, 14)).changes
    assert change.path == "1" and dict(change.params) == {"output_padding": 1}


def test_no_fix_is_a_shape_error_that_says_what_was_tried() -> None:
    upsampled = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.Upsample(scale_factor=2))
    with pytest.raises(ShapeError, match=r"it gives 1×8×16×16, not 1×8×17×17\. No change of one layer fixes "
                                         r"that: .* pooling and upsampling layers never change"):
        fix(upsampled, (1, 3, 8, 8), (1, 8, 17, 17))
    with pytest.raises(ShapeError, match=r"not 1×8×17×17"):  # the fix a channels mismatch names, followed
        fix(upsampled, (1, 3, 8, 8), (1, 8, 17, 17))
    deep = small_unet()  # at 63 every one of the four concatenations disagrees: four layers to change
    with pytest.raises(ShapeError, match=r"at most 3 changed layers: the forward fails at '\(model\)' torch\.cat.* "
                                         r"Tried \d+ candidate fixes on meta tensors.*'ups\.0'") as info:
        fix(deep, (1, 3, 63, 63))
    assert "Fix: explain(model, input_shape)" in str(info.value)
    assert "in the list. Tried" in str(info.value)  # torch's message ends the clause: no ".."


@pytest.mark.parametrize(("wanted", "message", "followed"), [
    ((2, 3, 24, 24), r"asks for a batch of 2, but the model's output keeps its input's, 1: no layer change moves it\. "
                     r"Fix: output_shape=\(1, 3, 24, 24\)\.", (1, 3, 24, 24)),
    ((1, 4, 24, 24), r"asks for 4 channels, but the model gives 3, and fix changes spatial sizes only\. Fix: "
                     r"output_shape=\(1, 3, 24, 24\), and change the out_channels", (1, 3, 24, 24)),
])
def test_an_output_shape_with_another_batch_or_channels_is_a_usage_error_with_the_shape_to_pass(
        wanted: tuple[int, ...], message: str, followed: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=message) as info:
        fix(readme_autoencoder(), (1, 3, 24, 24), wanted)
    assert not isinstance(info.value, ShapeError)  # a usage error, as a wrong rank is
    assert real_output(fix(readme_autoencoder(), (1, 3, 24, 24), followed).model, (1, 3, 24, 24)) == followed
    with pytest.raises(ValueError, match=r"output 1×10 has no spatial size.*Fix: leave output_shape out"):
        fix(nn.Sequential(nn.Flatten(), nn.Linear(12, 10)), (1, 3, 2, 2), (1, 12))


class LeNetView(nn.Module):
    """LeNet as often written for 32×32: ``x.view(-1, 16 * 5 * 5)``; or, followed, keeping the batch."""

    def __init__(self, features: int = 16 * 5 * 5, keep_batch: bool = False) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 6, 5), nn.Conv2d(6, 16, 5)
        self.fc1, self.fc2 = nn.Linear(features, 120), nn.Linear(120, 10)
        self.keep_batch = keep_batch

    def forward(self, x: Tensor) -> Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1) if self.keep_batch else x.view(-1, 16 * 5 * 5)
        return self.fc2(F.relu(self.fc1(x)))


def test_a_forward_that_changes_the_batch_is_never_called_fixed() -> None:
    with pytest.raises(ShapeError, match=r"LeNetView runs on 25×1×28×28 but does not keep its batch.*'\(model\)' view "
                                         r"turned 25×16×4×4 into 16×400.*x\.view\(x\.size\(0\), -1\)"):
        fix(LeNetView(), (25, 1, 28, 28))
    assert fix(LeNetView(features=256, keep_batch=True), (25, 1, 28, 28)).changes == ()  # the fix, followed
    assert real_output(LeNetView(features=256, keep_batch=True), (25, 1, 28, 28)) == (25, 10)


@pytest.mark.parametrize(("model", "shape", "path", "out"), [
    (LeNetView(), (2, 1, 28, 28), "conv2", (2, 10)),  # x.view(-1, 400) on 2×16×4×4: the map must be 5×5
    (nn.Sequential(nn.Conv2d(1, 8, 3, stride=2), nn.ReLU(), nn.MaxPool2d(4)), (1, 1, 7, 7), "0", (1, 8, 1, 1)),
])
def test_a_failing_view_or_a_pooling_with_too_small_an_input_is_fixed_by_the_conv_before_it(
        model: nn.Module, shape: tuple[int, ...], path: str, out: tuple[int, ...]) -> None:
    with pytest.raises(RuntimeError):
        real_output(model, shape)
    fixed = fix(model, shape)
    assert [change.path for change in fixed.changes] == [path]
    assert real_output(fixed.model, shape) == out


class ConditionalGenerator(nn.Module):
    """A cGAN generator, ``forward(z, labels)``: 1 → 7 → 14 → 27, one layer short of 28."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 10)
        self.net = nn.Sequential(nn.ConvTranspose2d(110, 64, 7), nn.ReLU(), nn.ConvTranspose2d(64, 32, 4, 2, 1),
                                 nn.ReLU(), nn.ConvTranspose2d(32, 1, 3, 2, 1), nn.Tanh())

    def forward(self, z: Tensor, labels: Tensor) -> Tensor:
        return self.net(torch.cat([z, self.embed(labels)], 1)[:, :, None, None])


class TimeConditionedUNet(nn.Module):
    """A diffusion-style U-Net level, ``forward(x, t)``: the timestep's embedding is added to the features."""

    def __init__(self) -> None:
        super().__init__()
        self.time = nn.Linear(1, 8)
        self.down, self.up = nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ConvTranspose2d(8, 8, 2, stride=2)
        self.head = nn.Conv2d(11, 3, 1)

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        h = self.down(x) + self.time(t[:, None])[:, :, None, None]
        return self.head(torch.cat([x, self.up(h)], 1))


def test_a_forward_with_several_inputs_is_explained_and_fixed_with_each_input_as_given() -> None:
    z, labels = torch.randn(4, 100), torch.randint(0, 10, (4,))
    assert tuple(ConditionalGenerator()(z, labels).shape) == (4, 1, 27, 27)
    explanation = explain(ConditionalGenerator(), ((4, 100), labels))  # a shape, and an example tensor of indices
    assert [(row.name, row.output_shape) for row in explanation][:3] == [
        ("embed", (4, 10)), ("", (4, 110)), ("", (4, 110, 1, 1))]
    assert explanation.output_shape == (4, 1, 27, 27)
    fixed = fix(ConditionalGenerator(), ((4, 100), labels), output_shape=(4, 1, 28, 28))
    assert [(c.path, dict(c.params)) for c in fixed.changes] == [("net.4", {"output_padding": 1})]
    assert str(fixed).endswith("output: 4×1×28×28 for inputs of 4×100, 4 (checked at this size; other sizes may "
                               "need other values)")
    assert fixed.input_shape == ((4, 100), (4,))
    assert tuple(fixed.model(z, labels).shape) == (4, 1, 28, 28)
    x, t = torch.randn(1, 3, 101, 67), torch.rand(1)
    with pytest.raises(RuntimeError, match="Sizes of tensors must match"):
        TimeConditionedUNet()(x, t)
    fixed = fix(TimeConditionedUNet(), (x.shape, t.shape))
    assert tuple(fixed.model(x, t).shape) == (1, 3, 101, 67)


def test_labels_given_as_a_shape_are_told_to_come_as_indices_and_that_followed_runs() -> None:
    failure = explain(ConditionalGenerator(), ((4, 100), (4,))).failure
    assert failure is not None and (failure.path, failure.call) == ("embed", "Embedding")
    assert failure.fix == ("'embed' Embedding takes integer indices, but the forward's input 'labels' was not (a shape "
                           "is traced in the model's floating-point dtype): give that input as an example tensor of "
                           "indices, e.g. torch.zeros(4, dtype=torch.long)")
    followed = explain(ConditionalGenerator(), ((4, 100), torch.zeros(4, dtype=torch.long)))
    assert followed.failure is None and followed.output_shape == (4, 1, 27, 27)


@pytest.mark.parametrize("bad", [((1, 3, 8, 8), "x"), ((1, 3, 8, 8), ()), [(1, 3, 8, 8), (1, 0)]])
def test_several_inputs_that_are_not_shapes_or_tensors_are_refused_by_position(bad: Any) -> None:
    with pytest.raises((TypeError, ValueError), match=r"input_shape\[1\]"):
        explain(TimeConditionedUNet(), bad)


class _ReadsValues(nn.Module):
    """A model that reads its data (``if x.abs().max() > 1``), so it cannot run on meta tensors; counts its
    real forwards."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net, self.real_forwards = net, 0

    def forward(self, x: Tensor) -> Tensor:
        self.real_forwards += not x.is_meta
        if x.abs().max() > 1:
            x = x / x.abs().max()
        return self.net(x)  # type: ignore[no-any-return]


def test_a_model_that_reads_values_is_fixed_by_real_forwards_on_zeros_and_says_so() -> None:
    classifier = _ReadsValues(nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.Flatten(), nn.Linear(10, 2)))
    with pytest.warns(RuntimeWarning, match=r"_ReadsValues cannot run on meta tensors: fix runs it, and each patched "
                                            r"copy it checks \(at most 8\), with a real forward on zeros") as warned:
        (change,) = fix(classifier, (1, 3, 8, 8)).changes
    assert {w.filename for w in warned} == {__file__}  # the user's line, not autoshape's
    assert (change.path, dict(change.params)) == ("net.2", {"in_features": 64})
    classifier.net[2] = change.after
    assert real_output(classifier, (1, 3, 8, 8)) == (1, 2)
    unet = _ReadsValues(small_unet())
    with pytest.warns(RuntimeWarning, match="cannot run on meta tensors"):
        fixed = fix(unet, (1, 3, 101, 67))
    assert [c.path for c in fixed.changes] == ["net.ups.1", "net.ups.2", "net.ups.3"]
    assert real_output(fixed.model, (1, 3, 101, 67)) == (1, 2, 101, 67)
    assert unet.real_forwards <= 1 + 8
    deep = _ReadsValues(small_unet())  # four skips disagree at 63: no fix
    with pytest.warns(RuntimeWarning), pytest.raises(ShapeError, match=r"Tried \d candidate fixes by real forwards"):
        fix(deep, (1, 3, 63, 63))
    assert deep.real_forwards <= 1 + 8


def test_a_layer_with_a_parametrization_is_never_rebuilt() -> None:
    model = readme_autoencoder()
    nn.utils.parametrizations.weight_norm(model[2])  # rebuilding it would drop the parametrization
    with pytest.raises(ShapeError, match="No change of one layer fixes that"):
        fix(model, (1, 3, 24, 24), (1, 3, 24, 24))


def test_argument_errors() -> None:
    with pytest.raises(TypeError, match=r"nn\.Module"):
        fix("model", (1, 3, 8, 8))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="output_shape"):
        fix(readme_autoencoder(), (1, 3, 8, 8), (1, 3, 0, 8))
    with pytest.raises(ValueError, match=r"output_shape \(3, 24, 24\) has 3 dimensions, but the model's output "
                                         r"has 4 \(2×3×23×23\)\. Fix: .* output_shape=\(2, 3, 24, 24\)\.") as info:
        fix(readme_autoencoder(), (2, 3, 24, 24), (3, 24, 24))
    assert not isinstance(info.value, ShapeError)  # a mistake in the call, not an impossible fix
    shape = ast.literal_eval(str(info.value).split("output_shape=")[1].rstrip("."))
    assert real_output(fix(readme_autoencoder(), (2, 3, 24, 24), shape).model, (2, 3, 24, 24)) == shape  # followed


# --- random chains: a target one layer away is found with one change -------------------------

Layer = tuple[bool, tuple[tuple[int, int, int, int], ...]]
"""transposed, and per dimension: kernel_size, stride, padding, output_padding (values torch accepts)."""


@st.composite
def _layers(draw: st.DrawFn, dims: int, transposed: bool | None = None) -> Layer:
    transposed = draw(st.booleans()) if transposed is None else transposed
    per_dim = []
    for _ in range(dims):
        k, s = draw(st.integers(1, 5)), draw(st.integers(1, 3))
        per_dim.append((k, s, draw(st.integers(0, k - 1)), draw(st.integers(0, s - 1)) if transposed else 0))
    return transposed, tuple(per_dim)


def _chain(layers: list[Layer]) -> nn.Sequential:
    modules: list[nn.Module] = []
    for transposed, per_dim in layers:
        k, s, p, op = (tuple(column) for column in zip(*per_dim))
        n = len(per_dim)
        modules.append(getattr(nn, f"ConvTranspose{n}d")(1, 1, k, s, p, op) if transposed
                       else getattr(nn, f"Conv{n}d")(1, 1, k, s, p))
    return nn.Sequential(*modules)


def _output(model: nn.Module, shape: tuple[int, ...]) -> tuple[int, ...] | None:
    """The real output shape; None where torch refuses or gives an empty tensor."""
    try:
        out = real_output(model, shape)
    except RuntimeError:
        return None
    return out if min(out) >= 1 else None


@given(dims=st.sampled_from([1, 2]), data=st.data())
def test_a_target_one_layer_away_is_reached_with_one_change(dims: int, data: st.DataObject) -> None:
    layers = data.draw(st.lists(_layers(dims), min_size=1, max_size=4))
    shape = (1, 1, *data.draw(st.tuples(*[st.integers(8, 30)] * dims)))
    model = _chain(layers)
    assume(_output(model, shape) is not None)
    index = data.draw(st.integers(0, len(layers) - 1))
    changed = list(layers)
    changed[index] = data.draw(_layers(dims, transposed=layers[index][0]))
    target = _output(_chain(changed), shape)
    assume(target is not None and target != _output(model, shape))
    assert target is not None
    fixed = fix(model, shape, target)
    assert len(fixed.changes) == 1
    assert real_output(fixed.model, shape) == target


@given(i=st.integers(2, 20), o=st.integers(1, 40), k=st.integers(1, 5), s=st.integers(1, 3), p=st.integers(0, 4),
       op=st.integers(0, 2), transposed=st.booleans())
def test_nearest_change_is_exact_in_torch_and_of_the_least_kind(i: int, o: int, k: int, s: int, p: int, op: int,
                                                                transposed: bool) -> None:
    p, op = min(p, k - 1), op % s if transposed else 0

    def size(k: int, s: int, p: int, op: int) -> tuple[int, ...] | None:
        if transposed:
            return torch_conv_transpose_size([i], [k], [s], [p], [1], [op])
        return torch_conv_size([i], [k], [s], [p], [1])

    c = nearest_change(i, o, o, k, s, p, 1, op, transposed)
    assert c is not None  # with kernel and stride free, every size is reachable
    assert size(c.kernel_size, c.stride, c.padding, c.output_padding) == (o,)
    alone = transposed and any(size(k, s, p, x) == (o,) for x in range(s))
    padded = any(size(k, s, q, x) == (o,) for q in range(k) for x in range(s if transposed else 1))
    least = -1 if size(k, s, p, op) == (o,) else 0 if alone else 1 if padded else 2
    assert c.kind == least if least < 2 else c.kind >= 2
    assert KINDS[c.kind] == "output_padding" or c.kind != 0


def test_no_fix_leaves_outputs_without_inputs() -> None:
    """A transposed conv whose kernel reaches less than its stride leaves outputs that only the bias makes:
    fix never proposes one (here the only one-layer fixes would have a stride far above the kernel)."""
    generator = nn.Sequential(nn.ConvTranspose2d(64, 128, 3, 1, 0), nn.ReLU(), nn.ConvTranspose2d(128, 64, 4, 2, 1),
                              nn.ReLU(), nn.ConvTranspose2d(64, 32, 3, 2, 0), nn.ReLU(),
                              nn.ConvTranspose2d(32, 1, 3, 2, 1), nn.Tanh())
    try:
        fixed = fix(generator, (1, 64, 1, 1), output_shape=(1, 1, 64, 64))
    except ShapeError as error:
        assert "Tried" in str(error)
        return
    for change in fixed.changes:
        layer = change.after
        if isinstance(layer, nn.ConvTranspose2d):
            assert all(d * (k - 1) + 1 >= s for k, s, d in zip(layer.kernel_size, layer.stride, layer.dilation))
    with torch.no_grad():
        out = fixed.model.eval()(torch.randn(1, 64, 1, 1))
    assert out.shape == (1, 1, 64, 64)


def test_an_input_shape_without_a_batch_is_refused_with_the_batched_shape() -> None:
    classifier = nn.Sequential(nn.Conv2d(3, 16, 5), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(10, 4))
    with pytest.raises(ValueError, match=r"'0' Conv2d got 3×32×32, one sample without a batch.*\(1, 3, 32, 32\)"):
        fix(classifier, (3, 32, 32))
    assert fix(classifier, (1, 3, 32, 32)).model(torch.randn(8, 3, 32, 32)).shape == (8, 4)  # the fix, followed
