"""Timing primitives: paired alternating ratios, per-call costs and throughput, on CPU or CUDA.

A shared machine drifts (other processes, turbo, thermal), so single absolute times mean
little. ``paired_ratio`` runs the two contenders back to back, alternating which goes first,
and reports the median of the per-pair ratios: drift that lasts longer than one pair cancels.
The median comes with its distribution-free 95% confidence interval (order statistics), which
says how precisely the ratio is known on this machine.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

Step = Callable[[], object]


@dataclass(frozen=True)
class Paired:
    """The outcome of ``paired_ratio``; times are per call, ratios are candidate / reference.

    ``ratio_low``/``ratio_high`` bound the median ratio with 95% confidence.
    """

    ratio: float
    ratio_low: float
    ratio_high: float
    delta_ns: float
    reference_us: float
    pairs: int
    calls_per_sample: int


class Clock:
    """Wall time of a batch of calls: perf_counter on CPU, CUDA events (with sync) on a GPU."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def seconds(self, step: Step, calls: int) -> float:
        """Seconds taken by ``calls`` back-to-back calls of ``step``, queued work included."""
        if self.cuda:
            return self._cuda_seconds(step, calls)
        start = time.perf_counter()
        for _ in range(calls):
            step()
        return time.perf_counter() - start

    @staticmethod
    def _cuda_seconds(step: Step, calls: int) -> float:
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(calls):
            step()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3


@contextmanager
def _quiet_gc() -> Iterator[None]:
    """No garbage collection pauses inside a measurement (as ``timeit`` does)."""
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def calls_for(step: Step, clock: Clock, min_seconds: float) -> int:
    """How many calls make one sample last at least ``min_seconds`` (after one warm call)."""
    step()
    calls = 1
    while (elapsed := clock.seconds(step, calls)) < min_seconds and calls < 1_000_000:
        calls = max(calls * 2, int(calls * min_seconds / max(elapsed, 1e-9)) + 1)
    return calls


def paired_ratio(
    candidate: Step,
    reference: Step,
    *,
    device: torch.device,
    pairs: int,
    warmup: int = 3,
    min_sample_seconds: float = 0.005,
) -> Paired:
    """Median of per-pair time ratios ``candidate / reference`` over alternating runs.

    Each pair times one sample of each (a sample is enough back-to-back calls to last
    ``min_sample_seconds``); even pairs run the candidate first, odd pairs the reference.
    """
    clock = Clock(device)
    for _ in range(warmup):
        candidate()
        reference()
    calls = max(calls_for(candidate, clock, min_sample_seconds), calls_for(reference, clock, min_sample_seconds))
    ratios, deltas, reference_times = [], [], []
    with _quiet_gc():
        for i in range(pairs):
            if i % 2 == 0:
                t_cand, t_ref = clock.seconds(candidate, calls), clock.seconds(reference, calls)
            else:
                t_ref, t_cand = clock.seconds(reference, calls), clock.seconds(candidate, calls)
            ratios.append(t_cand / t_ref)
            deltas.append((t_cand - t_ref) / calls)
            reference_times.append(t_ref / calls)
    low, high = median_interval(ratios)
    return Paired(statistics.median(ratios), low, high, statistics.median(deltas) * 1e9,
                  statistics.median(reference_times) * 1e6, pairs, calls)


def median_interval(samples: list[float]) -> tuple[float, float]:
    """A distribution-free 95% confidence interval for the median (order statistics, normal approximation).

    With fewer than 6 samples no interval reaches 95%; the full range is returned.
    """
    ordered = sorted(samples)
    n = len(ordered)
    k = int((n - 1.96 * n**0.5) / 2)  # 0-based index of the lower bound
    if k < 1:
        return ordered[0], ordered[-1]
    return ordered[k - 1], ordered[n - k]


def ns_per_call(step: Step, *, calls: int, repeats: int) -> float:
    """Median over ``repeats`` of the mean nanoseconds per call (CPU wall time)."""
    clock = Clock(torch.device("cpu"))
    step()
    with _quiet_gc():
        samples = [clock.seconds(step, calls) / calls for _ in range(repeats)]
    return statistics.median(samples) * 1e9


def per_second(step: Step, *, min_seconds: float, repeats: int) -> float:
    """Median over ``repeats`` samples of calls per second (CPU wall time)."""
    clock = Clock(torch.device("cpu"))
    calls = calls_for(step, clock, min_seconds)
    with _quiet_gc():
        samples = [calls / clock.seconds(step, calls) for _ in range(repeats)]
    return statistics.median(samples)


def median_seconds(step: Step, *, repeats: int, budget_seconds: float = float("inf")) -> tuple[float, int]:
    """Median wall seconds of one call, and the number of calls timed: ``repeats``, or fewer (at least
    one) once the calls so far have taken ``budget_seconds`` (for slow, single-shot work)."""
    clock = Clock(torch.device("cpu"))
    samples: list[float] = []
    while len(samples) < repeats and sum(samples) < budget_seconds:
        samples.append(clock.seconds(step, 1))
    return statistics.median(samples), len(samples)
