"""Target layers: exact sizes by running them, plain-torch equivalence, and every error path."""

from __future__ import annotations

import ast
import re

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import autoshape
from autoshape import ShapeError, TargetConv1d, TargetConv2d, TargetConvTranspose1d, TargetConvTranspose2d

TARGETS = {
    (False, 1): (autoshape.TargetConv1d, nn.Conv1d),
    (False, 2): (autoshape.TargetConv2d, nn.Conv2d),
    (False, 3): (autoshape.TargetConv3d, nn.Conv3d),
    (True, 1): (autoshape.TargetConvTranspose1d, nn.ConvTranspose1d),
    (True, 2): (autoshape.TargetConvTranspose2d, nn.ConvTranspose2d),
    (True, 3): (autoshape.TargetConvTranspose3d, nn.ConvTranspose3d),
}
ALL = list(TARGETS.values())


@st.composite
def layer_requests(draw: st.DrawFn) -> tuple[bool, tuple[int, ...], tuple[int, ...], dict[str, object]]:
    transposed, n = draw(st.booleans()), draw(st.integers(1, 3))
    sizes = st.integers(1, 16 if n < 3 else 7)
    i = tuple(draw(sizes) for _ in range(n))
    o = tuple(draw(sizes) for _ in range(n))
    fixed = {name: draw(values) for name, values in (("kernel_size", st.integers(1, 4)), ("stride", st.integers(1, 3)))
             if draw(st.booleans())}
    return transposed, i, o, fixed


@given(request=layer_requests(), groups=st.sampled_from([1, 2]))
def test_layers_produce_exactly_the_declared_size(request: tuple, groups: int) -> None:
    transposed, i, o, fixed = request
    cls, _ = TARGETS[(transposed, len(i))]
    try:
        layer = cls(2, 4, input_size=i, output_size=o, groups=groups, **fixed)
    except ShapeError:
        return
    y = layer(torch.randn(3, 2, *i))
    assert y.shape == (3, 4, *o)
    assert layer.input_size == i and layer.output_size == o


@pytest.mark.parametrize(("cls", "plain"), ALL, ids=lambda c: c.__name__)
def test_layer_is_the_plain_torch_layer(cls: type[nn.Module], plain: type[nn.Module]) -> None:
    n = int(plain.__name__[-2])
    layer = cls(3, 5, input_size=(9,) * n, output_size=(5,) * n if "Transpose" not in cls.__name__ else (17,) * n)
    assert isinstance(layer, plain)
    twin = plain(3, 5, **layer.conv_params.as_kwargs())
    assert layer.state_dict().keys() == twin.state_dict().keys()
    twin.load_state_dict(layer.state_dict())
    layer.load_state_dict(twin.state_dict())
    x = torch.randn(2, 3, *(9,) * n)
    torch.testing.assert_close(layer(x), twin(x), rtol=0, atol=0)


def test_solved_values_are_the_ordinary_attributes_and_in_the_repr() -> None:
    layer = TargetConvTranspose2d(8, 4, input_size=(12, 7), output_size=(24, 28))
    assert (layer.kernel_size, layer.stride, layer.padding, layer.output_padding) == ((4, 8), (2, 4), (1, 2), (0, 0))
    assert "input_size=(12, 7), output_size=(24, 28)" in repr(layer)


def test_scale_factor_works_as_nn_upsample() -> None:
    for size, scale in ((7, 2.0), (7, 1.5), (10, 0.5), (9, 1 / 3), (5, 2.7)):
        expected = nn.Upsample(scale_factor=scale)(torch.zeros(1, 1, size)).shape[-1]
        cls = TargetConvTranspose1d if expected >= size else TargetConv1d
        layer = cls(1, 1, input_size=size, scale_factor=scale)
        assert layer(torch.zeros(1, 1, size)).shape[-1] == expected


def test_scale_factor_per_dimension() -> None:
    layer = TargetConvTranspose2d(1, 1, input_size=(5, 6), scale_factor=(2, 3))
    assert layer(torch.zeros(1, 1, 5, 6)).shape[2:] == (10, 18)


@given(k=st.integers(1, 7), s=st.integers(1, 4), d=st.integers(1, 2), sizes=st.lists(st.integers(1, 12), min_size=2,
       max_size=2))
