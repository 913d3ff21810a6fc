"""Every error a mirror raises names where and what, and its "Fix:" works when followed literally.

Each case builds a broken encoder, checks the error, then builds the encoder as the fix says and
checks that the build succeeds (exact on real torch) or fails with a different, more specific error.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm

from autoshape import MirrorAutoencoder, MirrorDecoder, MirrorUNet, ShapeError
from tests import architectures as arch


class TopLevelSum(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.down = nn.Conv2d(4, 8, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.conv(x) + x)


class SumBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + x


class MeanHead(nn.Module):
    def __init__(self, pool: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, stride=2)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()) if pool else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return self.pool(x) if self.pool is not None else x.mean(dim=(2, 3))


class BatchMerge(nn.Module):
    def __init__(self, per_sample: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, stride=2)
        self.per_sample = per_sample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return torch.flatten(x, 1) if self.per_sample else x.reshape(-1, 4)


class Pair(nn.Module):
    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"first": x[:, :1], "second": x}


class ScalarToo(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, 2, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.conv(x)
        return y, y.mean()


class EveryOther(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)[:, :, ::2, ::2]


class HiddenStates(nn.Module):
    """Returns what an HF model returns: a mapping with the last map, a pooled vector and every stage."""

    def __init__(self) -> None:
        super().__init__()
        self.stem, self.stage = nn.Conv2d(3, 4, 3, 2, 1), nn.Conv2d(4, 8, 3, 2, 1)

    def forward(self, x: torch.Tensor) -> dict[str, Any]:
        a = self.stem(x)
        b = self.stage(a)
        return {"last_hidden_state": b, "pooler_output": b.mean((2, 3), keepdim=True), "hidden_states": (a, b)}


class SizeBranch(nn.Module):
    """Pools large inputs first: the steps it runs depend on the input's size."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] > 40:
            x = F.avg_pool2d(x, 2)
        return F.relu(self.conv(x))


class ViewEncoder(nn.Module):
    """LeNet's convolutions and ``x.view(-1, 400)``, written for 32×32: at 28×28 it turns 25 samples into 16 rows."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2, self.fc = nn.Conv2d(1, 6, 5), nn.Conv2d(6, 16, 5), nn.Linear(400, 32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        return self.fc(F.max_pool2d(F.relu(self.conv2(x)), 2).view(-1, 400))


def _lazy(initialised: bool) -> nn.Module:
    """A lazy encoder, as a fresh user writes it; ``initialised``: after the one forward its error asks for."""
    encoder = nn.Sequential(nn.LazyConv2d(8, 3, stride=2, padding=1), nn.ReLU())
    if initialised:
        encoder(torch.zeros(1, 3, 16, 16))
    return encoder


class SizePadded(nn.Module):
    """Pads its input to a multiple of 8 in its forward, a padding computed from the input's size."""

    def __init__(self, pyramid: bool = False) -> None:
        super().__init__()
        self.a, self.b, self.pyramid = nn.Conv2d(3, 8, 3, 2, 1), nn.Conv2d(8, 16, 3, 2, 1), pyramid

    def forward(self, x: torch.Tensor) -> Any:
        h, w = x.shape[-2:]
        fine = self.a(F.pad(x, (0, (-w) % 8, 0, (-h) % 8)))
        return [fine, self.b(fine)] if self.pyramid else self.b(fine)


_GRAY_ENCODER = nn.Sequential(nn.Conv2d(1, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1))
_AUDIO = nn.Sequential(nn.Conv1d(1, 8, 10, 5), nn.GELU(), nn.Conv1d(8, 16, 3, 2), nn.GELU())
_RGB = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU())
_INDICES = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1), nn.MaxPool2d(2, return_indices=True))


@dataclass(frozen=True)
class Case:
    name: str
    broken: Callable[[], Any]
    error: type[Exception]
    message: str
    fixed: Callable[[], Any]


def _decoder(encoder: nn.Module, shape: tuple[int, ...], **kwargs: Any) -> Callable[[], Any]:
    return lambda: MirrorDecoder(encoder, shape, **kwargs)


