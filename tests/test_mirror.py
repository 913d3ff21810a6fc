"""MirrorDecoder and MirrorAutoencoder: every shape is checked by running real torch modules."""

from __future__ import annotations

import functools
import pickle
import time

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from autoshape import MirrorAutoencoder, MirrorDecoder, ShapeError, TargetConvTranspose2d
from autoshape.core.arithmetic import output_padding_for
from autoshape.core.inversion import fit_transpose
from autoshape.layers.blocks import ResidualUp
from tests import architectures as arch

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


def reconstruct(encoder: nn.Module, decoder: nn.Module, shape: tuple[int, ...]) -> torch.Size:
    """The shape ``decoder(encoder(x))`` really has, for a batch of two."""
    encoder.eval()
    decoder.eval()
    with torch.no_grad():
        return decoder(encoder(torch.randn(2, *shape))).shape


def runs(encoder: nn.Module, shape: tuple[int, ...]) -> bool:
    try:
        with torch.no_grad():
            encoder.eval()(torch.zeros(2, *shape))
    except (RuntimeError, ValueError):
        return False
    return True


# --- the pure arithmetic, against real torch layers ------------------------------------------------


def test_conv_mirror_output_padding_restores_every_size_torch_produces() -> None:
    """Brute force over small convs: torch's conv, then torch's transposed conv with the answer.

    On meta tensors: torch's own shape functions, without the compute.
    """
    checked = 0
    for k in range(1, 6):
        weight = torch.empty(1, 1, k, device="meta")
        for s in range(1, 4):
            for d in range(1, 3):
                for p in range(0, 4):
                    for i in range(max(1, d * (k - 1) + 1 - 2 * p), 16):
                        o = F.conv1d(torch.empty(1, 1, i, device="meta"), weight, None, s, p, d).shape[-1]
                        op = output_padding_for(i, o, k, s, p, d)
                        assert op is not None
                        back = F.conv_transpose1d(torch.empty(1, 1, o, device="meta"), weight, None, s, p, op, 1, d)
                        assert back.shape[-1] == i
                        checked += 1
    assert checked > 1500


def _pooled_size(kind: str, k: int, s: int, p: int, ceil_mode: bool):  # type: ignore[no-untyped-def]
    """torch's pooled size of a 1-d input, from its meta kernels (None where torch refuses)."""
    pool = F.max_pool1d if kind == "max" else F.avg_pool1d

    @functools.cache
    def size_of(n: int) -> int | None:
        try:
            return int(pool(torch.empty(1, 1, n, device="meta"), k, s, p, ceil_mode=ceil_mode).shape[-1])
        except RuntimeError:
            return None

    return size_of


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_fit_transpose_covers_every_pooling_interval(kind: str) -> None:
    """Brute force: the fitted transposed conv reaches every input size that pools to each output."""
    checked = 0
    for k in range(1, 5):
        for s in range(1, 4):
            for p in range(0, k // 2 + 1):
                for ceil_mode in (False, True):
                    size_of = _pooled_size(kind, k, s, p, ceil_mode)
                    for i in range(k, 3 * k + 3 * s):
                        fit = fit_transpose(size_of, i)
                        assert fit is not None, (k, s, p, ceil_mode, i)
                        kernel, stride, padding, _ = fit
                        up = nn.ConvTranspose1d(1, 1, kernel, stride, padding, device="meta")
                        o = size_of(i)
                        for j in range(max(1, i - 2 * s), i + 2 * s):
                            if size_of(j) == o:
                                assert up(torch.empty(1, 1, o, device="meta"), output_size=[j]).shape[-1] == j
                                checked += 1
    assert checked > 500


def test_fit_transpose_refuses_what_no_transposed_conv_undoes() -> None:
    assert fit_transpose(lambda n: 2 * n, 5) is None  # upsampling: output sizes skip values
    assert fit_transpose(lambda n: 3, 5) is None  # adaptive: one output for every input
    assert fit_transpose(lambda n: None, 5) is None


# --- the classic question, and the README's example -----------------------------------------------


@pytest.mark.parametrize("size", [24, 25])
def test_classic_stride_two_autoencoder_is_exact_at_both_parities(size: int) -> None:
    encoder = nn.Sequential(nn.Conv2d(128, 256, 3, stride=2, padding=1), nn.ReLU())
    decoder = MirrorDecoder(encoder, (128, size, size))
    assert reconstruct(encoder, decoder, (128, size, size)) == (2, 128, size, size)
    up = decoder[0]
    assert isinstance(up, nn.ConvTranspose2d)
    assert (up.kernel_size, up.stride, up.padding) == ((3, 3), (2, 2), (1, 1))
    assert up.output_padding == ((1, 1) if size == 24 else (0, 0))


# --- every kind of convolution ---------------------------------------------------------------------

CONV_CASES = [
    # (ndim, Conv kwargs, one sample's spatial size)
    (2, dict(kernel_size=3, stride=2, padding=1), (24, 25)),
    (2, dict(kernel_size=4, stride=2, padding=1), (63, 64)),
    (2, dict(kernel_size=3, padding="same"), (9, 10)),
    (2, dict(kernel_size=4, padding="same"), (9, 10)),
    (2, dict(kernel_size=2, padding="same", dilation=3), (11, 12)),
    (2, dict(kernel_size=4, padding="same", dilation=2), (11, 12)),
    (2, dict(kernel_size=5, padding="valid"), (13, 14)),
    (2, dict(kernel_size=3, stride=2, dilation=2, padding=2), (21, 22)),
    (2, dict(kernel_size=3, stride=2, dilation=3), (23, 24)),
    (2, dict(kernel_size=2, stride=3), (17, 19)),
    (2, dict(kernel_size=1, stride=2, padding=2), (7, 8)),
    (2, dict(kernel_size=(3, 5), stride=(1, 2), padding=(0, 2), dilation=(2, 1)), (15, 20)),
    (2, dict(kernel_size=3, stride=2, padding=1, groups=4), (19, 20)),
    (2, dict(kernel_size=3, stride=2, padding=1, bias=False), (19, 20)),
    (2, dict(kernel_size=3, stride=2, padding=1, padding_mode="reflect"), (19, 20)),
    (2, dict(kernel_size=3, stride=2, padding=2, padding_mode="circular"), (19, 20)),
    (2, dict(kernel_size=4, stride=3, padding=1, padding_mode="replicate"), (19, 20)),
    (1, dict(kernel_size=10, stride=5), (16000,)),
    (1, dict(kernel_size=4, padding="same"), (31,)),
    (3, dict(kernel_size=3, stride=2, padding=1), (9, 10, 11)),
    (3, dict(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)), (5, 17, 18)),
]


