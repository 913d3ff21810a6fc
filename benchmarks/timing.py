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
    """Time taken by a batch of calls: CUDA events (with sync) on a GPU; on CPU the process's CPU time.

    CPU time (``time.process_time``: user + system time of all the process's threads) leaves out
    the time the process waits while other processes run, which on a shared machine is most of
    the noise in wall time. With one torch thread it is the compute time of the calls.
    """

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def seconds(self, step: Step, calls: int) -> float:
        """Seconds taken by ``calls`` back-to-back calls of ``step``, queued work included."""
        if self.cuda:
            return self._cuda_seconds(step, calls)
        start = time.process_time()
        for _ in range(calls):
            step()
        return time.process_time() - start

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


@dataclass(frozen=True)
class Precision:
    """How long ``paired_ratio`` keeps pairing: at least ``pairs``; then until the 95% interval of the
    median is within ``±halfwidth`` of it, ``max_pairs`` are done, or ``budget_seconds`` have passed."""

    pairs: int
    max_pairs: int = 0
    halfwidth: float = 0.0
    budget_seconds: float = 0.0

    def describe(self) -> str:
        """The rule in words, for the sections' text."""
        if not self.max_pairs:
            return f"{self.pairs} pairs"
        return (f"pairs run until the 95% interval of the median is within ±{self.halfwidth} of it (at least "
                f"{self.pairs}, at most {self.max_pairs} pairs or {self.budget_seconds:g} s)")

    def enough(self, ratios: list[float], elapsed: float) -> bool:
        """True once no further pair is needed."""
        if len(ratios) < self.pairs:
            return False
        if len(ratios) >= self.max_pairs or elapsed >= self.budget_seconds:
            return True
        low, high = median_interval(ratios)
        middle = statistics.median(ratios)
        return max(middle - low, high - middle) <= self.halfwidth


def paired_ratio(
    candidate: Step,
    reference: Step,
    *,
    device: torch.device,
    precision: Precision,
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
    ratios: list[float] = []
    deltas, reference_times = [], []
    start = time.perf_counter()
    with _quiet_gc():
        while not precision.enough(ratios, time.perf_counter() - start):
            if len(ratios) % 2 == 0:
                t_cand, t_ref = clock.seconds(candidate, calls), clock.seconds(reference, calls)
            else:
                t_ref, t_cand = clock.seconds(reference, calls), clock.seconds(candidate, calls)
            ratios.append(t_cand / t_ref)
            deltas.append((t_cand - t_ref) / calls)
            reference_times.append(t_ref / calls)
    low, high = median_interval(ratios)
    return Paired(statistics.median(ratios), low, high, statistics.median(deltas) * 1e9,
                  statistics.median(reference_times) * 1e6, len(ratios), calls)


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
    """Median over ``repeats`` of the mean CPU nanoseconds per call."""
    clock = Clock(torch.device("cpu"))
    step()
    with _quiet_gc():
        samples = [clock.seconds(step, calls) / calls for _ in range(repeats)]
    return statistics.median(samples) * 1e9


def per_second(step: Step, *, min_seconds: float, repeats: int) -> float:
    """Median over ``repeats`` samples of calls per CPU second."""
    clock = Clock(torch.device("cpu"))
    calls = calls_for(step, clock, min_seconds)
    with _quiet_gc():
        samples = [calls / clock.seconds(step, calls) for _ in range(repeats)]
    return statistics.median(samples)


def median_seconds(step: Step, *, repeats: int, budget_seconds: float = float("inf")) -> tuple[float, int]:
    """Median CPU seconds of one call, and the number of calls timed: ``repeats``, or fewer (at least
    one) once the calls so far have taken ``budget_seconds`` (for slow, single-shot work)."""
    clock = Clock(torch.device("cpu"))
    samples: list[float] = []
    while len(samples) < repeats and sum(samples) < budget_seconds:
        samples.append(clock.seconds(step, 1))
    return statistics.median(samples), len(samples)
