"""The command line: answers checked by building the printed layers in torch, and every exit code.

Most cases call ``main(argv)`` in-process; a few run the real ``python -m autoshape`` and the
``autoshape`` console script as subprocesses, started together so their torch imports overlap.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import sysconfig
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import autoshape
from autoshape.cli import main

MODELS = textwrap.dedent('''
    import torch
    from torch import nn

    def autoencoder():
        return nn.Sequential(nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.ReLU(),
                             nn.ConvTranspose2d(8, 1, 3, stride=2, padding=1))

    model = autoencoder()
    upsampled = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.Upsample(scale_factor=2))

    class Generator(nn.Sequential):
        def __init__(self):
            super().__init__(nn.ConvTranspose2d(4, 2, 4, 1), nn.ConvTranspose2d(2, 1, 4, 2, 1))

    class NeedsArguments(nn.Module):
        def __init__(self, width):
            super().__init__()

    class Mismatch(nn.Sequential):
        def __init__(self):
            super().__init__(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(10, 2))

    class DataDependent(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3)

        def forward(self, x):
            return self.conv(x if bool(x.sum() >= 0) else -x)

    class UNetLike(nn.Module):
        def __init__(self):
            super().__init__()
            self.down = nn.Conv2d(1, 4, 3, stride=2, padding=1)
            self.up = nn.ConvTranspose2d(4, 1, 2, stride=2)

        def forward(self, x):
            return torch.cat([x, self.up(self.down(x))], dim=1)

    not_a_model = 3
''')


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    (folder / "autoshape_cli_models.py").write_text(MODELS)
    return folder


@pytest.fixture
def models(models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(models_dir)
    monkeypatch.setattr(sys, "path", list(sys.path))  # main() may add the working directory
    yield
    sys.modules.pop("autoshape_cli_models", None)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


PARAMS = ("kernel_size", "stride", "padding", "dilation", "output_padding")


def _torch_output_size(params: dict[str, Any], input_size: list[int]) -> list[int]:
    """Build the layer the JSON describes and run it: the spatial output size torch gives."""
    n = len(params["kernel_size"])
    kwargs = {name: tuple(params[name]) for name in PARAMS}
    if params["transposed"]:
        layer: nn.Module = getattr(nn, f"ConvTranspose{n}d")(1, 1, **kwargs)
    else:
        del kwargs["output_padding"]
        layer = getattr(nn, f"Conv{n}d")(1, 1, **kwargs)
    return list(layer(torch.zeros(1, 1, *input_size)).shape[2:])


# --- solve --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("argv", "input_size", "output_size", "transposed"), [
    (["12", "24"], [12], [24], True),
    (["24", "12"], [24], [12], False),
    (["12", "12"], [12], [12], False),
    (["12,7", "24,14"], [12, 7], [24, 14], True),
    (["12,24", "24,12"], [12, 24], [24, 12], False),  # mixed: a plain convolution unless --transpose
    (["12,24", "24,12", "--transpose"], [12, 24], [24, 12], True),
    (["12", "24", "--conv"], [12], [24], False),
    (["1", "7", "--kernel-size", "4"], [1], [7], True),
    (["16000", "3199", "--stride", "5"], [16000], [3199], False),
    (["9", "17", "--dilation", "2"], [9], [17], True),
    (["12", "24", "--kernel-size", "3,4"], [12, 12], [24, 24], True),  # one tuple makes it 2-d
])
def test_solve_json_builds_a_torch_layer_of_exactly_that_size(
    capsys: pytest.CaptureFixture[str], argv: list[str], input_size: list[int], output_size: list[int],
    transposed: bool,
) -> None:
    code, out, err = run(capsys, "solve", *argv, "--json")
    assert (code, err) == (0, "")
    params = json.loads(out)
    assert params["transposed"] is transposed
    assert _torch_output_size(params, input_size) == output_size


def test_solve_prints_the_layer_and_its_formula(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "solve", "12", "24", "--kernel-size", "3")
    assert code == 0
    assert out.splitlines() == [
        "ConvTranspose 12 → 24: kernel_size=3, stride=2, padding=1, output_padding=1",
        "  out: (12-1)·2 - 2·1 + 1·(3-1) + 1 + 1 = 24",
    ]
    code, out, _ = run(capsys, "solve", "12", "24", "--kernel-size", "3,4")  # 2-d: each int is every dimension's
    assert out.splitlines()[0] == ("ConvTranspose2d 12×12 → 24×24: kernel_size=(3, 4), stride=(2, 2), "
                                   "padding=(1, 1), output_padding=(1, 0)")
    code, out, _ = run(capsys, "solve", "25,24", "13,12")
    assert out.splitlines() == [
        "Conv2d 25×24 → 13×12: kernel_size=(3, 3), stride=(2, 2), padding=(1, 1)",
        "  H: ⌊(25 + 2·1 - 1·(3-1) - 1) / 2⌋ + 1 = 13; W: ⌊(24 + 2·1 - 1·(3-1) - 1) / 2⌋ + 1 = 12",
    ]


@pytest.mark.parametrize(("argv", "header"), [
    (["37,29", "19"], "Conv2d 37×29 → 19×19"),
    (["19", "37,29"], "ConvTranspose2d 19×19 → 37×29"),
])
def test_solve_header_shows_an_int_size_in_every_dimension(capsys: pytest.CaptureFixture[str], argv: list[str],
                                                           header: str) -> None:
    code, out, _ = run(capsys, "solve", *argv)
    assert code == 0 and out.split(":")[0] == header
    sizes = [[int(v) for v in side.split("×")] for side in header.split(" ", 1)[1].split(" → ")]
    _, params, _ = run(capsys, "solve", *argv, "--json")
    assert _torch_output_size(json.loads(params), sizes[0]) == sizes[1]  # the sizes shown are torch's


def test_solve_all_lists_ranked_alternatives_that_all_work(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "solve", "12", "24", "--all", "--json")
    ranked = json.loads(out)
    assert code == 0 and len(ranked) > 3
    assert all(_torch_output_size(params, [12]) == [24] for params in ranked)
    _, best, _ = run(capsys, "solve", "12", "24", "--json")
    assert ranked[0] == json.loads(best)
    code, text, _ = run(capsys, "solve", "12", "24", "--all")
    table = text.split("\n\n")[1].splitlines()
    assert table[0].split() == ["rank", "kernel_size", "stride", "padding", "dilation", "output_padding"]
    assert [[int(v) for v in line.split()[1:]] for line in table[1:]] == [
        [p["kernel_size"][0], p["stride"][0], p["padding"][0], p["dilation"][0], p["output_padding"][0]]
        for p in ranked
    ]


def test_impossible_solve_exits_1_naming_the_nearest_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "solve", "6", "21", "--kernel-size", "3", "--stride", "3")
    assert (code, out) == (1, "")
    assert "Nearest reachable sizes: 20 below, none above" in err and "Traceback" not in err


@pytest.mark.parametrize(("argv", "message"), [
    (["solve", "12", "x"], "not an int or comma-separated ints"),
    (["solve", "12", "24", "--conv", "--transpose"], "not allowed with argument"),
    (["solve", "12", "24", "--stride", "0"], "stride must be >= 1"),
    (["solve", "12,7", "24,14,3"], "different lengths"),
    (["solve", "12", "-3"], "OUT must be >= 1"),
    (["solve", "12", "24", "--kernel-size", "0"], "--kernel-size must be >= 1, got 0"),
    (["solve", "12,12", "24,24", "--dilation", "1,1,1"], "different lengths"),
    (["plan", "4", "32", "--layers", "0"], "--layers must be >= 1, got 0"),
    (["plan", "4", "32", "--layers", "2", "--max-stride", "0"], "--max-stride must be >= 1, got 0"),
    (["plan", "4,4", "32,32", "--layers", "2", "--kernel-size", "4,4,4"], "different lengths"),
    (["taps", "6", "--kernel-size", "3", "--at", "-1"], "--at must be >= 0, got -1"),
    (["plan", "16", "100", "--layers", "2", "--kernel-size", "4", "--max-kernel-size", "5"],
     "give --kernel-size or --max-kernel-size, not both"),
    (["plan", "4", "64"], "--layers"),
    (["frobnicate"], "invalid choice"),
    ([], "required"),
])
def test_usage_errors_exit_2_without_a_traceback(capsys: pytest.CaptureFixture[str], argv: list[str],
                                                 message: str) -> None:
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    assert message in err and "Traceback" not in err
    assert not re.search(r"\b(num_layers|max_stride|output_index|kernel_size|input_size|output_size)\b", err), err


def test_help_exits_0_and_explains_every_positional_argument(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("solve", "plan", "explain", "taps"):
        code, out, _ = run(capsys, command, "--help")
        positionals = out.split("positional arguments:\n")[1].split("\n\n")[0].splitlines()
        assert code == 0 and positionals
        assert all(len(line.split(maxsplit=1)) == 2 for line in positionals), (command, positionals)  # name, help


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert (code, out) == (0, f"autoshape {autoshape.__version__}\n")


# --- plan ---------------------------------------------------------------------------------------

def test_plan_json_steps_chain_and_each_step_is_exact_in_torch(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "plan", "4", "64", "--layers", "4", "--json")
    assert (code, err) == (0, "")
    plan = json.loads(out)
    assert len(plan["steps"]) == 4 and plan["transposed"] is True
    size = [4]
    for step in plan["steps"]:
        assert step["input_size"] == size
        size = _torch_output_size(step, size)
        assert step["output_size"] == size
    assert size == [64]


def test_plan_text_and_downsampling(capsys: pytest.CaptureFixture[str]) -> None:
    code, text, _ = run(capsys, "plan", "64,32", "4,2", "--layers", "2", "--max-stride", "4")
    assert code == 0 and text.splitlines()[0] == "2 convolutions: 64×32 → 4×2"
    code, out, _ = run(capsys, "plan", "64,32", "4,2", "--layers", "2", "--max-stride", "4", "--conv", "--json")
    size = [64, 32]
    for step in json.loads(out)["steps"]:
        assert step["transposed"] is False
        size = _torch_output_size(step, size)
    assert code == 0 and size == [4, 2]
    assert [line.split()[1:3] for line in text.splitlines()[2:]] == [
        ["64×32", "16×8"], ["16×8", "4×2"]]  # the table shows the same steps


def test_plan_fixed_kernel(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "plan", "1", "28", "--layers", "3", "--kernel-size", "4", "--json")
    size = [1]
    for step in json.loads(out)["steps"]:
        assert step["kernel_size"] == [4]
        size = _torch_output_size(step, size)
    assert code == 0 and size == [28]


def test_impossible_plan_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "plan", "4", "1000", "--layers", "1", "--kernel-size", "4")
    assert (code, out) == (1, "")
    assert "The largest size they reach is 11" in err and "Traceback" not in err


# --- explain ------------------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["autoshape_cli_models:model", "autoshape_cli_models:autoencoder"])
@pytest.mark.usefixtures("models")
def test_explain_an_instance_or_a_factory(capsys: pytest.CaptureFixture[str], target: str) -> None:
    code, out, err = run(capsys, "explain", target, "--input-shape", "1,1,24,24")
    assert (code, err) == (0, "")
    assert "H, W: (12-1)·2 - 2·1 + 1·(3-1) + 0 + 1 = 23" in out
    assert "output_padding=1 would give 24×24" in out


@pytest.mark.usefixtures("models")
def test_explain_a_class_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "explain", "autoshape_cli_models:Generator", "--input-shape", "2,4,1,1", "--json")
    data = json.loads(out)
    assert code == 0
    assert [row["output_shape"] for row in data["rows"]] == [[2, 2, 4, 4], [2, 1, 8, 8]]
    assert data["notes"] == []


@pytest.mark.usefixtures("models")
def test_explain_fallback_warning_goes_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "explain", "autoshape_cli_models:DataDependent", "--input-shape", "1,1,9,9")
    assert code == 0 and "1×1×7×7" in out
    assert err.startswith("autoshape explain: warning: DataDependent cannot run on meta tensors")


@pytest.mark.usefixtures("models")
def test_a_failing_model_prints_the_rows_the_failure_and_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    exit_code, out, err = run(capsys, "explain", "autoshape_cli_models:Mismatch", "--input-shape", "1,1,4,4")
    assert exit_code == 1 and "Traceback" not in out + err
    assert out.splitlines()[1].split()[:2] == ["0", "Conv2d"]  # the rows up to the failure come first
    assert "failed: '2' Linear on 1×8: " in out
    assert "fix: build '2' Linear with in_features=8 (= 2·2·2, the size of 1×2×2×2 flattened): nn.Linear(8, 2)" in out


@pytest.mark.parametrize("form", ["file", "dotted-file", "absolute", "dotdot"])
@pytest.mark.usefixtures("models")
def test_explain_a_model_by_its_file_path(capsys: pytest.CaptureFixture[str], models_dir: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch, form: str) -> None:
    """A path works from any directory; the file's own imports of its neighbours work as when it is run."""
    folder = tmp_path / "project" / "models"
    folder.mkdir(parents=True)
    (folder / "blocks.py").write_text("from torch import nn\n\ndef down():\n    return nn.Conv2d(1, 8, 3, 2, 1)\n")
    (folder / "net.py").write_text("from torch import nn\nfrom blocks import down\n\n"
                                   "model = nn.Sequential(down(), nn.ConvTranspose2d(8, 1, 3, 2, 1))\n")
    monkeypatch.chdir(tmp_path / "project" if form != "absolute" else tmp_path)
    target = {"file": "models/net.py:model", "dotted-file": "./models/net.py:model",
              "absolute": f"{folder / 'net.py'}:model", "dotdot": "models/../models/net.py:model"}[form]
    code, out, err = run(capsys, "explain", target, "--input-shape", "1,1,24,24")
    sys.modules.pop("net", None)
    sys.modules.pop("blocks", None)
    assert (code, err) == (0, "")
    assert "output_padding=1 would give 24×24" in out


