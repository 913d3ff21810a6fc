"""Up/DownsamplingStack: the reference DCGAN layer for layer, any target by running it, options and errors."""

from __future__ import annotations

import ast
import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from autoshape import DownsamplingStack, ShapeError, UpsamplingStack
from tests.test_planning import MAX_K, MAX_S, brute_force, free_cap


def reference_dcgan_generator(nz: int = 100, ngf: int = 64, nc: int = 3) -> nn.Sequential:
    """pytorch/examples' DCGAN generator written out by hand: a 1×1 latent to a 64×64 image."""
    return nn.Sequential(
        nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
        nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
        nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh(),
    )


def reference_dcgan_discriminator(nc: int = 3, ndf: int = 64) -> nn.Sequential:
    """pytorch/examples' DCGAN discriminator written out by hand: 64×64 image to one probability."""
    return nn.Sequential(
        nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
        nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid(),
    )


CONV_ATTRIBUTES = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "output_padding", "dilation",
                   "groups", "padding_mode", "transposed")
NORM_ATTRIBUTES = ("num_features", "eps", "momentum", "affine", "track_running_stats")


def assert_same_layers(ours: nn.Module, reference: nn.Module, *, same_repr: bool) -> None:
    """Module types and hyper-parameters layer for layer, state_dict keys and shapes, and the same outputs."""
    assert len(ours) == len(reference)
    for mine, theirs in zip(ours, reference):
        assert type(mine) is type(theirs)
        for name in CONV_ATTRIBUTES + NORM_ATTRIBUTES + ("negative_slope",):
            assert getattr(mine, name, None) == getattr(theirs, name, None), (mine, theirs, name)
        assert (getattr(mine, "bias", None) is None) == (getattr(theirs, "bias", None) is None)
        if same_repr:
            assert repr(mine) == repr(theirs)
    mine_state, their_state = ours.state_dict(), reference.state_dict()
    assert [(k, v.shape) for k, v in mine_state.items()] == [(k, v.shape) for k, v in their_state.items()]
    ours.load_state_dict(their_state)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in reference.parameters())


def assert_same_outputs(ours: nn.Module, reference: nn.Module, x: torch.Tensor) -> None:
    for train in (False, True):
        ours.train(train)
        reference.train(train)
        assert torch.allclose(ours(x.clone()), reference(x.clone()), atol=1e-6)


def test_the_issue_call_is_the_reference_dcgan_generator() -> None:
    torch.manual_seed(0)
    ours = UpsamplingStack(100, (512, 256, 128, 64), 3, input_size=1, output_size=64, kernel_size=4, bias=False)
    reference = reference_dcgan_generator()
    assert_same_layers(ours, reference, same_repr=False)  # the reference's ReLUs are in-place
    assert sum(p.numel() for p in ours.parameters()) == 3_576_704
    assert_same_outputs(ours, reference, torch.randn(2, 100, 1, 1))


def test_with_in_place_relus_every_layer_repr_is_the_reference_generator_s() -> None:
    ours = UpsamplingStack(100, (512, 256, 128, 64), 3, input_size=1, output_size=64, kernel_size=4, bias=False,
                           activation=lambda: nn.ReLU(True))
    assert_same_layers(ours, reference_dcgan_generator(), same_repr=True)


def test_the_downsampling_twin_is_the_reference_dcgan_discriminator() -> None:
    torch.manual_seed(0)
    ours = DownsamplingStack(3, (64, 128, 256, 512), 1, input_size=64, output_size=1, kernel_size=4, bias=False,
                             activation=lambda: nn.LeakyReLU(0.2, inplace=True), final_activation=nn.Sigmoid)
    reference = reference_dcgan_discriminator()
    assert_same_layers(ours, reference, same_repr=True)
    assert sum(p.numel() for p in ours.parameters()) == 2_765_568
    assert [step.output_size for step in ours.plan] == [(32, 32), (16, 16), (8, 8), (4, 4), (1, 1)]
    assert_same_outputs(ours, reference, torch.randn(2, 3, 64, 64))


