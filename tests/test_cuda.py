"""Every public module as an ordinary CUDA module: parity with the CPU, autocast, channels_last, inductor.

Tests marked ``cuda`` run where ``torch.cuda.is_available()``; elsewhere tests/conftest.py skips
them with one reason. They are data: the subjects are benchmarks/compat.py's ``SUBJECTS`` (a
module added there is checked here too) and ``BACKBONES`` below; each ``check_*`` function takes
the device, so the tests at the end run the very same checks on the CPU in CI and they cannot
rot between GPU sessions. benchmarks/gpu_check.sh runs this file on a GPU.

A check trains one step (forward, then backward of a fixed output gradient) and compares the
output, every gradient and every buffer with a reference step. Tolerances are relative to the
reference tensor's largest magnitude (``assert_near``): a real fault, such as a wrong padding or a
misplaced weight, is off by the order of the values themselves. fp32 comparisons
run with TF32 off, so CUDA and CPU compute in the same precision.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from autoshape import MirrorAutoencoder, MirrorUNet
from benchmarks.compat import SUBJECTS, NotApplicable, Subject
from benchmarks.twins import full_fp32

CUDA = torch.device("cuda")
CPU = torch.device("cpu")
FP32 = 1e-3  # fp32 against fp32: CUDA vs CPU, channels_last vs contiguous, inductor vs eager
REDUCED = {torch.float16: 0.01, torch.bfloat16: 0.05}  # autocast outputs against fp32
AUTOCAST_COSINE = 0.9
FLOOR = 1e-2  # of the step's largest gradient: the least scale of a tolerance (see assert_near)
MEMORY_FORMATS = {4: torch.channels_last, 5: torch.channels_last_3d}
Forward = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class StepResult:
    """What one training step leaves: the output, and by name every gradient (``input.grad`` too) and buffer."""

    output: Tensor
    tensors: dict[str, Tensor]


def train_step(module: nn.Module, x: Tensor, grad: Tensor, forward: Forward | None = None) -> StepResult:
    """``forward(x)`` (default: the module), then backward of ``grad``; ``module`` names the parameters."""
    x = x.detach().clone().requires_grad_()
    out = (module if forward is None else forward)(x)
    (out.float() * grad).sum().backward()
    assert x.grad is not None
    tensors = {"input.grad": x.grad}
    tensors.update({f"{name}.grad": p.grad for name, p in module.named_parameters() if p.grad is not None})
    tensors.update(dict(module.named_buffers()))
    return StepResult(out.detach(), {name: t.detach() for name, t in tensors.items()})


def _largest(tensors: dict[str, Tensor]) -> float:
    return max((t.abs().max().item() for t in tensors.values() if t.is_floating_point() and t.numel()), default=0.0)


def assert_near(actual: StepResult, expected: StepResult, rel: float, names: tuple[str, ...] | None = None) -> None:
    """The output and the named tensors (default: all) of ``actual`` within ``rel`` of ``expected``.

    Each tolerance is ``rel`` times the reference tensor's largest magnitude, or ``FLOOR`` times the
    step's largest gradient if that is more: a gradient that is 0 in exact arithmetic (a bias before
    a batch norm) is a sum of rounding errors on the scale of the others.

    Raises:
        AssertionError: naming the first tensor that differs.
    """
    assert actual.output.shape == expected.output.shape, (actual.output.shape, expected.output.shape)
    assert actual.tensors.keys() == expected.tensors.keys(), set(actual.tensors) ^ set(expected.tensors)
    floor = FLOOR * _largest({k: t for k, t in expected.tensors.items() if k.endswith(".grad")})
    for name in ("output", *(expected.tensors if names is None else names)):
        got = (actual.output if name == "output" else actual.tensors[name]).cpu().double()
        want = (expected.output if name == "output" else expected.tensors[name]).cpu().double()
        scale = max(_largest({name: want}), floor)
        torch.testing.assert_close(got, want, rtol=rel, atol=rel * scale, msg=lambda m, name=name: f"{name}: {m}")


@contextmanager
def no_host_sync(device: torch.device) -> Iterator[None]:
    """On CUDA, anything that makes the host wait for the GPU (``.item()``, a copy to the CPU) raises inside."""
    if device.type != "cuda":
        yield
        return
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode("default")


def prepared(build: Callable[[], nn.Module], x: Tensor) -> tuple[nn.Module, Tensor, Tensor]:
    """A seeded module in training mode, the input, and a fixed gradient of the output's shape (all on the CPU)."""
    torch.manual_seed(0)
    module = build()
    with torch.no_grad():
        shape = module.eval()(x).shape  # eval: the running statistics stay untouched
    grad = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    return module.train(), x, grad


def subject_parts(subject: Subject) -> tuple[nn.Module, Tensor, Tensor]:
    """``prepared`` for a compatibility subject on its fixed example input."""
    return prepared(subject.build, subject.example())


