"""Run every autoshape benchmark and write the results as markdown.

    python benchmarks/run.py [--quick | --short] [--device auto|cpu|cuda] [--threads N]
                             [--sections overhead,padding,...] [--refresh] [--out benchmarks/RESULTS.md]

``--quick`` is the CI smoke run (under a minute; its numbers mean nothing). ``--short`` is the
time-boxed run on a GPU (benchmarks/gpu_check.sh): realistic sizes, fewer pairs and rows.
Times are medians and overheads are paired ratios against plain torch, never single absolute
times. ``--sections`` picks sections and their order; the file is rewritten after every section,
so a run cut short keeps what it measured. With ``--refresh`` the sections measured replace their
namesakes in the existing ``--out`` file, each marked with its own date, commit and command, and
the other sections keep their figures.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` and ``tests`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks import build_cost, compat, overhead, padding, solver_speed, stride1, training, worst_case
from benchmarks.report import Settings, environment, refreshed

SECTIONS = {module.__name__.rsplit(".", 1)[-1]: module
            for module in (overhead, padding, stride1, solver_speed, worst_case, build_cost, training, compat)}

INTRO = (
    "Written by `python benchmarks/run.py`. Overheads are paired ratios (autoshape / plain torch: the median "
    "over alternating pairs, with its 95% confidence interval); other figures are medians. On CPU every time "
    "is the process's CPU time (`time.process_time`), so time spent waiting while other processes run does "
    "not count: the CPU runs were made on a 2-core machine shared with other engineers' test runs, which "
    "makes wall time useless for 1% effects. On CUDA, times come from CUDA events after warm-up. Absolute "
    "times are context only."
)


def _device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available here. Fix: use --device cpu or auto.")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def _sections(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in SECTIONS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown section(s) {', '.join(unknown) or '(none given)'}; "
                                         f"choose from {','.join(SECTIONS)}")
    return names


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="CI smoke run: few repeats, small sizes")
    parser.add_argument("--short", action="store_true",
                        help="time-boxed GPU run: realistic sizes, fewer pairs and rows")
    parser.add_argument("--sections", type=_sections, default=list(SECTIONS),
                        help=f"comma-separated, run in the order given (default: all, {','.join(SECTIONS)})")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's own choice); 1 is steadier on a shared machine")
    parser.add_argument("--refresh", action="store_true",
                        help="replace the measured sections in the existing --out file; keep the others")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "RESULTS.md")
    return parser.parse_args(argv)


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
    settings = Settings(_device(args.device), args.quick, args.short)
    command = " ".join(["python benchmarks/run.py", *(argv if argv is not None else sys.argv[1:])])
    header = ["# autoshape benchmark results", INTRO, environment(settings), f"Command: `{command}`"]
    old = args.out.read_text() if args.refresh else ""
    parts: list[str] = []
    failed: list[str] = []
    for name in args.sections:
        start = time.perf_counter()
        try:
            parts.append(SECTIONS[name].section(settings) + ("\n\n" + refreshed(command) if args.refresh else ""))
        except Exception as error:  # one broken section must not lose the others' figures
            traceback.print_exc()
            parts.append(f"## {name}\n\n**Failed:** `{type(error).__name__}: {str(error).splitlines()[0]}`")
            failed.append(name)
        args.out.write_text(_spliced(old, parts) if args.refresh else "\n\n".join(header + parts) + "\n")
        print(f"{name}: {time.perf_counter() - start:.1f} s", flush=True)
    print(f"wrote {args.out}" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
