"""Build cost and its growth: meta tracing against tracing with a real forward, on 3-d volumes up to 512³.

autoshape traces on meta tensors, so its cost should not depend on the input size. Shape
tools that run a real forward with hooks (torchinfo-style) pay compute and activation memory
that grow with the volume, i.e. cubically in the side length.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from autoshape import MirrorDecoder, explain
from autoshape.tracing.recorder import trace
from tests.architectures import encoder_3d

from .memory import Peak, in_fresh_process, peak_memory
from .report import Settings, table
from .timing import median_seconds

Builder = Callable[[nn.Module, tuple[int, ...]], object]


def encoder() -> nn.Module:
    """VoxNet's 3-d encoder from tests/architectures.py at width 16 (the published width is 32)."""
    return encoder_3d(width=16).eval()


def real_forward_trace(model: nn.Module, shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """What hook-based summary tools do: a real no-grad forward on a random input, recording leaf outputs."""
    shapes: list[tuple[int, ...]] = []
    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    handles = [m.register_forward_hook(lambda _m, _args, out: shapes.append(tuple(out.shape))) for m in leaves]
    try:
        with torch.no_grad():
            model(torch.rand(shape))
    finally:
        for handle in handles:
            handle.remove()
    return shapes


def activation_bytes(model: nn.Module, shape: tuple[int, ...]) -> int:
    """Largest input+output pair of any leaf call, from the meta trace: a no-grad forward's least peak."""
    calls = trace(model, shape).calls
    size = torch.finfo(torch.float32).bits // 8
    return max(size * (_numel(c.input_shape) + _numel(c.output_shape or ())) for c in calls)


def _numel(shape: Sequence[int]) -> int:
    n = 1
    for dim in shape:
        n *= dim
    return n


def real_forward_budget() -> int:
    """Bytes a real forward may use here: a third of the available memory, at most 6 GiB."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return min(6 * 2**30, int(line.split()[1]) * 1024 // 3)
    except OSError:
        pass
    return 2 * 2**30


@dataclass(frozen=True)
class Method:
    """One way of building shape information for a model; ``real`` methods run real compute."""

    name: str
    build: Builder
    real: bool


METHODS: list[Method] = [
    Method("meta trace (`autoshape.tracing.trace`)", trace, real=False),
    Method("`autoshape.explain`", explain, real=False),
    Method("`MirrorDecoder` build (traces, then builds the decoder's layers)", MirrorDecoder, real=False),
    Method("real forward + hooks (torchinfo-style)", real_forward_trace, real=True),
]


@dataclass(frozen=True)
class Measured:
    """Median seconds and peak memory of one method at one size, or why it was not run."""

    seconds: float = 0.0
    runs: int = 0
    peak: Peak | None = None
    skipped: str = ""


WARM_UP_SHAPE = (1, 1, 16, 16, 16)
REAL_TIME_BUDGET = 5.0  # seconds: no further timed repeats of a method once its runs took this long


def measure_peak(method: int, shape: tuple[int, ...]) -> Peak:
    """Peak memory of one build, after a warm-up build on a tiny volume (run it in a fresh process)."""
    model = encoder()
    build = METHODS[method].build
    build(model, WARM_UP_SHAPE)
    return peak_memory(lambda: build(model, shape))


def measure(settings: Settings, method: int, side: int, budget: int) -> Measured:
    """Time (in this process) and peak memory (in a fresh one) of ``METHODS[method]`` on a side³ volume.

    The quick run measures memory in this process, to save the interpreter start-ups.
    """
    shape = (1, 1, side, side, side)
    model = encoder()
    build, real = METHODS[method].build, METHODS[method].real
    if real and (need := activation_bytes(model, shape)) > budget:
        return Measured(skipped=f"not run: needs ≥ {need / 2**30:.1f} GiB (cap {budget / 2**30:.1f} GiB)")
    repeats = 1 if settings.quick else (3 if real else 7)
    build(model, WARM_UP_SHAPE)
    seconds, runs = median_seconds(lambda: build(model, shape), repeats=repeats, budget_seconds=REAL_TIME_BUDGET)
    peak = measure_peak(method, shape) if settings.quick else in_fresh_process(measure_peak, method, shape)
    return Measured(seconds, runs, peak)


def _mib(n: int | None) -> str:
    return "n/a" if n is None else f"{n / 2**20:,.2f}"


def _cells(m: Measured) -> list[str]:
    if m.peak is None:
        return [m.skipped, "–"]
    return [f"{m.seconds * 1e3:,.1f} ({m.runs} run{'s' * (m.runs > 1)})",
            f"{_mib(m.peak.rss)} / {_mib(m.peak.python)}"]


def _growth(name: str, by_side: dict[int, Measured]) -> list[object]:
    ran = {side: m.peak for side, m in by_side.items() if m.peak is not None}
    lo, hi = min(ran), max(ran)
    return [name, f"{lo}³ → {hi}³", f"×{(hi / lo) ** 3:,.0f}", f"×{by_side[hi].seconds / by_side[lo].seconds:,.1f}",
            f"{_mib(ran[lo].rss)} → {_mib(ran[hi].rss)} MiB"]


def sides(settings: Settings) -> tuple[int, ...]:
    """Cube side lengths to measure."""
    return (32,) if settings.quick else (64, 128, 256, 384, 512)


def corpus_rows(settings: Settings) -> list[list[object]]:
    """MirrorAutoencoder's build time on each encoder of the real-model corpus (tests/test_real_models.py)
    whose library is installed, slowest first: the median of 3 builds after one warm-up build."""
    from autoshape import MirrorAutoencoder
    from tests.test_real_models import CASES, installed

    rows = []
    for case in [c for c in CASES if installed(c)][: 3 if settings.quick else None]:
        torch.manual_seed(0)
        model = case.build().eval()
        build = lambda m=model, c=case: MirrorAutoencoder(m, c.shapes[0], output=c.output)  # noqa: E731
        build()
        seconds, _ = median_seconds(build, repeats=1 if settings.quick else 3, budget_seconds=REAL_TIME_BUDGET)
        rows.append([case.name, "×".join(map(str, case.shapes[0])), seconds])
    rows.sort(key=lambda row: -float(row[2]))
    return [[name, shape, f"{seconds * 1e3:,.0f}"] for name, shape, seconds in rows]


def section(settings: Settings) -> str:
    """The build-cost section of RESULTS.md."""
    torch.manual_seed(0)
    budget = real_forward_budget()
    results = {i: {side: measure(settings, i, side, budget) for side in sides(settings)} for i in range(len(METHODS))}
    rows = [[f"{side}³", METHODS[i].name, *_cells(results[i][side])] for side in sides(settings) for i in results]
    growth = [_growth(METHODS[i].name, results[i]) for i in results]
    return "\n\n".join([
        "## Build cost and scaling on 3-d volumes",
        f"Encoder: {encoder.__doc__} Timing: median of 7 (meta) or 3 (real) runs after a warm-up, fewer "
        f"once the runs took {REAL_TIME_BUDGET:.0f} s, on {torch.get_num_threads()} torch thread(s). Memory, in "
        "a freshly spawned process after a warm-up on 16³: the peak extra resident set (`/proc/self/status` "
        "VmHWM, reset before the call; it covers tensor storage) and the peak Python heap (`tracemalloc`, a "
        "separate call). A real forward is skipped when the meta trace says it needs more than a third of the "
        f"available memory (at most 6 GiB) on this {os.cpu_count()}-core machine shared with other engineers.",
        table(("input 1×1×S³", "method", "time ms (median)", "peak MiB: RSS / Python heap"), rows),
        "Growth from the smallest to the largest volume each method ran on:",
        table(("method", "volumes", "voxels", "time", "peak RSS"), growth),
        "### Build time on encoders written elsewhere",
        "`MirrorAutoencoder(encoder, sample_shape, output=...)` on each model of the real-model corpus "
        "(`tests/test_real_models.py`: MONAI, HF transformers from small configs, classic PyTorch code), "
        "median of 3 builds after a warm-up, slowest first. The goal is under 1 s for every one.",
        table(("encoder", "sample shape", "build ms (median)"), corpus_rows(settings)),
    ])