@pytest.mark.usefixtures("models")
def test_a_file_named_like_a_module_does_not_shadow_it(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "json.py").write_text("from torch import nn\nmodel = nn.Conv2d(1, 1, 3)\n")
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "explain", "json.py:model", "--input-shape", "1,1,8,8", "--json")
    assert code == 0 and json.loads(out)["rows"][0]["output_shape"] == [1, 1, 6, 6]
    assert sys.modules["json"] is json
    sys.modules.pop("autoshape_explain_json", None)


@pytest.mark.usefixtures("models")
def test_import_fix_works_when_followed(capsys: pytest.CaptureFixture[str], models_dir: Path,
                                        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "explain", "autoshape_cli_models:model", "--input-shape", "1,1,24,24")
    assert code == 2 and "Fix: run from the directory that holds it, or give its path" in err
    code, out, _ = run(capsys, "explain", f"{models_dir}/autoshape_cli_models.py:model", "--input-shape", "1,1,24,24")
    assert code == 0 and "1×1×23×23" in out
    monkeypatch.chdir(models_dir)
    code, out, _ = run(capsys, "explain", "autoshape_cli_models:model", "--input-shape", "1,1,24,24")
    assert code == 0 and "1×1×23×23" in out


@pytest.mark.usefixtures("models")
def test_factory_fix_works_when_followed(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "explain", "autoshape_cli_models:NeedsArguments", "--input-shape", "1,1,4,4")
    assert code == 2 and "Fix: point to an instance, or to a factory that takes no arguments" in err
    for target in ("autoshape_cli_models:model", "autoshape_cli_models:autoencoder"):  # an instance, a factory
        assert run(capsys, "explain", target, "--input-shape", "1,1,4,4")[0] == 0


