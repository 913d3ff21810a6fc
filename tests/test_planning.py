"""Planning: exact by running torch, complete and best by brute force, the issue's targets, clear errors."""

from __future__ import annotations

import ast
import functools
import itertools
import json
import re
from collections.abc import Callable
from dataclasses import fields, replace
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from autoshape import ConvParams, Plan, PlanStep, ShapeError, plan_downsampling, plan_upsampling
from tests.torch_reference import torch_conv_size, torch_conv_transpose_size, torch_size

MAX_K, MAX_S = 4, 3
"""The brute-force box: kernels up to MAX_K, strides up to MAX_S, padding <= kernel-1, dilation 1."""


def free_cap(max_stride: int) -> int:
    """The largest free kernel, as plan_upsampling and plan_downsampling document it (projections exempt)."""
    return 4 * max_stride + 1


def planner(transposed: bool) -> Callable[..., Plan]:
    return plan_upsampling if transposed else plan_downsampling


def assert_exact(plan: Plan, start: tuple[int, ...], target: tuple[int, ...]) -> None:
    """Run every layer in torch: each step's output is what torch gives, and the chain hits the target."""
    size = start
    for step in plan:
        assert step.input_size == size
        size = torch_size(step.params, size)
        assert size == step.output_size, step
    assert size == target


def checkerboards(plan: Plan) -> int:
    return sum(any(k % s for k, s in zip(step.params.kernel_size, step.params.stride)) for step in plan
               if step.params.transposed)


def reversals(plan: Plan) -> int:
    sign = 1 if plan.transposed else -1
    return sum(any(sign * (o - i) < 0 for i, o in zip(step.input_size, step.output_size)) for step in plan)


def idle(plan: Plan) -> int:
    """Layers that keep the size (in some dimension)."""
    return sum(any(i == o for i, o in zip(step.input_size, step.output_size)) for step in plan)


# -- brute force: every layer in the box, sized by torch ---------------------------------------------------------------

@functools.cache
def one_layer(transposed: bool, i: int, max_k: int = MAX_K) -> tuple[tuple[int, int, int], ...]:
    """(kernel, stride, output size) of every layer in the box (kernels up to ``max_k``) on an input of size i,
    by torch."""
    found = []
    for k, s in itertools.product(range(1, max_k + 1), range(1, MAX_S + 1)):
        for p, op in itertools.product(range(k), range(s) if transposed else (0,)):
            size = (torch_conv_transpose_size([i], [k], [s], [p], [1], [op]) if transposed
                    else torch_conv_size([i], [k], [s], [p], [1]))
            if size is not None:
                found.append((k, s, size[0]))
    return tuple(sorted(set(found)))


def projections(transposed: bool, i: int, target: int, ceiling: int) -> list[tuple[int, int, int]]:
    """The layers a free kernel may take past its cap, by torch: from size 1 to its kernel's footprint
    (transposed), or a whole input to size 1 (plain, when 1 is the target); stride 1, no padding."""
    if transposed and i == 1:
        return [(k, 1, torch_conv_transpose_size([1], [k], [1], [0], [1], [0])[0]) for k in range(1, ceiling + 1)]
    if not transposed and target == 1:
        return [(i, 1, torch_conv_size([i], [i], [1], [0], [1])[0])]
    return []


def brute_force(transposed: bool, start: int, layers: int, kernels: range, max_stride: int,
                ceiling: int, free_target: int | None = None) -> dict[int, tuple[int, int, int]]:
    """Every final size reachable in ``layers`` layers, with the fewest (reversals, checkerboards, idle layers)
    of any path, compared in that order.

    Sizes above ``ceiling`` are dropped: a layer in the box shrinks (or, plain, grows) by at most MAX_K-1,
    so callers pass a ceiling from which the target is out of reach. With ``free_target``, the layers of a
    free kernel planned to that target: ``kernels`` up to its cap, :func:`projections` past it, and no
    layer turning back.
    """
    best = {start: (0, 0, 0)}
    for _ in range(layers):
        reached: dict[int, tuple[int, int, int]] = {}
        for i, (back, checker, kept) in best.items():
            moves = [(k, s, o) for k, s, o in one_layer(transposed, i, max(MAX_K, kernels[-1]))
                     if k in kernels and s <= max_stride]
            if free_target is not None:
                moves += projections(transposed, i, free_target, ceiling)
            for k, s, o in moves:
                turned = o < i if transposed else o > i
                if o <= ceiling and not (turned and free_target is not None):
                    cost = (back + turned, checker + (transposed and k % s != 0), kept + (o == i))
                    reached[o] = min(cost, reached.get(o, cost))
        best = reached
    return best