def convs(stack: nn.Module) -> list[nn.Module]:
    return [m for m in stack if isinstance(m, (nn.modules.conv._ConvNd))]


ANY_TARGET = [  # (input_size, output_size, hidden widths, dims)
    (1, 28, (8, 4), 2), (1, 32, (8, 4, 4), 2), (1, 100, (4, 4, 4, 4), 2), (1, 7, (4,), 2),
    ((3, 5), (48, 80), (4, 4, 4), 2), ((1, 1), (48, 80), (4, 4, 4, 4), 2), (4, 250, (4, 4, 4, 4, 4), 1),
    ((2, 4, 4), (16, 32, 32), (4, 4), 3), (1, (7, 14, 14), (4, 4), 3),
]


@pytest.mark.parametrize(("start", "target", "widths", "dims"), ANY_TARGET)
def test_any_target_runs_exactly_both_ways_and_upsampling_is_checkerboard_free(start, target, widths, dims) -> None:
    def full(size: int | tuple[int, ...]) -> tuple[int, ...]:
        return size if isinstance(size, tuple) else (size,) * dims

    up = UpsamplingStack(2, widths, 3, input_size=start, output_size=target, dims=dims)
    assert up(torch.randn(2, 2, *full(start))).shape == (2, 3, *full(target))
    assert all(k % s == 0 for conv in convs(up) for k, s in zip(conv.kernel_size, conv.stride))
    assert len(convs(up)) == len(widths) + 1
    down = DownsamplingStack(3, widths, 2, input_size=target, output_size=start, dims=dims)
    assert down(torch.randn(2, 3, *full(target))).shape == (2, 2, *full(start))


@settings(max_examples=40)
@given(transposed=st.booleans(), sizes=st.tuples(st.integers(1, 20), st.integers(1, 20)), layers=st.integers(1, 4),
       kernel=st.one_of(st.none(), st.integers(1, MAX_K)), max_stride=st.integers(1, MAX_S))
def test_stacks_are_exact_by_running_them_or_refused_and_brute_force_agrees(
    transposed: bool, sizes: tuple[int, int], layers: int, kernel: int | None, max_stride: int
) -> None:
    small, big = sorted(sizes)
    start, target = (small, big) if transposed else (big, small)
    stack_type = UpsamplingStack if transposed else DownsamplingStack
    try:
        stack = stack_type(1, (2,) * (layers - 1), 1, input_size=start, output_size=target, kernel_size=kernel,
                           max_stride=max_stride, dims=1)
    except ShapeError:
        ceiling = max(start, target) + layers * MAX_K
        kernels = range(kernel, kernel + 1) if kernel is not None else range(1, free_cap(max_stride) + 1)
        free_target = target if kernel is None else None  # a free kernel: capped, projections exempt, monotone
        assert target not in brute_force(transposed, start, layers, kernels, max_stride, ceiling, free_target)
        return
    assert stack(torch.randn(3, 1, start)).shape == (3, 1, target)
    assert all(conv.stride[0] <= max_stride and kernel in (None, conv.kernel_size[0]) for conv in convs(stack))


def test_the_plan_is_the_layers_and_the_sizes_are_in_the_repr() -> None:
    stack = UpsamplingStack(16, (8,), 3, input_size=(3, 5), output_size=(12, 20))
    for conv, step in zip(convs(stack), stack.plan):
        assert conv.kernel_size == step.params.kernel_size and conv.stride == step.params.stride
        assert conv.padding == step.params.padding and conv.output_padding == step.params.output_padding
    assert stack.input_size == (3, 5) and stack.output_size == (12, 20)
    assert "input_size=(3, 5), output_size=(12, 20)" in repr(stack)


def kinds(stack: nn.Module) -> list[type[nn.Module]]:
    return [type(m) for m in stack]