@pytest.mark.parametrize(("ndim", "kwargs", "spatial"), CONV_CASES)
def test_conv_is_mirrored_exactly_with_its_own_hyperparameters(ndim: int, kwargs: dict, spatial: tuple) -> None:
    conv = CONV[ndim](4, 8, **kwargs)
    decoder = MirrorDecoder(nn.Sequential(conv), (4, *spatial))
    assert reconstruct(conv, decoder, (4, *spatial)) == (2, 4, *spatial)
    up = decoder[0]
    assert isinstance(up, nn.modules.conv._ConvTransposeNd)
    assert (up.in_channels, up.out_channels, up.groups) == (8, 4, conv.groups)
    assert (up.bias is None) == (conv.bias is None)
    assert up.stride == conv.stride and up.dilation == conv.dilation
    even_same = conv.padding == "same" and any(k % 2 == 0 and d == 1 for k, d in zip(conv.kernel_size, conv.dilation))
    if even_same:  # no transposed conv with an even kernel undoes 'same' padding: a Target one size larger
        assert type(up).__name__ == f"TargetConvTranspose{ndim}d"
        assert up.kernel_size == tuple(k + (k % 2 == 0 and d == 1) for k, d in zip(conv.kernel_size, conv.dilation))
    else:
        assert type(up) is getattr(nn, f"ConvTranspose{ndim}d") and up.kernel_size == conv.kernel_size
        if not isinstance(conv.padding, str):
            assert up.padding == conv.padding


@pytest.mark.parametrize(("ndim", "kwargs", "spatial"), CONV_CASES)
def test_one_autoencoder_is_exact_at_neighbouring_sizes(ndim: int, kwargs: dict, spatial: tuple) -> None:
    model = MirrorAutoencoder(nn.Sequential(CONV[ndim](4, 8, **kwargs), nn.ReLU()), (4, *spatial)).eval()
    for delta in range(-2, 4):
        shape = (4, *(n + delta for n in spatial))
        if runs(model.encoder, shape):
            with torch.no_grad():
                assert model(torch.randn(2, *shape)).shape == (2, *shape)


# --- pooling, Linear and Flatten ----------------------------------------------------------------------

POOLS = [
    nn.MaxPool2d(2),
    nn.MaxPool2d(3, stride=2),
    nn.MaxPool2d(3, stride=2, padding=1),
    nn.MaxPool2d(2, ceil_mode=True),
    nn.MaxPool2d(3, stride=2, padding=1, dilation=2, ceil_mode=True),
    nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    nn.LPPool2d(2, 3, stride=2),
    nn.AdaptiveAvgPool2d((3, 5)),
    nn.AdaptiveMaxPool2d(1),
    nn.MaxPool1d(4, ceil_mode=True),
    nn.AvgPool3d(2, ceil_mode=True),
    nn.AdaptiveAvgPool3d(2),
]


@pytest.mark.parametrize("pool_mirror", ["nearest", "linear", "conv"])
@pytest.mark.parametrize("pool", POOLS, ids=repr)
def test_pooling_is_mirrored_exactly_at_odd_and_even_sizes(pool: nn.Module, pool_mirror: str) -> None:
    ndim = int(type(pool).__name__[-2])
    encoder = nn.Sequential(CONV[ndim](2, 3, 3, padding=1), nn.ReLU(), pool)
    shape = (2, *(13,) * ndim)
    assert reconstruct(encoder, MirrorDecoder(encoder, shape, pool_mirror=pool_mirror), shape) == (2, *shape)
    model = MirrorAutoencoder(encoder, shape, pool_mirror=pool_mirror).eval()  # type: ignore[arg-type]
    for size in (12, 14, 17):
        shape = (2, *(size,) * ndim)
        with torch.no_grad():
            assert model(torch.randn(2, *shape)).shape == (2, *shape)
    mirror = model.decoder[0]
    adaptive = "Adaptive" in type(pool).__name__
    if pool_mirror == "conv" and not adaptive:
        assert isinstance(mirror, nn.modules.conv._ConvTransposeNd) and mirror.in_channels == 3
    else:
        assert isinstance(mirror, nn.Upsample)
        assert mirror.mode == ("nearest" if pool_mirror != "linear" else ["linear", "bilinear", "trilinear"][ndim - 1])


