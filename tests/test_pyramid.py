"""MirrorUNet on backbones that return feature pyramids: exact at every size, skips met exactly.

Every shape is checked by running real torch modules: hooks record, per decoder stage, the shape
its up step produced and the shape of the skip it fused.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest
import torch
from torch import nn

from autoshape import MirrorUNet, ShapeError
from tests.torch_reference import hooked

SIZES = [(64, 64), (101, 67), (257, 193)]


class Pyramid(nn.Module):
    """A hand-written backbone returning its stages' outputs: a list at 1/2, 1/4 and 1/8."""

    def __init__(self, dims: int = 2, as_dict: bool = False) -> None:
        super().__init__()
        conv = {2: nn.Conv2d, 3: nn.Conv3d}[dims]
        self.stem = nn.Sequential(conv(3, 8, 3, 2, 1), nn.ReLU())
        self.layer1 = nn.Sequential(conv(8, 16, 3, 2, 1), nn.ReLU())
        self.layer2 = nn.Sequential(conv(16, 32, 3, 2, 1), nn.ReLU())
        self.as_dict = as_dict

    def forward(self, x: torch.Tensor) -> list[torch.Tensor] | dict[str, torch.Tensor]:
        a = self.stem(x)
        b = self.layer1(a)
        c = self.layer2(b)
        return {"a": a, "b": b, "c": c} if self.as_dict else [a, b, c]


def fused(unet: MirrorUNet, x: torch.Tensor) -> tuple[torch.Tensor, list[tuple[tuple[int, ...], tuple[int, ...]]]]:
    """The output, and per stage with a skip the (up step's output, skip) shapes it joined."""
    seen: list[tuple[tuple[int, ...], tuple[int, ...]]] = []

    def record(stage: nn.Module, args: tuple[Any, ...], out: torch.Tensor) -> None:
        if args[1] is not None:
            seen.append((tuple(stage.up(args[0], args[2]).shape), tuple(args[1].shape)))

    with hooked(unet.decoder.stages, record), torch.no_grad():
        out = unet.eval()(x)
    return out, seen


def assert_exact(unet: MirrorUNet, channels: int, sizes: list[tuple[int, ...]]) -> None:
    for size in sizes:
        x = torch.randn(1, channels, *size)
        out, seen = fused(unet, x)
        assert out.shape == (1, 2, *size)
        assert seen and all(up[2:] == skip[2:] for up, skip in seen)


@pytest.mark.parametrize("skip", ["concat", "add"])
@pytest.mark.parametrize("pool_mirror", ["conv", "nearest"])
def test_a_hand_written_pyramid_gets_an_exact_unet_at_every_size(skip: str, pool_mirror: str) -> None:
    unet = MirrorUNet(Pyramid(), (3, 64, 64), out_channels=2, skip=skip, pool_mirror=pool_mirror)  # type: ignore[arg-type]
    assert unet.features == (0, 1, 2)
    assert_exact(unet, 3, SIZES)
    kinds = {type(m).__name__ for m in unet.decoder.modules()}
    assert not kinds & {"ConstantPad2d", "ZeroPad2d", "ReflectionPad2d"}  # nothing padded or cropped


def test_stages_upsample_by_a_transposed_conv_fitted_to_the_backbone() -> None:
    unet = MirrorUNet(Pyramid(), (3, 64, 64), out_channels=2)
    ups = [stage.up.conv for stage in unet.decoder.stages]
    # k3 s2 p1 convs take n to ceil(n/2): a transposed k3 s2 p1 reaches both sizes of each interval
    assert [(u.kernel_size, u.stride, u.padding) for u in ups] == [((3, 3), (2, 2), (1, 1))] * 3
    assert [(u.in_channels, u.out_channels) for u in ups] == [(32, 16), (16, 8), (8, 8)]
    assert isinstance(unet.decoder.head, nn.Conv2d) and unet.decoder.head.out_channels == 2