def assert_parity(module: nn.Module, x: Tensor, grad: Tensor, device: torch.device) -> None:
    """A copy moved to ``device`` trains one step like the CPU module, without waiting on the device.

    Raises:
        AssertionError: a parameter or buffer stayed behind, or a tensor differs.
        RuntimeError: the step synchronised with the host (CUDA only).
    """
    moved = copy.deepcopy(module).to(device)
    behind = [name for name, t in [*moved.named_parameters(), *moved.named_buffers()] if t.device.type != device.type]
    assert not behind, f"not moved to {device}: {behind}"
    x_on, grad_on = x.to(device), grad.to(device)
    with full_fp32():
        train_step(copy.deepcopy(moved), x_on, grad_on)  # warm-up: library handles, workspaces, plans
        expected = train_step(module, x, grad)
        with no_host_sync(device):
            actual = train_step(moved, x_on, grad_on)
    assert actual.output.device.type == device.type
    assert_near(actual, expected, FP32)


def check_parity(subject: Subject, device: torch.device) -> None:
    """Forward and backward on ``device`` match the CPU: output, every gradient, every buffer."""
    assert_parity(*subject_parts(subject), device)


def autocast_forward(module: nn.Module, device: torch.device, dtype: torch.dtype) -> Forward:
    """``module`` called under autocast to ``dtype`` (backward then runs outside it, as it should)."""
    def forward(x: Tensor) -> Tensor:
        with torch.autocast(device.type, dtype=dtype):
            return module(x)  # type: ignore[no-any-return]
    return forward


def check_autocast(subject: Subject, device: torch.device, dtype: torch.dtype) -> None:
    """Autocast to ``dtype``: the output is ``dtype`` and near fp32's; every gradient is finite and of its
    parameter's dtype, and the input's points the way fp32's does (cosine ≥ ``AUTOCAST_COSINE``).

    Gradients are not compared value by value: a pooling or ReLU decides on rounded values, so low
    precision sends a few gradients to neighbouring positions.
    """
    module, x, grad = (t.to(device) for t in subject_parts(subject))
    with full_fp32():
        expected = train_step(copy.deepcopy(module), x, grad)
    actual = train_step(module, x, grad, autocast_forward(module, device, dtype))
    assert actual.output.dtype == dtype, f"autocast output is {actual.output.dtype}, expected {dtype}"
    assert_near(actual, expected, REDUCED[dtype], names=())
    cosine = F.cosine_similarity(actual.tensors["input.grad"].flatten().double(),
                                 expected.tensors["input.grad"].flatten().double(), dim=0).item()
    assert cosine >= AUTOCAST_COSINE, f"input gradient under autocast: cosine {cosine:.3f} with fp32's"
    for name, p in module.named_parameters():
        assert p.grad is not None and p.grad.dtype == p.dtype and p.grad.isfinite().all(), name


def check_channels_last(subject: Subject, device: torch.device) -> None:
    """channels_last (4-d) or channels_last_3d (5-d) weights and input give the contiguous step's tensors,
    and a 4-d output stays channels_last (nothing silently converts back)."""
    module, x, grad = (t.to(device) for t in subject_parts(subject))
    memory_format = MEMORY_FORMATS.get(x.dim())
    if memory_format is None:
        raise NotApplicable(f"torch defines channels_last only for 4-d and 5-d tensors; this input is {x.dim()}-d")
    with full_fp32():
        expected = train_step(copy.deepcopy(module), x, grad)
        actual = train_step(module.to(memory_format=memory_format), x.contiguous(memory_format=memory_format), grad)
    assert_near(actual, expected, FP32)
    if actual.output.dim() == 4:
        assert actual.output.is_contiguous(memory_format=torch.channels_last), "the output is not channels_last"


def check_compile(subject: Subject, device: torch.device, backend: str = "inductor") -> None:
    """``torch.compile(fullgraph=True)`` (a graph break fails) trains one step like eager."""
    module, x, grad = (t.to(device) for t in subject_parts(subject))
    torch._dynamo.reset()
    compiled = torch.compile(module, fullgraph=True, backend=backend, dynamic=False)
    with full_fp32():
        expected = train_step(copy.deepcopy(module), x, grad)
        actual = train_step(module, x, grad, compiled)
    assert_near(actual, expected, FP32)


Check = Callable[[Subject, torch.device], None]


def checks(compile_backend: str) -> dict[str, Check]:
    """The checks by name; ``compile_backend`` is inductor on a GPU (the CPU tests take a faster one)."""
    return {
        "parity": check_parity,
        "fp16 autocast": partial(check_autocast, dtype=torch.float16),
        "bf16 autocast": partial(check_autocast, dtype=torch.bfloat16),
        "channels_last": check_channels_last,
        f"compile {compile_backend}": partial(check_compile, backend=compile_backend),
    }


CUDA_CHECKS = checks("inductor")


def run_check(check: Check, subject: Subject, device: torch.device) -> None:
    """Run one check; a check that does not apply is a skip with its reason."""
    try:
        check(subject, device)
    except NotApplicable as why:
        pytest.skip(str(why))


@pytest.mark.cuda
@pytest.mark.parametrize("check", list(CUDA_CHECKS))
@pytest.mark.parametrize("subject", SUBJECTS, ids=lambda s: s.name)
def test_module_on_cuda(subject: Subject, check: str) -> None:
    run_check(CUDA_CHECKS[check], subject, CUDA)