@st.composite
def requests(draw: st.DrawFn) -> tuple[bool, int, int, int, dict[str, int]]:
    transposed = draw(st.booleans())
    small, big = sorted((draw(st.integers(1, 24)), draw(st.integers(1, 24))))
    start, target = (small, big) if transposed else (big, small)
    bound = draw(st.sampled_from(["kernel_size", "max_kernel_size"]))
    return transposed, start, target, draw(st.integers(1, 4)), {
        bound: draw(st.integers(1, MAX_K)), "max_stride": draw(st.integers(1, MAX_S))}


@settings(max_examples=150)
@given(request=requests())
def test_plans_are_exact_and_best_or_refused_and_brute_force_agrees(request: tuple) -> None:
    transposed, start, target, layers, bounds = request
    kernel = bounds.get("kernel_size") or bounds["max_kernel_size"]
    kernels = range(kernel, kernel + 1) if "kernel_size" in bounds else range(1, kernel + 1)
    ceiling = 4 * max(start, target) + (layers + 2 * MAX_S) * MAX_K  # past every size an error message names
    reachable = brute_force(transposed, start, layers, kernels, bounds["max_stride"], ceiling)
    try:
        plan = planner(transposed)(start, target, layers, **bounds)
    except ShapeError as error:
        assert target not in reachable, (request, reachable.get(target))
        check_refusal(str(error), transposed, start, target, layers, bounds, set(reachable))
        return
    assert target in reachable, request
    assert_exact(plan, (start,), (target,))
    assert len(plan) == layers
    for step in plan:
        assert step.params.kernel_size[0] in kernels and step.params.stride[0] <= bounds["max_stride"]
        assert step.params.padding[0] < step.params.kernel_size[0]
    assert (reversals(plan), checkerboards(plan), idle(plan)) == reachable[target]


def check_refusal(message: str, transposed: bool, start: int, target: int, layers: int, bounds: dict[str, int],
                  reachable: set[int]) -> None:
    """The refusal names the true extreme or nearest sizes, and every fix it suggests works."""
    extreme = re.search(r"The (largest|smallest) size they reach is (\d+)\.", message)
    if extreme:
        named = int(extreme.group(2))
        assert named == (max(reachable) if extreme.group(1) == "largest" else min(reachable)), message
    else:
        near = re.search(r"Nearest reachable sizes: (\w+) below, (.+?) above\.", message)
        assert near, message
        below = max((size for size in reachable if size < target), default=None)
        assert near.group(1) == str(below or "none"), (message, sorted(reachable))
        if near.group(2).isdigit():
            above = int(near.group(2))
            assert above in reachable and not any(target < size < above for size in reachable), message
    assert "Fix: " in message
    for name, value in re.findall(r"(num_layers|max_stride)=(\d+)", message.split("Fix: ")[1]):
        fixed = {**bounds, name: int(value)} if name == "max_stride" else bounds
        plan = planner(transposed)(start, target, int(value) if name == "num_layers" else layers, **fixed)
        assert plan.output_size == (target,)
    for value in re.findall(r"output_size=(\d+)", message.split("Fix: ")[1]):
        assert planner(transposed)(start, int(value), layers, **bounds).output_size == (int(value),)
    follow_kernel_fixes(message, transposed, (start,), (target,), layers, bounds)


def follow_kernel_fixes(message: str, transposed: bool, start: tuple[int, ...], target: tuple[int, ...],
                        layers: int, bounds: dict[str, Any]) -> None:
    """'leave kernel_size free (None)', alone or 'with max_kernel_size=K', and 'max_kernel_size=K' plan the
    target when followed literally."""
    free = {name: value for name, value in bounds.items() if name != "kernel_size"}
    for fix in message.split("Fix: use ")[1].removesuffix(".").split(", or "):
        if fix.startswith(("leave kernel_size free (None)", "max_kernel_size=")):
            kept = free if fix.startswith("leave") else bounds
            cap = re.search(r"max_kernel_size=(\d+)$", fix)
            kept = {**kept, "max_kernel_size": int(cap.group(1))} if cap else kept
            assert_exact(planner(transposed)(start, target, layers, **kept), start, target)