def test_lenet5_flatten_and_linear_come_back_as_unflatten_and_linear() -> None:
    encoder = arch.lenet5()
    decoder = MirrorDecoder(encoder, (1, 32, 32))
    assert reconstruct(encoder, decoder, (1, 32, 32)) == (2, 1, 32, 32)
    linears = [m for m in decoder if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(10, 84), (84, 120), (120, 400)]
    unflatten = next(m for m in decoder if isinstance(m, nn.Unflatten))
    assert tuple(unflatten.unflattened_size) == (16, 5, 5)
    latent = torch.randn(3, 10)
    assert decoder(latent).shape == (3, 1, 32, 32)


# --- norms and activations, placed per resolution ------------------------------------------------------


def test_norms_and_activations_follow_the_encoders_placement_per_resolution() -> None:
    encoder = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.GroupNorm(4, 16), nn.GELU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.Dropout(0.1), nn.LeakyReLU(0.1),
    )
    decoder = MirrorDecoder(encoder, (3, 37, 29), final_activation=nn.Sigmoid())
    # Read backwards: after undoing a step the decoder is at the shape the encoder had before
    # it, and applies what the encoder applied there; the output gets the final activation only.
    expected = [
        (nn.ConvTranspose2d, 32, 16),  # undoes conv3 -> at the pool's output: nothing was applied there
        (nn.Upsample, None, None),  # undoes the pool -> at conv2's output: GroupNorm(4, 16), GELU
        (nn.GroupNorm, 16, None), (nn.GELU, None, None),
        (nn.ConvTranspose2d, 16, 8), (nn.BatchNorm2d, 8, None), (nn.ReLU, None, None),
        (nn.ConvTranspose2d, 8, 3), (nn.Sigmoid, None, None),
    ]
    assert len(decoder) == len(expected)
    for layer, (kind, first, second) in zip(decoder, expected):
        assert isinstance(layer, kind)
        if kind is nn.ConvTranspose2d:
            assert (layer.in_channels, layer.out_channels) == (first, second)
        elif kind is nn.GroupNorm:
            assert (layer.num_groups, layer.num_channels) == (4, first)
        elif kind is nn.BatchNorm2d:
            assert layer.num_features == first
    assert reconstruct(encoder, decoder, (3, 37, 29)) == (2, 3, 37, 29)


def test_copied_norms_are_fresh_and_the_encoder_is_left_untouched() -> None:
    encoder = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.BatchNorm2d(8), nn.PReLU(8),
                            nn.Conv2d(8, 8, 3, stride=2), nn.BatchNorm2d(8)).train()
    with torch.no_grad():
        encoder(torch.randn(4, 3, 21, 21))  # move the running statistics away from their defaults
        encoder[1].weight.fill_(3.0)
        encoder[2].weight.fill_(0.5)
    encoder[3].eval()
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    modes = [m.training for m in encoder.modules()]
    decoder = MirrorDecoder(encoder, (3, 21, 21))
    assert all(torch.equal(before[k], v) for k, v in encoder.state_dict().items())
    assert [m.training for m in encoder.modules()] == modes
    norm, prelu = decoder[1], decoder[2]
    assert norm is not encoder[1] and torch.equal(norm.weight, torch.ones(8))
    assert torch.equal(norm.running_mean, torch.zeros(8)) and int(norm.num_batches_tracked) == 0
    assert torch.equal(prelu.weight, torch.full((8,), 0.25))
    own = {id(p) for p in encoder.parameters()}
    assert not any(id(p) in own for p in decoder.parameters())


def test_dcgan_discriminator_mirrors_to_the_generators_shape_path() -> None:
    discriminator, generator = arch.dcgan_discriminator(), arch.dcgan_generator(nz=1)
    decoder = MirrorDecoder(discriminator, (3, 64, 64), final_activation=nn.Tanh())
    ours = [m for m in decoder if isinstance(m, nn.ConvTranspose2d)]
    theirs = [m for m in generator if isinstance(m, nn.ConvTranspose2d)]
    describe = lambda m: (m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.bias is None)  # noqa: E731
    assert [describe(m) for m in ours] == [describe(m) for m in theirs]
    z = torch.randn(2, 1, 1, 1)
    decoder.eval()
    generator.eval()
    path_ours, path_theirs = [], []
    for layers, path in ((decoder, path_ours), (generator, path_theirs)):
        x = z
        for layer in layers:
            x = layer(x)
            if isinstance(layer, nn.ConvTranspose2d):
                path.append(tuple(x.shape))
    assert path_ours == path_theirs == [(2, 512, 4, 4), (2, 256, 8, 8), (2, 128, 16, 16), (2, 64, 32, 32),
                                        (2, 3, 64, 64)]
    assert isinstance(decoder[-1], nn.Tanh)
    assert reconstruct(discriminator, decoder, (3, 64, 64)) == (2, 3, 64, 64)