@pytest.mark.cuda
def test_a_host_sync_is_caught_on_cuda() -> None:
    with pytest.raises(RuntimeError, match="synchroniz"), no_host_sync(CUDA):
        torch.ones(1, device=CUDA).item()


# Real backbones (random weights), where timm and torchvision are installed: the GPU machine has both.

BACKBONE_INPUT = (2, 3, 67, 61)  # odd on both sides: 3×2 after the backbones' five halvings
MIRRORS: dict[str, Callable[[nn.Module, tuple[int, ...]], nn.Module]] = {
    "MirrorUNet": lambda encoder, shape: MirrorUNet(encoder, shape, out_channels=2),
    "MirrorAutoencoder": lambda encoder, shape: MirrorAutoencoder(
        encoder, shape, output=-1 if hasattr(encoder, "feature_info") else None),  # features_only: the last map
}


def torchvision_encoder(name: str) -> nn.Module:
    """A torchvision classifier's convolutional part: ``features``, or a ResNet without pooling and fc."""
    models = pytest.importorskip("torchvision").models
    if name.startswith("resnet"):
        return nn.Sequential(*list(getattr(models, name)(weights=None).children())[:-2])
    return getattr(models, name)(weights=None, stochastic_depth_prob=0.0).features  # no random drops


def timm_encoder(name: str, features_only: bool = False) -> nn.Module:
    """A timm model as an encoder: ``features_only=True``, or without pooling and classifier."""
    timm = pytest.importorskip("timm")
    if features_only:
        return timm.create_model(name, pretrained=False, features_only=True)  # type: ignore[no-any-return]
    return timm.create_model(name, pretrained=False, num_classes=0, global_pool="")  # type: ignore[no-any-return]


BACKBONES = [
    *(pytest.param(partial(torchvision_encoder, name), id=f"torchvision-{name}")
      for name in ("resnet18", "convnext_tiny", "efficientnet_b0")),
    *(pytest.param(partial(timm_encoder, name), id=f"timm-{name}")
      for name in ("resnet18", "convnext_tiny", "efficientnet_b0")),
    pytest.param(partial(timm_encoder, "resnet18", features_only=True), id="timm-resnet18-features_only"),
]


def check_backbone(encoder: Callable[[], nn.Module], mirror: str, device: torch.device) -> None:
    """The mirror of a real backbone computes on ``device`` what it computes on the CPU at an odd size
    (in eval mode: a batch of 2 at 3×2 would make the deepest batch norms ill-conditioned), and it
    trains under bf16 autocast with channels_last, exact at that size and at another one."""
    x = torch.randn(BACKBONE_INPUT, generator=torch.Generator().manual_seed(0))
    module, x, grad = prepared(lambda: MIRRORS[mirror](encoder(), BACKBONE_INPUT[1:]), x)
    assert_parity(module.eval(), x, grad, device)
    module = module.train().to(device, memory_format=torch.channels_last)
    for shape in (BACKBONE_INPUT, (2, 3, 64, 48)):
        x = torch.randn(shape, device=device).contiguous(memory_format=torch.channels_last)
        out = autocast_forward(module, device, torch.bfloat16)(x)
        assert out.shape[2:] == x.shape[2:] and out.isfinite().all(), out.shape
        out.float().square().mean().backward()
        assert all(p.grad is None or p.grad.isfinite().all() for p in module.parameters())


@pytest.mark.cuda
@pytest.mark.parametrize("mirror", list(MIRRORS))
@pytest.mark.parametrize("encoder", BACKBONES)
def test_real_backbone_on_cuda(encoder: Callable[[], nn.Module], mirror: str) -> None:
    check_backbone(encoder, mirror, CUDA)


# The same checks on the CPU, so that their code runs in CI (inductor is a minute per model on a
# small CPU; aot_eager traces forward and backward the same way).

CPU_CHECKS = checks("aot_eager")
CPU_SUBJECTS = [s for s in SUBJECTS if s.name in ("TargetConvTranspose3d", "MirrorAutoencoder", "MirrorUNet")]


@pytest.mark.parametrize("check", list(CPU_CHECKS))
@pytest.mark.parametrize("subject", CPU_SUBJECTS, ids=lambda s: s.name)
def test_the_checks_run_on_cpu(subject: Subject, check: str) -> None:
    run_check(CPU_CHECKS[check], subject, CPU)


def test_a_changed_weight_fails_the_comparison() -> None:
    module, x, grad = subject_parts(SUBJECTS[1])
    changed = copy.deepcopy(module)
    with torch.no_grad():
        next(changed.parameters())[0].mul_(1.01)  # one output channel 1% off
    with pytest.raises(AssertionError, match="output"):
        assert_near(train_step(changed, x, grad), train_step(module, x, grad), FP32)


def test_channels_last_does_not_apply_to_1d() -> None:
    with pytest.raises(NotApplicable, match="3-d"):
        check_channels_last(SUBJECTS[0], CPU)
