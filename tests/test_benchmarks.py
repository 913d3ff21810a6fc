"""The benchmarks' quick run, so they never rot: structure is checked, timings never are."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmarks import run, stride1, training
from benchmarks.gpu_check import benchmark_lines
from benchmarks.memory import in_fresh_process, peak_memory
from benchmarks.report import Settings, table_after
from benchmarks.timing import Paired

ROOT = Path(__file__).resolve().parents[1]

SECTIONS = (
    "## Run-time overhead: forward+backward vs plain torch",
    "## MirrorUNet at odd sizes: exact vs padding to a multiple of 32",
    "## Stride-1 mirrors: ConvTranspose2d vs Conv2d",
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
    rows = table_after(results, group)
    assert rows[0][:2] == ["module", "size"] and len(rows) >= 2
    for row in rows[1:]:
        assert re.fullmatch(RATIO, row[4]), row


def test_padding_rows_compare_pixels_time_and_memory(results: str) -> None:
    rows = table_after(results, "## MirrorUNet at odd sizes")
    assert {row[0] for row in rows[1:]} == {"mirrored from a U-Net encoder", "on a ResNet-18 pyramid"}
    for row in rows[1:]:
        assert re.fullmatch(r"×\d\.\d{3}", row[3]) and re.fullmatch(RATIO, row[4]), row
        assert re.fullmatch(r"[\d,]+", row[6]), row


@pytest.mark.parametrize("heading", ["### Whole U-Net", "### One 3×3 layer"])
def test_stride1_rows_compare_the_two_operators(results: str, heading: str) -> None:
    rows = table_after(results, heading)
    assert len(rows) >= 2 and all(re.fullmatch(RATIO, row[-1]) for row in rows[1:]), rows
    assert re.search(r"Verdict on this device: \*\*", results)


def _paired(low: float, high: float) -> Paired:
    return Paired((low + high) / 2, low, high, 0.0, 1.0, 41, 1)


@pytest.mark.parametrize(("intervals", "verdict"), [
    ([(1.05, 1.10), (1.03, 1.04)], "**Conv2d is faster** in every variant"),
    ([(0.90, 0.95), (0.80, 0.97)], "**ConvTranspose2d is faster**"),
    ([(1.05, 1.10), (0.99, 1.01)], "**Conv2d is faster in some variants**"),
    ([(0.99, 1.01), (0.95, 1.05)], "**No clear difference**"),
    ([(1.05, 1.10), (0.90, 0.95)], "**Mixed**"),
])
def test_stride1_verdict_needs_the_whole_interval_past_two_percent(intervals: list[tuple[float, float]],
                                                                   verdict: str) -> None:
    assert stride1.verdict([_paired(*interval) for interval in intervals]).startswith(verdict)


@pytest.mark.parametrize("amp", [False, True], ids=["fp32", "bf16-channels_last"])
def test_stride1_steps_train_both_operators_in_each_variant(amp: bool) -> None:
    pair = stride1.layer_pair(4, 2)  # the bf16 + channels_last variant runs only on a GPU in the benchmark
    steps = stride1._steps(pair, (1, 4, 6, 5), stride1.Variant(amp), torch.device("cpu"))
    for module, step in zip(pair, steps):
        module.zero_grad(set_to_none=True)
        step()
        assert module.weight.grad is not None and module.weight.grad.abs().sum() > 0
    assert pair[0].weight.is_contiguous(memory_format=torch.channels_last) == amp


def test_sections_flag_writes_those_in_its_order_and_notes_a_failing_one(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(settings: Settings) -> str:
        raise RuntimeError("no kernel image is available")

    monkeypatch.setattr(run.SECTIONS["solver_speed"], "section", broken)
    out = tmp_path / "RESULTS.md"
    status = run.main(["--quick", "--short", "--device", "cpu", "--sections", "solver_speed,stride1",
                       "--out", str(out)])
    text = out.read_text()
    assert status == 1 and "--short" in text
    assert text.index("## solver_speed\n\n**Failed:** `RuntimeError: no kernel") < text.index("## Stride-1 mirrors")
    assert "## Run-time overhead" not in text and "## Compatibility" not in text
    with pytest.raises(SystemExit):
        run.main(["--sections", "overhead,nonsense"])


def test_solver_rows_report_solves_per_second(results: str) -> None:
    rows = table_after(results, "## Solver throughput")
    assert len(rows) > 5
    assert all(float(row[2].replace(",", "")) > 0 for row in rows[1:])


def test_worst_case_rows_name_the_slowest_and_largest_requests(results: str) -> None:
    rows = table_after(results, "## Worst case over extreme requests")
    assert rows[-1][0] == "**all**" and sum(int(row[1]) for row in rows[1:-1]) == int(rows[-1][1])
    assert all(float(row[3]) >= float(row[2]) > 0 and row[4].startswith("`") and row[6].startswith("`")
               for row in rows[1:])


def test_sections_are_refreshed_in_place() -> None:
    from benchmarks.run import _spliced

    old = "# title\n\nintro\n\n## A\n\na\n\n### A.1\n\nx\n\n## B\n\nb\n"
    new = _spliced(old, ["## A\n\nnew a", "## A2\n\ninserted"])
    assert new == "# title\n\nintro\n\n## A\n\nnew a\n\n## A2\n\ninserted\n\n## B\n\nb\n"


def test_build_cost_has_both_methods_at_every_size(results: str) -> None:
    rows = table_after(results, "## Build cost and scaling")
    methods = {row[1] for row in rows[1:]}
    assert any("meta trace" in m for m in methods) and any("real forward" in m for m in methods)
    assert all(re.fullmatch(r"[\d.,]+ \(\d+ runs?\)", row[2]) for row in rows[1:]), rows


def test_compat_table_marks_every_check(results: str) -> None:
    rows = table_after(results, "## Compatibility matrix")
    assert rows[0][0] == "module" and len(rows) >= 2
    assert all(cell for row in rows[1:] for cell in row)
    assert "✗" not in "".join(cell for row in rows[1:] for cell in row)


def test_training_is_not_faked_without_a_gpu(results: str) -> None:
    body = results[results.index("## Training throughput"):results.index("## Compatibility matrix")]
    if not torch.cuda.is_available():
        assert "this benchmark has not yet run on a GPU" in body and "images/s" not in body


SHORT_CPU = Settings(torch.device("cpu"), quick=True, short=True)


@pytest.mark.parametrize("run", [*training.dcgan_runs(SHORT_CPU), *training.autoencoder_runs(SHORT_CPU)],
                         ids=lambda run: f"{run.models.split()[0]}-{run.options.label()}")
def test_training_step_updates_every_model_on_cpu(run: training.Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOSHAPE_EXAMPLES_COMPILE_BACKEND", "aot_eager")  # inductor: a minute per model here
    built = run.build()
    models = [m for m in (built if isinstance(built, tuple) else (built,)) if isinstance(m, torch.nn.Module)]
    step = run.step(built, batch=2, device=torch.device("cpu"), options=run.options)
    before = [next(m.parameters()).detach().clone() for m in models]
    rate = training.images_per_second(step, device=torch.device("cpu"), batch=2, steps=1, warmup=0, repeats=1)
    after = [next(m.parameters()) for m in models]
    assert rate > 0
    assert all(not torch.equal(b, a) and a.isfinite().all() for b, a in zip(before, after))
    torch._dynamo.reset()


def test_short_runs_keep_the_reference_first_and_the_fastest_options_last() -> None:
    runs = training.dcgan_runs(SHORT_CPU)
    assert runs[0].models == training.REFERENCE and runs[-1].options == training.Options(True, True, True)
    assert len(runs) < len(training.dcgan_runs(Settings(torch.device("cpu"), quick=True)))


def test_the_reference_loop_refuses_options() -> None:
    with pytest.raises(ValueError, match="fp32 and eager"):
        training.reference_dcgan_step(training.reference_models(), batch=2, device=torch.device("cpu"),
                                      options=training.Options(amp=True))


def test_training_tables_render_on_cpu_at_a_tiny_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOSHAPE_EXAMPLES_COMPILE_BACKEND", "aot_eager")
    monkeypatch.setattr(training, "BATCH", 2)
    monkeypatch.setattr(training, "AE_BATCH", 2)
    monkeypatch.setattr(training, "_schedule", lambda settings: {"steps": 1, "warmup": 1, "repeats": 1})
    text = "\n\n".join(training.tables(SHORT_CPU))
    torch._dynamo.reset()
    dcgan, autoencoder = table_after(text, "### DCGAN"), table_after(text, "### Autoencoder")
    assert [len(dcgan), len(autoencoder)] == [1 + len(training.dcgan_runs(SHORT_CPU)),
                                              1 + len(training.autoencoder_runs(SHORT_CPU))]
    assert dcgan[1][:2] == [training.REFERENCE, "fp32 eager"] and dcgan[1][3] == "×1.00"
    assert all(float(row[2].replace(",", "")) > 0 for row in dcgan[1:] + autoencoder[1:])
    assert re.search(r"Goal: .* \*\*(met|not met)\*\* \(×\d+\.\d\d\)", text)
    summary = benchmark_lines(f"## Training throughput (CUDA)\n\n{text}\n\n## Compatibility matrix\n")
    assert summary[0].startswith(f"DCGAN: {training.REFERENCE} ") and "; examples/dcgan.py fp32 eager ×" in summary[0]
    assert summary[1].startswith("Autoencoder: same layers ") and "(MirrorAutoencoder) fp32 eager ×" in summary[1]
    assert re.fullmatch(r"DCGAN goal ≥ 2× the reference: (met|not met) \(×\d+\.\d\d\)", summary[2])


def test_goal_line_says_whether_the_fastest_row_doubles_the_reference() -> None:
    runs = training.dcgan_runs(SHORT_CPU)
    assert "**met** (×2.50)" in training.goal_line([(runs[0], 100.0), (runs[-1], 250.0)])
    assert "**not met** (×1.50)" in training.goal_line([(runs[0], 100.0), (runs[-1], 150.0)])


def allocate_64_mib() -> object:
    return peak_memory(lambda: torch.ones(16 * 2**20))


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="resident-set peaks need Linux /proc")
def test_fresh_process_memory_peak_sees_a_64_mib_tensor() -> None:
    peak = in_fresh_process(allocate_64_mib)
    assert peak.rss is not None and 64 * 2**20 <= peak.rss < 80 * 2**20
    assert peak.python < 2**20  # tensor storage is not on the Python heap