@settings(max_examples=100)
@given(transposed=st.booleans(), small=st.tuples(st.integers(1, 12), st.integers(1, 12)),
       growth=st.tuples(st.integers(0, 40), st.integers(0, 40)), layers=st.integers(1, 4),
       bound=st.sampled_from(["kernel_size", "max_kernel_size", None]), kernel=st.integers(1, 4),
       max_stride=st.integers(1, 3))
def test_every_fix_of_a_2d_refusal_plans_every_dimension_when_followed(
    transposed: bool, small: tuple[int, int], growth: tuple[int, int], layers: int, bound: str | None, kernel: int,
    max_stride: int
) -> None:
    """More layers, a larger stride or kernel bound change every dimension: each fix is checked on both
    (with a fixed, bounded or free kernel, whose cap grows with max_stride)."""
    big = (small[0] + growth[0], small[1] + growth[1])
    start, target = (small, big) if transposed else (big, small)
    bounds: dict[str, Any] = {"max_stride": max_stride, **({bound: kernel} if bound else {})}
    try:
        planner(transposed)(start, target, layers, **bounds)
        return
    except ShapeError as error:
        message = str(error)
    fix = message.split("Fix: ")[1]
    for value in re.findall(r"output_size=(\([\d, ]+\)|\d+)", fix):
        asked = ast.literal_eval(value)
        asked = asked if isinstance(asked, tuple) else (asked, asked)
        assert_exact(planner(transposed)(start, asked, layers, **bounds), start, asked)
    for name, value in re.findall(r"(num_layers|max_stride)=(\d+)", fix):
        count = int(value) if name == "num_layers" else layers
        changed = {**bounds, "max_stride": int(value)} if name == "max_stride" else bounds
        assert_exact(planner(transposed)(start, target, count, **changed), start, target)
    follow_kernel_fixes(message, transposed, start, target, layers, bounds)


@settings(max_examples=80)
@given(transposed=st.booleans(), sizes=st.tuples(st.integers(1, 40), st.integers(1, 40)), layers=st.integers(1, 5),
       max_stride=st.integers(1, 3))
def test_a_free_kernel_plans_exact_monotone_capped_and_idle_only_when_it_must_or_refuses_as_brute_force_does(
    transposed: bool, sizes: tuple[int, int], layers: int, max_stride: int
) -> None:
    """A brute force over the kernels up to the free cap, with projections from or to size 1 past it and no
    layer turning back, agrees: a plan where it reaches the target, with its fewest checkerboards (none) and
    idle layers (a checkerboard only where the cap leaves no other way, as 2→11→30 with kernel 9 at stride 2);
    else a refusal that names the true extreme or nearest sizes, and fixes that work."""
    small, big = sorted(sizes)
    start, target = (small, big) if transposed else (big, small)
    cap = free_cap(max_stride)
    ceiling = 4 * big + 2 * cap * max_stride  # past every size an error message names
    reachable = brute_force(transposed, start, layers, range(1, cap + 1), max_stride, ceiling, free_target=target)
    try:
        plan = planner(transposed)(start, target, layers, max_stride=max_stride)
    except ShapeError as error:
        assert target not in reachable, (start, target, layers, max_stride, reachable.get(target))
        assert f"kernel_size <= {cap}, the cap on a free kernel" in str(error)
        check_refusal(str(error), transposed, start, target, layers, {"max_stride": max_stride}, set(reachable))
        return
    assert_exact(plan, (start,), (target,))
    assert (reversals(plan), checkerboards(plan), idle(plan)) == reachable[target]
    assert idle(plan) == max(0, layers - (big - small))
    assert all(step.params.stride[0] <= max_stride for step in plan)


def is_projection(step: PlanStep, d: int) -> bool:
    """A layer from size 1 (transposed) or to size 1 (plain) in dimension d: its kernel is its footprint."""
    return (step.input_size if step.params.transposed else step.output_size)[d] == 1


