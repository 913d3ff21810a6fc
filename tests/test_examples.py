"""The examples train for a few steps in every mode, under torchrun, and fail with one clear line.

Examples run in this process (``main(argv)`` returns the metrics it wrote) at tiny sizes; only
the torchrun run and one end-to-end error run start new processes. ``--compile`` uses the
``aot_eager`` backend here (``AUTOSHAPE_EXAMPLES_COMPILE_BACKEND``): inductor needs about a
minute per model on a 2-core CPU, while dynamo's tracing, the part that meets autoshape's
modules, is the same.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import shutil
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

TINY = {
    "mirror_autoencoder": ["--image-size", "15", "--width", "4", "--latent", "4", "--batch-size", "16"],
    "dcgan": ["--image-size", "28", "--features", "4", "--batch-size", "16"],
    "unet_segmentation": ["--image-size", "13x11", "--width", "4", "--batch-size", "16"],
}
PICTURES = {"mirror_autoencoder": "reconstructions.png", "dcgan": "samples.png",
            "unet_segmentation": "segmentation.png"}


@pytest.fixture(scope="module")
def examples() -> Iterator[dict[str, types.ModuleType]]:
    sys.path.insert(0, str(EXAMPLES))
    try:
        yield {name: importlib.import_module(name) for name in (*TINY, "_common", "_data", "_outputs")}
    finally:
        sys.path.remove(str(EXAMPLES))


@pytest.fixture(autouse=True)
def fast_compile(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AUTOSHAPE_EXAMPLES_COMPILE_BACKEND", "aot_eager")
    yield
    torch._dynamo.reset()


def train_tiny(examples: dict[str, types.ModuleType], name: str, out: Path, *flags: str) -> dict[str, Any]:
    metrics: dict[str, Any] = examples[name].main([*TINY[name], "--device", "cpu", "--out", str(out), *flags])
    assert json.loads((out / "metrics.json").read_text()) == metrics
    return metrics


def assert_grid(path: Path, rows: int, columns: int, tile_height: int, tile_width: int) -> None:
    from PIL import Image

    with Image.open(path) as image:
        pixels = np.asarray(image)
    assert image.mode == "L"
    height_per_tile, width_per_tile = pixels.shape[0] / rows, pixels.shape[1] / columns
    assert height_per_tile / width_per_tile == pytest.approx(tile_height / tile_width, rel=0.1)
    assert (pixels < 250).mean() > 0.5, "the grid has no tiles"


@pytest.mark.parametrize(("name", "mode"), [
    ("mirror_autoencoder", []), ("mirror_autoencoder", ["--compile"]),
    ("dcgan", []), ("dcgan", ["--conditional"]), ("dcgan", ["--compile"]),
    ("unet_segmentation", []), ("unet_segmentation", ["--compile"]),
])
def test_example_trains_three_steps(examples: dict[str, types.ModuleType], tmp_path: Path, name: str,
                                    mode: list[str]) -> None:
    metrics = train_tiny(examples, name, tmp_path, "--max-steps", "3", *mode)
    assert metrics["steps"] == 3
    assert metrics["train_images_per_second"] > 0
    assert (tmp_path / "checkpoint.pt").is_file()
    assert (tmp_path / PICTURES[name]).is_file()


def test_autoencoder_reports_pca_and_draws_inputs_ours_and_pca(examples: dict[str, types.ModuleType],
                                                               tmp_path: Path) -> None:
    metrics = train_tiny(examples, "mirror_autoencoder", tmp_path, "--max-steps", "2")
    assert 0 < metrics["pca_mse"] < 1 and metrics["autoencoder_mse"] > 0
    assert_grid(tmp_path / "reconstructions.png", rows=3, columns=10, tile_height=15, tile_width=15)


def test_pca_baseline_is_the_truncated_svd(examples: dict[str, types.ModuleType]) -> None:
    generator = torch.Generator().manual_seed(0)
    train, test = torch.rand(200, 1, 6, 5, generator=generator), torch.rand(20, 1, 6, 5, generator=generator)
    flat = train.flatten(1).double().numpy()
    mean = flat.mean(0)
    basis = np.linalg.svd(flat - mean, full_matrices=False)[2][:4]
    expected = (test.flatten(1).double().numpy() - mean) @ basis.T @ basis + mean
    got = examples["mirror_autoencoder"].pca_reconstructions(train, test, 4, seed=0)
    assert got.shape == test.shape
    np.testing.assert_allclose(got.flatten(1).numpy(), expected, atol=1e-5)


def test_conditional_dcgan_reports_label_accuracy_and_its_ceiling(examples: dict[str, types.ModuleType],
                                                                  tmp_path: Path) -> None:
    metrics = train_tiny(examples, "dcgan", tmp_path, "--max-steps", "2", "--conditional")
    assert 0 <= metrics["generated_label_accuracy"] <= 1 and 0 <= metrics["real_test_accuracy_ceiling"] <= 1
    assert_grid(tmp_path / "samples.png", rows=10, columns=10, tile_height=28, tile_width=28)


def test_conditional_inputs_carry_the_label(examples: dict[str, types.ModuleType]) -> None:
    conditioning = examples["dcgan"].Conditioning(True, (5, 3))
    labels = torch.tensor([3, 7])
    g_input = conditioning.generator_input(torch.zeros(2, 64), labels)
    assert g_input.shape == (2, 74, 1, 1)
    assert g_input[:, 64:, 0, 0].argmax(1).tolist() == [3, 7]
    d_input = conditioning.discriminator_input(torch.zeros(2, 1, 5, 3), labels)
    assert d_input.shape == (2, 11, 5, 3)
    assert d_input[0, 1 + 3].eq(1).all() and d_input[0, 1:].sum() == 15


@pytest.mark.parametrize("size", [28, 32, 64])
def test_dcgan_networks_reach_the_image_size(examples: dict[str, types.ModuleType], size: int) -> None:
    generator, discriminator = examples["dcgan"].build((size, size), 1, 4, 10)
    images = generator(torch.randn(2, 74, 1, 1))
    assert images.shape == (2, 1, size, size)
    assert discriminator(torch.cat([images, torch.zeros(2, 10, size, size)], 1)).shape == (2, 1, 1, 1)


def test_unet_reports_iou_against_the_threshold_baseline(examples: dict[str, types.ModuleType],
                                                         tmp_path: Path) -> None:
    metrics = train_tiny(examples, "unet_segmentation", tmp_path, "--max-steps", "2")
    assert 0 <= metrics["unet_iou"] <= 1 and 0 < metrics["threshold_iou"] < 1
    assert_grid(tmp_path / "segmentation.png", rows=3, columns=10, tile_height=13, tile_width=11)


@pytest.mark.parametrize("backbone", ["hf-resnet", "monai-resnet"])
def test_unet_trains_on_a_pyramid_backbone(examples: dict[str, types.ModuleType], tmp_path: Path,
                                           backbone: str) -> None:
    pytest.importorskip("transformers" if backbone == "hf-resnet" else "monai")
    metrics = train_tiny(examples, "unet_segmentation", tmp_path, "--max-steps", "2", "--backbone", backbone)
    assert 0 <= metrics["unet_iou"] <= 1


def test_unet_loads_saved_backbone_weights(examples: dict[str, types.ModuleType], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """The pretrained-weights path, on a small model the test saves itself: the loaded backbone
    holds exactly the saved weights, the example trains from them, and a wrong file is one line."""
    pytest.importorskip("transformers")
    example = examples["unet_segmentation"]
    saved, _ = example.backbone("hf-resnet", 1, 4)
    for parameter in saved.parameters():
        torch.nn.init.normal_(parameter)
    torch.save(saved.state_dict(), tmp_path / "backbone.pt")
    fresh, _ = example.backbone("hf-resnet", 1, 4)
    example.load_weights(fresh, tmp_path / "backbone.pt")
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), saved.state_dict().values()))
    train_tiny(examples, "unet_segmentation", tmp_path / "run", "--max-steps", "1", "--backbone", "hf-resnet",
               "--weights", str(tmp_path / "backbone.pt"))
    assert "loaded the backbone's weights" in capsys.readouterr().out
    other, _ = example.backbone("hf-resnet", 1, 8)
    torch.save(other.state_dict(), tmp_path / "other.pt")
    status, line = one_line_error(examples, "unet_segmentation", capsys, "--backbone", "hf-resnet",
                                  "--weights", str(tmp_path / "other.pt"))
    assert status == 1 and "--weights" in line and "size mismatch" in line


def test_amp_and_channels_last_train(examples: dict[str, types.ModuleType], tmp_path: Path) -> None:
    metrics = train_tiny(examples, "dcgan", tmp_path, "--max-steps", "2", "--amp", "--channels-last", "--conditional")
    assert metrics["steps"] == 2 and 0 <= metrics["generated_label_accuracy"] <= 1


def test_resume_restores_weights_and_step(examples: dict[str, types.ModuleType], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    first = train_tiny(examples, "mirror_autoencoder", tmp_path, "--max-steps", "2")
    again = train_tiny(examples, "mirror_autoencoder", tmp_path, "--max-steps", "2", "--resume")
    assert again["steps"] == 2 and again["autoencoder_mse"] == first["autoencoder_mse"]
    more = train_tiny(examples, "mirror_autoencoder", tmp_path, "--max-steps", "4", "--resume")
    assert more["steps"] == 4
    assert "resumed from" in capsys.readouterr().out


def test_data_is_resized_and_scaled_to_minus_one_one(examples: dict[str, types.ModuleType]) -> None:
    data_module, common = examples["_data"], examples["_common"]
    runtime = common.Runtime(torch.device("cpu"), 0, 1, amp=False, channels_last=True)
    data = data_module.load_images("digits", Path("unused"), runtime)
    assert (len(data.train), len(data.test), data.channels) == (1437, 360, 1)
    raw = data.test.tensors[0][:50]
    kept = raw.clone()
    native = data_module.to_model(raw, (8, 8), data.max_value, runtime)
    torch.testing.assert_close(native, kept / 8 - 1)  # 0..16 → -1..1
    resized = data_module.to_model(raw, (37, 29), data.max_value, runtime)
    assert torch.equal(raw, kept), "to_model changed the dataset in place"
    assert resized.shape == (50, 1, 37, 29) and resized.is_contiguous(memory_format=torch.channels_last)
    assert resized.min() >= -1 and resized.max() <= 1 and resized.max() > 0.9 and resized.min() < -0.99


@pytest.mark.parametrize(("text", "size"), [("29", (29, 29)), ("37x29", (37, 29)), ("37×29", (37, 29))])
def test_image_size_flag(examples: dict[str, types.ModuleType], text: str, size: tuple[int, int]) -> None:
    assert examples["_common"].image_size(text) == size


def one_line_error(examples: dict[str, types.ModuleType], name: str, capsys: pytest.CaptureFixture[str],
                   *flags: str) -> tuple[int, str]:
    try:
        status = examples["_common"].run(examples[name].main, [*TINY[name], *flags])
    except SystemExit as exit_:  # argparse
        status = int(exit_.code or 0)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert status != 0 and "Traceback" not in lines[0]
    return status, lines[0]


@pytest.mark.parametrize(("flags", "expected"), [
    (["--dataset", "imagenet"], "invalid choice: 'imagenet'"),
    (["--image-size", "big"], "expected N or HxW"),
    (["--max-steps", "0"], "expected a positive integer"),
    (["--batch-size", "5000"], "more than the 1437 training images"),
    (["--resume"], "run once without --resume"),
])
def test_user_errors_are_one_line(examples: dict[str, types.ModuleType], capsys: pytest.CaptureFixture[str],
                                  tmp_path: Path, flags: list[str], expected: str) -> None:
    _, line = one_line_error(examples, "dcgan", capsys, "--out", str(tmp_path), *flags)
    assert expected in line


def test_resume_with_other_settings_is_refused(examples: dict[str, types.ModuleType], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    train_tiny(examples, "mirror_autoencoder", tmp_path, "--max-steps", "1")
    capsys.readouterr()
    _, line = one_line_error(examples, "mirror_autoencoder", capsys, "--out", str(tmp_path), "--resume",
                             "--latent", "5")
    assert "latent=4 there, 5 here" in line


def test_missing_torchvision_is_one_line(examples: dict[str, types.ModuleType], capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torchvision", None)  # import torchvision now raises ImportError
    status, line = one_line_error(examples, "mirror_autoencoder", capsys, "--dataset", "fashion-mnist")
    assert status == 1 and "--dataset fashion-mnist needs torchvision" in line


def test_no_network_is_one_line(examples: dict[str, types.ModuleType], capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def offline(root: str, train: bool, download: bool) -> None:
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried https://..., got URLError")

    fake = types.SimpleNamespace(datasets=types.SimpleNamespace(MNIST=offline))
    monkeypatch.setitem(sys.modules, "torchvision", fake)
    status, line = one_line_error(examples, "unet_segmentation", capsys, "--dataset", "mnist",
                                  "--data-dir", str(tmp_path))
    assert status == 1 and "could not get mnist into" in line and "network access" in line


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without CUDA")
def test_missing_cuda_is_one_line(examples: dict[str, types.ModuleType], capsys: pytest.CaptureFixture[str]) -> None:
    _, line = one_line_error(examples, "dcgan", capsys, "--device", "cuda")
    assert "--device cuda" in line and "--device cpu" in line


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is not None, reason="needs torchvision to be absent")
def test_script_error_exits_one_line_without_traceback(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, str(EXAMPLES / "dcgan.py"), "--dataset", "cifar10"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.startswith("dcgan.py: error: --dataset cifar10 needs torchvision")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun comes with torch")
def test_dcgan_under_torchrun_with_two_processes(tmp_path: Path) -> None:
    command = ["torchrun", "--standalone", "--nproc_per_node=2", str(EXAMPLES / "dcgan.py"), *TINY["dcgan"],
               "--conditional", "--max-steps", "2", "--device", "cpu", "--out", str(tmp_path)]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("epoch 1/100") == 1, result.stdout  # printed by rank 0 only
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["steps"] == 2 and "generated_label_accuracy" in metrics


def test_autoencoder_beats_pca_at_a_ci_size(examples: dict[str, types.ModuleType], tmp_path: Path) -> None:
    flags = ["--image-size", "12", "--latent", "4", "--width", "8", "--epochs", "10", "--batch-size", "32",
             "--lr", "5e-3", "--device", "cpu", "--out", str(tmp_path)]
    metrics = examples["mirror_autoencoder"].main(flags)
    assert metrics["steps"] == 10 * (1437 // 32)
    assert metrics["autoencoder_mse"] < 0.9 * metrics["pca_mse"]