@pytest.mark.parametrize(("target", "shape", "code", "message"), [
    ("autoshape_cli_models:NeedsArguments", "1,1,4,4", 2, "calling autoshape_cli_models:NeedsArguments() failed"),
    ("autoshape_cli_models:not_a_model", "1,1,4,4", 2, "is an int, not an nn.Module"),
    ("autoshape_cli_models:missing", "1,1,4,4", 2, "has no attribute 'missing'"),
    ("no_such_module_here:model", "1,1,4,4", 2, "cannot import 'no_such_module_here'"),
    ("autoshape_cli_models", "1,1,4,4", 2, "expected MODULE:ATTR or path/to/file.py:ATTR"),
    ("no_such_file.py:model", "1,1,4,4", 2, "no file 'no_such_file.py'"),
    ("autoshape_cli_models:model", "1,1,0,4", 2, "--input-shape must be >= 1"),
])
@pytest.mark.usefixtures("models")
def test_explain_mistakes_exit_with_a_message(capsys: pytest.CaptureFixture[str], target: str, shape: str,
                                              code: int, message: str) -> None:
    exit_code, out, err = run(capsys, "explain", target, "--input-shape", shape)
    assert (exit_code, out) == (code, "")
    assert message in err and "Traceback" not in err


# --- fix ----------------------------------------------------------------------------------------