@settings(max_examples=100)
@given(transposed=st.booleans(), small=st.tuples(st.integers(1, 5000), st.integers(1, 5000)),
       growth=st.tuples(st.integers(1, 64), st.integers(1, 64)), layers=st.integers(1, 8), max_stride=st.integers(1, 4))
def test_a_free_kernel_never_exceeds_its_documented_cap_but_in_projections(
    transposed: bool, small: tuple[int, int], growth: tuple[int, int], layers: int, max_stride: int
) -> None:
    """Every planned kernel is at most 4·max_stride+1, except projections from or to size 1, and no layer
    turns back; a scale that needs larger kernels is refused."""
    big = tuple(min(s * g, 10**5) for s, g in zip(small, growth))
    start, target = (small, big) if transposed else (big, small)
    try:
        plan = planner(transposed)(start, target, layers, max_stride=max_stride)
    except ShapeError as error:
        assert "the cap on a free kernel" in str(error)
        return
    assert plan.output_size == target and reversals(plan) == 0
    for step in plan:
        assert all(k <= free_cap(max_stride) or is_projection(step, d) for d, k in enumerate(step.params.kernel_size))


@pytest.mark.parametrize("transposed", [True, False])
def test_a_free_kernel_is_refused_rather_than_turn_back(transposed: bool) -> None:
    """47→155 in 4 layers: within the cap only a plan with a shrinking layer gets there (47→86→81→154→155), and
    a free kernel never turns back; a hard max_kernel_size, the fix named, allows it."""
    start, target = (47, 155) if transposed else (155, 47)
    with pytest.raises(ShapeError, match=f"no layer {'shrinking' if transposed else 'growing'}") as caught:
        planner(transposed)(start, target, 4)
    [cap] = re.findall(r"max_kernel_size=(\d+)\.$", str(caught.value))
    plan = planner(transposed)(start, target, 4, max_kernel_size=int(cap))
    assert torch_length(plan, start) == target and reversals(plan) > 0  # as only a hard bound allows


# -- the issue's targets -----------------------------------------------------------------------------------------------

DCGAN_GENERATOR = [(4, 1, 0), (4, 2, 1), (4, 2, 1), (4, 2, 1), (4, 2, 1)]
"""pytorch/examples' DCGAN generator: (kernel, stride, padding) per ConvTranspose2d, from a 1×1 latent."""
DCGAN_DISCRIMINATOR = [(4, 2, 1), (4, 2, 1), (4, 2, 1), (4, 2, 1), (4, 1, 0)]


def layer_values(plan: Plan) -> list[tuple[int, int, int]]:
    return [(s.params.kernel_size[0], s.params.stride[0], s.params.padding[0]) for s in plan]


@pytest.mark.parametrize("kernel_size", [4, None])
def test_dcgan_generator_path(kernel_size: int | None) -> None:
    plan = plan_upsampling((1, 1), (64, 64), 5, kernel_size=kernel_size)
    assert [step.output_size for step in plan] == [(4, 4), (8, 8), (16, 16), (32, 32), (64, 64)]
    assert layer_values(plan) == DCGAN_GENERATOR
    assert all(step.params.output_padding == (0, 0) for step in plan)
    assert_exact(plan, (1, 1), (64, 64))


def test_dcgan_discriminator_path() -> None:
    plan = plan_downsampling((64, 64), (1, 1), 5, kernel_size=4)
    assert [step.output_size[0] for step in plan] == [32, 16, 8, 4, 1]
    assert layer_values(plan) == DCGAN_DISCRIMINATOR
    assert_exact(plan, (64, 64), (1, 1))


def test_mnist_goes_through_7_and_14() -> None:
    plan = plan_upsampling(1, 28, 3)
    assert [step.output_size for step in plan] == [(7,), (14,), (28,)]
    assert_exact(plan, (1,), (28,))


ANY_TARGET = [  # (input, output, layers)
    (1, 28, 3), (1, 28, 4), (1, 32, 4), (1, 100, 5), (1, 7, 2), (3, 7, 1), ((3, 5), (48, 80), 4),
    ((1, 1), (48, 80), 5), (4, 250, 6), ((2, 4, 4), (16, 32, 32), 3), ((1, 1, 1), (7, 28, 28), 3),
]


