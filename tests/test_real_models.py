"""A corpus of encoders written elsewhere, mirrored as they are: MONAI networks, HF transformers conv
models built from small configs (no download), and transcriptions of classic PyTorch code.

For each: MirrorAutoencoder is exact at every listed input size (odd ones included) on real torch,
backward reaches every parameter the encoder's own forward uses and every decoder parameter, and
the decoder is not affine (where the encoder is non-linear, so is the decoder).
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from torch import nn

from autoshape import MirrorAutoencoder
from tests import architectures as arch

HAS_MONAI = importlib.util.find_spec("monai") is not None
HAS_TRANSFORMERS = importlib.util.find_spec("transformers") is not None


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[], nn.Module]
    shapes: tuple[tuple[int, ...], ...]
    output: Any = None
    needs: str | None = None
    select: Callable[[Any], torch.Tensor] = field(default=lambda out: out)


def _monai(name: str, **kwargs: Any) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        from monai.networks import nets
        return getattr(nets, name)(**kwargs)  # type: ignore[no-any-return]
    return build


def _hf(model: str, config: str, **kwargs: Any) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        import transformers
        return getattr(transformers, model)(getattr(transformers, config)(**kwargs))  # type: ignore[no-any-return]
    return build


def _part(build: Callable[[], nn.Module], pick: Callable[[Any], nn.Module]) -> Callable[[], nn.Module]:
    return lambda: pick(build())


_AE = dict(spatial_dims=2, in_channels=1, out_channels=1, channels=(4, 8, 16), strides=(2, 2, 2))
_UNET = dict(spatial_dims=2, in_channels=1, out_channels=2, channels=(4, 8, 16), strides=(2, 2), num_res_units=1)
_HIDDEN = "last_hidden_state"
_W2V2 = dict(conv_dim=(16, 16, 16), conv_kernel=(10, 3, 3), conv_stride=(5, 2, 2), num_hidden_layers=1,
             hidden_size=16, num_attention_heads=2, intermediate_size=16)
_IMAGE = ((3, 64, 64), (3, 67, 61))
_GRAY = ((1, 64, 64), (1, 101, 67))

CASES = [
    # MONAI
    Case("monai-autoencoder", _part(_monai("AutoEncoder", **_AE), lambda m: m.encode), _GRAY, needs="monai"),
    Case("monai-autoencoder-res", _part(_monai("AutoEncoder", **_AE, num_res_units=2), lambda m: m.encode), _GRAY,
         needs="monai"),
    Case("monai-autoencoder-3d", _part(_monai("AutoEncoder", spatial_dims=3, in_channels=1, out_channels=1,
                                              channels=(4, 8), strides=(2, 2), num_res_units=1), lambda m: m.encode),
         ((1, 16, 16, 16), (1, 17, 15, 13)), needs="monai"),
    Case("monai-unet-down", _part(_monai("UNet", **_UNET), lambda m: nn.Sequential(
        m.model[0], m.model[1].submodule[0], m.model[1].submodule[1].submodule)), _GRAY, needs="monai"),
    Case("monai-basicunet-encoder", _part(_monai("BasicUNet", spatial_dims=2, in_channels=1, out_channels=2,
                                                 features=(4, 4, 8, 16, 32, 4)), lambda m: nn.Sequential(
        m.conv_0, m.down_1, m.down_2, m.down_3, m.down_4)), _GRAY, needs="monai"),
    Case("monai-segresnet-encoder", _part(_monai("SegResNet", spatial_dims=2, in_channels=1, out_channels=2,
                                                 init_filters=8, blocks_down=(1, 2, 2)),
                                          lambda m: nn.Sequential(m.convInit, *m.down_layers)), _GRAY, needs="monai"),
    Case("monai-varautoencoder-mu", _monai("VarAutoEncoder", spatial_dims=2, in_shape=(1, 32, 32), out_channels=1,
                                           latent_size=8, channels=(4, 8), strides=(2, 2)), ((1, 32, 32),), output=1,
         needs="monai", select=lambda out: out[1]),
    Case("monai-resnetfeatures-last", _monai("ResNetFeatures", model_name="resnet10", pretrained=False,
                                             spatial_dims=2, in_channels=1), _GRAY, output=-1, needs="monai",
         select=lambda out: out[-1]),
    Case("monai-densenet-features", _part(_monai("DenseNet121", spatial_dims=2, in_channels=1, out_channels=2,
                                                 init_features=8, growth_rate=4, block_config=(2, 2)),
                                          lambda m: m.features), _GRAY, needs="monai"),
    # HF transformers, from small configs
    Case("hf-resnet-basic", _hf("ResNetModel", "ResNetConfig", embedding_size=8, hidden_sizes=[8, 16, 32, 64],
                                depths=[1, 1, 1, 1], layer_type="basic"), _IMAGE, _HIDDEN, "transformers",
         lambda out: out.last_hidden_state),
    Case("hf-resnet-bottleneck", _hf("ResNetModel", "ResNetConfig", embedding_size=8, hidden_sizes=[8, 16, 32, 64],
                                     depths=[1, 1, 1, 1], layer_type="bottleneck"), _IMAGE, _HIDDEN, "transformers",
         lambda out: out.last_hidden_state),
    Case("hf-convnext", _hf("ConvNextModel", "ConvNextConfig", hidden_sizes=[8, 16, 32, 64], depths=[1, 1, 1, 1]),
         _IMAGE, _HIDDEN, "transformers", lambda out: out.last_hidden_state),
    Case("hf-mobilevit", _hf("MobileViTModel", "MobileViTConfig", image_size=64, hidden_sizes=[16, 24, 32],
                             neck_hidden_sizes=[8, 8, 16, 16, 24, 32, 48], num_attention_heads=2),
         ((3, 64, 64), (3, 96, 96)), _HIDDEN, "transformers", lambda out: out.last_hidden_state),
    Case("hf-efficientnet", _hf("EfficientNetModel", "EfficientNetConfig", image_size=64, width_coefficient=0.25,
                                depth_coefficient=0.25, hidden_dim=320), _IMAGE, _HIDDEN, "transformers",
         lambda out: out.last_hidden_state),
    Case("hf-regnet", _hf("RegNetModel", "RegNetConfig", embedding_size=8, hidden_sizes=[8, 16, 24, 32],
                          depths=[1, 1, 1, 1], groups_width=8), _IMAGE, _HIDDEN, "transformers",
         lambda out: out.last_hidden_state),
    Case("hf-wav2vec2-features-group", _part(_hf("Wav2Vec2Model", "Wav2Vec2Config", **_W2V2,
                                                 feat_extract_norm="group"), lambda m: m.feature_extractor),
         ((1600,), (1603,)), needs="transformers"),
    Case("hf-wav2vec2-features-layer", _part(_hf("Wav2Vec2Model", "Wav2Vec2Config", **_W2V2,
                                                 feat_extract_norm="layer"), lambda m: m.feature_extractor),
         ((1600,), (1603,)), needs="transformers"),
    # classic PyTorch code, transcribed
    Case("mnist-net", arch.MnistNet, ((1, 28, 28),)),
    Case("vae-mu", arch.Vae, ((1, 28, 28),), output=1, select=lambda out: out[1]),
    Case("dcgan-discriminator", lambda: arch.dcgan_discriminator(ndf=8), ((3, 64, 64),)),
    Case("transformernet-encoder", lambda: arch.TransformerNetEncoder(width=4), ((3, 65, 67), (3, 64, 64))),
    Case("lenet5", arch.lenet5, ((1, 32, 32),)),
    Case("vgg11-features", lambda: arch.vgg11_features(width=4), ((3, 64, 64), (3, 67, 71))),
    Case("alexnet-features", lambda: arch.alexnet_features(width=8), ((3, 224, 224), (3, 227, 231))),
    Case("resnet18", lambda: arch.resnet_encoder(width=4), ((3, 64, 64), (3, 67, 61))),
    Case("unet-encoder-unpadded", lambda: arch.unet_encoder(widths=(4, 8, 16), padding=0), ((1, 92, 92),
                                                                                         (1, 93, 97))),
    Case("voxnet-3d", lambda: arch.encoder_3d(width=4), ((1, 32, 32, 32), (1, 33, 31, 29))),
]


def installed(case: Case) -> bool:
    """Whether the library the case's model comes from is installed."""
    return {"monai": HAS_MONAI, "transformers": HAS_TRANSFORMERS, None: True}[case.needs]