@pytest.mark.usefixtures("models")
def test_fix_prints_each_change_and_the_patched_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "fix", "autoshape_cli_models:model", "--input-shape", "1,1,24,24",
                         "--output-shape", "1,1,24,24")
    assert (code, err) == (0, "")
    assert out == ("'2' ConvTranspose2d(8, 1, kernel_size=3, stride=2, padding=1) → output_padding=1\n"
                   "output: 1×1×24×24 for an input of 1×1×24×24 (checked at this size; other sizes may need "
                   "other values)\n")
    layer = nn.ConvTranspose2d(8, 1, kernel_size=3, stride=2, padding=1, output_padding=1)
    assert layer(torch.zeros(1, 8, 12, 12)).shape[2:] == (24, 24)  # the printed change, in torch


@pytest.mark.usefixtures("models")
def test_fix_makes_a_crash_run_and_says_when_nothing_is_needed(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "fix", "autoshape_cli_models:UNetLike", "--input-shape", "1,1,25,25")
    assert code == 0 and out.startswith("'up' ConvTranspose2d(4, 1, kernel_size=2, stride=2) → padding=1, "
                                        "output_padding=1\noutput: 1×2×25×25")
    code, out, _ = run(capsys, "fix", "autoshape_cli_models:model", "--input-shape", "1,1,24,24")
    assert (code, out) == (0, "no change needed: the model runs and gives 1×1×23×23\n"
                              "to give 24×24, pass --output-shape 1,1,24,24\n")  # in the command line's terms
    flags = out.splitlines()[-1].split(" pass ")[1].split()  # followed literally
    code, out, _ = run(capsys, "fix", "autoshape_cli_models:model", "--input-shape", "1,1,24,24", *flags)
    assert code == 0 and "\noutput: 1×1×24×24 for an input of 1×1×24×24" in out


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["autoshape_cli_models:upsampled", "--input-shape", "1,1,12,12", "--output-shape", "1,1,25,25"], 1,
     "autoshape fix: no fix for Sequential on 1×1×12×12 with at most 3 changed layers"),
    (["autoshape_cli_models:model", "--input-shape", "1,1,24,24", "--output-shape", "1,2,24,24"], 2,
     "asks for 2 channels, but the model gives 1, and fix changes spatial sizes only. Fix: --output-shape 1,1,24,24, "
     "and change the out_channels of the last layer by hand."),
    (["autoshape_cli_models:model", "--input-shape", "1,1,24,24", "--output-shape", "1,1,0,24"], 2,
     "--output-shape must be >= 1"),
    (["autoshape_cli_models:model", "--input-shape", "2,1,24,24", "--output-shape", "1,24,24"], 2,
     "error: --output-shape 1,24,24 has 3 dimensions, but the model's output has 4 (2×1×23×23). Fix: pass the full "
     "output shape, batch first, e.g. --output-shape 2,1,24,24."),
    (["autoshape_cli_models:missing", "--input-shape", "1,1,24,24"], 2, "has no attribute 'missing'. Fix: point to "
     "autoshape_cli_models:DataDependent or autoshape_cli_models:Generator or autoshape_cli_models:Mismatch"),
    (["autoshape_cli_models:not_a_model", "--input-shape", "1,1,24,24"], 2, "is an int, not an nn.Module, a Module "
     "class or a factory. Fix: point to autoshape_cli_models:DataDependent or"),
    (["autoshape_cli_models:model"], 2, "--input-shape"),
])
@pytest.mark.usefixtures("models")
def test_fix_exit_codes(capsys: pytest.CaptureFixture[str], argv: list[str], code: int, message: str) -> None:
    exit_code, out, err = run(capsys, "fix", *argv)
    assert (exit_code, out) == (code, "")
    assert message in err and "Traceback" not in err
    for named in re.findall(r"point to (\S+?) or", err)[:1]:  # a model the fix names, followed
        assert run(capsys, "explain", named, *argv[1:])[0] == 0


