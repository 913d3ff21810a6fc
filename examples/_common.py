"""What the examples share: flags, device and process setup, the training loop, outputs and checkpoints.

Every example runs as ``python examples/NAME.py`` in one process, or unchanged under
``torchrun --nproc_per_node=N`` (DistributedDataParallel, gloo on CPU, nccl on CUDA);
this module hides the difference. Only rank 0 prints, draws progress bars and writes files.

Set ``AUTOSHAPE_EXAMPLES_COMPILE_BACKEND`` (e.g. ``aot_eager``) to make ``--compile`` use
another torch.compile backend than inductor; the tests do this because inductor takes
about a minute to compile on a small CPU.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm import tqdm

from autoshape import ShapeError

DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10")
COMPILE_BACKEND_ENV = "AUTOSHAPE_EXAMPLES_COMPILE_BACKEND"


class ExampleError(Exception):
    """A problem the user can fix: printed as one line, without a traceback, exit status 1."""


def image_size(text: str) -> tuple[int, int]:
    """Parse ``--image-size``: ``29`` means 29×29, ``37x29`` means height 37, width 29."""
    try:
        sizes = tuple(int(part) for part in text.lower().replace("×", "x").split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or HxW such as 29 or 37x29, got {text!r}") from None
    sizes = sizes * 2 if len(sizes) == 1 else sizes
    if len(sizes) != 2 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected N or HxW with positive sizes such as 29 or 37x29, got {text!r}")
    return sizes[0], sizes[1]


def positive_int(text: str) -> int:
    """Parse a flag that must be an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


