"""The compatibility matrix: every public autoshape module through torch's compilers, exporters and wrappers.

``SUBJECTS`` is the table of module factories; ``CHECKS`` the table of checks. A check returns
a short note (empty when there is nothing to add) or raises ``NotApplicable`` (the feature does
not apply, with why) or ``Skipped`` (an optional dependency is missing). Any other exception is
a failure. tests/test_compat.py runs every pair; RESULTS.md renders the same pairs as a table.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import pickle
import re
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn

import autoshape
from tests.architectures import unet_encoder

from .report import Settings, table
from .twins import (
    HandWrittenPyramidUNet,
    HandWrittenUNet,
    PlainAutoencoder,
    copy_weights,
    plain_conv,
    plain_sequential,
    reinitialised,
    small_autoencoder_parts,
    small_pyramid,
)


class NotApplicable(Exception):
    """The feature does not apply to this module; the message says why."""


class Skipped(Exception):
    """An optional dependency is missing here; the message names it."""


@dataclass(frozen=True)
class Subject:
    """A public autoshape module: how to build it, its input shape, and its plain-torch twin (own weights)."""

    name: str
    build: Callable[[], nn.Module]
    input_shape: tuple[int, ...]
    plain: Callable[[nn.Module], nn.Module]

    def example(self) -> Tensor:
        """A fixed random input (seeded, so every check sees the same numbers)."""
        return torch.randn(self.input_shape, generator=torch.Generator().manual_seed(0))

    def module(self) -> nn.Module:
        """A freshly built, seeded module in eval mode (batch statistics would differ between runs)."""
        torch.manual_seed(0)
        return self.build().eval()


def _target(cls: type[nn.Module], channels: tuple[int, int], sizes: tuple[tuple[int, ...], tuple[int, ...]]) -> Subject:
    return Subject(cls.__name__, lambda: cls(*channels, input_size=sizes[0], output_size=sizes[1]),
                   (2, channels[0], *sizes[0]), plain_conv)


SUBJECTS: list[Subject] = [
    _target(autoshape.TargetConv1d, (3, 4), ((17,), (9,))),
    _target(autoshape.TargetConv2d, (3, 4), ((9, 7), (5, 4))),
    _target(autoshape.TargetConv3d, (2, 4), ((7, 6, 5), (4, 3, 3))),
    _target(autoshape.TargetConvTranspose1d, (4, 3), ((9,), (17,))),
    _target(autoshape.TargetConvTranspose2d, (4, 3), ((5, 4), (9, 7))),
    _target(autoshape.TargetConvTranspose3d, (4, 2), ((4, 3, 3), (7, 6, 5))),
    Subject("UpsamplingStack", lambda: autoshape.UpsamplingStack(8, (16, 8), 1, input_size=1, output_size=28),
            (2, 8, 1, 1), plain_sequential),
    Subject("DownsamplingStack", lambda: autoshape.DownsamplingStack(1, (8, 16), 4, input_size=28, output_size=1),
            (2, 1, 28, 28), plain_sequential),
    Subject("MirrorDecoder", lambda: autoshape.MirrorDecoder(small_autoencoder_parts()[0], (1, 29, 29)),
            (2, 16, 8, 8), plain_sequential),
    Subject("MirrorAutoencoder", lambda: autoshape.MirrorAutoencoder(small_autoencoder_parts()[0], (1, 29, 29)),
            (2, 1, 29, 29), lambda m: PlainAutoencoder(reinitialised(m.encoder), plain_sequential(m.decoder))),
    Subject("MirrorUNet", lambda: autoshape.MirrorUNet(unet_encoder(1, (4, 8, 16)), (1, 37, 29), out_channels=2),
            (2, 1, 37, 29), lambda m: HandWrittenUNet(1, (4, 8, 16), 2, (0, 1), nn.ConvTranspose2d)),
    Subject("MirrorUNet (pyramid)", lambda: autoshape.MirrorUNet(small_pyramid(), (3, 37, 29), out_channels=2),
            (2, 3, 37, 29), lambda m: HandWrittenPyramidUNet(reinitialised(m.encoder), (4, 4, 8), 2)),
]


def _same(module: nn.Module, reference: Tensor, x: Tensor, **tolerance: float) -> None:
    torch.testing.assert_close(module(x), reference, **tolerance)


def check_compile(subject: Subject) -> str:
    """``torch.compile(fullgraph=True)`` with the eager backend: any graph break is an error."""
    module, x = subject.module(), subject.example()
    torch._dynamo.reset()
    _same(torch.compile(module, fullgraph=True, backend="eager"), module(x), x)
    return ""


def check_export(subject: Subject) -> str:
    """``torch.export.export`` and running the exported program."""
    module, x = subject.module(), subject.example()
    _same(torch.export.export(module, (x,)).module(), module(x), x)
    return ""


def _first_line(error: Exception) -> str:
    """The error's first line, without TorchScript's trailing source pointer or object addresses."""
    line = str(error).strip().splitlines()[0].removesuffix(" at").rstrip(" :")
    return re.sub(r" \(of Python compilation unit at: 0x[0-9a-f]+\)", "", line)


def check_jit(subject: Subject) -> str:
    """``torch.jit.script``, or ``torch.jit.trace`` when script cannot compile the module (the note says why)."""
    module, x = subject.module(), subject.example()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's deprecation and tracer warnings
        try:
            _same(torch.jit.script(module), module(x), x)
            return "script"
        except Exception as error:
            why = _first_line(error)
        _same(torch.jit.trace(module, x), module(x), x)
    return f"through `torch.jit.trace`; `torch.jit.script` fails: {why}"


def check_onnx(subject: Subject) -> str:
    """``torch.onnx.export`` (the torch.export-based exporter), run by onnxruntime when it is installed."""
    missing = [name for name in ("onnx", "onnxscript") if importlib.util.find_spec(name) is None]
    if missing:
        raise Skipped(f"{' and '.join(missing)} not installed (the optional ONNX exporter needs them)")
    module, x = subject.module(), subject.example()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module, (x,), dynamo=True, verbose=False)
    if program is None:
        raise AssertionError("torch.onnx.export returned no program")
    if importlib.util.find_spec("onnxruntime") is None:
        program.model_proto.SerializeToString()
        return "exported; not run (onnxruntime is not installed)"
    torch.testing.assert_close(program(x)[0], module(x), atol=1e-4, rtol=1e-4)
    return ""


def _load_gives_same_output(source: nn.Module, target: nn.Module, x: Tensor, by_name: bool) -> None:
    if torch.allclose(source(x), target(x)):
        raise AssertionError("the two modules agree before loading: the round trip would prove nothing")
    if by_name:
        target.load_state_dict(source.state_dict(), strict=True)
    else:
        copy_weights(source, target)
    _same(target, source(x), x)


def check_state_dict(subject: Subject) -> str:
    """state_dict loads strictly into the plain-torch twin, and a plain checkpoint into a fresh module.

    Where the twin's keys cannot be the module's (a hand-written U-Net names its layers its own
    way), the weights go layer by layer in order instead, and the note says so.
    """
    module, x = subject.module(), subject.example()
    plain = subject.plain(module).eval()
    by_name = plain.state_dict().keys() == module.state_dict().keys()
    _load_gives_same_output(module, plain, x, by_name)
    torch.manual_seed(1)
    fresh = subject.build().eval()
    torch.nn.init.normal_(next(plain.parameters()))  # the plain side now holds weights of its own
    _load_gives_same_output(plain, fresh, x, by_name)
    return "" if by_name else (
        "keys differ from a hand-written U-Net's (the decoder is one `ModuleList`, `decoder.<i>.*`, with "
        "parameter-free skip-fusion entries): weights transfer layer by layer in order, both ways")


def check_autocast(subject: Subject) -> str:
    """CPU bf16 autocast: the output is bf16, of the fp32 shape, and close to the fp32 output."""
    module, x = subject.module(), subject.example()
    reference = module(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = module(x)
    if out.dtype != torch.bfloat16:
        raise AssertionError(f"autocast output is {out.dtype}, expected torch.bfloat16")
    torch.testing.assert_close(out.float(), reference, atol=0.05, rtol=0.05)
    return ""


_MEMORY_FORMATS = {4: torch.channels_last, 5: torch.channels_last_3d}


def check_channels_last(subject: Subject) -> str:
    """channels_last (4-d) or channels_last_3d (5-d) weights and input give the same output."""
    module, x = subject.module(), subject.example()
    memory_format = _MEMORY_FORMATS.get(x.dim())
    if memory_format is None:
        raise NotApplicable(f"torch defines channels_last only for 4-d and 5-d tensors; this input is {x.dim()}-d")
    reference = module(x)
    _same(module.to(memory_format=memory_format), reference, x.to(memory_format=memory_format),
          atol=1e-5, rtol=1e-4)
    return ""


@contextmanager
def single_process_group() -> Iterator[None]:
    """A one-process gloo group on a fresh file store (reuses one that is already up)."""
    if dist.is_initialized():
        yield
        return
    with tempfile.TemporaryDirectory() as folder:
        dist.init_process_group("gloo", init_method=f"file://{os.path.join(folder, 'store')}", rank=0,
                                world_size=1)
        try:
            yield
        finally:
            dist.destroy_process_group()


def check_ddp(subject: Subject) -> str:
    """DistributedDataParallel (one gloo process): same output and same gradients as the bare module."""
    if not dist.is_available():
        raise Skipped("torch.distributed is not available in this build")
    module, x = subject.module(), subject.example()
    bare = copy.deepcopy(module)
    with single_process_group():
        wrapped = nn.parallel.DistributedDataParallel(module)
        out = wrapped(x)
        torch.testing.assert_close(out, bare(x))
        out.sum().backward()
    bare(x).sum().backward()
    for (name, p), q in zip(module.named_parameters(), bare.parameters()):
        torch.testing.assert_close(p.grad, q.grad, msg=lambda m, name=name: f"gradient of {name}: {m}")
    return ""


def check_deepcopy(subject: Subject) -> str:
    """copy.deepcopy gives an equal, independent module."""
    module, x = subject.module(), subject.example()
    twin = copy.deepcopy(module)
    _same(twin, module(x), x)
    if any(p is q for p, q in zip(twin.parameters(), module.parameters())):
        raise AssertionError("deepcopy shares parameters")
    return ""


def check_pickle(subject: Subject) -> str:
    """pickle round trip of the whole module (what torch.save does) gives the same outputs."""
    module, x = subject.module(), subject.example()
    _same(pickle.loads(pickle.dumps(module)), module(x), x)
    return ""


CHECKS: dict[str, Callable[[Subject], str]] = {
    "compile (fullgraph)": check_compile,
    "export": check_export,
    "TorchScript": check_jit,
    "ONNX": check_onnx,
    "state_dict ⇄ plain": check_state_dict,
    "bf16 autocast": check_autocast,
    "channels_last": check_channels_last,
    "DDP": check_ddp,
    "deepcopy": check_deepcopy,
    "pickle": check_pickle,
}


def outcome(subject: Subject, check: Callable[[Subject], str]) -> tuple[str, str]:
    """(mark, note) for the table: ✓, n/a, skipped, not built yet, or ✗ with the error."""
    try:
        note = check(subject)
    except NotApplicable as why:
        return "n/a", str(why)
    except Skipped as why:
        return "skipped", str(why)
    except NotImplementedError as error:
        return "not built yet", str(error)
    except Exception as error:
        return "✗", f"{type(error).__name__}: {_first_line(error)}"
    return "✓", note


def matrix_markdown(subjects: list[Subject]) -> str:
    """The matrix as a markdown table, with every note as a numbered footnote."""
    notes: list[str] = []
    rows = []
    for subject in subjects:
        row = [f"`{subject.name}`"]
        for check in CHECKS.values():
            mark, note = outcome(subject, check)
            if note:
                if note not in notes:
                    notes.append(note)
                mark += f" [{notes.index(note) + 1}]"
            row.append(mark)
        rows.append(row)
    footnotes = "\n".join(f"{i}. {note}" for i, note in enumerate(notes, 1))
    return table(("module", *CHECKS), rows) + ("\n\n" + footnotes if footnotes else "")


def section(settings: Settings) -> str:
    """The compatibility section of RESULTS.md (CPU; the quick run covers one module)."""
    subjects = SUBJECTS[1:2] if settings.quick else SUBJECTS
    return "\n\n".join([
        "## Compatibility matrix",
        "Checked on CPU by tests/test_compat.py (CI) and rendered here by the same code: every check "
        "compares the result with the module's eager output. compile uses `backend=\"eager\"` with "
        "`fullgraph=True` (a graph break fails); DDP is a one-process gloo group; bf16 autocast is CPU "
        "autocast. ✓ works, n/a does not apply (why given), skipped: optional dependency missing here.",
        matrix_markdown(subjects),
        "Why `torch.jit.script` fails: TorchScript compiles Python source with its own restricted type "
        "system. autoshape's modules are typed with modern annotations (`tuple[int, ...] | None`, "
        "`Sequence`, dataclasses such as `Plan`) and subclass torch layers whose `forward` calls "
        "`super().forward`; TorchScript supports neither. torch itself now deprecates `torch.jit.script` "
        "(\"Please switch to `torch.compile` or `torch.export`\"), both of which work for every module; "
        "`torch.jit.trace` works too.",
    ])