# --- taps ---------------------------------------------------------------------------------------

def test_taps_lists_the_classic_example_and_the_map_is_torchs(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "taps", "4,4", "--kernel-size", "4", "--stride", "2", "--padding", "1",
                       "--at", "0,1")
    assert code == 0
    assert "output[0, 1] = in[0, 1]·w[1, 0] + in[0, 0]·w[1, 2]" in out
    ones = nn.functional.conv_transpose2d(torch.ones(1, 1, 4, 4), torch.ones(1, 1, 4, 4), stride=2, padding=1)
    grid = [[int(c) for c in line.split()] for line in out.split("\n\n")[0].splitlines()[1:]]
    assert grid == ones[0, 0].int().tolist()
    assert out.splitlines()[0] == "taps per output position, 8×8 output (1 to 4):"


def test_taps_json_and_png(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "taps", "6", "--kernel-size", "3", "--stride", "2", "--output-padding", "1",
                       "--at", "3", "--json")
    data = json.loads(out)
    ones = nn.functional.conv_transpose1d(torch.ones(1, 1, 6), torch.ones(1, 1, 3), stride=2, output_padding=1)
    assert code == 0 and data["counts"] == ones[0, 0].int().tolist() and data["taps"] == [[1, 1]]
    pytest.importorskip("matplotlib")
    png = tmp_path / "map.png"
    code, out, _ = run(capsys, "taps", "4,4", "--kernel-size", "3", "--stride", "2", "--png", str(png))
    assert code == 0 and png.read_bytes()[:4] == b"\x89PNG" and f"wrote {png}" in out