@pytest.mark.parametrize(("start", "target", "layers"), ANY_TARGET)
def test_any_target_is_exact_checkerboard_free_and_within_stride_both_ways(start, target, layers) -> None:
    n = len(start) if isinstance(start, tuple) else 1

    def full(size: int | tuple[int, ...]) -> tuple[int, ...]:
        return size if isinstance(size, tuple) else (size,) * n

    up = plan_upsampling(start, target, layers)
    assert_exact(up, full(start), full(target))
    assert checkerboards(up) == 0 and all(max(step.params.stride) <= 2 for step in up)
    down = plan_downsampling(target, start, layers)
    assert_exact(down, full(target), full(start))
    assert all(max(step.params.stride) <= 2 for step in down)


@pytest.mark.parametrize(("start", "layers", "stride"), [(3, 4, 2), (5, 3, 2), (2, 2, 3), (7, 1, 2), ((3, 5), 4, 2)])
def test_a_whole_scale_gives_whole_strides(start, layers: int, stride: int) -> None:
    target = tuple(v * stride**layers for v in start) if isinstance(start, tuple) else start * stride**layers
    for plan in (plan_upsampling(start, target, layers, max_stride=stride),
                 plan_downsampling(target, start, layers, max_stride=stride)):
        for step in plan:
            assert step.params.stride == (stride,) * len(step.input_size)
            small, big = sorted((step.input_size, step.output_size))
            assert big == tuple(v * stride for v in small)


def test_scale_is_spread_across_layers() -> None:
    """1→100 in 5: a small projection, then every layer doubles (one of them by one extra pixel)."""
    plan = plan_upsampling(1, 100, 5)
    ratios = [step.output_size[0] / step.input_size[0] for step in plan[1:]]
    assert all(2 <= r <= 2.1 for r in ratios), ratios
    assert plan[0].output_size[0] < 10


def test_the_issue_plan_1_to_28_in_4_layers_changes_the_size_at_every_layer() -> None:
    """1→3→6→14→28: no idle layer and no checkerboard (the old plan kept 7 at layer 2)."""
    plan = plan_upsampling(1, 28, 4)
    assert_exact(plan, (1,), (28,))
    assert idle(plan) == 0 and checkerboards(plan) == 0
    assert [step.output_size[0] for step in plan] == [3, 6, 14, 28]


@pytest.mark.parametrize("transposed", [True, False])
def test_spare_layers_change_the_size_when_a_clean_plan_exists(transposed: bool) -> None:
    """4→64 in 6: three doublings cannot fill six layers, yet no layer keeps the size: the other three
    are uneven steps, the fewest possible (two can't both grow and multiply to 1)."""
    plan = plan_upsampling(4, 64, 6) if transposed else plan_downsampling(64, 4, 6)
    assert_exact(plan, (plan.input_size[0],), (plan.output_size[0],))
    assert idle(plan) == 0 and checkerboards(plan) == 0 and reversals(plan) == 0
    sizes = [sorted(step.input_size + step.output_size) for step in plan]
    assert sum(big == 2 * small for small, big in sizes) == 3


def test_int_sizes_give_tuples_and_dimensions_are_planned_independently() -> None:
    plan = plan_upsampling(2, 16, 3)
    assert plan.input_size == (2,) and all(isinstance(step.output_size, tuple) for step in plan)
    wide = plan_upsampling((2, 3), (16, 12), 3)
    assert [s.output_size[0] for s in wide] == [s.output_size[0] for s in plan]
    assert [s.output_size[1] for s in wide] == [s.output_size[0] for s in plan_upsampling(3, 12, 3)]


def test_fixed_kernel_and_stride_bounds_are_honoured_per_dimension() -> None:
    plan = plan_upsampling((1, 2), (28, 16), 3, kernel_size=(7, 4), max_stride=(3, 2))
    assert_exact(plan, (1, 2), (28, 16))
    assert all(step.params.kernel_size == (7, 4) and step.params.stride[1] <= 2 for step in plan)