# --- real architectures ---------------------------------------------------------------------------------------

ARCHITECTURES = [
    ("vgg11", lambda: arch.vgg11_features(width=4), [(3, 64, 64), (3, 67, 67), (3, 45, 71)]),
    ("alexnet", lambda: arch.alexnet_features(width=8), [(3, 224, 224), (3, 227, 227), (3, 97, 131)]),
    ("wav2vec2", lambda: arch.wav2vec2_feature_encoder(channels=16), [(1, 16000), (1, 16003), (1, 4001)]),
    ("voxnet", lambda: arch.encoder_3d(width=4), [(1, 32, 32, 32), (1, 33, 31, 29)]),
    ("resnet18", lambda: arch.resnet_encoder(width=4), [(3, 64, 64), (3, 67, 61), (3, 33, 47)]),
]


@pytest.mark.parametrize(("name", "build", "shapes"), ARCHITECTURES, ids=[a[0] for a in ARCHITECTURES])
def test_real_architectures_come_back_exactly(name: str, build, shapes: list) -> None:  # type: ignore[no-untyped-def]
    encoder = build()
    assert reconstruct(encoder, MirrorDecoder(encoder, shapes[0]), shapes[0]) == (2, *shapes[0])
    model = MirrorAutoencoder(encoder, shapes[0]).eval()
    for shape in shapes:
        with torch.no_grad():
            assert model(torch.randn(2, *shape)).shape == (2, *shape)


@pytest.mark.parametrize(("build", "shape"), [
    (arch.vgg11_features, (3, 224, 224)), (arch.vgg11_features, (3, 225, 223)),
    (arch.alexnet_features, (3, 227, 227)), (arch.wav2vec2_feature_encoder, (1, 16000)),
    (lambda: arch.encoder_3d(num_classes=10), (1, 32, 32, 32)), (arch.resnet_encoder, (3, 224, 224)),
])
def test_full_width_architectures_on_meta_tensors(build, shape: tuple) -> None:  # type: ignore[no-untyped-def]
    """Published widths and sizes: torch's own meta kernels run encoder and decoder, with no compute."""
    encoder = build()
    decoder = MirrorDecoder(encoder, shape).to("meta")
    out = decoder(encoder.to("meta").eval()(torch.empty(2, *shape, device="meta")))
    assert out.shape == (2, *shape)


# --- tie_weights ------------------------------------------------------------------------------------------------


def test_tied_decoder_shares_each_conv_weight_and_gets_its_gradient() -> None:
    encoder = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
                            nn.Conv2d(8, 16, 4, stride=2, padding=1, groups=2), nn.ReLU())
    model = MirrorAutoencoder(encoder, (3, 25, 25), tie_weights=True)
    ups = [m for m in model.decoder if isinstance(m, nn.ConvTranspose2d)]
    assert ups[0].weight is encoder[2].weight and ups[1].weight is encoder[0].weight
    latent = encoder(torch.randn(2, 3, 25, 25)).detach()
    model.decoder(latent).square().mean().backward()  # only the decoder uses the weights here
    assert encoder[0].weight.grad is not None and encoder[0].weight.grad.abs().sum() > 0
    for size in (24, 25, 26):
        assert model(torch.randn(1, 3, size, size)).shape == (1, 3, size, size)
    untied = sum(p.numel() for p in MirrorAutoencoder(encoder, (3, 25, 25)).parameters())
    tied = sum(p.numel() for p in model.parameters())
    assert untied - tied == encoder[0].weight.numel() + encoder[2].weight.numel()


def test_tying_an_even_kernel_same_conv_is_refused_with_the_reason() -> None:
    encoder = nn.Sequential(nn.Conv2d(3, 8, 4, padding="same"))
    assert isinstance(MirrorDecoder(encoder, (3, 9, 9))[0], TargetConvTranspose2d)
    with pytest.raises(ShapeError, match=r"'0' \(Conv2d\).*tie_weights=False"):
        MirrorDecoder(encoder, (3, 9, 9), tie_weights=True)


# --- non-chain and unknown parts --------------------------------------------------------------------------------