def test_taps_png_without_matplotlib_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    code, out, err = run(capsys, "taps", "4", "--kernel-size", "3", "--png", str(tmp_path / "x.png"))
    assert (code, out) == (2, "") and "pip install matplotlib" in err


@pytest.mark.parametrize(("argv", "last"), [
    (["6", "--kernel-size", "3", "--stride", "2", "--padding", "1", "--at", "11"], 10),
    (["6", "--kernel-size", "4", "--stride", "2", "--padding", "1", "--at", "12", "--json"], 11),
])
def test_taps_at_checks_the_output_padding_given(capsys: pytest.CaptureFixture[str], argv: list[str],
                                                  last: int) -> None:
    kernel = int(argv[argv.index("--kernel-size") + 1])
    out = nn.functional.conv_transpose1d(torch.ones(1, 1, 6), torch.ones(1, 1, kernel), stride=2, padding=1)
    assert out.shape[-1] - 1 == last  # torch's last output index, with the default --output-padding 0
    code, printed, err = run(capsys, "taps", *argv)
    assert (code, printed) == (2, "")  # used to list the taps of an output torch does not have
    assert f"indices run from 0 to {last} " in err and f"Fix: use --at {last}, or --output-padding 1 " in err
    code, printed, err = run(capsys, "taps", *argv, "--output-padding", "1")  # the fix, as written
    grown = nn.functional.conv_transpose1d(torch.ones(1, 1, 6), torch.ones(1, 1, kernel), stride=2, padding=1,
                                           output_padding=1)
    assert (code, err) == (0, "") and grown.shape[-1] == last + 2
    taps = json.loads(printed)["taps"] if "--json" in argv else printed.split(" = ")[1].split(" + ")
    assert len(taps) == int(grown[0, 0, last + 1])