def test_defaults_norm_and_activate_every_layer_but_the_last_and_bias_only_where_no_norm_follows() -> None:
    up = UpsamplingStack(8, (4, 4), 1, input_size=4, output_size=16)
    assert kinds(up) == [nn.ConvTranspose2d, nn.BatchNorm2d, nn.ReLU] * 2 + [nn.ConvTranspose2d, nn.Tanh]
    assert [conv.bias is not None for conv in convs(up)] == [False, False, True]
    down = DownsamplingStack(1, (4, 4), 8, input_size=16, output_size=4)
    assert kinds(down) == [nn.Conv2d, nn.LeakyReLU, nn.Conv2d, nn.BatchNorm2d, nn.LeakyReLU, nn.Conv2d]
    assert down[1].negative_slope == 0.2
    assert [conv.bias is not None for conv in convs(down)] == [True, False, True]
    first = DownsamplingStack(1, (4,), 8, input_size=16, output_size=4, norm_first=True)
    assert kinds(first) == [nn.Conv2d, nn.BatchNorm2d, nn.LeakyReLU, nn.Conv2d]


@pytest.mark.parametrize(("dims", "norm"), [(1, nn.BatchNorm1d), (2, nn.BatchNorm2d), (3, nn.BatchNorm3d)])
def test_batch_norm_matches_dims(dims: int, norm: type[nn.Module]) -> None:
    stack = UpsamplingStack(2, (4,), 1, input_size=2, output_size=8, dims=dims)
    assert type(stack[1]) is norm and stack[1].num_features == 4
    assert stack(torch.randn(2, 2, *(2,) * dims)).shape == (2, 1, *(8,) * dims)


def test_norm_and_activations_accept_classes_factories_and_none() -> None:
    grouped = UpsamplingStack(8, (6, 4), 1, input_size=4, output_size=16, norm=lambda c: nn.GroupNorm(2, c),
                              activation=nn.SiLU, final_activation=None)
    assert kinds(grouped) == [nn.ConvTranspose2d, nn.GroupNorm, nn.SiLU] * 2 + [nn.ConvTranspose2d]
    assert [m.num_channels for m in grouped if isinstance(m, nn.GroupNorm)] == [6, 4]
    plain = DownsamplingStack(1, (4,), 8, input_size=16, output_size=4, norm=None, activation=None, bias=False)
    assert kinds(plain) == [nn.Conv2d, nn.Conv2d] and all(conv.bias is None for conv in convs(plain))
    instance = UpsamplingStack(8, (4,), 1, input_size=4, output_size=8, norm=nn.InstanceNorm2d, bias=True)
    assert type(instance[1]) is nn.InstanceNorm2d and all(conv.bias is not None for conv in convs(instance))
    assert instance[1] is not UpsamplingStack(8, (4,), 1, input_size=4, output_size=8)[1]


def test_forward_refuses_another_input_size() -> None:
    stack = UpsamplingStack(8, (4,), 1, input_size=4, output_size=16)
    with pytest.raises(ShapeError, match=r"planned for input size \(4, 4\).*got \(5, 5\).*input_size=\(5, 5\)"):
        stack(torch.zeros(1, 8, 5, 5))


def test_unreachable_target_is_refused_at_construction_with_the_stack_s_context() -> None:
    with pytest.raises(ShapeError) as caught:
        UpsamplingStack(100, (512, 256, 128), 3, input_size=1, output_size=64, kernel_size=4)
    message = str(caught.value)
    assert message.startswith("UpsamplingStack(in_channels=100, channels=(512, 256, 128), out_channels=3) "
                              "has len(channels)+1 = 4 layers: plan_upsampling((1, 1), (64, 64), 4, kernel_size=4")
    assert "largest size they reach is 61" in message and "4 widths in channels" in message  # 5 layers
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


