"""MirrorUNet: skips fused at exactly the recorded sizes, every shape checked by running real torch modules."""

from __future__ import annotations

import time

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from autoshape import MirrorUNet, ShapeError
from autoshape.layers.resize import SkipAdd, SkipConcat
from tests import architectures as arch
from tests.test_mirror import Allocations, encoders, runs
from tests.torch_reference import hooked


def fused_shapes(unet: MirrorUNet, x: torch.Tensor) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Run ``unet`` on ``x`` and return, per skip fusion, the shapes of the two tensors it received."""
    seen: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
    fusions = [m for m in unet.decoder if isinstance(m, (SkipConcat, SkipAdd))]
    with hooked(fusions, lambda m, args: seen.append((tuple(args[0].shape), tuple(args[1].shape))), pre=True), \
            torch.no_grad():
        out = unet.eval()(x)
    assert out.shape == (x.shape[0], out.shape[1], *x.shape[2:])
    return seen


def assert_exact(unet: MirrorUNet, shape: tuple[int, ...], out_channels: int) -> None:
    """The output has ``out_channels`` at the input's size, and every skip met features of its exact size
    (a concatenation may join other channel counts: the input image's, say; a sum checks its own)."""
    x = torch.randn(1, *shape)
    seen = fused_shapes(unet, x)
    assert seen and all((up[0], *up[2:]) == (skip[0], *skip[2:]) for up, skip in seen)
    with torch.no_grad():
        assert unet(x).shape == (1, out_channels, *shape[1:])


def _block(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]


def test_readme_unet_takes_a_101_by_67_image_with_no_padding() -> None:
    encoder = nn.Sequential(*_block(3, 16), nn.MaxPool2d(2), *_block(16, 32), nn.MaxPool2d(2), *_block(32, 64))
    unet = MirrorUNet(encoder, (3, 101, 67), out_channels=2)
    seen = fused_shapes(unet, torch.randn(1, 3, 101, 67))
    # the skips are the pools' inputs: 101×67 and 50×33 (floor halving), met exactly on the way up
    assert [up[2:] for up, _ in seen] == [(50, 33), (101, 67)]
    assert all(up == skip for up, skip in seen)
    allowed = (nn.ConvTranspose2d, nn.BatchNorm2d, nn.ReLU, SkipConcat)
    assert all(isinstance(m, allowed) for m in unet.decoder)  # no padding, cropping or interpolation layer
    for size in [(101, 67), (100, 66), (7, 5), (64, 129)]:
        assert_exact(unet, (3, *size), 2)


@pytest.mark.parametrize("skip", ["concat", "add"])
@pytest.mark.parametrize(("encoder", "shapes"), [
    (arch.unet_encoder(widths=(4, 8, 16, 32)), [(1, 37, 29), (1, 64, 64), (1, 33, 70)]),
    (arch.unet_encoder(widths=(4, 8, 16), dims=3), [(1, 19, 21, 17), (1, 16, 16, 16), (1, 9, 12, 15)]),
    (arch.unet_encoder(widths=(4, 8, 16), dims=1), [(1, 101), (1, 128)]),
    (arch.unet_encoder(widths=(4, 8, 16), padding=0), [(1, 101, 67), (1, 140, 141)]),
], ids=["2d", "3d", "1d", "unpadded"])
def test_one_unet_is_exact_at_odd_and_even_sizes(encoder: nn.Module, shapes: list, skip: str) -> None:
    unet = MirrorUNet(encoder, shapes[0], out_channels=3, skip=skip)  # type: ignore[arg-type]
    for shape in shapes:
        assert_exact(unet, shape, 3)


def test_unpadded_unet_needs_no_cropping() -> None:
    """The paper's unpadded convs lose 2 pixels each, and the paper crops its skips; here the
    mirrored block gives them back, so each skip (a pool's input) is met exactly."""
    encoder = arch.unet_encoder(widths=(4, 8, 16), padding=0)
    unet = MirrorUNet(encoder, (1, 61, 61), out_channels=2)
    seen = fused_shapes(unet, torch.randn(1, 1, 61, 61))
    # 61 -conv-> 59 -conv-> 57 -pool-> 28 -conv-> 26 -conv-> 24 -pool-> 12 -conv-> 10 -conv-> 8
    assert seen == [((1, 8, 24, 24), (1, 8, 24, 24)), ((1, 4, 57, 57), (1, 4, 57, 57))]


def test_the_papers_unpadded_unet_keeps_572_by_572_on_meta_tensors() -> None:
    """Ronneberger et al. crop 572×572 down to a 388×388 map; the mirrored U-Net returns all 572×572."""
    encoder = arch.unet_encoder(padding=0)  # the published widths, 64 to 1024
    unet = MirrorUNet(encoder, (1, 572, 572), out_channels=2).to("meta").eval()
    assert unet(torch.empty(1, 1, 572, 572, device="meta")).shape == (1, 2, 572, 572)
    assert unet(torch.empty(1, 1, 573, 571, device="meta")).shape == (1, 2, 573, 571)


def test_stages_follow_resolution_changes_and_channels_mirror_the_encoder() -> None:
    encoder = nn.Sequential(*_block(1, 8), nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
                            *_block(16, 16), nn.MaxPool2d(2, ceil_mode=True), *_block(16, 32))
    unet = MirrorUNet(encoder, (1, 45, 31), out_channels=5)
    seen = fused_shapes(unet, torch.randn(1, 1, 45, 31))
    # two resolution changes -> two skips: the strided conv's input (8 @ 45×31) and the pool's (16 @ 23×16)
    assert seen == [((1, 16, 23, 16), (1, 16, 23, 16)), ((1, 8, 45, 31), (1, 8, 45, 31))]
    head = [m for m in unet.decoder if isinstance(m, nn.ConvTranspose2d)][-1]
    assert head.out_channels == 5 and head.bias is not None  # the output layer always has a bias


def test_first_step_changing_resolution_gets_a_one_by_one_head() -> None:
    encoder = arch.dcgan_discriminator(nc=1, ndf=8)[:-2]  # up to the last strided conv's block
    unet = MirrorUNet(encoder, (1, 64, 64), out_channels=4, final_activation=nn.Sigmoid())
    assert isinstance(unet.decoder[-2], nn.Conv2d) and unet.decoder[-2].kernel_size == (1, 1)
    assert isinstance(unet.decoder[-1], nn.Sigmoid)
    # the full-resolution stage works at the first stage's width (8), never at the image's 1 channel
    first_up = [m for m in unet.decoder if isinstance(m, nn.ConvTranspose2d)][-1]
    assert first_up.out_channels == 8 and first_up.stride == (2, 2)
    full = list(unet.decoder)[list(unet.decoder).index(first_up) + 2]
    assert isinstance(full, nn.Conv2d) and (full.in_channels, full.out_channels, full.kernel_size) == (9, 8, (3, 3))
    assert unet.decoder[-2].in_channels == 8
    for size in (64, 61):
        assert_exact(unet, (1, size, size), 4)


def test_residual_encoder_with_strided_blocks() -> None:
    unet = MirrorUNet(arch.resnet_encoder(width=4, blocks=(1, 1, 1)), (3, 67, 61), out_channels=2, skip="add")
    for shape in [(3, 67, 61), (3, 64, 64), (3, 33, 35)]:
        assert_exact(unet, shape, 2)


@pytest.mark.parametrize("pool_mirror", ["nearest", "linear"])
def test_interpolated_up_steps_change_channels_with_a_one_by_one_conv(pool_mirror: str) -> None:
    encoder = nn.Sequential(*_block(1, 8), nn.AdaptiveAvgPool2d((11, 13)), *_block(8, 16), nn.MaxPool2d(2),
                            *_block(16, 32))
    unet = MirrorUNet(encoder, (1, 23, 29), out_channels=2, skip="add", pool_mirror=pool_mirror)  # type: ignore[arg-type]
    ups = [m for m in unet.decoder if isinstance(m, nn.Upsample)]
    assert [up.size for up in ups] == [(11, 13), (23, 29)]
    one_by_one = unet.decoder[list(unet.decoder).index(ups[0]) + 1]  # the bottleneck's 32 channels to the skip's 16
    assert isinstance(one_by_one, nn.Conv2d) and one_by_one.kernel_size == (1, 1) and one_by_one.out_channels == 16
    for shape in [(1, 23, 29), (1, 40, 17)]:
        assert_exact(unet, shape, 2)


@pytest.mark.parametrize("skip", ["concat", "add"])
def test_unet_compiles_with_fullgraph_and_stays_exact_across_sizes(skip: str) -> None:
    encoder = nn.Sequential(*_block(1, 4), nn.MaxPool2d(2), *_block(4, 8), nn.Conv2d(8, 8, 3, stride=2))
    unet = MirrorUNet(encoder, (1, 37, 29), out_channels=2, skip=skip).eval()  # type: ignore[arg-type]
    compiled = torch.compile(unet, fullgraph=True, backend="eager")
    with torch.no_grad():
        for size in [(37, 29), (40, 40), (33, 51)]:
            x = torch.randn(1, 1, *size)
            torch.testing.assert_close(compiled(x), unet(x))
            assert compiled(x).shape == (1, 2, *size)


def test_building_for_a_huge_volume_stays_on_meta() -> None:
    encoder = arch.unet_encoder(widths=(8, 16, 32, 64), dims=3)
    MirrorUNet(encoder, (1, 16, 16, 16), out_channels=2)  # warm-up: torch's first meta ops are slow once
    start = time.perf_counter()
    with Allocations() as allocations:
        unet = MirrorUNet(encoder, (1, 512, 512, 512), out_channels=2)
    seconds = time.perf_counter() - start
    weights = sum(t.numel() * t.element_size() for t in (*unet.decoder.parameters(), *unet.decoder.buffers()))
    assert allocations.bytes < 2 * weights + 2**20 < 512**3 * 4 // 100
    assert seconds < 1.0


def test_bad_arguments_are_refused() -> None:
    encoder = arch.unet_encoder(widths=(4, 8))
    with pytest.raises(TypeError, match="out_channels must be an int"):
        MirrorUNet(encoder, (1, 16, 16), out_channels=2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="out_channels must be >= 1"):
        MirrorUNet(encoder, (1, 16, 16), out_channels=0)
    with pytest.raises(ValueError, match="skip must be 'concat' or 'add'"):
        MirrorUNet(encoder, (1, 16, 16), out_channels=1, skip="sum")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pool_mirror must be one of"):
        MirrorUNet(encoder, (1, 16, 16), out_channels=1, pool_mirror="area")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="final_activation"):
        MirrorUNet(encoder, (1, 16, 16), out_channels=1, final_activation=torch.sigmoid)  # type: ignore[arg-type]