class _OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (argparse prints the usage first)."""

    def error(self, message: str) -> Any:  # argparse types this as NoReturn
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def make_parser(description: str, *, image_size_default: str, epochs: int, batch_size: int, lr: float,
                out: str) -> argparse.ArgumentParser:
    """The flags every example takes, with that example's defaults; the example adds its own."""
    parser = _OneLineParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add = parser.add_argument
    add("--dataset", choices=DATASETS, default="digits",
        help="digits is scikit-learn's embedded 8x8 digits (no download); the others need torchvision")
    add("--data-dir", type=Path, default=Path("data"), help="where torchvision datasets are stored or downloaded")
    add("--image-size", type=image_size, default=image_size_default, help="N or HxW; images are resized to it")
    add("--epochs", type=positive_int, default=epochs, help="passes over the training images")
    add("--max-steps", type=positive_int, default=None, help="stop every training loop after this many steps")
    add("--batch-size", type=positive_int, default=batch_size, help="per process")
    add("--lr", type=float, default=lr, help="learning rate")
    add("--seed", type=int, default=0, help="random seed (each process adds its rank)")
    add("--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto picks CUDA when available")
    add("--amp", action="store_true", help="bf16 autocast, on CUDA and on CPU alike (no GradScaler needed)")
    add("--channels-last", action="store_true", help="channels-last memory format for weights and images")
    add("--compile", action="store_true", help=f"torch.compile the trained modules (inductor; ${COMPILE_BACKEND_ENV} "
        "picks another backend)")
    add("--out", type=Path, default=Path(out), help="folder for images, checkpoint.pt and metrics.json")
    add("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    return parser


@dataclass(frozen=True)
class Runtime:
    """Where this process runs: device, rank among ``world_size`` processes, and numeric options."""

    device: torch.device
    rank: int
    world_size: int
    amp: bool
    channels_last: bool

    @property
    def is_main(self) -> bool:
        """Rank 0 is the only process that prints and writes files."""
        return self.rank == 0

    def log(self, message: str) -> None:
        """Print on rank 0 only."""
        if self.is_main:
            print(message, flush=True)

    def autocast(self) -> torch.autocast:
        """bf16 autocast when ``--amp`` was given, else a no-op context."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp)

    def memory_format(self, images: Tensor) -> Tensor:
        """``images`` in the memory format the run asked for."""
        return images.contiguous(memory_format=torch.channels_last) if self.channels_last else images

    def average(self, values: dict[str, Tensor]) -> dict[str, float]:
        """Each value averaged over all processes (every process must call this)."""
        names = sorted(values)
        stacked = torch.stack([values[name].float() for name in names])
        if self.world_size > 1:
            dist.all_reduce(stacked)
            stacked /= self.world_size
        return dict(zip(names, stacked.tolist()))

    def barrier(self) -> None:
        """Wait for every process (no-op in a single process)."""
        if self.world_size > 1:
            dist.barrier()


def _pick_device(choice: str, local_rank: int) -> torch.device:
    cuda = torch.cuda.is_available()
    if choice == "cuda" and not cuda:
        raise ExampleError("--device cuda: torch.cuda.is_available() is False here; use --device cpu or auto")
    if choice == "cpu" or not cuda:
        return torch.device("cpu")
    if local_rank >= torch.cuda.device_count():
        raise ExampleError(f"process with LOCAL_RANK {local_rank} has no GPU ({torch.cuda.device_count()} visible); "
                           "use --nproc_per_node at most the number of GPUs")
    return torch.device("cuda", local_rank)


def start(args: argparse.Namespace) -> Runtime:
    """Pick the device, join the process group under torchrun, seed, and return the runtime."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    device = _pick_device(args.device, int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
        torch.set_float32_matmul_precision("high")
        if args.amp and not torch.cuda.is_bf16_supported():
            raise ExampleError("--amp uses bf16, which this GPU does not support; run without --amp")
    if world_size > 1:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    torch.manual_seed(args.seed + rank)
    return Runtime(device, rank, world_size, args.amp, args.channels_last)


def prepare(model: nn.Module, runtime: Runtime, compile_model: bool) -> nn.Module:
    """Move ``model`` to the device and return the module to train with.

    That is ``model`` itself, wrapped in DistributedDataParallel under torchrun and in
    torch.compile with ``--compile``. Keep ``model`` for evaluating and saving.
    """
    model.to(runtime.device)
    if runtime.channels_last:
        model.to(memory_format=torch.channels_last)
    trained = model
    if runtime.world_size > 1:
        trained = DistributedDataParallel(model, device_ids=[runtime.device] if runtime.device.type == "cuda" else None)
    if compile_model:
        trained = torch.compile(trained, backend=os.environ.get(COMPILE_BACKEND_ENV, "inductor"))  # type: ignore[assignment]
    return trained


def loader(dataset: Dataset[Any], batch_size: int, runtime: Runtime, seed: int) -> DataLoader[Any]:
    """Shuffled training batches, split across processes by a DistributedSampler under torchrun."""
    if len(dataset) < batch_size * runtime.world_size:  # type: ignore[arg-type]
        raise ExampleError(f"--batch-size {batch_size} x {runtime.world_size} process(es) is more than the "
                           f"{len(dataset)} training images; use a smaller --batch-size")  # type: ignore[arg-type]
    pin = runtime.device.type == "cuda"
    if runtime.world_size == 1:
        return DataLoader(dataset, batch_size, shuffle=True, drop_last=True, pin_memory=pin,
                          generator=torch.Generator().manual_seed(seed))
    sampler = DistributedSampler(dataset, runtime.world_size, runtime.rank, shuffle=True, seed=seed, drop_last=True)
    return DataLoader(dataset, batch_size, sampler=sampler, drop_last=True, pin_memory=pin)


@dataclass
class Progress:
    """How far training got: the next epoch to run and the optimizer steps taken so far."""

    epoch: int = 0
    step: int = 0


def steps_left(progress: Progress, max_steps: int | None) -> bool:
    """False once ``--max-steps`` is reached."""
    return max_steps is None or progress.step < max_steps


def train(runtime: Runtime, args: argparse.Namespace, batches: DataLoader[Any],
          step: Callable[[Any], dict[str, Tensor]], progress: Progress,
          end_of_epoch: Callable[[], None] = lambda: None) -> dict[str, float]:
    """Run ``step`` on every batch from ``progress.epoch`` to ``args.epochs`` or ``args.max_steps``.

    ``step`` returns its losses (detached tensors); their epoch means, averaged over
    processes, are printed once per epoch. ``end_of_epoch`` runs after each epoch.
    Returns the steps taken, the wall time and the training images per second (all processes).
    """
    began, first_step = time.perf_counter(), progress.step
    while progress.epoch < args.epochs and steps_left(progress, args.max_steps):
        if isinstance(batches.sampler, DistributedSampler):
            batches.sampler.set_epoch(progress.epoch)
        totals: dict[str, Tensor] = {}
        count = 0
        bar = tqdm(batches, desc=f"epoch {progress.epoch + 1}/{args.epochs}", leave=False, dynamic_ncols=True,
                   disable=not runtime.is_main, file=sys.stderr)
        for batch in bar:
            for name, value in step(batch).items():
                totals[name] = totals.get(name, 0) + value.detach()
            count += 1
            progress.step += 1
            if not steps_left(progress, args.max_steps):
                break
        progress.epoch += 1
        means = runtime.average({name: total / count for name, total in totals.items()})
        runtime.log(f"epoch {progress.epoch}/{args.epochs}  step {progress.step}  "
                    + "  ".join(f"{name} {value:.4f}" for name, value in means.items()))
        end_of_epoch()
    seconds = time.perf_counter() - began
    images = (progress.step - first_step) * args.batch_size * runtime.world_size
    return {"steps": progress.step, "train_seconds": round(seconds, 1),
            "train_images_per_second": round(images / max(seconds, 1e-9), 1)}


@torch.no_grad()
def predict(model: nn.Module, inputs: Tensor) -> Tensor:
    """``model`` on ``inputs`` in eval mode (BatchNorm running statistics), 500 at a time, as float32."""
    was_training = model.training
    model.eval()
    outputs = torch.cat([model(chunk).float() for chunk in inputs.split(500)])
    model.train(was_training)
    return outputs


def run(main: Callable[[Sequence[str] | None], object], argv: Sequence[str] | None = None) -> int:
    """Call ``main(argv)``; print a user error as one line and return the exit status.

    Under torchrun the processes leave together: a process that leaves while rank 0 (which
    hosts the rendezvous store) still evaluates, or the other way round, can fail on exit.
    """
    try:
        main(argv)
        if dist.is_initialized():
            dist.barrier()
        return 0
    except (ExampleError, ShapeError) as error:
        if int(os.environ.get("RANK", "0")) == 0:
            message = " ".join(str(error).split())
            print(f"{Path(sys.argv[0]).name}: error: {message}", file=sys.stderr)
        return 1
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