@pytest.mark.parametrize(("kwargs", "error", "pattern"), [
    (dict(norm=nn.BatchNorm2d(4)), TypeError, "not the module instance.*Fix: pass BatchNorm2d"),
    (dict(activation=nn.ReLU()), TypeError, "activation must be a class or a factory"),
    (dict(final_activation=lambda: "tanh"), TypeError, "final_activation must build an nn.Module"),
    (dict(activation=3), TypeError, "activation must be a class, a factory or None"),
    (dict(norm="group"), ValueError, "norm must be 'batch', a class, a factory or None"),
    (dict(dims=4), ValueError, "dims must be 1, 2 or 3"),
    (dict(channels=4), TypeError, "channels must be a sequence of ints"),
    (dict(channels=(4, 0)), ValueError, "channels must be >= 1"),
    (dict(bias="no"), TypeError, "bias must be True, False or None"),
    (dict(input_size=(4, 4, 4)), ValueError, "input_size needs 2 value"),
    (dict(output_size=2), ValueError, "at least the input_size"),
])
def test_bad_arguments_are_refused_with_the_value(kwargs: dict, error: type[Exception], pattern: str) -> None:
    arguments = {**dict(in_channels=8, channels=(4,), out_channels=1, input_size=4, output_size=8), **kwargs}
    with pytest.raises(error, match=pattern):
        UpsamplingStack(**arguments)


def test_norm_first_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="norm_first must be a bool"):
        DownsamplingStack(1, (4,), 8, input_size=16, output_size=4, norm_first="yes")  # type: ignore[arg-type]


@pytest.mark.parametrize(("cls", "kwargs", "got"), [
    (UpsamplingStack, {"input_size": 4, "output_size": 16, "dims": 1}, (5,)),
    (UpsamplingStack, {"input_size": 1, "output_size": 13, "kernel_size": 4, "dims": 1}, (20,)),
    (DownsamplingStack, {"input_size": (28, 28), "output_size": 7}, (29, 30)),
], ids=["replannable", "not-replannable", "2-d"])
def test_forward_fixes_work_when_followed(cls: type[nn.Module], kwargs: dict, got: tuple[int, ...]) -> None:
    built = cls(4, (8,), 1, **kwargs)
    with pytest.raises(ShapeError) as caught:
        built(torch.zeros(1, 4, *got))
    fix = str(caught.value).split("Fix: ", 1)[1]
    resized = ast.literal_eval(re.findall(r"resize the input to (\(.*?\))", fix)[0])
    assert built(nn.functional.interpolate(torch.zeros(1, 4, *got), size=resized)).shape[2:] == built.output_size
    rebuilds = re.findall(r"build it with input_size=(\(.*?\))", fix)
    assert len(rebuilds) == (kwargs.get("kernel_size") is None)  # a fixed kernel 4 cannot take 20 to 13 in 2 layers
    for size in rebuilds:
        rebuilt = cls(4, (8,), 1, **{**kwargs, "input_size": ast.literal_eval(size)})
        assert rebuilt(torch.zeros(1, 4, *got)).shape[2:] == built.output_size


def test_a_module_instance_as_norm_fix_works_when_followed() -> None:
    with pytest.raises(TypeError, match="Fix: pass BatchNorm2d") as caught:
        UpsamplingStack(8, (4,), 1, input_size=4, output_size=8, norm=nn.BatchNorm2d(4))
    fixed = getattr(nn, re.findall(r"Fix: pass (\w+)", str(caught.value))[0])
    stack = UpsamplingStack(8, (4,), 1, input_size=4, output_size=8, norm=fixed)
    assert stack(torch.zeros(1, 8, 4, 4)).shape[2:] == (8, 8)


def test_plan_fixes_speak_of_channels_and_work_when_followed() -> None:
    with pytest.raises(ShapeError) as caught:
        UpsamplingStack(4, (8,), 1, input_size=1, output_size=64, kernel_size=4, dims=1)
    fix = str(caught.value).split("Fix: ", 1)[1]
    assert "num_layers" not in fix
    [widths] = re.findall(r"(\d+) widths in channels", fix)
    stack = UpsamplingStack(4, (8,) * int(widths), 1, input_size=1, output_size=64, kernel_size=4, dims=1)
    assert stack(torch.zeros(1, 4, 1)).shape[2:] == (64,)
