"""Meta tracing: the same shapes as a real forward, no side effects, and a warned fallback."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from autoshape.tracing.recorder import as_input_shape, trace


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x) + x)


class NeedsData(nn.Module):
    """A forward that reads a value, which meta tensors do not have."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) * float(x.abs().sum().item() >= 0)


def real_shapes(model: nn.Module, shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    shapes: list[tuple[int, ...]] = []
    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    handles = [m.register_forward_hook(lambda _m, _a, out: shapes.append(tuple(out.shape))) for m in leaves]
    model.eval()
    with torch.no_grad():
        model(torch.randn(shape))
    for handle in handles:
        handle.remove()
    return shapes


def test_meta_trace_matches_a_real_forward() -> None:
    model = nn.Sequential(
        nn.Conv2d(3, 8, 5, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.MaxPool2d(3, 2, ceil_mode=True), nn.Sequential(nn.Conv2d(8, 4, 3, dilation=2), nn.Flatten()),
    )
    traced = trace(model, (2, 3, 37, 29))
    assert traced.on_meta
    assert [c.output_shape for c in traced.calls] == real_shapes(model, (2, 3, 37, 29))
    assert [c.name for c in traced.calls] == ["0", "1", "2", "3", "4.0", "4.1"]
    assert all(c.follows_previous for c in traced.calls)
    assert traced.output_shape == traced.calls[-1].output_shape


def test_trace_leaves_the_model_untouched() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Dropout())
    model.train()
    model[1].eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trace(model, torch.zeros(1, 1, 9, 9))
    assert [m.training for m in model] == [True, False, True]
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) and after[k].device.type == "cpu" for k in before)


def test_residual_connection_is_seen_as_not_a_chain() -> None:
    calls = trace(Residual(), (1, 4, 8, 8)).calls
    assert [c.name for c in calls] == ["conv", "act"]
    assert [c.follows_previous for c in calls] == [True, False]


def test_model_that_cannot_run_on_meta_falls_back_with_a_warning() -> None:
    with pytest.warns(RuntimeWarning, match="cannot run on meta tensors"):
        traced = trace(NeedsData(), (1, 1, 10))
    assert not traced.on_meta
    assert traced.output_shape == (1, 2, 8)


def test_the_models_own_error_is_kept() -> None:
    with pytest.raises(RuntimeError, match="channels"):
        trace(nn.Conv2d(3, 4, 3), (1, 5, 8, 8))


def test_huge_volumes_cost_nothing() -> None:
    model = nn.Sequential(nn.Conv3d(1, 16, 3, 2, 1), nn.ReLU(), nn.Conv3d(16, 32, 3, 2, 1))
    trace(model, (1, 1, 8, 8, 8))  # torch's one-off meta warm-up
    start = time.perf_counter()
    traced = trace(model, (1, 1, 512, 512, 512))
    assert time.perf_counter() - start < 1.0
    assert traced.output_shape == (1, 32, 128, 128, 128)


@pytest.mark.parametrize(
    ("value", "error"), [("1,2", TypeError), ((), ValueError), ((1, 0, 4), ValueError), ((1, 2.0), TypeError)]
)
def test_input_shape_is_checked(value: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        as_input_shape(value)  # type: ignore[arg-type]