def test_residual_blocks_are_mirrored_as_units() -> None:
    encoder = arch.resnet_encoder(width=4, blocks=(1, 2))
    decoder = MirrorDecoder(encoder, (3, 45, 39))
    blocks = [m for m in decoder if isinstance(m, arch.BasicBlock)]
    assert len(blocks) == 1  # layer1's shape-keeping block, copied fresh; layer2's second is at the latent
    assert blocks[0].conv1.in_channels == 4
    assert not {id(p) for b in blocks for p in b.parameters()} & {id(p) for p in encoder.parameters()}
    up = decoder[0]  # undoes the stride-2 block: a residual up block, both branches mirrored
    assert isinstance(up, ResidualUp)
    main = [m for m in up.main if isinstance(m, nn.ConvTranspose2d)]
    assert [(m.in_channels, m.out_channels, m.stride) for m in main] == [(8, 8, (1, 1)), (8, 4, (2, 2))]
    assert [type(m) for m in up.main] == [nn.ConvTranspose2d, nn.BatchNorm2d, nn.ReLU, nn.ConvTranspose2d]
    assert [(m.in_channels, m.out_channels, m.stride) for m in up.shortcut if isinstance(m, nn.ConvTranspose2d)] == [
        (8, 4, (2, 2))]
    assert not isinstance(decoder[1], nn.ReLU)  # layer2.0's output ReLU is at the latent's side: not applied
    assert reconstruct(encoder, decoder, (3, 45, 39)) == (2, 3, 45, 39)
    model = MirrorAutoencoder(encoder, (3, 45, 39)).eval()
    for shape in ((3, 45, 39), (3, 44, 40), (3, 33, 47)):
        with torch.no_grad():
            assert model(torch.randn(2, *shape)).shape == (2, *shape)


class ConvBlock(nn.Module):
    """A custom module whose forward is a chain of its submodules (an in-place activation included)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride=2, padding=1)
        self.norm = nn.BatchNorm2d(cout)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


def test_custom_modules_whose_forward_is_a_chain_are_read_through() -> None:
    encoder = nn.Sequential(ConvBlock(3, 8), nn.Sequential(ConvBlock(8, 16)))
    decoder = MirrorDecoder(encoder, (3, 27, 30))
    assert decoder.encoder_steps == ("0.conv", "0.norm", "0.act", "1.0.conv", "1.0.norm", "1.0.act")
    assert [type(m) for m in decoder] == [nn.ConvTranspose2d, nn.BatchNorm2d, nn.ReLU, nn.ConvTranspose2d]
    assert reconstruct(encoder, decoder, (3, 27, 30)) == (2, 3, 27, 30)


class FunctionalLeNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 6, 5)
        self.fc = nn.Linear(6 * 14 * 14, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(nn.functional.max_pool2d(self.conv(x), 2), 1))


class Squash(nn.Module):
    """A custom unit without a mirror rule that changes the rank."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


def test_functional_calls_between_modules_are_mirrored_as_the_modules_they_stand_for() -> None:
    encoder = FunctionalLeNet()
    decoder = MirrorDecoder(encoder, (1, 32, 32))
    assert decoder.encoder_steps == ("conv", "F.max_pool2d", "torch.flatten", "fc")
    assert [type(m).__name__ for m in decoder] == ["Linear", "UnflattenTo", "UpsampleTo", "ConvTranspose2d"]
    assert reconstruct(encoder, decoder, (1, 32, 32)) == (2, 1, 32, 32)
    model = MirrorAutoencoder(encoder, (1, 32, 32)).eval()
    with torch.no_grad():
        assert model(torch.randn(3, 1, 32, 32)).shape == (3, 1, 32, 32)


@pytest.mark.parametrize(("module", "path"), [(nn.Upsample(scale_factor=2), r"'1\.0' \(Upsample\)"),
                                              (Squash(), r"'1\.0' \(Squash\)")])
def test_unknown_shape_changing_parts_are_refused_naming_path_and_type(module: nn.Module, path: str) -> None:
    encoder = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Sequential(module))
    with pytest.raises(ShapeError, match=path + ".*Fix:"):
        MirrorDecoder(encoder, (1, 12, 12))


class TwoOutputs(nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, x


def test_an_encoder_must_return_one_tensor() -> None:
    with pytest.raises(TypeError, match="must return one tensor"):
        MirrorDecoder(TwoOutputs(), (1, 8, 8))


# --- arguments --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("given", [(3, 25, 25), (5, 3, 25, 25), torch.zeros(5, 3, 25, 25), torch.zeros(3, 25, 25)])
def test_input_shape_is_one_sample_a_batch_or_a_tensor(given: object) -> None:
    encoder = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1))
    decoder = MirrorDecoder(encoder, given)  # type: ignore[arg-type]
    assert decoder.input_shape[1:] == (3, 25, 25)
    assert reconstruct(encoder, decoder, (3, 25, 25)) == (2, 3, 25, 25)


def test_a_one_dimensional_sample_and_batch_are_told_apart() -> None:
    encoder = nn.Conv1d(2, 4, 3, stride=2)
    assert MirrorDecoder(encoder, (2, 99)).input_shape == (1, 2, 99)
    assert MirrorDecoder(encoder, (6, 2, 99)).input_shape == (6, 2, 99)


@pytest.mark.parametrize(("kwargs", "error", "pattern"), [
    (dict(pool_mirror="bilinear"), ValueError, "pool_mirror must be one of"),
    (dict(tie_weights=1), TypeError, "tie_weights must be a bool"),
    (dict(final_activation=torch.sigmoid), TypeError, "final_activation must be an nn.Module"),
])
def test_bad_options_are_refused(kwargs: dict, error: type, pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        MirrorDecoder(nn.Conv2d(1, 2, 3), (1, 8, 8), **kwargs)


def test_bad_encoders_and_shapes_are_refused() -> None:
    with pytest.raises(TypeError, match=r"encoder must be an nn\.Module"):
        MirrorDecoder(lambda x: x, (1, 8, 8))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="input_shape must be >= 1"):
        MirrorDecoder(nn.Conv2d(1, 2, 3), (1, 0, 8))


