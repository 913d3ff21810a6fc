"""Labelled images for the examples: scikit-learn's embedded digits, or torchvision datasets when installed.

Images stay in memory at their native resolution and type (uint8 or 0..16 floats); ``to_model``
resizes and normalises each batch on the device, so one code path serves 8×8 digits and
32×32 CIFAR-10 alike, at any ``--image-size``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from _common import ExampleError, Runtime
from torch import Tensor
from torch.utils.data import TensorDataset

CLASSES = 10  # every supported dataset has ten classes
DIGITS_TEST_SIZE = 360  # the fixed 20% of scikit-learn's 1797 digits held out for evaluation


@dataclass(frozen=True)
class Images:
    """Train and held-out (images, labels) pairs; pixel values run from 0 to ``max_value``."""

    train: TensorDataset
    test: TensorDataset
    channels: int
    max_value: float


def load_images(name: str, data_dir: Path, runtime: Runtime) -> Images:
    """The dataset called ``name``: ``digits`` is embedded, the others come through torchvision."""
    if name == "digits":
        return _digits()
    try:
        import torchvision
    except ImportError as error:
        raise ExampleError(f"--dataset {name} needs torchvision, which is not importable here ({error}); "
                           "pip install torchvision, or use the embedded --dataset digits") from None
    if runtime.is_main:  # rank 0 downloads alone, the others then find the files
        _torchvision(torchvision, name, data_dir)
    runtime.barrier()
    return _torchvision(torchvision, name, data_dir)


def _digits() -> Images:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1)
    labels = torch.tensor(bunch.target, dtype=torch.long)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))
    test, train = order[:DIGITS_TEST_SIZE], order[DIGITS_TEST_SIZE:]
    return Images(TensorDataset(images[train], labels[train]), TensorDataset(images[test], labels[test]), 1, 16.0)


def _torchvision(torchvision: Any, name: str, data_dir: Path) -> Images:
    kind = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "cifar10": "CIFAR10"}[name]
    splits = []
    for train in (True, False):
        try:
            dataset = getattr(torchvision.datasets, kind)(str(data_dir), train=train, download=True)
        except (OSError, RuntimeError) as error:
            raise ExampleError(f"could not get {name} into {data_dir}: {error}. The first run downloads it and needs "
                               "network access; the embedded --dataset digits needs none") from None
        images = torch.as_tensor(dataset.data)
        images = images.unsqueeze(1) if images.dim() == 3 else images.permute(0, 3, 1, 2)
        splits.append(TensorDataset(images.contiguous(), torch.as_tensor(dataset.targets, dtype=torch.long)))
    return Images(splits[0], splits[1], splits[0].tensors[0].shape[1], 255.0)


def to_model(images: Tensor, size: tuple[int, int], max_value: float, runtime: Runtime) -> Tensor:
    """A batch moved to the device, resized to ``size`` and scaled to [-1, 1], the range of a tanh output.

    Antialiased bilinear resizing averages pixels with non-negative weights, so pixels stay
    inside the range (the clamp only removes float rounding).
    """
    x = images.to(runtime.device, non_blocking=True).float() / max_value  # a new tensor: the data stays intact
    if tuple(x.shape[-2:]) != size:
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True).clamp_(0, 1)
    return runtime.memory_format(x.mul_(2).sub_(1))


def resized(dataset: TensorDataset, size: tuple[int, int], max_value: float, runtime: Runtime,
            limit: int | None = None) -> tuple[Tensor, Tensor]:
    """The first ``limit`` (default all) images of ``dataset`` as one model-ready batch, with their labels."""
    images, labels = dataset.tensors[0][:limit], dataset.tensors[1][:limit]
    batches = [to_model(chunk, size, max_value, runtime) for chunk in images.split(1024)]
    return torch.cat(batches), labels.to(runtime.device)