def test_a_fixed_even_kernel_turns_back_only_when_it_must() -> None:
    """Kernel 4 at stride 1 changes a size by an odd amount, so 8→8 in two layers must leave 8."""
    plan = plan_upsampling(8, 8, 2, kernel_size=4, max_stride=1)
    assert_exact(plan, (8,), (8,))
    assert reversals(plan) == 1


def test_plans_are_deterministic() -> None:
    assert plan_upsampling((1, 1), (28, 28), 4) == plan_upsampling((1, 1), (28, 28), 4)


# -- Plan: a checked, readable, serialisable sequence -----------------------------------------------------------------

def test_plan_is_a_sequence() -> None:
    plan = plan_upsampling(1, 64, 5, kernel_size=4)
    assert len(plan) == 5 and plan[-1] is plan.steps[4] and plan[1:3] == plan.steps[1:3]
    assert list(plan) == list(plan.steps) and plan[0] in plan
    assert plan.transposed and not plan_downsampling(64, 1, 5).transposed
    assert hash(plan) == hash(plan_upsampling(1, 64, 5, kernel_size=4))


def test_table_has_a_title_a_header_and_aligned_rows() -> None:
    lines = str(plan_upsampling((1, 1), (48, 80), 5)).splitlines()
    assert lines[0] == "5 transposed convolutions: 1×1 → 48×80"
    assert lines[1].split() == ["layer", "input", "output", "kernel", "stride", "padding", "output_padding"]
    assert lines[2].split() == ["1", "1×1", "3×5", "3×5", "1", "0", "0"]
    starts = {line.index(cell) for line in lines[1:] for cell in line.split()[2:3]}
    assert len(starts) == 1  # the output column starts at one offset in every row
    conv = str(plan_downsampling(64, 1, 5, kernel_size=4)).splitlines()
    assert conv[0] == "5 convolutions: 64 → 1" and "output_padding" not in conv[1]


def test_to_dict_is_json_ready_and_rebuilds_the_parameters() -> None:
    plan = plan_upsampling((1, 1), (28, 28), 3)
    data = json.loads(json.dumps(plan.to_dict()))
    assert data["transposed"] is True and data["input_size"] == [1, 1] and data["output_size"] == [28, 28]
    rebuilt = [PlanStep(tuple(s["input_size"]), tuple(s["output_size"]),
                        ConvParams(**{f.name: tuple(s[f.name]) if f.name != "transposed" else s[f.name]
                                      for f in fields(ConvParams)})) for s in data["steps"]]
    assert Plan(tuple(rebuilt)) == plan


def test_plan_refuses_steps_that_do_not_hold() -> None:
    good = plan_upsampling(1, 28, 3)
    with pytest.raises(ValueError, match="one or more PlanStep"):
        Plan(())
    with pytest.raises(ValueError, match="one or more PlanStep"):
        Plan(("step",))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="step 2 takes"):
        Plan((good[0], good[2]))
    with pytest.raises(ValueError, match="not"):
        Plan((replace(good[0], output_size=(8,)),))
    mixed = plan_downsampling(28, 14, 1)[0]
    with pytest.raises(ValueError, match="all transposed"):
        Plan((good[2], replace(mixed, input_size=(28,))))


# -- errors -----------------------------------------------------------------------------------------------------------

def torch_length(plan: Plan, start: int) -> int:
    """The length torch's own nn.ConvTranspose1d or nn.Conv1d layers, built from the plan, give on zeros."""
    x = torch.zeros(1, 1, start, device="meta")
    for step in plan:
        layer = nn.ConvTranspose1d if step.params.transposed else nn.Conv1d
        x = layer(1, 1, device="meta", **step.params.as_kwargs())(x)
    return x.shape[-1]


