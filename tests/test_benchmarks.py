"""The benchmarks' quick run, so they never rot: structure is checked, timings never are."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

SECTIONS = (
    "## Run-time overhead: forward+backward vs plain torch",
    "## Solver throughput",
    "## Build cost and scaling on 3-d volumes",
    "## Compatibility matrix",
)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("bench") / "RESULTS.md"
    command = [sys.executable, "benchmarks/run.py", "--quick", "--device", "cpu", "--threads", "1", "--out", str(out)]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    return out.read_text()


def _table_after(text: str, heading: str) -> list[list[str]]:
    """The rows (header first, separator dropped) of the first markdown table after ``heading``."""
    rows: list[list[str]] = []
    for line in text[text.index(heading):].splitlines():
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
        elif rows:
            break
    return [row for row in rows if any(set(cell) - {"-"} for cell in row)]

def test_header_names_machine_torch_version_and_date(results: str) -> None:
    assert results.startswith("# autoshape benchmark results")
    assert f"| torch | {torch.__version__} |" in results
    assert re.search(r"\| date \(UTC\) \| \d{4}-\d\d-\d\d \d\d:\d\d \|", results)
    assert "| machine |" in results and "--quick" in results


def test_every_section_is_written_in_order(results: str) -> None:
    positions = [results.index(heading) for heading in SECTIONS]
    assert positions == sorted(positions)


def test_overhead_rows_hold_a_ratio_with_its_interquartile_range(results: str) -> None:
    rows = _table_after(results, "### Target layers")
    assert rows[0][:2] == ["module", "size"] and len(rows) == 1 + 6
    for row in rows[1:]:
        assert re.fullmatch(r"\d+\.\d{3} \(\d+\.\d{3}–\d+\.\d{3}\)", row[4]), row


def test_solver_rows_report_solves_per_second(results: str) -> None:
    rows = _table_after(results, "## Solver throughput")
    assert len(rows) > 5
    assert all(float(row[2].replace(",", "")) > 0 for row in rows[1:])


def test_build_cost_has_both_methods_at_every_size(results: str) -> None:
    rows = _table_after(results, "## Build cost and scaling")
    methods = {row[1] for row in rows[1:]}
    assert any("meta trace" in m for m in methods) and any("real forward" in m for m in methods)
    assert all(re.fullmatch(r"[\d.,]+", row[2]) for row in rows[1:]), rows


def test_compat_table_marks_every_check(results: str) -> None:
    rows = _table_after(results, "## Compatibility matrix")
    assert rows[0][0] == "module" and len(rows) >= 2
    assert all(cell for row in rows[1:] for cell in row)
    assert "✗" not in "".join(cell for row in rows[1:] for cell in row)