def test_same_padding_gives_input_times_stride_for_every_size(k: int, s: int, d: int, sizes: list[int]) -> None:
    try:
        layer = TargetConvTranspose2d(1, 2, kernel_size=k, stride=s, dilation=d, padding="same")
    except ShapeError as error:
        assert s == 1 and d == 1 and k % 2 == 0, error  # the only combination that needs asymmetric padding
        return
    for h in sizes:
        w = h + 3
        assert layer(torch.zeros(1, 1, h, w)).shape[2:] == (h * s, w * s)


def test_forward_refuses_another_input_size() -> None:
    layer = TargetConv2d(1, 1, input_size=24, output_size=12)
    with pytest.raises(ShapeError, match=r"built for input size \(24, 24\).*got \(25, 25\).*input_size=\(25, 25\)"):
        layer(torch.zeros(1, 1, 25, 25))
    assert layer(torch.zeros(1, 24, 24)).shape == (1, 12, 12)  # unbatched input works as in torch


def test_device_dtype_channels_last_and_autocast() -> None:
    layer = TargetConvTranspose2d(4, 4, input_size=6, output_size=13, dtype=torch.float64)
    assert layer.weight.dtype == torch.float64
    layer = TargetConvTranspose2d(4, 4, input_size=6, output_size=13).to(memory_format=torch.channels_last)
    x = torch.randn(2, 4, 6, 6).to(memory_format=torch.channels_last)
    assert layer(x).shape == (2, 4, 13, 13)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert layer(x).dtype == torch.bfloat16


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"input_size": 0, "output_size": 4}, ValueError, "input_size must be >= 1, got 0"),
        ({"input_size": -3, "output_size": 4}, ValueError, "input_size must be >= 1, got -3"),
        ({"input_size": 4.0, "output_size": 4}, TypeError, "input_size must be an int, got 4.0"),
        ({"input_size": 4, "output_size": False}, TypeError, "output_size must be an int, got False"),
        ({"input_size": "4", "output_size": 4}, TypeError, "input_size must be an int"),
        ({"input_size": (4, 4, 4), "output_size": 4}, ValueError, r"input_size needs 2 value\(s\)"),
        ({"input_size": 4, "output_size": (4,)}, ValueError, r"output_size needs 2 value\(s\)"),
        ({"input_size": 4}, ValueError, "exactly one of output_size and scale_factor"),
        ({"input_size": 4, "output_size": 8, "scale_factor": 2}, ValueError, "exactly one of"),
        ({"input_size": 4, "scale_factor": -1.0}, ValueError, "scale_factor must be > 0"),
        ({"input_size": 4, "scale_factor": "2"}, TypeError, "scale_factor must be a number"),
        ({"output_size": 8}, TypeError, "needs input_size"),
        ({"input_size": 4, "output_size": 8, "kernel_size": 0}, ValueError, "kernel_size must be >= 1"),
        ({"input_size": 4, "output_size": 8, "stride": 0}, ValueError, "stride must be >= 1"),
        ({"input_size": 4, "output_size": 10, "kernel_size": 2, "stride": 2}, ShapeError,
         r"^TargetConvTranspose2d\(2, 2, input_size=\(4, 4\), output_size=\(10, 10\)\): .*9 below, none above"),
        ({"input_size": 4, "output_size": 8, "padding": "valid"}, ValueError, "padding='valid' is not solvable"),
        ({"padding": "same", "stride": 2}, ValueError, "needs kernel_size"),
        ({"padding": "same", "kernel_size": 2, "stride": 1}, ShapeError, r"Fix: use kernel_size=3 \(odd"),
        ({"input_size": 4, "output_size": 8, "padding_mode": "reflect"}, ValueError, "zeros"),
    ],
)
def test_transposed_construction_errors(kwargs: dict, error: type[Exception], pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        TargetConvTranspose2d(2, 2, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"input_size": 4, "output_size": 8, "padding": "same"}, ValueError, "supported by the transposed layers"),
        ({"input_size": 5, "output_size": 13, "padding": 1}, ShapeError, "7 below, none above"),
        ({"input_size": 3, "output_size": 9, "padding_mode": "reflect"}, ShapeError, "too large for padding_mode"),
    ],
)
def test_conv_construction_errors(kwargs: dict, error: type[Exception], pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        TargetConv1d(2, 2, **kwargs)


def test_channel_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="in_channels must be >= 1"):
        TargetConv2d(0, 2, input_size=4, output_size=2)
    with pytest.raises(TypeError, match="out_channels must be an int"):
        TargetConv2d(2, 2.5, input_size=4, output_size=2)  # type: ignore[arg-type]


# -- every "Fix:" of a Target layer's error, followed literally --------------------------------------------------------