def _available(case: Case) -> None:
    if not installed(case):
        pytest.skip(f"{case.needs} is not installed (it is in the test extra)")


@functools.cache
def _built(name: str) -> tuple[nn.Module, MirrorAutoencoder]:
    case = next(c for c in CASES if c.name == name)
    torch.manual_seed(0)
    encoder = case.build().eval()
    return encoder, MirrorAutoencoder(encoder, case.shapes[0], output=case.output).eval()


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 25
    assert {c.needs for c in CASES} == {"monai", "transformers", None}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_the_autoencoder_is_exact_at_every_size(case: Case) -> None:
    _available(case)
    _, model = _built(case.name)
    for shape in case.shapes:
        with torch.no_grad():
            assert model(torch.randn(2, *shape)).shape == (2, *shape), shape


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_backward_reaches_every_parameter(case: Case) -> None:
    _available(case)
    encoder, model = _built(case.name)
    x = torch.randn(2, *case.shapes[0])
    encoder.zero_grad(set_to_none=True)
    case.select(encoder(x)).square().mean().backward()
    used = {name for name, p in encoder.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    model(x).square().mean().backward()
    assert {name for name, p in model.encoder.named_parameters() if p.grad is not None} == used
    assert all(p.grad is not None for p in model.decoder.parameters())


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_the_decoder_is_not_affine(case: Case) -> None:
    """An affine decoder has D(a) + D(b) == D(a + b) + D(0); a mirrored non-linear encoder's does not."""
    _available(case)
    encoder, model = _built(case.name)
    with torch.no_grad():
        latent = case.select(encoder(torch.randn(2, *case.shapes[0])))
        a, b = torch.randn_like(latent), torch.randn_like(latent)
        decoded = [model.decoder(z) for z in (a, b, a + b, torch.zeros_like(a))]
    gap = (decoded[0] + decoded[1] - decoded[2] - decoded[3]).abs().max()
    assert gap > 1e-3 * decoded[2].abs().max()
