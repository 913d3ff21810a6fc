"""The benchmarks' quick run, so they never rot: structure is checked, timings never are."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmarks import training
from benchmarks.memory import in_fresh_process, peak_memory

ROOT = Path(__file__).resolve().parents[1]

SECTIONS = (
    "## Run-time overhead: forward+backward vs plain torch",
    "## MirrorUNet at odd sizes: exact vs padding to a multiple of 32",
    "## Solver throughput",
    "## Worst case over extreme requests (sizes up to 10⁶)",
    "## Build cost and scaling on 3-d volumes",
    "## Training throughput",
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


RATIO = r"\d+\.\d{3} \(\d+\.\d{3}–\d+\.\d{3}\)"


@pytest.mark.parametrize("group", ["### Control: identical modules", "### Target layers",
                                   "### UpsamplingStack and DownsamplingStack",
                                   "### MirrorDecoder and MirrorAutoencoder", "### MirrorUNet"])
def test_overhead_rows_hold_a_ratio_with_its_confidence_interval(results: str, group: str) -> None:
    rows = _table_after(results, group)
    assert rows[0][:2] == ["module", "size"] and len(rows) >= 2
    for row in rows[1:]:
        assert re.fullmatch(RATIO, row[4]), row


def test_padding_rows_compare_pixels_time_and_memory(results: str) -> None:
    rows = _table_after(results, "## MirrorUNet at odd sizes")
    for row in rows[1:]:
        assert re.fullmatch(r"×\d\.\d{3}", row[2]) and re.fullmatch(RATIO, row[3]), row


def test_solver_rows_report_solves_per_second(results: str) -> None:
    rows = _table_after(results, "## Solver throughput")
    assert len(rows) > 5
    assert all(float(row[2].replace(",", "")) > 0 for row in rows[1:])


def test_worst_case_rows_name_the_slowest_and_largest_requests(results: str) -> None:
    rows = _table_after(results, "## Worst case over extreme requests")
    assert rows[-1][0] == "**all**" and sum(int(row[1]) for row in rows[1:-1]) == int(rows[-1][1])
    assert all(float(row[3]) >= float(row[2]) > 0 and row[4].startswith("`") and row[6].startswith("`")
               for row in rows[1:])


def test_sections_are_refreshed_in_place() -> None:
    from benchmarks.run import _spliced

    old = "# title\n\nintro\n\n## A\n\na\n\n### A.1\n\nx\n\n## B\n\nb\n"
    new = _spliced(old, ["## A\n\nnew a", "## A2\n\ninserted"])
    assert new == "# title\n\nintro\n\n## A\n\nnew a\n\n## A2\n\ninserted\n\n## B\n\nb\n"


def test_build_cost_has_both_methods_at_every_size(results: str) -> None:
    rows = _table_after(results, "## Build cost and scaling")
    methods = {row[1] for row in rows[1:]}
    assert any("meta trace" in m for m in methods) and any("real forward" in m for m in methods)
    assert all(re.fullmatch(r"[\d.,]+ \(\d+ runs?\)", row[2]) for row in rows[1:]), rows


def test_compat_table_marks_every_check(results: str) -> None:
    rows = _table_after(results, "## Compatibility matrix")
    assert rows[0][0] == "module" and len(rows) >= 2
    assert all(cell for row in rows[1:] for cell in row)
    assert "✗" not in "".join(cell for row in rows[1:] for cell in row)


def test_training_is_not_faked_without_a_gpu(results: str) -> None:
    body = results[results.index("## Training throughput"):results.index("## Compatibility matrix")]
    if not torch.cuda.is_available():
        assert "no GPU was available in this session" in body and "images/s" not in body


@pytest.mark.parametrize("run", [*training.DCGAN_RUNS[:2], *training.AUTOENCODER_RUNS[:2]],
                         ids=["dcgan-reference", "dcgan-example", "autoencoder-plain", "autoencoder-example"])
def test_training_step_updates_every_model_on_cpu(run: training.Run) -> None:
    built = run.build()
    models = [m for m in (built if isinstance(built, tuple) else (built,)) if isinstance(m, torch.nn.Module)]
    step = run.step(built, batch=2, device=torch.device("cpu"), options=run.options)
    before = [next(m.parameters()).detach().clone() for m in models]
    rate = training.images_per_second(step, device=torch.device("cpu"), batch=2, steps=1, warmup=0, repeats=1)
    after = [next(m.parameters()) for m in models]
    assert rate > 0
    assert all(not torch.equal(b, a) and a.isfinite().all() for b, a in zip(before, after))


def allocate_64_mib() -> object:
    return peak_memory(lambda: torch.ones(16 * 2**20))


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="resident-set peaks need Linux /proc")
def test_fresh_process_memory_peak_sees_a_64_mib_tensor() -> None:
    peak = in_fresh_process(allocate_64_mib)
    assert peak.rss is not None and 64 * 2**20 <= peak.rss < 80 * 2**20
    assert peak.python < 2**20  # tensor storage is not on the Python heap