def fix_of(error: ShapeError) -> str:
    return str(error).split("Fix: ", 1)[1]


@pytest.mark.parametrize(("cls", "kwargs"), [
    (TargetConvTranspose2d, {"input_size": 12, "output_size": 25, "kernel_size": 3, "stride": 2, "padding": 1}),
    (TargetConv2d, {"input_size": (8, 9), "output_size": (4, 9), "kernel_size": 3, "padding": 0}),
    (TargetConv1d, {"input_size": 10, "output_size": 40, "max_kernel_size": 3, "max_stride": 2}),
], ids=["transposed", "conv", "bounds"])
def test_construction_fixes_work_when_followed(cls: type[nn.Module], kwargs: dict) -> None:
    with pytest.raises(ShapeError) as caught:
        cls(2, 2, **kwargs)
    fix = fix_of(caught.value)
    changes = [{"output_size": ast.literal_eval(v)} for v in re.findall(r"output_size=(\(.*?\)|\d+)", fix)]
    freed = re.search(r"leave (\S+) free \(None\)", fix)
    changes += [dict.fromkeys(freed.group(1).split("/"))] if freed else []
    assert len(changes) >= 2
    n = int(cls.__name__[-2])
    for change in changes:
        layer = cls(2, 2, **{**kwargs, **change})
        expected = change.get("output_size", kwargs["output_size"])
        expected = expected if isinstance(expected, tuple) else (expected,) * n
        size = kwargs["input_size"] if isinstance(kwargs["input_size"], tuple) else (kwargs["input_size"],) * n
        assert layer(torch.zeros(1, 2, *size)).shape[2:] == expected


def test_same_padding_fixes_work_when_followed() -> None:
    with pytest.raises(ShapeError) as caught:
        TargetConvTranspose2d(1, 1, kernel_size=4, stride=1, padding="same")
    fix = fix_of(caught.value)
    kernel, stride = (int(v) for v in re.findall(r"(?:kernel_size|stride)=(\d+)", fix))
    for change in ({"kernel_size": kernel}, {"stride": stride}):
        layer = TargetConvTranspose2d(1, 1, **{"kernel_size": 4, "stride": 1, **change}, padding="same")
        assert layer(torch.zeros(1, 1, 5, 7)).shape[2:] == (5 * layer.stride[0], 7 * layer.stride[0])


@pytest.mark.parametrize("input_size", [4, 2])  # 'reflect' pads less than the input: 4 -> 9 can, 2 -> 9 cannot
def test_padding_mode_fixes_work_when_followed(input_size: int) -> None:
    with pytest.raises(ShapeError) as caught:
        TargetConv1d(2, 2, input_size=input_size, output_size=9, padding_mode="reflect")
    fix = fix_of(caught.value)
    assert "padding_mode='zeros'" in fix
    assert TargetConv1d(2, 2, input_size=input_size, output_size=9)(torch.zeros(1, 2, input_size)).shape[-1] == 9
    paddings = re.findall(r"padding=(\d+)", fix)
    assert len(paddings) == (input_size == 4)
    for padding in paddings:
        layer = TargetConv1d(2, 2, input_size=input_size, output_size=9, padding=int(padding), padding_mode="reflect")
        assert layer(torch.zeros(1, 2, input_size)).shape[-1] == 9


@pytest.mark.parametrize(("cls", "kwargs", "got"), [
    (TargetConv2d, {"input_size": 24, "output_size": 12}, (25, 25)),
    (TargetConvTranspose1d, {"input_size": 12, "output_size": 24, "kernel_size": 4, "stride": 2, "padding": 1}, (13,)),
    (TargetConv1d, {"input_size": 16, "scale_factor": 0.5, "kernel_size": 3, "stride": 2, "padding": 1}, (21,)),
    (TargetConv1d, {"input_size": 16, "output_size": 12, "kernel_size": 5}, (3,)),
], ids=["free", "fixed", "scale", "too-small"])
def test_forward_fixes_work_when_followed(cls: type[nn.Module], kwargs: dict, got: tuple[int, ...]) -> None:
    layer = cls(2, 2, **kwargs)
    with pytest.raises(ShapeError) as caught:
        layer(torch.zeros(1, 2, *got))
    fix = fix_of(caught.value)
    resized = ast.literal_eval(re.findall(r"resize the input to (\(.*?\))", fix)[0])
    x = nn.functional.interpolate(torch.zeros(1, 2, *got), size=resized)
    assert layer(x).shape[2:] == layer.output_size
    for size, output, instead in re.findall(
            r"build it with input_size=(\(.*?\))(?: and output_size=(\(.*?\)))?( instead of scale_factor)?", fix):
        changed = {**kwargs, "input_size": ast.literal_eval(size)}
        if output:
            changed["output_size"] = ast.literal_eval(output)
        if instead:
            del changed["scale_factor"]
        rebuilt = cls(2, 2, **changed)
        assert rebuilt(torch.zeros(1, 2, *got)).shape[2:] == rebuilt.output_size


