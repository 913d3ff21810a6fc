"""Training one model on one loss: Adam with a one-cycle schedule, checkpointed every epoch."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from typing import Any

import torch
from _common import Progress, Runtime, train
from _outputs import resume, save_checkpoint, save_metrics
from torch import Tensor, nn
from torch.utils.data import DataLoader


def fit(runtime: Runtime, args: argparse.Namespace, model: nn.Module, trained: nn.Module, batches: DataLoader[Any],
        config: Mapping[str, Any], loss: Callable[[Any], dict[str, Tensor]],
        evaluate: Callable[[], dict[str, float]]) -> dict[str, float]:
    """Minimise ``loss(batch)`` (one named loss) over ``trained``, the prepared ``model``, then evaluate.

    Adam at ``args.lr`` with a one-cycle schedule over every step of ``args.epochs``; the model,
    optimizer and schedule are saved after each epoch and restored with ``--resume`` (whose
    ``config`` must match). Rank 0 adds ``evaluate()`` to :func:`train`'s figures; they are
    saved as ``OUT/metrics.json`` and returned.
    """
    optimizer = torch.optim.Adam(trained.parameters(), lr=args.lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, args.lr, total_steps=args.epochs * len(batches))
    progress = Progress()
    parts = {"model": model, "optimizer": optimizer, "schedule": schedule}
    if args.resume:
        resume(runtime, args.out, config, progress, parts)

    def step(batch: Any) -> dict[str, Tensor]:
        losses = loss(batch)
        (value,) = losses.values()
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()
        schedule.step()
        return {name: value.detach() for name, value in losses.items()}

    metrics = train(runtime, args, batches, step, progress,
                    lambda: save_checkpoint(runtime, args.out, config, progress, parts))
    if runtime.is_main:
        metrics.update(evaluate())
    save_metrics(runtime, args.out, metrics)
    return metrics