def _autoencoder(encoder: nn.Module, shape: tuple[int, ...], **kwargs: Any) -> Callable[[], Any]:
    return lambda: MirrorAutoencoder(encoder, shape, **kwargs)


def _shaped(out: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    assert out.shape == shape
    return out


_LENET = arch.lenet5()
_LATENT = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1))

CASES = [
    Case("sum-in-the-encoders-own-forward", _decoder(TopLevelSum(), (4, 16, 16)), ShapeError,
         r"add in '<model>' \(TopLevelSum\) takes 2 tensors.*Fix: wrap the part .* in its own nn\.Module",
         _autoencoder(nn.Sequential(SumBlock(), nn.Conv2d(4, 8, 3, stride=2, padding=1)), (4, 16, 16))),
    Case("lstm-in-a-sequential", _decoder(nn.Sequential(nn.Linear(8, 8), nn.LSTM(8, 16, batch_first=True)), (5, 8),
                                          output=0), ShapeError,
         r"cannot mirror '1' \(LSTM\).*Fix: build that part from layers autoshape mirrors .* or take it out",
         _autoencoder(nn.Sequential(nn.Linear(8, 8)), (5, 8))),
    Case("a-torch-call-without-a-mirror", _decoder(MeanHead(pool=False), (1, 15, 15)), ShapeError,
         r"mean in '<model>' \(MeanHead\).*Fix: change sizes with a layer that has a mirror",
         _autoencoder(MeanHead(pool=True), (1, 15, 15))),
    Case("an-encoder-that-upsamples", _decoder(nn.Sequential(nn.Conv2d(1, 4, 3), nn.Upsample(scale_factor=2)),
                                               (1, 9, 9)), ShapeError,
         r"'1' \(Upsample\): it upsamples 1×4×7×7 to 1×4×14×14.*Fix: take the upsampling out of the encoder",
         _autoencoder(nn.Sequential(nn.Conv2d(1, 4, 3)), (1, 9, 9))),
    Case("a-reshape-across-the-batch", _decoder(BatchMerge(per_sample=False), (1, 9, 9)), ShapeError,
         r"reshape in '<model>' \(BatchMerge\).*changes the batch.*Fix: keep the batch dimension first",
         _autoencoder(BatchMerge(per_sample=True), (1, 9, 9))),
    Case("tie-an-even-same-conv", _decoder(nn.Sequential(nn.Conv2d(3, 8, 4, padding="same")), (3, 9, 9),
                                           tie_weights=True), ShapeError, r"'0' \(Conv2d\).*tie_weights=False",
         _autoencoder(nn.Sequential(nn.Conv2d(3, 8, 4, padding="same")), (3, 9, 9), tie_weights=False)),
    Case("a-dict-without-output", _decoder(Pair(), (2, 4, 4)), TypeError,
         r"must return one tensor, or output= must pick one.*Fix: .*output='first'",
         _decoder(Pair(), (2, 4, 4), output="first")),
    Case("an-output-that-is-not-there", _decoder(Pair(), (2, 4, 4), output="third"), ValueError,
         r"output='third' picks nothing.*Fix: .*output='first'", _decoder(Pair(), (2, 4, 4), output="first")),
    Case("a-shape-the-encoder-refuses", _decoder(nn.Conv2d(3, 8, 3), (5, 9, 9)), ShapeError,
         r"refuses input_shape \(5, 9, 9\).*Fix: input_shape=\(3, 9, 9\), the sample shape its first layer takes",
         _decoder(nn.Conv2d(3, 8, 3), (3, 9, 9))),
    Case("a-shape-too-small-for-the-encoder", _decoder(nn.Sequential(nn.Conv2d(3, 8, 5)), (3, 4, 4)), ShapeError,
         r"refuses input_shape \(3, 4, 4\).*Fix: pass the shape of one sample the encoder accepts, \(C, \*spatial\); "
         r"explain\(encoder, \(1, 3, 4, 4\)\) shows",
         _decoder(nn.Sequential(nn.Conv2d(3, 8, 5)), (3, 5, 5))),
    Case("a-latent-of-another-size", lambda: MirrorDecoder(_LATENT, (3, 24, 24))(torch.zeros(1, 8, 13, 13)),
         ShapeError, r"built for latents of shape \(N, 8, 12, 12\).*spatial size \(13, 13\) instead of \(12, 12\)\. "
         r"Fix: use MirrorAutoencoder",
         lambda: _shaped(MirrorAutoencoder(_LATENT, (3, 24, 24))(torch.zeros(1, 3, 25, 25)), (1, 3, 25, 25))),
    Case("a-latent-of-another-size-rebuilt", lambda: MirrorDecoder(_LATENT, (3, 24, 24))(torch.zeros(1, 8, 13, 13)),
         ShapeError, r"or build the decoder for the size of the inputs these latents come from, "
         r"MirrorDecoder\(encoder, \(3, \*size\)\)",
         lambda: _shaped(MirrorDecoder(_LATENT, (3, *(26, 26)))(torch.zeros(1, 8, 13, 13)), (1, 3, 26, 26))),
    Case("a-latent-with-other-channels", lambda: MirrorDecoder(_LATENT, (3, 24, 24))(torch.zeros(1, 5, 12, 12)),
         ShapeError, r"latents of shape \(N, 8, 12, 12\).*5 channels instead of 8\. Fix: decode what the encoder "
         r"returns, decoder\(encoder\(x\)\) for x of shape \(N, 3, 24, 24\)",
         lambda: _shaped(MirrorDecoder(_LATENT, (3, 24, 24))(_LATENT(torch.zeros(2, 3, 24, 24))), (2, 3, 24, 24))),
    Case("a-latent-without-its-batch", lambda: MirrorDecoder(_LATENT, (3, 24, 24))(torch.zeros(8, 12, 12)),
         ShapeError, r"3 dimensions instead of 4\. Fix: pass a batch, e.g\. z\.unsqueeze\(0\)",
         lambda: _shaped(MirrorDecoder(_LATENT, (3, 24, 24))(torch.zeros(8, 12, 12).unsqueeze(0)), (1, 3, 24, 24))),
    Case("an-int-on-a-dict", _decoder(Pair(), (2, 4, 4), output=0), TypeError,
         r"output=0 indexes a list, a tuple or an HF ModelOutput, but the model returned a dict with keys 'first', "
         r"'second'\. Fix: pick it with a key or attribute name, or a callable, e.g\. output='first'",
         _decoder(Pair(), (2, 4, 4), output="first")),
    Case("tie-a-spectral-norm-conv", _decoder(nn.Sequential(spectral_norm(nn.Conv2d(3, 8, 4, 2, 1))), (3, 16, 16),
                                             tie_weights=True), ShapeError,
         r"'0' \(ParametrizedConv2d\): its weight is computed .*Fix: pass tie_weights=False",
         _autoencoder(nn.Sequential(spectral_norm(nn.Conv2d(3, 8, 4, 2, 1))), (3, 16, 16), tie_weights=False)),
    Case("a-scalar-latent", _decoder(ScalarToo(), (3, 16, 16), output=1), ShapeError,
         r"output=1 gives a latent of shape scalar.*Fix: .*output=0", _autoencoder(ScalarToo(), (3, 16, 16), output=0)),
    Case("a-strided-slice", _decoder(EveryOther(), (1, 16, 16)), ShapeError,
         r"__getitem__ in '<model>' \(EveryOther\).*only slices without a step.*Fix: shrink sizes with a strided",
         _autoencoder(nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.MaxPool2d(2)), (1, 16, 16))),
    Case("a-branch-on-the-input-size", _autoencoder(SizeBranch(), (3, 32, 32)), ShapeError,
         r"replays SizeBranch's steps as they ran at 1×3×32×32 in eval mode, but at 1×3×65×65 it runs F\.avg_pool2d "
         r"in '<model>' \(SizeBranch\) where it ran 'conv' \(Conv2d\).*Fix: make the forward run the same steps at "
         r"every input size .*or use MirrorDecoder for one input size",
         lambda: _shaped(MirrorDecoder(SizeBranch(), (3, 32, 32))(SizeBranch()(torch.zeros(1, 3, 32, 32))),
                         (1, 3, 32, 32))),
    Case("a-branch-on-the-input-size-in-a-unet", lambda: MirrorUNet(SizeBranch(), (3, 32, 32), out_channels=2),
         ShapeError, r"MirrorUNet replays SizeBranch's steps .* it runs F\.avg_pool2d",
         _decoder(SizeBranch(), (3, 32, 32))),
    Case("an-hf-output-without-output=", lambda: MirrorUNet(HiddenStates(), (3, 16, 16), out_channels=2),
         ValueError, r"returns a model output with 'last_hidden_state', 'pooler_output'.*Fix: .*output='hidden_states'",
         lambda: MirrorUNet(HiddenStates(), (3, 16, 16), out_channels=2, output="hidden_states")),
    Case("a-view-that-changes-the-batch-per-call",
         lambda: MirrorAutoencoder(ViewEncoder(), (1, 32, 32))(torch.zeros(25, 1, 28, 28)), ShapeError,
         r"at 25×1×28×28 the encoder's view turned 25×16×4×4 into 16×400: it changed the batch from 25 to 16.*"
         r"Fix: call the autoencoder at the size it was built for, \(N, 1, 32, 32\)",
         lambda: _shaped(MirrorAutoencoder(ViewEncoder(), (1, 32, 32))(torch.zeros(25, 1, 32, 32)), (25, 1, 32, 32))),
    Case("a-lazy-encoder", lambda: MirrorDecoder(_lazy(False), (3, 16, 16)), ValueError,
         r"lazy modules that are not initialised yet \('0' LazyConv2d\).*Fix: run the model once first, "
         r"model\(torch\.zeros\(1, 3, 16, 16\)\)", lambda: MirrorAutoencoder(_lazy(True), (3, 16, 16))),
    Case("an-input-shape-without-its-channels", _decoder(_GRAY_ENCODER, (28, 28)), ShapeError,
         r"first convolution '0' \(Conv2d\) got 1×28×28 for input_shape \(28, 28\).*Fix: input_shape=\(1, 28, 28\)",
         _autoencoder(_GRAY_ENCODER, (1, 28, 28))),
    Case("raw-audio-without-its-channel", lambda: MirrorUNet(_AUDIO, (1600,), out_channels=1), ShapeError,
         r"got 1×1600 for input_shape \(1600,\).*Fix: input_shape=\(1, 1600\)", _autoencoder(_AUDIO, (1, 1600))),
    Case("an-input-shape-of-another-rank", _autoencoder(_RGB, (32, 32)), ShapeError,
         r"Fix: input_shape=\(3, 32, 32\), the sample shape its first layer takes", _autoencoder(_RGB, (3, 32, 32))),
    Case("an-input-shape-channels-last", _autoencoder(_RGB, (32, 30, 3)), ShapeError,
         r"Fix: input_shape=\(3, 32, 30\), the sample shape", _autoencoder(_RGB, (3, 32, 30))),
    Case("integer-maps-in-a-pyramid", lambda: MirrorUNet(_INDICES, (3, 37, 29), out_channels=3), ShapeError,
         r"feature 1 \(1×8×18×14\) holds integers.*Fix: pick only the feature maps, output=0",
         lambda: _shaped(MirrorUNet(_INDICES, (3, 37, 29), out_channels=3, output=0)(torch.zeros(1, 3, 37, 29)),
                         (1, 3, 37, 29))),
    Case("an-unflatten-front-in-a-unet", lambda: MirrorUNet(nn.Sequential(nn.Unflatten(1, (1, -1)), *_AUDIO), (1600,),
                                                            out_channels=1), ShapeError,
         r"Fix: pass the rest, encoder\[1:\], with input_shape=\(1, 1600\), and give it inputs reshaped",
         lambda: _shaped(MirrorUNet(_AUDIO, (1, 1600), out_channels=1)(torch.zeros(2, 1600)[:, None]), (2, 1, 1600))),
    Case("a-padding-computed-from-the-size", _autoencoder(SizePadded(), (3, 61, 45)), ShapeError,
         r"F\.pad in '<model>' \(SizePadded\) is called with .*Fix: pad inputs before the encoder rather than inside",
         lambda: _shaped(MirrorAutoencoder(nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.Conv2d(8, 16, 3, 2, 1)),
                                           (3, 64, 48))(F.pad(torch.zeros(1, 3, 61, 45), (0, 3, 0, 3))),
                         (1, 3, 64, 48))),
    Case("a-padded-pyramid-at-another-size",
         lambda: MirrorUNet(SizePadded(pyramid=True), (3, 64, 64), out_channels=2)(torch.zeros(1, 3, 101, 67)),
         ShapeError, r"Fix: build it with pool_mirror='nearest'",
         lambda: _shaped(MirrorUNet(SizePadded(pyramid=True), (3, 64, 64), out_channels=2, pool_mirror="nearest")(
             torch.zeros(1, 3, 101, 67)), (1, 2, 101, 67))),
    Case("a-flat-latent-at-another-size",
         lambda: MirrorAutoencoder(nn.Sequential(*_GRAY_ENCODER, nn.Flatten()), (1, 28, 28))(torch.zeros(2, 1, 30, 30)),
         ShapeError, r"its encoder flattens, so its latent has a fixed width, 784.*Fix: call it at \(N, 1, 28, 28\)",
         lambda: _shaped(MirrorAutoencoder(nn.Sequential(*_GRAY_ENCODER, nn.Flatten()), (1, 28, 28))(
             torch.zeros(2, 1, 28, 28)), (2, 1, 28, 28))),
    Case("an-activation-class", _decoder(_GRAY_ENCODER, (1, 28, 28), final_activation=nn.Sigmoid), TypeError,
         r"got the class Sigmoid\. Fix: pass an instance, final_activation=nn\.Sigmoid\(\)",
         _autoencoder(_GRAY_ENCODER, (1, 28, 28), final_activation=nn.Sigmoid())),
    Case("an-activation-function", _decoder(_GRAY_ENCODER, (1, 28, 28), final_activation=torch.tanh), TypeError,
         r"Fix: pass its module, final_activation=nn\.Tanh\(\)",
         _autoencoder(_GRAY_ENCODER, (1, 28, 28), final_activation=nn.Tanh())),
    Case("a-unet-on-a-classifier", lambda: MirrorUNet(_LENET, (1, 32, 32), out_channels=1), ShapeError,
         r"'6' \(Flatten\).*Fix: pass only its convolutional part, encoder\[:6\]",
         lambda: MirrorUNet(_LENET[:6], (1, 32, 32), out_channels=1)),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_the_error_names_the_place_and_its_fix_works(case: Case) -> None:
    with pytest.raises(case.error, match=case.message) as caught:
        case.broken()
    fix = re.search(r"Fix: (.*)", str(caught.value))
    assert fix is not None, "every error gives a fix"
    try:
        built = case.fixed()
    except (ShapeError, TypeError, ValueError, RuntimeError) as other:
        assert str(other) != str(caught.value), "the fix changed nothing"
        assert isinstance(other, ShapeError) and "Fix:" in str(other)  # a different, more specific error
        return
    model = built if isinstance(built, nn.Module) else None
    if isinstance(model, MirrorAutoencoder):
        shape = model.decoder.input_shape
        with torch.no_grad():
            assert model.eval()(torch.randn(2, *shape[1:])).shape == (2, *shape[1:])


@pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="transformers is in the test extra")
def test_an_hf_model_output_is_picked_by_the_int_index_its_message_offers() -> None:
    from transformers import ResNetConfig, ResNetModel
    backbone = ResNetModel(ResNetConfig(embedding_size=8, hidden_sizes=[8, 16, 32, 64], depths=[1, 1, 1, 1])).eval()
    with pytest.raises(TypeError, match=r"Fix: pick one tensor with output= \(an int index, a key or attribute name, "
                                        r"or a callable\), e.g\. output='last_hidden_state'"):
        MirrorAutoencoder(backbone, (3, 32, 32))
    model = MirrorAutoencoder(backbone, (3, 32, 32), output=0).eval()  # an int index, as offered: out[0]
    with torch.no_grad():
        assert model.decoder.latent_shape == backbone(torch.zeros(1, 3, 32, 32))[0].shape == (1, 64, 1, 1)
        assert model(torch.randn(2, 3, 35, 33)).shape == (2, 3, 35, 33)