def test_adding_a_skip_never_broadcasts() -> None:
    with pytest.raises(ShapeError, match="must be equal"):
        SkipAdd()(torch.zeros(1, 2, 1, 5), torch.zeros(1, 2, 4, 5))


def test_an_encoder_that_flattens_is_refused_naming_the_step() -> None:
    with pytest.raises(ShapeError, match=r"'6' \(Flatten\).*MirrorAutoencoder"):
        MirrorUNet(arch.lenet5(), (1, 32, 32), out_channels=1)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(encoders(flatten=False), st.sampled_from(["concat", "add"]), st.sampled_from(["conv", "nearest"]), st.data())
def test_fuzz_random_encoders_give_exact_unets(case, skip: str, pool_mirror: str, data) -> None:  # type: ignore[no-untyped-def]
    encoder, shape = case
    unet = MirrorUNet(encoder, shape, out_channels=2, skip=skip, pool_mirror=pool_mirror).eval()
    deltas = data.draw(st.lists(st.integers(-3, 5), min_size=len(shape) - 1, max_size=len(shape) - 1))
    for sample in (shape, (shape[0], *(max(1, n + d) for n, d in zip(shape[1:], deltas)))):
        if sample != shape and not runs(encoder, sample):
            continue
        seen = fused_shapes(unet, torch.randn(1, *sample))
        assert all((up[0], *up[2:]) == (skip_shape[0], *skip_shape[2:]) for up, skip_shape in seen)
        with torch.no_grad():
            assert unet(torch.randn(1, *sample)).shape == (1, 2, *sample[1:])
