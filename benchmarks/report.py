"""Markdown for RESULTS.md: the run's settings, the machine it ran on, and tables."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

import autoshape

from .timing import Precision

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Settings:
    """What every benchmark section is told: the device, and the run's mode.

    ``quick`` is the CI smoke run (tiny sizes, a few pairs: numbers mean nothing). ``short`` is the
    time-boxed run on a GPU (benchmarks/gpu_check.sh): realistic sizes, fewer pairs, fewer
    table rows. Both may be given (the script's CPU dry run): sizes and pairs are then the quick ones.
    """

    device: torch.device
    quick: bool
    short: bool = False

    def precision(self, budget_seconds: float = 30.0) -> Precision:
        """Paired-ratio stopping rule: 3 pairs when quick; 21 to 201 pairs, until ±0.005 or 1.5 s when short;
        else 41 to 401 pairs, until ±0.005 or the budget."""
        if self.quick:
            return Precision(pairs=3)
        if self.short:
            return Precision(pairs=21, max_pairs=201, halfwidth=0.005, budget_seconds=1.5)
        return Precision(pairs=41, max_pairs=401, halfwidth=0.005, budget_seconds=budget_seconds)

    def mode(self) -> str:
        """The run's mode in words, for the header of RESULTS.md."""
        if self.quick:
            return "--quick (CI smoke run: few repeats, numbers are NOT meaningful)"
        if self.short:
            return "--short (time-boxed GPU run: fewer pairs and rows than a full run)"
        return "full"


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def table_after(text: str, heading: str) -> list[list[str]]:
    """The rows (header first, separator dropped) of the first markdown table after ``heading`` in ``text``.

    Raises:
        ValueError: ``heading`` is not in ``text``.
    """
    rows: list[list[str]] = []
    for line in text[text.index(heading):].splitlines():
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
        elif rows:
            break
    return [row for row in rows if any(set(cell) - {"-"} for cell in row)]


def ratio_cell(ratio: float, low: float, high: float) -> str:
    """A paired ratio with its 95% confidence interval, e.g. ``1.003 (0.991–1.012)``."""
    return f"{ratio:.3f} ({low:.3f}–{high:.3f})"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str:
    """The short hash of the checked-out commit, or ``unknown`` (no git, or a copy without .git)."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                             timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip()


def _ram_gib() -> str:
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return "unknown"
    return f"{pages * page_size / 2**30:.0f} GiB"


def versions(*names: str) -> str:
    """``name version`` of each installed distribution, ``name not installed`` otherwise, comma-separated."""
    found = []
    for name in names:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} not installed")
    return ", ".join(found)


def environment(settings: Settings) -> str:
    """The header block: date, machine, versions, device and run mode."""
    gpu = torch.cuda.get_device_name(settings.device) if settings.device.type == "cuda" else "none used"
    rows = [
        ("date (UTC)", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")),
        ("machine", f"{_cpu_model()}, {os.cpu_count()} logical CPUs, {_ram_gib()} RAM"),
        ("torch threads", torch.get_num_threads()),
        ("GPU", gpu),
        ("device benchmarked", settings.device.type),
        ("python", platform.python_version()),
        ("torch", torch.__version__),
        ("optional", versions("onnx", "onnxscript", "onnxruntime")),
        ("autoshape", f"{autoshape.__version__} (commit {git_commit()})"),
        ("mode", settings.mode()),
    ]
    return table(("", ""), rows)


def refreshed(command: str) -> str:
    """The note under a section measured apart from the rest of the file: when, at which commit, how."""
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")
    return (f"_This section was measured on its own on {date} (UTC) at commit {git_commit()}, on the machine "
            f"described at the top, with `{command}`; the other sections come from the full run above._")
