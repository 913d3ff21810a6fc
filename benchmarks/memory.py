"""Peak memory of one call: the Python heap (tracemalloc) and the process's resident set (Linux).

Tensor storage is allocated by torch's C++ allocator, which tracemalloc does not see, so the
resident-set peak is the figure that covers activations. It is read from ``/proc/self/status``
after resetting the kernel's high-water mark through ``/proc/self/clear_refs``. A process that
has already freed large tensors reuses those pages without a new peak, so ``in_fresh_process``
runs a measurement in a newly spawned interpreter.
"""

from __future__ import annotations

import gc
import multiprocessing
import tracemalloc
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")

T = TypeVar("T")


@dataclass(frozen=True)
class Peak:
    """Peak extra bytes during a call; ``rss`` is None where the OS cannot report it."""

    python: int
    rss: int | None


def _status_kib(field: str) -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise OSError(f"{field} not in {_STATUS}")


def _reset_rss_peak() -> bool:
    try:
        _CLEAR_REFS.write_text("5")  # 5: reset the peak resident set size to the current one
        return True
    except OSError:
        return False


def _rss_peak(call: Callable[[], object]) -> int | None:
    gc.collect()
    if not _reset_rss_peak():
        return None
    before = _status_kib("VmRSS")
    result = call()
    peak = _status_kib("VmHWM")
    del result
    return (peak - before) * 1024


def python_peak(call: Callable[[], object]) -> int:
    """The tracemalloc peak of one call, in bytes: what it allocates on the Python heap."""
    gc.collect()
    tracemalloc.start()
    try:
        result = call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    del result
    return peak


def peak_memory(call: Callable[[], object]) -> Peak:
    """Run ``call`` twice: first for its peak extra resident set, then (traced) for its Python-heap peak.

    Separate runs keep tracemalloc's own bookkeeping out of the resident-set figure, and the
    resident set goes first: memory the first run frees stays with the allocator and would hide
    a second run's peak.
    """
    rss = _rss_peak(call)
    return Peak(python=python_peak(call), rss=rss)


def _set_threads(threads: int) -> None:
    torch.set_num_threads(threads)


def in_fresh_process(function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` in a newly spawned interpreter with this process's torch thread count.

    ``function`` must be importable by name (a module-level function) and return a picklable value.
    """
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context, initializer=_set_threads,
                             initargs=(torch.get_num_threads(),)) as pool:
        return pool.submit(function, *args).result()
