"""The Python half of benchmarks/gpu_check.sh: the environment probe and the closing summary.

    python benchmarks/gpu_check.py env --device cuda --json WORK/env.json
    python benchmarks/gpu_check.py summary WORK [--dry-run]

``summary`` reads what the stages left in WORK (stages.tsv, env.json, the test report
tests.xml, the benchmark markdown, each example's metrics.json) and prints one compact block:
device, versions, each stage's status and time, and the key figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.report import git_commit, table_after, versions

RATIO = re.compile(r"(\d+\.\d{3}) \((\d+\.\d{3})–(\d+\.\d{3})\)")
EXAMPLE_FIGURES = {  # metrics.json key → label, in the order shown
    "autoencoder_mse": "MSE", "pca_mse": "PCA MSE", "unet_iou": "IoU", "threshold_iou": "threshold IoU",
    "generated_label_accuracy": "label accuracy", "real_test_accuracy_ceiling": "ceiling",
    "steps": "steps", "train_seconds": "train s", "train_images_per_second": "images/s",
}


def environment(device: str) -> dict[str, object]:
    """Versions, machine and (for ``cuda``) the GPU; exits with a message when CUDA was asked for and is absent."""
    import torch

    info: dict[str, object] = {
        "python": platform.python_version(), "torch": torch.__version__, "cuda_build": torch.version.cuda,
        "cpus": os.cpu_count(), "commit": git_commit(),
        "packages": versions("torchvision", "timm", "triton", "pytest", "pytest-xdist", "hypothesis"),
    }
    if device != "cuda":
        return {**info, "gpu": f"none: {device} run"}
    if not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch.cuda.is_available() is False on this machine")
    props = torch.cuda.get_device_properties(0)
    return {**info, "gpu": torch.cuda.get_device_name(0), "capability": f"{props.major}.{props.minor}",
            "memory_gib": round(props.total_memory / 2**30, 1), "cudnn": torch.backends.cudnn.version(),
            "bf16": torch.cuda.is_bf16_supported()}


def _read_json(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def count_tests(report: Path) -> str:
    """``N passed, N failed, ...`` from a pytest JUnit XML report, with the first failing tests named."""
    try:
        cases = list(ET.parse(report).getroot().iter("testcase"))
    except (OSError, ET.ParseError):
        return "no test report"
    counts = {"passed": 0, "failed": 0, "xfailed": 0, "skipped": 0}
    failed = []
    for case in cases:
        skipped = case.find("skipped")
        if case.find("failure") is not None or case.find("error") is not None:
            counts["failed"] += 1
            failed.append(case.get("name", "?"))
        elif skipped is not None:
            counts["xfailed" if skipped.get("type") == "pytest.xfail" else "skipped"] += 1
        else:
            counts["passed"] += 1
    text = ", ".join(f"{n} {name}" for name, n in counts.items())
    return text + (f"; failing: {', '.join(failed[:8])}" + (" …" if len(failed) > 8 else "") if failed else "")


def example_figures(metrics: dict[str, object]) -> str:
    """The metrics an example wrote, in a fixed order, as ``label value`` pairs."""
    return "  ".join(f"{label} {metrics[key]}" for key, label in EXAMPLE_FIGURES.items() if key in metrics)


def _section(text: str, heading: str) -> str:
    start = text.find(heading)
    if start < 0:
        return ""
    end = text.find("\n## ", start + len(heading))
    return text[start:] if end < 0 else text[start:end]


def _tables(text: str) -> Iterator[list[list[str]]]:
    """Every markdown table in ``text`` (rows, header first)."""
    block: list[str] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            block.append(line)
        elif block:
            yield table_after("\n".join(block), block[0])
            block = []


def _span(values: Sequence[float]) -> str:
    return "none" if not values else f"{min(values):.3f}–{max(values):.3f} ({len(values)} cases)"


def benchmark_lines(markdown: str) -> list[str]:
    """Key figures of a benchmarks/run.py file: overhead spans, DCGAN and autoencoder ratios, padding, stride-1."""
    lines = []
    overhead = _section(markdown, "## Run-time overhead")
    ratios: dict[str, list[float]] = {"realistic": [], "tiny": []}
    for rows in _tables(overhead):
        if rows[0][:2] == ["module", "size"]:
            for row in rows[1:]:
                found = RATIO.fullmatch(row[4])
                if found and "copy of itself" not in row[0]:
                    ratios.setdefault(row[1], []).append(float(found.group(1)))
    if overhead:
        lines.append(f"overhead ratio, realistic: {_span(ratios['realistic'])}; tiny: {_span(ratios['tiny'])}")
    lines += _throughput_lines(_section(markdown, "## Training throughput"))
    padding = _section(markdown, "## MirrorUNet at odd sizes")
    if padding:
        rows = table_after(padding, "| input")[1:]
        lines.append("padding to 32, time padded/exact: " + "; ".join(
            f"{row[0]} ×{row[3].split()[0]}, memory {row[4]} MiB" for row in rows))
    verdict = re.search(r"Verdict on this device: (.*)", _section(markdown, "## Stride-1 mirrors"))
    if verdict:
        lines.append(f"stride-1 mirrors: {verdict.group(1).replace('**', '')}")
    failed = re.findall(r"^## (\w+)\n\n\*\*Failed:\*\* (.*)$", markdown, re.MULTILINE)
    lines += [f"section {name} FAILED: {why}" for name, why in failed]
    return lines


def _throughput_lines(training: str) -> list[str]:
    if "images/s" not in training:
        return ["training throughput: not measured (no GPU)"] if training else []
    lines = []
    for heading in ("### DCGAN", "### Autoencoder"):
        rows = table_after(training, heading)[1:]
        if rows:
            rest = ", ".join(f"{row[1]} {row[3]}" for row in rows[1:])
            lines.append(f"{heading[4:]}: {rows[0][0]} {rows[0][2]} images/s; {rows[-1][0]} {rest}")
    goal = re.search(r"Goal: .*?\*\*(met|not met)\*\* \((×[\d.]+)\)", training)
    if goal:
        lines.append(f"DCGAN goal ≥ 2× the reference: {goal.group(1)} ({goal.group(2)})")
    return lines


def stages(work: Path) -> list[list[str]]:
    """Rows of stages.tsv: name, status, exit code, seconds, cap."""
    try:
        text = (work / "stages.tsv").read_text()
    except OSError:
        return []
    return [line.split("\t") for line in text.splitlines() if line.count("\t") == 4]


def _figures(work: Path, name: str) -> str:
    if name == "tests":
        return count_tests(work / "tests.xml")
    if name == "bench":
        return "(figures below)"
    metrics = _read_json(work / name / "metrics.json")
    return example_figures(metrics) if metrics else ""


def summary(work: Path, dry_run: bool) -> str:
    """The closing block of benchmarks/gpu_check.sh."""
    env = _read_json(work / "env.json")
    gpu = env.get("gpu", "unknown")
    if "capability" in env:
        gpu = f"{gpu} (compute {env['capability']}, {env['memory_gib']} GiB, cuDNN {env['cudnn']})"
    rows = stages(work)
    width = max((len(row[0]) for row in rows), default=5)
    lines = [
        "==== autoshape GPU check: summary " + "=" * 30,
        f"mode      {'DRY RUN on the CPU (tiny steps: the figures mean nothing)' if dry_run else 'GPU run'}",
        f"device    {gpu}",
        f"versions  python {env.get('python', '?')}, torch {env.get('torch', '?')} (CUDA build "
        f"{env.get('cuda_build')}), {env.get('packages', '?')}; commit {env.get('commit', '?')}",
        "",
        f"{'stage':<{width}}  status     time/cap    key figures",
    ]
    for name, status, code, seconds, cap in rows:
        shown = status if status != "failed" else f"failed({code})"
        lines.append(f"{name:<{width}}  {shown:<9} {seconds + 's':>5}/{cap + 's':<5} {_figures(work, name)}")
    results = sorted(work.glob("RESULTS-*.md"))
    if results:
        lines += ["", f"benchmarks ({results[0].name}):"]
        lines += [f"  {line}" for line in benchmark_lines(results[0].read_text())]
    clock = (work / "clock.tsv").read_text().split() if (work / "clock.tsv").is_file() else []
    if len(clock) == 2:
        lines += ["", f"wall time {clock[0]} s (budget {clock[1]} s, stages 3 and 4 run their parts in parallel)"]
    bad = [row[0] for row in rows if row[1] != "ok"]
    lines += ["", f"overall: {'OK' if rows and not bad else 'NOT OK: ' + (', '.join(bad) or 'no stage ran')}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    env = commands.add_parser("env", help="print the environment as JSON")
    env.add_argument("--device", choices=("cpu", "cuda"), required=True)
    env.add_argument("--json", type=Path, required=True, help="where to write it (it is printed too)")
    report = commands.add_parser("summary", help="print the summary of a gpu_check.sh work folder")
    report.add_argument("work", type=Path)
    report.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "env":
        text = json.dumps(environment(args.device), indent=2)
        args.json.write_text(text + "\n")
        print(text)
    else:
        print(summary(args.work, args.dry_run))
    return 0


if __name__ == "__main__":
    sys.exit(main())
