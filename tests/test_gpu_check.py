"""benchmarks/gpu_check.sh, the GPU session's one prepared run: its CPU dry run, and its summary's parsing."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from benchmarks.gpu_check import benchmark_lines, count_tests, example_figures

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("env", "tests", "bench", "ex-mirror_autoencoder", "ex-dcgan", "ex-unet_segmentation",
          "dcgan-full-fp32", "dcgan-full-fast")
BACK = {"summary.txt", "RESULTS-cpu.md", "logs.tar.gz", "autoencoder_reconstructions.png",
        "unet_segmentation.png", "dcgan_conditional_fp32.png", "dcgan_conditional_amp_channels_last_compile.png"}


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("timeout") is None,
                    reason="the script needs bash and coreutils' timeout")
def test_dry_run_runs_every_stage_and_prints_the_summary_last(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out), "PYTHON": sys.executable, "TMPDIR": str(tmp_path)}
    result = subprocess.run(["bash", "benchmarks/gpu_check.sh", "--dry-run"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr
    assert {path.name for path in out.iterdir()} == BACK  # the device tool brings back at most 8 files
    summary = (out / "summary.txt").read_text()
    assert summary.strip() in result.stdout and result.stdout.rstrip().splitlines()[-2] == "overall: OK"
    for stage in STAGES:
        assert re.search(rf"^{stage} +ok ", summary, re.MULTILINE), summary
    assert "DRY RUN" in summary and re.search(r"^tests +ok .* \d+ passed, 0 failed", summary, re.MULTILINE)
    with tarfile.open(out / "logs.tar.gz") as archive:
        names = set(archive.getnames())
    assert {f"./{stage}.log" for stage in STAGES} <= names and "./tests.xml" in names
    assert "./dcgan-full-fast/metrics.json" in names and not any(name.endswith(".pt") for name in names)
    assert not any(tmp_path.glob("gpu_check.*")), "the work folder is left behind"


def test_an_unknown_argument_is_a_usage_error() -> None:
    if shutil.which("bash") is None:
        pytest.skip("needs bash")
    result = subprocess.run(["bash", "benchmarks/gpu_check.sh", "--gpu"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2 and "unknown argument '--gpu'" in result.stderr


JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<testcase classname="t" name="test_ok" /><testcase classname="t" name="test_fail"><failure message="x" /></testcase>
<testcase classname="t" name="test_skip"><skipped type="pytest.skip" message="why" /></testcase>
<testcase classname="t" name="test_xf"><skipped type="pytest.xfail" message="" /></testcase>
<testcase classname="t" name="test_err"><error message="fixture" /></testcase></testsuite></testsuites>"""


def test_test_report_counts_and_names_the_failures(tmp_path: Path) -> None:
    (tmp_path / "tests.xml").write_text(JUNIT)
    assert count_tests(tmp_path / "tests.xml") == (
        "1 passed, 2 failed, 1 xfailed, 1 skipped; failing: test_fail, test_err")
    assert count_tests(tmp_path / "missing.xml") == "no test report"


def test_example_figures_in_a_fixed_order() -> None:
    metrics = {"steps": 1100, "generated_label_accuracy": 0.94, "real_test_accuracy_ceiling": 0.99, "other": 1}
    assert example_figures(metrics) == "label accuracy 0.94  ceiling 0.99  steps 1100"


def test_benchmark_lines_report_a_failed_section() -> None:
    lines = benchmark_lines("# results\n\n## stride1\n\n**Failed:** `RuntimeError: no kernel image`\n")
    assert lines == ["section stride1 FAILED: `RuntimeError: no kernel image`"]