def test_a_shape_the_encoder_refuses_names_the_module_that_refused() -> None:
    with pytest.raises(ShapeError, match=r"refuses input_shape \(3, 37, 29\).*'20' \(MaxPool2d\).*Fix:"):
        MirrorDecoder(arch.vgg11_features(width=4), (3, 37, 29))  # five halvings: 29 reaches 0


class NeedsData(nn.Module):
    """Looks at its input's values, which meta tensors do not have."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert torch.isfinite(x).all().item()
        return self.conv(x)


@pytest.mark.parametrize("given", [(1, 15, 15), (4, 1, 15, 15)])
def test_an_encoder_that_cannot_run_on_meta_is_traced_with_a_real_forward(given: tuple[int, ...]) -> None:
    encoder = nn.Sequential(NeedsData(), nn.ReLU())
    with pytest.warns(RuntimeWarning, match="cannot run on meta tensors") as warned:
        decoder = MirrorDecoder(encoder, given)
    assert {w.filename for w in warned} == {__file__}  # the user's line, not autoshape's
    assert reconstruct(encoder, decoder, (1, 15, 15)) == (2, 1, 15, 15)


def test_a_static_decoder_refuses_a_latent_it_was_not_built_for() -> None:
    encoder = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1))
    decoder = MirrorDecoder(encoder, (3, 24, 24))
    with pytest.raises(ShapeError, match=r"built for latents of shape \(N, 8, 12, 12\).*MirrorAutoencoder"):
        decoder(torch.zeros(1, 8, 13, 13))
    x = torch.zeros(1, 3, 25, 25)
    sizes = [x.shape]
    assert decoder(encoder(x), sizes).shape == x.shape  # with the recorded sizes it is exact
    with pytest.raises(ShapeError, match=r"5 channels instead of 8"):  # sizes do not excuse other channels
        decoder(torch.zeros(1, 5, 13, 13), sizes)


# --- compile, build cost ---------------------------------------------------------------------------------------


def test_autoencoder_compiles_with_fullgraph_and_stays_exact_across_sizes() -> None:
    encoder = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                            nn.MaxPool2d(2, ceil_mode=True), nn.Conv2d(4, 8, 3, stride=2))
    model = MirrorAutoencoder(encoder, (1, 29, 29), pool_mirror="conv").eval()
    compiled = torch.compile(model, fullgraph=True, backend="eager")
    with torch.no_grad():
        for size in (29, 30, 33):
            x = torch.randn(2, 1, size, size + 2)
            assert compiled(x).shape == x.shape
            torch.testing.assert_close(compiled(x), model(x))


class Allocations(TorchDispatchMode):
    """Counts the bytes of every non-meta tensor that torch creates (what a build really allocates)."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = func(*args, **(kwargs or {}))
        if any(r.alias_info is not None for r in func._schema.returns):
            return out  # in-place ops and views allocate nothing
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                self.bytes += t.numel() * t.element_size()
        return out


def test_building_for_a_huge_volume_traces_on_meta_without_compute_or_activations() -> None:
    encoder = nn.Sequential(
        nn.Conv3d(1, 8, 3, stride=2, padding=1), nn.BatchNorm3d(8), nn.ReLU(),
        nn.Conv3d(8, 16, 3, stride=2, padding=1), nn.BatchNorm3d(16), nn.ReLU(), nn.MaxPool3d(2),
        nn.Conv3d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
    )
    MirrorDecoder(encoder, (1, 16, 16, 16))  # warm-up: torch's first meta ops take a one-off second or so
    start = time.perf_counter()
    with Allocations() as allocations:
        decoder = MirrorDecoder(encoder, (1, 512, 512, 512))
    seconds = time.perf_counter() - start
    weights = sum(p.numel() * p.element_size() for p in decoder.parameters())
    weights += sum(b.numel() * b.element_size() for b in decoder.buffers())
    one_activation = 512**3 * 4
    assert allocations.bytes < 4 * weights + 2**20 < one_activation // 100  # the decoder's own weights, and no more
    assert seconds < 1.0
    assert decoder.latent_shape == (1, 32, 32, 32, 32)


# --- fuzz: random 1-d, 2-d and 3-d encoders ----------------------------------------------------------------------


def _post(draw, channels: int) -> nn.Module:  # type: ignore[no-untyped-def]
    return draw(st.sampled_from([
        lambda: nn.ReLU(), lambda: nn.LeakyReLU(0.1, inplace=True), lambda: nn.Dropout(0.1),
        lambda: nn.GroupNorm(1, channels), lambda: nn.Identity(), lambda: nn.Tanh(),
    ]))()


