"""Run every autoshape benchmark and write the results as markdown.

    python benchmarks/run.py [--quick] [--device auto|cpu|cuda] [--threads N] [--out benchmarks/RESULTS.md]
                             [--sections NAME ...]

``--quick`` is the CI smoke run (under a minute; its numbers mean nothing). Times are
medians and overheads are paired ratios against plain torch, never single absolute times.
``--sections`` measures only the named sections and replaces them in the existing ``--out``
file, each marked with its own date, commit and command; the other sections keep their figures.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` and ``tests`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks import build_cost, compat, overhead, padding, solver_speed, training, worst_case
from benchmarks.report import Settings, environment, refreshed

SECTIONS = (overhead, padding, solver_speed, worst_case, build_cost, training, compat)

INTRO = (
    "Written by `python benchmarks/run.py`. Overheads are paired ratios (autoshape / plain torch: the median "
    "over alternating pairs, with its 95% confidence interval); other figures are medians. On CPU every time "
    "is the process's CPU time (`time.process_time`), so time spent waiting while other processes run does "
    "not count: this 2-core machine was shared with other engineers' test runs throughout, which makes wall "
    "time useless for 1% effects. On CUDA, times come from CUDA events. Absolute times are context only."
)


def _device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available here. Fix: use --device cpu or auto.")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CI smoke run: few repeats, small sizes")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's own choice); 1 is steadier on a shared machine")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "RESULTS.md")
    parser.add_argument("--sections", nargs="+", choices=[_name(module) for module in SECTIONS], metavar="NAME",
                        help="measure only these sections and replace them in --out: "
                        + ", ".join(_name(module) for module in SECTIONS))
    return parser.parse_args(argv)


def _name(module: object) -> str:
    return str(getattr(module, "__name__", "")).rsplit(".", 1)[-1]


def _heading(section: str) -> str:
    return section.split("\n", 1)[0]


def _spliced(old: str, fresh: list[str]) -> str:
    """``old`` with each section of ``fresh`` put in place of the one with its heading; a section that ``old``
    lacks goes right after the one refreshed before it (or at the end)."""
    head, *rest = old.rstrip("\n").split("\n\n## ")
    sections = ["## " + part for part in rest]
    after = len(sections) - 1
    for section in fresh:
        index = next((i for i, known in enumerate(sections) if _heading(known) == _heading(section)), None)
        if index is None:
            index = after + 1
            sections.insert(index, section)
        else:
            sections[index] = section
        after = index
    return "\n\n".join([head, *sections]) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the sections in order and write the markdown file; returns the exit code."""
    args = _arguments(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    settings = Settings(_device(args.device), args.quick)
    command = " ".join(["python benchmarks/run.py", *(argv if argv is not None else sys.argv[1:])])
    parts = []
    for module in SECTIONS:
        if args.sections is None or _name(module) in args.sections:
            start = time.perf_counter()
            parts.append(module.section(settings) + ("" if args.sections is None else "\n\n" + refreshed(command)))
            print(f"{_name(module)}: {time.perf_counter() - start:.1f} s", flush=True)
    if args.sections is None:
        header = ["# autoshape benchmark results", INTRO, environment(settings), f"Command: `{command}`"]
        args.out.write_text("\n\n".join(header + parts) + "\n")
    else:
        args.out.write_text(_spliced(args.out.read_text(), parts))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