@pytest.mark.parametrize("transposed", [True, False])
@pytest.mark.parametrize(("small", "big"), [(16, 16384), (16, 1000)])
def test_a_scale_past_the_free_cap_is_refused_and_each_fix_works_literally_in_torch(
    transposed: bool, small: int, big: int
) -> None:
    """The issue's requests in 5 layers, once met with kernels of 640 and 20: the refusal names the cap and
    the smallest larger max_stride, the fewest layers and the smallest max_kernel_size (a hard bound, so the
    big kernels stay reachable); each, followed as written, plans layers that torch runs to the target, and
    one less is refused."""
    start, target = (small, big) if transposed else (big, small)
    asked = {"num_layers": 5, "max_stride": 2}
    with pytest.raises(ShapeError) as caught:
        planner(transposed)(start, target, **asked)
    message = str(caught.value)
    bounds = "kernel_size <= 9, the cap on a free kernel, stride <= 2, padding <= kernel_size-1, no layer "
    assert f"({bounds}{'shrinking' if transposed else 'growing'})" in message
    fix = message.split("Fix: ")[1]
    fixes = dict(re.findall(r"\b(num_layers|max_stride|max_kernel_size)=(\d+)", fix))
    assert fixes.keys() == {"num_layers", "max_stride", "max_kernel_size"}, message
    for name, value in fixes.items():
        plan = planner(transposed)(start, target, **{**asked, name: int(value)})
        assert torch_length(plan, start) == target
        with pytest.raises(ShapeError):
            planner(transposed)(start, target, **{**asked, name: int(value) - 1})
    for value in re.findall(r"output_size=(\d+)", fix):
        assert torch_length(planner(transposed)(start, int(value), **asked), start) == int(value)


def test_too_few_layers_names_the_largest_size_and_confirmed_fixes() -> None:
    with pytest.raises(ShapeError) as caught:
        plan_upsampling((1, 1), (64, 64), 4, kernel_size=4)
    message = str(caught.value)
    assert "plan_upsampling((1, 1), (64, 64), 4, kernel_size=4, max_stride=2)" in message
    assert "in dimension 1 of 2 (height) (" in message and "The largest size they reach is 61." in message
    assert "num_layers=5" in message and "max_stride=3" in message and "leave kernel_size free" in message


def test_too_few_layers_down_names_the_smallest_size() -> None:
    with pytest.raises(ShapeError, match=r"smallest size they reach is 2\. Fix: use output_size=2, or num_layers=5"):
        plan_downsampling(64, 1, 4, kernel_size=4)


def test_parity_gap_names_the_nearest_sizes() -> None:
    with pytest.raises(ShapeError,
                       match=r"Nearest reachable sizes: 6 below, 8 above\. Fix: use output_size=6 or output_size=8,"):
        plan_upsampling(4, 7, 2, kernel_size=3, max_stride=1)


@pytest.mark.parametrize("transposed", [True, False])
def test_a_wrong_direction_fix_works_when_followed(transposed: bool) -> None:
    start, target = (28, 1) if transposed else (1, 28)
    with pytest.raises(ValueError, match=r"Fix: use plan_(down|up)sampling for the other direction"):
        planner(transposed)(start, target, 3)
    assert_exact(planner(not transposed)(start, target, 3), (start,), (target,))
    mixed = ((4, 8), (8, 4)) if transposed else ((8, 4), (4, 8))
    with pytest.raises(ValueError) as caught:
        planner(transposed)(*mixed, 2)
    kept = ast.literal_eval(re.findall(r"Fix: use output_size=(\(.*?\))", str(caught.value))[0])
    assert_exact(planner(transposed)(mixed[0], kept, 2), mixed[0], kept)


@pytest.mark.parametrize(("call", "error", "pattern"), [
    (lambda: plan_upsampling(28, 1, 3), ValueError, "at least the input_size.*Fix: use plan_downsampling"),
    (lambda: plan_downsampling(1, 28, 3), ValueError, "at most the input_size.*Fix: use plan_upsampling"),
    (lambda: plan_upsampling(1, 28, 0), ValueError, "num_layers must be >= 1"),
    (lambda: plan_upsampling(1, 28, 2.0), TypeError, "num_layers must be an int"),
    (lambda: plan_upsampling(1, "28", 2), TypeError, "output_size must be an int"),
    (lambda: plan_upsampling((1, 1), (28, 28, 28), 2), ValueError, "different lengths"),
    (lambda: plan_upsampling(1, 28, 2, max_stride=0), ValueError, "max_stride must be >= 1"),
    (lambda: plan_upsampling(1, 28, 2, kernel_size=4, max_kernel_size=5), ValueError, "not both"),
])
def test_bad_arguments_are_refused_with_the_value(call, error: type[Exception], pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        call()