# -- padding='same' and the sizes given with it: they agree, or the error names both ---------------------------------

TRANSPOSED = [cls for (transposed, _), (cls, _) in TARGETS.items() if transposed]


def follow(kwargs: dict, fix: str) -> dict:
    """One fix of a message, applied to the keyword arguments exactly as it is written."""
    changed = dict(kwargs)
    dropped = re.match(r"drop (\w+)(?: and (\w+))?", fix)
    if fix.startswith("drop padding='same'"):
        del changed["padding"]
    elif dropped:
        for name in filter(None, dropped.groups()):
            del changed[name]
    else:
        setting = re.match(r"(?:give )?(\w+)=(\(.*?\)|[\d.]+)", fix)
        assert setting is not None, fix
        changed[setting.group(1)] = ast.literal_eval(setting.group(2))
    return changed


def fixes_of(error: Exception) -> list[str]:
    return str(error).split("Fix: ", 1)[1].rstrip(".").split(", or ")


def run_at(layer: nn.Module, size: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(layer(torch.zeros(1, 2, *size)).shape[2:])


@pytest.mark.parametrize("cls", TRANSPOSED, ids=lambda c: c.__name__)
def test_same_padding_keeps_the_sizes_that_agree_and_checks_input_size(cls: type[nn.Module]) -> None:
    n = int(cls.__name__[-2])
    five, seven = (5,) * n, (7,) * n
    for sizes in ({"input_size": 5}, {"input_size": 5, "output_size": 10}, {"input_size": 5, "scale_factor": 2}):
        layer = cls(2, 2, kernel_size=3, stride=2, padding="same", **sizes)
        assert run_at(layer, five) == (10,) * n and layer.output_size == (10,) * n
        with pytest.raises(ShapeError, match=re.escape(f"built for input size {five} (to give {(10,) * n}) but got")):
            layer(torch.zeros(1, 2, *seven))  # the input_size check holds, as for every Target layer
    anywhere = cls(2, 2, kernel_size=3, stride=2, padding="same", scale_factor=2.0)
    assert run_at(anywhere, five) == (10,) * n and run_at(anywhere, seven) == (14,) * n


def wanted(changed: dict, size: tuple[int, ...], stride: tuple[int, ...]) -> tuple[int, ...]:
    """The size a layer built with these arguments must give: its output_size, floor(input·scale_factor), or
    input·stride (padding='same' with neither)."""
    if "output_size" in changed:
        target = changed["output_size"]
        return target if isinstance(target, tuple) else (target,) * len(size)
    if "scale_factor" in changed:
        return tuple(int(i * changed["scale_factor"]) for i in size)
    return tuple(i * s for i, s in zip(size, stride))


@pytest.mark.parametrize(("cls", "kwargs", "error", "pattern"), [
    (TargetConvTranspose2d, {"input_size": 5, "output_size": 11}, ShapeError,
     r"^TargetConvTranspose2d: padding='same' gives output = input·stride = 10 .*but output_size=11\. "
     r"Fix: drop padding='same' \(the solver then picks padding/output_padding for 11\), or output_size=10\.$"),
    (autoshape.TargetConvTranspose1d, {"input_size": 5, "output_size": 15}, ShapeError,
     r"= 10 .*but output_size=15\. Fix: output_size=10, or stride=3\.$"),
    (autoshape.TargetConvTranspose3d, {"input_size": (2, 5, 7), "output_size": (4, 10, 15)}, ShapeError,
     r"= \(4, 10, 14\) .*but output_size=\(4, 10, 15\)\. Fix: drop padding='same'"),
    (TargetConvTranspose2d, {"scale_factor": 3}, ShapeError,
     r"with stride=2, but scale_factor=3\. Fix: stride=3, or drop scale_factor"),
    (TargetConvTranspose2d, {"input_size": 6, "scale_factor": 2, "stride": None}, ShapeError,
     r"stride=1 \(the default\), but scale_factor=2\. Fix: stride=2, .*drop padding='same' \(the solver then "
     r"picks stride/padding/output_padding for scale_factor=2\)"),
    (TargetConvTranspose2d, {"output_size": 12}, TypeError,
     r"padding='same' with output_size=12 needs input_size.* Fix: give input_size=6 too"),
    (TargetConvTranspose2d, {"output_size": 11}, TypeError, r"Fix: drop output_size"),
    (TargetConvTranspose2d, {"kernel_size": 5, "max_kernel_size": 3}, ValueError,
     r"kernel_size=5 is above max_kernel_size=3.* Fix: drop max_kernel_size .*, or kernel_size=3\.$"),
    (TargetConvTranspose2d, {"max_stride": 1}, ValueError, r"stride=2 is above max_stride=1.* Fix: drop max_stride"),
], ids=["output", "output-1d", "output-3d", "scale", "scale-default-stride", "no-input", "no-input-odd", "max-kernel",
        "max-stride"])
def test_same_padding_refuses_what_contradicts_it_and_every_fix_works(
        cls: type[nn.Module], kwargs: dict, error: type[Exception], pattern: str) -> None:
    n = int(cls.__name__[-2])
    kwargs = {"kernel_size": 3, "stride": 2, "padding": "same", **kwargs}
    with pytest.raises(error, match=pattern) as caught:  # these used to build a layer that ignored the size
        cls(2, 2, **kwargs)
    for fix in fixes_of(caught.value):
        changed = follow(kwargs, fix)
        layer = cls(2, 2, **changed)
        for size in [layer.input_size] if layer.input_size is not None else [(5,) * n, (6,) * n]:
            assert run_at(layer, size) == wanted(changed, size, tuple(layer.stride)), fix


@pytest.mark.parametrize("sizes", [{"input_size": 5}, {"input_size": 5, "output_size": 10}], ids=["input", "both"])
def test_same_padding_forward_fixes_work_when_followed(sizes: dict) -> None:
    kwargs = {"kernel_size": 3, "stride": 2, "padding": "same", **sizes}
    layer = TargetConvTranspose2d(2, 2, **kwargs)
    with pytest.raises(ShapeError) as caught:
        layer(torch.zeros(1, 2, 7, 7))
    fixes = fixes_of(caught.value)
    assert any(fix.startswith("drop input_size") for fix in fixes)
    for fix in fixes:
        if fix.startswith("resize the input to (5, 5)"):
            assert run_at(layer, (5, 5)) == (10, 10)
            continue
        built = re.match(r"build it with input_size=(\(.*?\))(?: and output_size=(\(.*?\)))?", fix)
        changed = {**kwargs, "input_size": ast.literal_eval(built.group(1))} if built else follow(kwargs, fix)
        if built and built.group(2):
            changed["output_size"] = ast.literal_eval(built.group(2))
        assert run_at(TargetConvTranspose2d(2, 2, **changed), (7, 7)) == (14, 14), fix


@pytest.mark.parametrize("kwargs", [
    {"kernel_size": 3, "stride": 2, "padding": "same"},
    {"input_size": 7, "output_size": 14},
    {"input_size": 7, "scale_factor": 2},
], ids=["same", "output", "scale"])
def test_forward_output_size_must_be_the_layers_and_the_fixes_work(kwargs: dict) -> None:
    layer = TargetConvTranspose2d(2, 2, **kwargs)
    x = torch.zeros(1, 2, 7, 7)
    assert layer(x, output_size=[14, 14]).shape[2:] == (14, 14)  # the size it gives anyway: allowed
    assert layer(x, output_size=[1, 2, 14, 14]).shape[2:] == (14, 14)
    pattern = r"gives \(14, 14\) for input size \(7, 7\) .*output_size=\[15, 15\]"
    with pytest.raises(ShapeError, match=pattern) as caught:
        layer(x, output_size=[15, 15])  # torch alone would pick output_padding=1 and give 15
    fixes = fixes_of(caught.value)
    assert fixes[0].startswith("call it without output_size")
    assert layer(x).shape[2:] == (14, 14)
    built = re.match(r"build it with input_size=(\(.*?\)) and output_size=(\(.*?\))( instead of scale_factor)?"
                     r"( and without padding='same')?$", fixes[1])
    assert built is not None, fixes
    changed = {**kwargs, "input_size": ast.literal_eval(built.group(1)),
               "output_size": ast.literal_eval(built.group(2))}
    for name, said in (("scale_factor", built.group(3)), ("padding", built.group(4))):
        if said:
            del changed[name]
    assert run_at(TargetConvTranspose2d(2, 2, **changed), (7, 7)) == (15, 15)