def _conv(draw, ndim: int, channels: int) -> nn.Module:  # type: ignore[no-untyped-def]
    groups = draw(st.sampled_from([g for g in (1, 2, 3) if channels % g == 0]))
    out = groups * draw(st.integers(1, 3))
    k = draw(st.integers(1, 5))
    s = draw(st.integers(1, 3))
    d = draw(st.integers(1, 3))
    padding = draw(st.one_of(st.integers(0, 3), st.just("valid"), st.just("same"))) if s == 1 else draw(
        st.integers(0, 3))
    mode = draw(st.sampled_from(["zeros", "zeros", "reflect", "replicate", "circular"]))
    return CONV[ndim](channels, out, k, s, padding, d, groups, draw(st.booleans()), mode)


class _Residual(nn.Module):
    """conv(x) + shortcut(x): a unit that is not a chain, shrinking sizes to ceil(size / stride)."""

    def __init__(self, ndim: int, cin: int, cout: int, k: int, s: int) -> None:
        super().__init__()
        self.conv = CONV[ndim](cin, cout, k, s, k // 2)
        self.shortcut = CONV[ndim](cin, cout, 1, s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + self.shortcut(x)


def _pool(draw, ndim: int) -> nn.Module:  # type: ignore[no-untyped-def]
    k = draw(st.integers(1, 3))
    s = draw(st.integers(1, 3))
    p = draw(st.integers(0, k // 2))
    ceil_mode = draw(st.booleans())
    kind = draw(st.sampled_from(["max", "avg", "adaptive"]))
    if kind == "max":
        return getattr(nn, f"MaxPool{ndim}d")(k, s, p, dilation=draw(st.integers(1, 2)), ceil_mode=ceil_mode)
    if kind == "avg":
        return getattr(nn, f"AvgPool{ndim}d")(k, s, p, ceil_mode=ceil_mode)
    return getattr(nn, f"AdaptiveAvgPool{ndim}d")(draw(st.integers(1, 4)))


@st.composite
def encoders(draw, flatten: bool = True):  # type: ignore[no-untyped-def]
    """A random 1-d, 2-d or 3-d encoder that runs on its random sample shape, and that shape."""
    ndim = draw(st.integers(1, 3))
    low, high = {1: (9, 80), 2: (5, 30), 3: (4, 10)}[ndim]
    channels = draw(st.integers(1, 3))
    shape = (channels, *(draw(st.integers(low, high)) for _ in range(ndim)))
    x = torch.zeros(1, *shape)
    layers: list[nn.Module] = []
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["conv", "conv", "pool", "post", "residual"]))
        if kind == "conv":
            layer = _conv(draw, ndim, x.shape[1])
        elif kind == "residual":
            layer = _Residual(ndim, x.shape[1], draw(st.integers(1, 3)), draw(st.sampled_from([1, 3, 5])),
                              draw(st.integers(1, 3)))
        else:
            layer = _pool(draw, ndim) if kind == "pool" else _post(draw, x.shape[1])
        try:
            with torch.no_grad():
                x = layer.eval()(x)
        except (RuntimeError, ValueError):
            continue  # the layer does not fit this size: leave it out
        layers.append(layer)
    if flatten and draw(st.integers(0, 4)) == 0:
        layers += [nn.Flatten(), nn.Linear(x[0].numel(), draw(st.integers(1, 8)))]
    return nn.Sequential(*layers).eval(), shape


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(encoders(), st.sampled_from(["nearest", "linear", "conv"]), st.booleans(), st.data())
def test_fuzz_random_encoders_are_mirrored_exactly(case, pool_mirror: str, tie_weights: bool, data) -> None:  # type: ignore[no-untyped-def]
    encoder, shape = case
    try:
        model = MirrorAutoencoder(encoder, shape, pool_mirror=pool_mirror, tie_weights=tie_weights).eval()
    except ShapeError as error:  # an even kernel with padding='same' cannot keep its kernel, so cannot tie
        assert tie_weights and "tie_weights=False" in str(error)
        model = MirrorAutoencoder(encoder, shape, pool_mirror=pool_mirror).eval()
    with torch.no_grad():
        assert model.decoder(encoder(torch.randn(1, *shape))).shape == (1, *shape)
        deltas = data.draw(st.lists(st.integers(-3, 5), min_size=len(shape) - 1, max_size=len(shape) - 1))
        other = (1, shape[0], *(max(1, n + d) for n, d in zip(shape[1:], deltas)))
        try:
            out = model(torch.randn(other))
        except (RuntimeError, ValueError):
            assert not runs(encoder, other[1:])  # only the encoder itself may refuse the other size
        else:
            assert out.shape == other


# --- the replay is the encoder's forward, or a clear error --------------------------------------


class GlobalPool(nn.Module):
    """A global average pool written with the input's size: the kernel depends on it."""

    def __init__(self, adaptive: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, 2, 1)
        self.adaptive = adaptive

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv(x))
        return F.adaptive_avg_pool2d(x, 1) if self.adaptive else F.avg_pool2d(x, x.size()[2:])


class TrainingNoise(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            x = x + 0.5 * torch.randn_like(x)
        return self.conv(x)


def test_a_size_computed_from_the_input_is_refused_not_replayed_frozen() -> None:
    with pytest.raises(ShapeError, match=r"at 1×3×65×65 F\.avg_pool2d in '<model>' \(GlobalPool\) is called with "
                                         r"\(·, \(33, 33\)\) instead of \(·, \(16, 16\)\).*Fix: .*AdaptiveAvgPool2d"):
        MirrorAutoencoder(GlobalPool(adaptive=False), (3, 32, 32))
    model = MirrorAutoencoder(GlobalPool(adaptive=True), (3, 32, 32)).eval()  # the fix, followed
    with torch.no_grad():
        assert model(torch.randn(2, 3, 45, 37)).shape == (2, 3, 45, 37)
    assert MirrorDecoder(GlobalPool(adaptive=False), (3, 32, 32))(torch.randn(2, 8, 1, 1)).shape == (2, 3, 32, 32)


class ParityPad(nn.Module):
    """Pads odd sizes to even ones before a stride-2 conv, as some HF models do: a padding read from the size."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, x.shape[-1] % 2, 0, x.shape[-2] % 2)))


@pytest.mark.parametrize("size", [32, 33])
def test_a_padding_read_from_the_sizes_parity_is_refused_from_either_parity(size: int) -> None:
    far = 2 * size + 1 - size % 2  # the other parity
    with pytest.raises(ShapeError, match=rf"at 1×3×{far}×{far} F\.pad in '<model>' \(ParityPad\) is called with"):
        MirrorAutoencoder(ParityPad(), (3, size, size))


def test_a_forward_that_differs_in_training_is_refused() -> None:
    with pytest.raises(ShapeError, match=r"in training mode its steps are not a chain.*Fix: put the training-only "
                                         r"part in a module of its own"):
        MirrorAutoencoder(TrainingNoise(), (3, 32, 32))


class View(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return x.view(x.size(0), x.size(1), -1)


def test_a_view_follows_the_batch_and_keeps_its_minus_one() -> None:
    model = MirrorAutoencoder(View(), (3, 32, 32)).eval()
    with torch.no_grad():
        for shape in ((2, 3, 30, 30), (5, 3, 33, 31)):
            assert model(torch.randn(shape)).shape == shape


class ReturnsIndices(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.pool = nn.Conv2d(1, 4, 3, padding=1), nn.MaxPool2d(2, return_indices=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.conv(x))[0]


def test_a_call_returning_a_tuple_is_replayed_for_its_element_and_pickles() -> None:
    model = MirrorAutoencoder(ReturnsIndices(), (1, 16, 16)).eval()
    for size in (16, 17):
        assert model(torch.randn(1, 1, size, size)).shape == (1, 1, size, size)
    functional = MirrorAutoencoder(FunctionalLeNet(), (1, 32, 32)).eval()  # F.max_pool2d is a local function
    restored = pickle.loads(pickle.dumps(functional))
    x = torch.randn(2, 1, 32, 32)
    torch.testing.assert_close(restored(x), functional(x))


class MadeOnTheCpu(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x * torch.ones(1, 3, 1, 1))


def test_a_tensor_made_on_a_device_inside_the_forward_falls_back_to_a_real_trace() -> None:
    with pytest.warns(RuntimeWarning, match="not on the expected device meta"), \
            pytest.raises(ShapeError, match=r"mul in '<model>' \(MadeOnTheCpu\) uses a tensor .* made inside the "
                                            r"forward.*Fix: wrap"):
        MirrorDecoder(MadeOnTheCpu(), (3, 9, 9))


# --- crops, channel padding, shrinking interpolation ----------------------------------------------


class Crops(nn.Module):
    """wav2vec2's SamePad (``x[..., :-1]``), a centre crop and a channel padding, between convs."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(2, 4, 4, padding=2)
        self.conv2 = nn.Conv1d(4, 6, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)[..., :-1]
        x = self.conv2(x)[:, :, 1:-1]
        return F.pad(x, (0, 0, 1, 1))


def test_crops_come_back_as_zero_padding_and_a_channel_pad_as_a_channel_crop() -> None:
    encoder = Crops()
    model = MirrorAutoencoder(encoder, (2, 31)).eval()
    assert encoder(torch.zeros(1, 2, 31)).shape == (1, 8, 13)
    with torch.no_grad():
        for length in (31, 32, 47):
            assert model(torch.randn(3, 2, length)).shape == (3, 2, length)
    assert not any(p.numel() for m in model.decoder if type(m).__name__ in ("Pad", "PadTo") for p in m.parameters())


class Shrink(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.conv(x), scale_factor=0.5, mode="bilinear")


def test_an_interpolation_that_shrinks_is_mirrored_by_interpolating_back() -> None:
    model = MirrorAutoencoder(Shrink(), (3, 32, 32)).eval()
    assert type(model.decoder[0]).__name__ == "UpsampleTo"
    with torch.no_grad():
        for size in (32, 33):
            assert model(torch.randn(1, 3, size, size)).shape == (1, 3, size, size)


def test_a_missing_batch_dimension_is_named() -> None:
    model = MirrorAutoencoder(nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1)), (3, 16, 16))
    with pytest.raises(ShapeError, match=r"built for inputs of shape \(N, 3, 16, 16\).*got \(3, 16, 16\).*unsqueeze"):
        model(torch.randn(3, 16, 16))