class FunctionalPyramid(nn.Module):
    """Activations as torch calls in the backbone's own forward (``F.relu``), not modules."""

    def __init__(self) -> None:
        super().__init__()
        self.stem, self.down = nn.Conv2d(3, 8, 3, 2, 1), nn.Conv2d(8, 16, 3, 2, 1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        a = torch.nn.functional.relu(self.stem(x))
        return [a, torch.nn.functional.relu(self.down(a))]


def test_functional_activations_between_the_maps_keep_the_fitted_transposed_convs() -> None:
    unet = MirrorUNet(FunctionalPyramid(), (3, 64, 64), out_channels=2)
    assert [type(stage.up.conv) for stage in unet.decoder.stages] == [nn.ConvTranspose2d] * 2
    assert_exact(unet, 3, SIZES)


def test_a_dict_of_maps_and_custom_decoder_widths() -> None:
    unet = MirrorUNet(Pyramid(as_dict=True), (3, 64, 64), out_channels=2, decoder_channels=(24, 12, 6),
                      final_activation=nn.Sigmoid())
    assert unet.features == ("a", "b", "c")
    assert [stage.blocks[3].out_channels for stage in unet.decoder.stages] == [24, 12, 6]
    assert_exact(unet, 3, SIZES)


def test_one_int_is_the_width_of_every_decoder_stage() -> None:
    unet = MirrorUNet(Pyramid(), (3, 64, 64), out_channels=2, decoder_channels=4)
    assert [stage.blocks[3].out_channels for stage in unet.decoder.stages] == [4, 4, 4]
    assert_exact(unet, 3, SIZES)


@pytest.mark.parametrize(("given", "error"), [((8, 8), ValueError), ("4,4", TypeError), (4.0, TypeError),
                                              ((8, None, 8), TypeError), (0, ValueError), ((8, 0, 8), ValueError)])
def test_bad_decoder_channels_say_what_is_expected_and_the_fix_works(given: object, error: type) -> None:
    told = (r"decoder_channels must be an int \(the width of every stage\) or a sequence of ints, one per stage \(3 "
            r"here, coarsest first, full resolution included\), each at least 1; got .*\. Fix: e\.g\. "
            r"decoder_channels=16 or decoder_channels=\(16, 8, 8\)\.")
    with pytest.raises(error, match=told):
        MirrorUNet(Pyramid(), (3, 64, 64), out_channels=2, decoder_channels=given)  # type: ignore[arg-type]
    for fix in (16, (16, 8, 8)):  # both, followed literally
        unet = MirrorUNet(Pyramid(), (3, 64, 64), out_channels=2, decoder_channels=fix)
        assert unet(torch.randn(1, 3, 67, 61)).shape == (1, 2, 67, 61)


def test_a_three_dimensional_pyramid() -> None:
    unet = MirrorUNet(Pyramid(dims=3), (3, 16, 16, 16), out_channels=2)
    assert_exact(unet, 3, [(16, 16, 16), (17, 15, 13)])


def test_compile_fullgraph_is_exact_across_sizes() -> None:
    unet = MirrorUNet(Pyramid(), (3, 64, 64), out_channels=2).eval()
    compiled = torch.compile(unet, fullgraph=True, backend="eager")
    with torch.no_grad():
        for size in [(64, 64), (65, 63)]:
            x = torch.randn(1, 3, *size)
            torch.testing.assert_close(compiled(x), unet(x))


def test_backward_reaches_every_decoder_parameter() -> None:
    unet = MirrorUNet(Pyramid(), (3, 64, 64), out_channels=2)
    unet(torch.randn(2, 3, 67, 61)).square().mean().backward()
    assert all(p.grad is not None for p in unet.parameters())


class Tokens(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, 2, 1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        y = self.conv(x)
        return [y, y.flatten(2).transpose(1, 2)]


def test_a_feature_that_is_not_a_map_is_refused_by_name_and_shape() -> None:
    with pytest.raises(ShapeError, match=r"feature 1 has shape 1×64×8.*Fix: pick only the spatial feature maps"):
        MirrorUNet(Tokens(), (3, 16, 16), out_channels=2)
    unet = MirrorUNet(Tokens(), (3, 16, 16), out_channels=2, output=lambda out: out[:1])  # the fix, followed
    assert unet(torch.randn(1, 3, 17, 15)).shape == (1, 2, 17, 15)


def test_decoder_channels_are_for_pyramids_only() -> None:
    with pytest.raises(ValueError, match="decoder_channels sets the widths of a pyramid decoder"):
        MirrorUNet(nn.Sequential(nn.Conv2d(1, 4, 3, 2, 1)), (1, 16, 16), out_channels=1, decoder_channels=(4,))


class SizeBranch(nn.Module):
    """A backbone whose forward depends on the input's size: above 40 pixels it returns other maps."""

    def __init__(self, large: str) -> None:
        super().__init__()
        self.stem, self.down = nn.Conv2d(3, 8, 3, 2, 1), nn.Conv2d(8, 16, 3, 2, 1)
        self.same = nn.Conv2d(3, 8, 3, padding=1)
        self.large = large

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        relu, big = torch.nn.functional.relu, x.shape[-1] > 40
        if self.large == "one-map":
            return [relu(self.same(torch.nn.functional.avg_pool2d(x, 2) if big else x))]
        if big and self.large == "pooled":
            x = torch.nn.functional.avg_pool2d(x, 2)
        a = relu(self.stem(x))
        b = relu(self.down(a))
        return {"pooled": [a, b], "fewer": [a] if big else [a, b], "swapped": [b, a] if big else [a, b]}[self.large]


@pytest.mark.parametrize(("large", "what"), [
    ("pooled", r"the up step from map 0 \(1×8×12×12\) reaches 23×23 to 24×24, not the input's 48×48"),
    ("one-map", r"map 0 is 1×8×24×24, not at the input's size 48×48, where the decoder returns it"),
    ("fewer", r"it returned no map 1 \(a list of 1\)"),
    ("swapped", r"map 0 is 1×16×12×12, where the decoder takes 1×8 maps with 2 spatial dimensions"),
])
def test_maps_that_do_not_fit_the_decoder_at_call_time_are_named_with_a_fix(large: str, what: str) -> None:
    backbone = SizeBranch(large)
    unet = MirrorUNet(backbone, (3, 32, 32), out_channels=2)
    assert unet(torch.randn(1, 3, 33, 31)).shape == (1, 2, 33, 31)
    with pytest.raises(ShapeError, match=r"MirrorUNet's decoder was built for the maps the backbone returned for an "
                                         rf"input of 1×3×32×32 \(.*\), but for an input of 1×3×48×48 {what}: .*Fix: "
                                         r"(build it with pool_mirror='nearest' .*, or )?build the U-Net at this size, "
                                         r"MirrorUNet\(encoder, \(3, 48, 48\), \.\.\.\)") as info:
        unet(torch.randn(1, 3, 48, 48))
    fixed = MirrorUNet(backbone, (3, 48, 48), out_channels=2)  # the fix, followed
    assert fixed(torch.randn(1, 3, 48, 48)).shape == (1, 2, 48, 48)
    if "pool_mirror='nearest'" in str(info.value):  # offered only where the sizes alone misfit: followed too
        resized = MirrorUNet(backbone, (3, 32, 32), out_channels=2, pool_mirror="nearest")
        assert resized(torch.randn(1, 3, 48, 48)).shape == (1, 2, 48, 48)


needs_monai = pytest.mark.skipif(importlib.util.find_spec("monai") is None, reason="monai is in the test extra")
needs_hf = pytest.mark.skipif(importlib.util.find_spec("transformers") is None,
                              reason="transformers is in the test extra")


@needs_monai
@pytest.mark.parametrize("dims", [2, 3])
def test_monai_resnet_features(dims: int) -> None:
    from monai.networks.nets import ResNetFeatures
    backbone = ResNetFeatures("resnet10", pretrained=False, spatial_dims=dims, in_channels=1)
    shape = (1, *(32,) * dims)
    unet = MirrorUNet(backbone, shape, out_channels=2)
    sizes = SIZES if dims == 2 else [(32, 32, 32), (33, 29, 31)]
    assert_exact(unet, 1, sizes)


def _hf(name: str) -> nn.Module:
    import transformers
    small = {"ResNet": dict(embedding_size=8, hidden_sizes=[8, 16, 32, 64], depths=[1, 1, 1, 1]),
             "ConvNext": dict(hidden_sizes=[8, 16, 32, 64], depths=[1, 1, 1, 1]),
             "MobileViT": dict(image_size=64, hidden_sizes=[16, 24, 32], neck_hidden_sizes=[8, 8, 16, 16, 24, 32, 48],
                               num_attention_heads=2)}[name]
    config = getattr(transformers, f"{name}Config")(output_hidden_states=True, **small)
    return getattr(transformers, f"{name}Model")(config)  # type: ignore[no-any-return]


@needs_hf
@pytest.mark.parametrize("name", ["ResNet", "ConvNext", "MobileViT"])
def test_hf_backbones_with_hidden_states(name: str) -> None:
    unet = MirrorUNet(_hf(name), (3, 64, 64), out_channels=2, output="hidden_states")
    assert_exact(unet, 3, SIZES)


@needs_hf
def test_of_two_maps_of_one_size_the_later_is_kept() -> None:
    """HF ResNet returns its embedding output and its first stage, both at 1/4: the stage is the skip."""
    unet = MirrorUNet(_hf("ResNet"), (3, 64, 64), out_channels=2, output="hidden_states")
    assert unet.features == (1, 2, 3, 4)
    by_index = MirrorUNet(_hf("ResNet"), (3, 64, 64), out_channels=2, output=2)  # a ModelOutput's fields, in order
    assert by_index.features == (1, 2, 3, 4)
    assert by_index(torch.randn(1, 3, 67, 61)).shape == (1, 2, 67, 61)


class Upsampled(nn.Module):
    """An FPN-style backbone whose finest map is an upsampled one: the input's size only at even sizes."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 8, 3, 2, 1), nn.Conv2d(8, 16, 3, 2, 1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        a = torch.relu(self.a(x))
        return [torch.nn.functional.interpolate(a, scale_factor=2.0), a, torch.relu(self.b(a))]


def test_a_finest_map_of_the_input_size_at_the_traced_size_only_still_returns_to_every_size() -> None:
    unet = MirrorUNet(Upsampled(), (3, 64, 64), out_channels=1)
    for size in [(64, 64), (101, 67), (65, 65)]:
        assert unet.eval()(torch.randn(1, 3, *size)).shape == (1, 1, *size)
