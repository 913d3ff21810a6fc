"""The one recorder: the same calls and shapes as a real forward, data flow, no side effects, failures kept."""

from __future__ import annotations

import time

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from autoshape.tracing import Record, as_input_shape, select, trace


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


class Functional(nn.Module):
    """The classic MNIST example's style: functional calls between modules, an in-place op, a view."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.scale = nn.Parameter(torch.ones(1))
        self.fc = nn.Linear(4 * 6 * 6, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv(x)), 2)
        x.mul_(self.scale)
        x = x[:, None].squeeze(1)
        return self.fc(x.view(x.size(0), -1))


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


class RealCalls(TorchFunctionMode):
    """torch's own record of a real forward: every torch call's output shape, by function name."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, tuple[int, ...]]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        out = func(*args, **(kwargs or {}))
        if isinstance(out, torch.Tensor) and out.dim() > 0:
            self.calls.append((getattr(func, "__name__", ""), tuple(out.shape)))
        return out


def leaves(record: Record) -> list:  # type: ignore[type-arg]
    return [c for c in record.calls if c.kind == "module" and record.is_leaf(c)]


def test_meta_trace_matches_a_real_forward() -> None:
    model = nn.Sequential(
        nn.Conv2d(3, 8, 5, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.MaxPool2d(3, 2, ceil_mode=True), nn.Sequential(nn.Conv2d(8, 4, 3, dilation=2), nn.Flatten()),
    )
    record = trace(model, (2, 3, 37, 29))
    assert record.on_meta and record.failure is None
    calls = leaves(record)
    assert [c.output_shape for c in calls] == real_shapes(model, (2, 3, 37, 29))
    assert [c.path for c in calls] == ["0", "1", "2", "3", "4.0", "4.1"]
    # each leaf takes exactly what the previous one returned: the data flow is in the record
    assert calls[0].data_inputs == (record.input,)
    for before, after in zip(calls, calls[1:]):
        assert after.data_inputs == (before.outputs[0],)
    assert record.output_shape == calls[-1].output_shape


def test_torch_calls_are_recorded_with_their_shapes_names_and_callers() -> None:
    model = Functional()
    record = trace(model, (2, 1, 14, 14))
    top = [c for c in record.calls if c.kind == "function" and c.parent == 0]
    assert [c.name for c in top] == ["F.relu", "F.max_pool2d", "mul_", "__getitem__", "squeeze", "view"]
    with RealCalls() as real, torch.no_grad():
        model(torch.randn(2, 1, 14, 14))
    real_by_shape = [shape for name, shape in real.calls if name in ("relu", "fn", "max_pool2d", "mul_",
                                                                       "__getitem__", "squeeze", "view")]
    assert [c.output_shape for c in top] == real_by_shape
    inside = [c.name for c in record.children(record.calls[1])]
    assert inside == ["F.conv2d"]  # the conv's own call belongs to the conv
    assert all(c.path == "" and c.owner == "Functional" for c in top)


def test_in_place_ops_make_new_values_and_parameters_are_named_constants() -> None:
    record = trace(Functional(), (1, 1, 14, 14))
    mul = next(c for c in record.calls if c.name == "mul_")
    data, scale = mul.inputs
    assert data.data and not scale.data and scale.name == "scale"
    assert mul.outputs[0].index != data.index and mul.outputs[0].shape == data.shape
    after = next(c for c in record.calls if c.name == "__getitem__")
    assert after.data_inputs == (mul.outputs[0],)  # the next call reads the changed value


def test_residual_connection_shows_as_a_sum_of_two_branches() -> None:
    record = trace(Residual(), (1, 4, 8, 8))
    conv, add, act = (next(c for c in record.calls if c.name == name) for name in ("Conv2d", "add", "ReLU"))
    assert {v.index for v in add.data_inputs} == {conv.outputs[0].index, record.input.index}
    assert act.data_inputs == add.outputs


def test_trace_leaves_the_model_untouched() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Dropout())
    model.train()
    model[1].eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    hooks = [len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()]
    trace(model, torch.zeros(1, 1, 9, 9))
    assert [m.training for m in model] == [True, False, True]
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) and after[k].device.type == "cpu" for k in before)
    assert [len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()] == hooks


def test_model_that_cannot_run_on_meta_falls_back_with_a_warning() -> None:
    with pytest.warns(RuntimeWarning, match="cannot run on meta tensors"):
        record = trace(NeedsData(), (1, 1, 10))
    assert not record.on_meta
    assert record.output_shape == (1, 2, 8)


def test_the_models_own_error_is_kept_with_the_calls_before_it() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(5, 4, 3))
    record = trace(model, (1, 3, 8, 8))
    assert record.failure is not None and record.output is None
    with pytest.raises(RuntimeError, match="channels"):
        record.check()
    assert [c.path for c in leaves(record)][:2] == ["0", "1"]
    assert [c.path for c in record.failure.stack] == ["", "2", "2"]  # Sequential, Conv2d, F.conv2d
    assert record.failure.stack[-1].name == "F.conv2d" and not record.failure.stack[-1].finished


def test_select_picks_an_output_from_lists_dicts_and_attributes() -> None:
    class Pyramid(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Conv2d(1, 2, 3, 2, 1), nn.Conv2d(2, 4, 3, 2, 1)

        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            first = self.a(x)
            return {"first": first, "second": self.b(first)}

    record = trace(Pyramid(), (1, 1, 16, 16))
    assert select(record, "second").shape == (1, 4, 4, 4)
    assert select(record, lambda out: out["first"]).shape == (1, 2, 8, 8)
    with pytest.raises(TypeError, match="output="):
        select(record, None)
    with pytest.raises(KeyError, match="third"):
        select(record, "third")


def test_huge_volumes_cost_nothing() -> None:
    model = nn.Sequential(nn.Conv3d(1, 16, 3, 2, 1), nn.ReLU(), nn.Conv3d(16, 32, 3, 2, 1))
    trace(model, (1, 1, 8, 8, 8))  # torch's one-off meta warm-up
    start = time.perf_counter()
    record = trace(model, (1, 1, 512, 512, 512))
    assert time.perf_counter() - start < 1.0
    assert record.output_shape == (1, 32, 128, 128, 128)


@pytest.mark.parametrize(
    ("value", "error"), [("1,2", TypeError), ((), ValueError), ((1, 0, 4), ValueError), ((1, 2.0), TypeError)]
)
def test_input_shape_is_checked(value: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        as_input_shape(value)  # type: ignore[arg-type]
