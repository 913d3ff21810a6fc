"""What the examples write into ``--out``: checkpoints, a metrics JSON and PNG grids (rank 0 only)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import torch
from _common import ExampleError, Progress, Runtime
from torch import Tensor

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.json"


class Checkpointable(Protocol):
    """A module, optimizer or scheduler: anything with a state_dict."""

    def state_dict(self) -> Any: ...
    def load_state_dict(self, state: Any) -> Any: ...


def save_checkpoint(runtime: Runtime, out: Path, config: Mapping[str, Any], progress: Progress,
                    parts: Mapping[str, Checkpointable]) -> None:
    """Write ``OUT/checkpoint.pt`` atomically (rank 0 only)."""
    if not runtime.is_main:
        return
    out.mkdir(parents=True, exist_ok=True)
    state = {"config": dict(config), "epoch": progress.epoch, "step": progress.step,
             "parts": {name: part.state_dict() for name, part in parts.items()}}
    partial = out / (CHECKPOINT + ".partial")
    torch.save(state, partial)
    os.replace(partial, out / CHECKPOINT)


def resume(runtime: Runtime, out: Path, config: Mapping[str, Any], progress: Progress,
           parts: Mapping[str, Checkpointable]) -> None:
    """Load ``OUT/checkpoint.pt`` into ``parts`` and ``progress``; it must come from the same settings."""
    path = out / CHECKPOINT
    if not path.is_file():
        raise ExampleError(f"--resume: there is no {path}; run once without --resume (same --out) first")
    saved = torch.load(path, map_location=runtime.device, weights_only=True)
    changed = [f"{key}={saved['config'].get(key)!r} there, {value!r} here"
               for key, value in config.items() if saved["config"].get(key) != value]
    if changed:
        raise ExampleError(f"--resume: {path} was saved with other settings ({'; '.join(changed)}); "
                           "use the same settings or another --out")
    for name, part in parts.items():
        part.load_state_dict(saved["parts"][name])
    progress.epoch, progress.step = saved["epoch"], saved["step"]
    runtime.log(f"resumed from {path} at epoch {progress.epoch}, step {progress.step}")


def save_metrics(runtime: Runtime, out: Path, metrics: Mapping[str, Any]) -> None:
    """Print the final metrics and write them to ``OUT/metrics.json`` (rank 0 only)."""
    if runtime.is_main:
        runtime.log("  ".join(f"{name} {value}" for name, value in metrics.items()))
        out.mkdir(parents=True, exist_ok=True)
        (out / METRICS).write_text(json.dumps(dict(metrics), indent=2) + "\n")
        runtime.log(f"wrote {out / METRICS}")


def save_grid(runtime: Runtime, images: Tensor, path: Path, columns: int) -> None:
    """Save images in [-1, 1], shape (N, C, H, W), as one PNG grid (rank 0 only).

    Tiles are enlarged by a whole factor to about 64 pixels and separated by 2 pixels.
    """
    if not runtime.is_main:
        return
    from PIL import Image

    count, channels, height, width = images.shape
    zoom = max(1, round(64 / max(height, width)))
    tiles = images.detach().float().cpu().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    tiles = tiles.repeat_interleave(zoom, dim=2).repeat_interleave(zoom, dim=3)
    rows = math.ceil(count / columns)
    gap, tile_h, tile_w = 2, height * zoom, width * zoom
    grid = torch.full((channels, gap + rows * (tile_h + gap), gap + columns * (tile_w + gap)), 255, dtype=torch.uint8)
    for index, tile in enumerate(tiles):
        top, left = gap + (index // columns) * (tile_h + gap), gap + (index % columns) * (tile_w + gap)
        grid[:, top:top + tile_h, left:left + tile_w] = tile
    array = grid[0].numpy() if channels == 1 else grid.permute(1, 2, 0).numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, optimize=True)
    runtime.log(f"wrote {path}")