def test_taps_png_to_a_missing_folder_is_a_usage_error_with_fixes_that_work(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib")
    path = tmp_path / "no" / "such" / "map.png"
    argv = ["taps", "4", "--kernel-size", "3", "--stride", "2", "--png", str(path)]
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "") and "Traceback" not in err and "Errno" not in err
    assert err.startswith(f"autoshape taps: error: cannot write --png '{path}': there is no folder '{path.parent}'. ")
    fixes = err.split("Fix: ", 1)[1]
    made = re.search(r"\(mkdir -p (\S+)\)", fixes)
    named = re.search(r"e\.g\. --png (\S+)\.$", fixes.strip())
    assert made is not None and named is not None
    monkeypatch.chdir(tmp_path)
    assert run(capsys, *argv[:-1], named.group(1))[0] == 0 and (tmp_path / named.group(1)).is_file()
    subprocess.run(["mkdir", "-p", made.group(1)], check=True)
    assert run(capsys, *argv)[0] == 0 and path.read_bytes()[:4] == b"\x89PNG"
    code, _, err = run(capsys, *argv[:-1], str(tmp_path))
    assert code == 2 and "it is a folder" in err


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["taps", "6", "--kernel-size", "3", "--stride", "2", "--at", "20"], 2, "from 0 to 12"),
    (["taps", "6", "--kernel-size", "3", "--stride", "2", "--output-padding", "2"], 2, "--output-padding 2 must be"),
    (["taps", "4", "--kernel-size", "4", "--stride", "2", "--at", "0,1"], 2, "--at 0,1 has 2 index(es), but this "
     "layer has 1 dimension(s)"),
    (["taps", "4,4", "--kernel-size", "4", "--stride", "2", "--at", "0"], 2, "has 1 index(es), but this layer has 2"),
    (["taps", "6", "--stride", "2"], 2, "--kernel-size"),
    (["taps", "1", "--kernel-size", "1", "--padding", "1"], 1, "must be >= 1"),
])
def test_taps_errors(capsys: pytest.CaptureFixture[str], argv: list[str], code: int, message: str) -> None:
    exit_code, out, err = run(capsys, *argv)
    assert (exit_code, out) == (code, "") and message in err and "Traceback" not in err


# --- every fix of every error, followed as it is written ------------------------------------------------------

REFUSED = [
    ["solve", "6", "21", "--kernel-size", "3", "--stride", "3"],
    ["solve", "12,12", "25,25", "--kernel-size", "3", "--stride", "2", "--padding", "1"],
    ["solve", "8,6", "16,15", "--kernel-size", "4", "--stride", "2", "--padding", "1"],
    ["solve", "10", "40", "--conv", "--kernel-size", "3", "--padding", "1"],
    ["solve", "6", "7", "--transpose", "--kernel-size", "3", "--stride", "1"],
    ["plan", "4", "1000", "--layers", "1", "--kernel-size", "4"],
    ["plan", "1,1", "64,64", "--layers", "4", "--kernel-size", "4"],
    ["plan", "64", "1", "--layers", "4", "--kernel-size", "4"],
    ["plan", "4", "7", "--layers", "2", "--kernel-size", "3", "--max-stride", "1"],
    ["plan", "28", "1", "--layers", "3", "--transpose"],
    ["plan", "16", "16384", "--layers", "5"],
    ["plan", "1000", "16", "--layers", "5"],
    ["plan", "16", "1000", "--layers", "5", "--kernel-size", "4"],
    ["taps", "4", "--kernel-size", "4", "--stride", "2", "--padding", "9"],
    ["taps", "6", "--kernel-size", "3", "--stride", "2", "--at", "20"],
    ["taps", "6", "--kernel-size", "3", "--stride", "2", "--padding", "1", "--at", "11"],
    ["taps", "6", "--kernel-size", "4", "--stride", "2", "--padding", "1", "--at", "12", "--json"],
    ["taps", "4", "--kernel-size", "4", "--stride", "2", "--at", "0,1"],
    ["taps", "4,4", "--kernel-size", "4", "--stride", "2", "--at", "0"],
    ["taps", "6", "--kernel-size", "3", "--stride", "2", "--output-padding", "2"],
]


def with_flag(argv: list[str], flag: str, value: str | None) -> list[str]:
    """``argv`` without ``flag`` (and its value), then with ``flag value`` if a value is given."""
    out, skip = [], False
    for n, arg in enumerate(argv):
        if skip:
            skip = False
        elif arg == flag:
            skip = n + 1 < len(argv) and not argv[n + 1].startswith("--")
        else:
            out.append(arg)
    return out + ([flag, value] if value is not None else [])


def followed(argv: list[str], fix: str) -> list[list[str]]:
    """The command lines a fix asks for: OUT or IN replaced, a flag set, flags dropped (and one set with them),
    or the direction swapped."""
    def clean(value: str) -> str:
        return value.rstrip(".,)")

    lines = []
    for item in fix.split(", or "):
        if sizes := re.findall(r"\bOUT (\S+)", item):
            lines += [[*argv[:2], clean(size), *argv[3:]] for size in sizes]
        elif size := re.search(r"\bIN (\S+)", item):
            lines.append([*argv[:1], clean(size.group(1)), *argv[2:]])
        elif dropped := re.search(r"drop ((?:--[\w-]+/?)+)", item):
            line = argv
            for flag in dropped.group(1).split("/"):
                line = with_flag(line, flag, None)
            if added := re.search(r" with (--[\w-]+) (\S+)", item):
                line = with_flag(line, added.group(1), clean(added.group(2)))
            lines.append(line)
        elif direction := re.search(r"use (--conv|--transpose) for the other direction", item):
            lines.append([*with_flag(with_flag(argv, "--conv", None), "--transpose", None), direction.group(1)])
        elif flag := re.search(r"(--[\w-]+) (\S+)", item):
            lines.append(with_flag(argv, flag.group(1), clean(flag.group(2))))
    return lines


@pytest.mark.parametrize("argv", REFUSED, ids=lambda argv: " ".join(argv))
def test_every_fix_works_when_followed_as_written(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, _, err = run(capsys, *argv)
    assert code in (1, 2) and "Fix: " in err and "Traceback" not in err
    lines = followed(argv, err.split("Fix: ", 1)[1].strip())
    assert lines, err
    for line in lines:
        code, _, err = run(capsys, *line)
        assert (code, err) == (0, ""), (line, err)


# --- the real entry points, as subprocesses -----------------------------------------------------

def _console_script() -> Path:
    script = Path(sysconfig.get_path("scripts")) / ("autoshape.exe" if sys.platform == "win32" else "autoshape")
    if not script.exists():
        pytest.skip("the autoshape console script is not installed (pip install -e .)")
    return script


@pytest.fixture(scope="module")
def processes(models_dir: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every subcommand and every exit code, through both entry points, run in parallel."""
    module = [sys.executable, "-m", "autoshape"]
    commands = {
        "solve": [*module, "solve", "12", "24"],
        "explain": [str(_console_script()), "explain", "autoshape_cli_models:model", "--input-shape", "1,1,24,24"],
        "plan": [*module, "plan", "4", "1000", "--layers", "1", "--kernel-size", "4"],
        "fix": [*module, "fix", "autoshape_cli_models:UNetLike", "--input-shape", "1,1,24,24", "--output-shape",
                "1,2,23,23"],
        "taps": [*module, "taps", "6", "--kernel-size", "3", "--at", "99"],
    }
    started = {name: subprocess.Popen(command, cwd=models_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True) for name, command in commands.items()}
    results = {}
    for name, process in started.items():
        out, err = process.communicate(timeout=120)
        results[name] = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    return results


@pytest.mark.parametrize(("name", "code", "expected"), [
    ("solve", 0, re.compile(r"^ConvTranspose 12 → 24: kernel_size=4, stride=2, padding=1$", re.M)),
    ("explain", 0, re.compile(r"output_padding=1 would give 24×24")),
    ("plan", 1, re.compile(r"^autoshape plan: .*The largest size they reach is 11")),
    ("fix", 1, re.compile(r"^autoshape fix: no fix for UNetLike on 1×1×24×24 .* it gives 1×2×24×24, not 1×2×23×23")),
    ("taps", 2, re.compile(r"^autoshape taps: error: --at 99 is outside the output")),
])
def test_entry_points_as_subprocesses(processes: dict[str, subprocess.CompletedProcess[str]], name: str,
                                      code: int, expected: re.Pattern[str]) -> None:
    result = processes[name]
    assert result.returncode == code, result.stderr
    assert expected.search(result.stdout if code == 0 else result.stderr)
    assert "Traceback" not in result.stderr
