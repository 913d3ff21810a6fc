"""The ``autoshape`` command line: ``solve``, ``plan``, ``explain``, ``fix`` and ``taps``.

Exit codes: 0 success; 1 the request is impossible (a ShapeError naming the nearest reachable
sizes, a model whose forward fails, or one that no fix makes run); 2 a usage error. User mistakes
print one message, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.util
import inspect
import json
import math
import os
import re
import shlex
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from torch import nn

from .core.formulas import format_terms, params_terms
from .core.planning import plan_downsampling, plan_upsampling
from .core.sizes import IntOrTuple, as_tuple, dim_names, spatial_ndim
from .core.solver import ConvParams, ranked_solutions, solve_conv, solve_conv_transpose
from .core.text import aligned_table, clause, format_shape
from .diagnose.explain import explain
from .diagnose.fix import fix
from .diagnose.taps import OverlapMap, overlap_map, transpose_taps
from .errors import ShapeError
from .tracing.recorder import as_input_shape
from .version import __version__

__all__ = ["main"]

OK, IMPOSSIBLE, USAGE = 0, 1, 2
T = TypeVar("T")


class _UsageError(Exception):
    """A mistake in the command line's arguments (exit code 2)."""


def _size(text: str) -> IntOrTuple:
    """``"12"`` → 12 and ``"12,24"`` → (12, 24): the argparse type of every size argument."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an int or comma-separated ints (e.g. 12 or 12,24)") from None
    return values[0] if len(values) == 1 else values


def _is_upsampling(input_size: IntOrTuple, output_size: IntOrTuple) -> bool:
    """The default direction: transposed when the output is at least the input in every dimension
    and larger in one; a plain convolution otherwise (smaller, equal or mixed)."""
    n = spatial_ndim(input_size, output_size) or 1
    pairs = list(zip(as_tuple(input_size, "IN", n), as_tuple(output_size, "OUT", n)))
    return all(o >= i for i, o in pairs) and any(o > i for i, o in pairs)


def _transposed(args: argparse.Namespace) -> bool:
    if args.conv or args.transpose:
        return bool(args.transpose)
    return _is_upsampling(args.input, args.output)


# --- solve ------------------------------------------------------------------------------------

def _kwargs_text(params: ConvParams, int_form: bool) -> str:
    defaults = {"padding": 0, "dilation": 1, "output_padding": 0}
    shown = []
    for name, values in params.as_kwargs().items():
        if name in defaults and set(values) == {defaults[name]}:
            continue
        shown.append(f"{name}={values[0] if int_form else values}")
    return ", ".join(shown)


def _describe(params: ConvParams, input_size: IntOrTuple, output_size: IntOrTuple, int_form: bool) -> str:
    n = len(params.kernel_size)
    layer = ("ConvTranspose" if params.transposed else "Conv") + ("" if int_form else f"{n}d")
    sizes, target = as_tuple(input_size, "IN", n), as_tuple(output_size, "OUT", n)  # an int is every dimension's
    names = ("out",) if int_form else dim_names(n)
    shown = f"{format_shape(sizes[0])} → {format_shape(target[0])}" if int_form else (
        f"{format_shape(sizes)} → {format_shape(target)}")
    return (f"{layer} {shown}: {_kwargs_text(params, int_form)}\n"
            f"  {format_terms(params_terms(params, sizes), names)}")


def _ranked_table(solutions: Sequence[ConvParams], int_form: bool) -> str:
    names = ["kernel_size", "stride", "padding", "dilation", "output_padding"]
    lines = [["rank", *names]]
    for rank, params in enumerate(solutions, 1):
        values = [getattr(params, name) for name in names]
        lines.append([str(rank), *(str(v[0] if int_form else v) for v in values)])
    return aligned_table(lines)


def _solve(args: argparse.Namespace) -> int:
    transposed = _transposed(args)
    fixed = {"kernel_size": args.kernel_size, "stride": args.stride, "padding": args.padding,
             "dilation": args.dilation}
    best = (solve_conv_transpose if transposed else solve_conv)(args.input, args.output, **fixed)
    solutions = ranked_solutions(args.input, args.output, transposed=transposed, **fixed) if args.all else [best]
    int_form = spatial_ndim(args.input, args.output, *fixed.values()) is None  # no tuple anywhere: show ints
    if args.json:
        fields = [dataclasses.asdict(params) for params in solutions]
        print(json.dumps(fields if args.all else fields[0]))
        return OK
    print(_describe(best, args.input, args.output, int_form))
    if args.all:
        print()
        print(_ranked_table(solutions, int_form))
    return OK


# --- plan -------------------------------------------------------------------------------------

def _plan(args: argparse.Namespace) -> int:
    options = {name: getattr(args, name) for name in ("kernel_size", "max_stride", "max_kernel_size")
               if getattr(args, name) is not None}
    planner = plan_upsampling if _transposed(args) else plan_downsampling
    plan = planner(args.input, args.output, args.layers, **options)
    print(json.dumps(plan.to_dict()) if args.json else plan)
    return OK


# --- explain ----------------------------------------------------------------------------------

def _import(module_name: str, attribute: str) -> Any:
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        path = module_name.replace(".", "/") + ".py"
        raise _UsageError(f"cannot import {module_name!r}: {clause(error)}. Fix: run from the directory that holds it, "
                          f"or give its path, e.g. path/to/{path}:{attribute}.") from None
    except Exception as error:
        raise _UsageError(f"importing {module_name!r} failed: {type(error).__name__}: {error}") from None


def _import_file(path: str) -> Any:
    """Run a Python file as a module; its folder goes on the path, so its own imports of neighbours work."""
    file = Path(path)
    if not file.is_file():
        raise _UsageError(f"no file {path!r} (looked in {os.getcwd()})")
    folder = str(file.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = file.stem if file.stem not in sys.modules else f"autoshape_explain_{file.stem}"  # never shadow a module
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise _UsageError(f"{path!r} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # as a plain import would: dataclasses and pickling look it up
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        raise _UsageError(f"running {path!r} failed: {type(error).__name__}: {error}") from None
    return module


def _models_in(module: object, prefix: str) -> str:
    """``Fix: point to mymodels.py:model or mymodels.py:Net``: the models a module defines, to name in a fix."""
    def buildable(value: object) -> bool:
        if isinstance(value, nn.Module):
            return True
        if not (isinstance(value, type) and issubclass(value, nn.Module)
                and value.__module__ == getattr(module, "__name__", None)):
            return False
        try:
            inspect.signature(value).bind()  # a class built without arguments
        except (TypeError, ValueError):
            return False
        return True

    names = [name for name, value in vars(module).items() if not name.startswith("_") and buildable(value)]
    if not names:
        return "Fix: point to an nn.Module instance, a Module class or a factory that takes no arguments."
    return f"Fix: point to {' or '.join(f'{prefix}:{name}' for name in sorted(names)[:6])}."


def _build(target: str, found: object, module: object) -> nn.Module:
    if isinstance(found, nn.Module):
        return found
    if not callable(found):
        kind = type(found).__name__
        raise _UsageError(f"{target} is {'an' if kind[0] in 'aeiou' else 'a'} {kind}, not an nn.Module, a Module class "
                          f"or a factory. {_models_in(module, target.rpartition(':')[0])}")
    try:
        model = found()
    except Exception as error:
        raise _UsageError(f"calling {target}() failed: {type(error).__name__}: {clause(error)}. Fix: point to an "
                         "instance, or to a factory that takes no arguments.") from None
    if not isinstance(model, nn.Module):
        raise _UsageError(f"{target}() returned a {type(model).__name__}, not an nn.Module")
    return model


def _load_model(target: str) -> nn.Module:
    """The model named by ``MODULE:ATTR`` or ``path/to/file.py:ATTR``: an ``nn.Module`` instance, a class
    or a zero-argument factory.

    Raises:
        _UsageError: a malformed target, a failed import, a missing attribute or not a module.
    """
    module_name, _, attribute = target.rpartition(":")
    if not module_name or not attribute:
        raise _UsageError(f"expected MODULE:ATTR or path/to/file.py:ATTR (e.g. mymodels:Generator), got {target!r}")
    is_path = module_name.endswith(".py") or "/" in module_name or os.sep in module_name
    module = found = _import_file(module_name) if is_path else _import(module_name, attribute)
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise _UsageError(f"{module_name!r} has no attribute {attribute!r}. "
                              f"{_models_in(module, module_name)}") from None
    return _build(target, found, module)


def _full_shape(value: IntOrTuple, option: str) -> tuple[int, ...]:
    """A checked full shape (batch included) from a ``--*-shape`` option's value."""
    return as_input_shape(value if isinstance(value, tuple) else (value,), option)


def _warning_to_stderr(command: str, work: Callable[[], T]) -> T:
    """``work()``, with each warning it raises printed as one line on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = work()
    for warning in caught:
        print(f"autoshape {command}: warning: {warning.message}", file=sys.stderr)
    return result


def _explain(args: argparse.Namespace) -> int:
    shape = _full_shape(args.input_shape, "--input-shape")
    model = _load_model(args.target)
    explanation = _warning_to_stderr("explain", lambda: explain(model, shape))
    print(json.dumps(explanation.to_dict()) if args.json else explanation)
    return OK if explanation.failure is None else IMPOSSIBLE


# --- fix --------------------------------------------------------------------------------------

def _fix(args: argparse.Namespace) -> int:
    shape = _full_shape(args.input_shape, "--input-shape")
    wanted = None if args.output_shape is None else _full_shape(args.output_shape, "--output-shape")
    model = _load_model(args.target)
    fixed = _warning_to_stderr("fix", lambda: fix(model, shape, wanted))
    text = str(fixed)
    if fixed.suggested_output_shape is not None:  # its last line: pass --output-shape 1,2,101,67
        head, _, hint = text.rpartition("\n")
        text = f"{head}\n{_in_flags(hint)}"
    print(text)
    return OK


# --- taps -------------------------------------------------------------------------------------

def _index(value: object) -> str:
    return ", ".join(map(str, value)) if isinstance(value, tuple) else str(value)


def _checked_index(args: argparse.Namespace) -> None:
    """``--at`` has one index per dimension of the layer (an int is one index)."""
    n = spatial_ndim(args.input, args.kernel_size, args.stride, args.padding, args.dilation, args.output_padding) or 1
    given = len(args.at) if isinstance(args.at, tuple) else 1
    if given != n:
        raise _UsageError(f"--at {_index(args.at).replace(' ', '')} has {given} index(es), but this layer has {n} "
                          f"dimension(s) (input size {format_shape(args.input)}): give one index per dimension. "
                          f"Fix: use --at {','.join(['0'] * n)}.")


def _save_png(counts: OverlapMap, path: str) -> None:
    """``--png``: a path that cannot be written is a usage error naming it, with a fix."""
    try:
        counts.save_png(path)
    except OSError as error:
        file = Path(path)
        if not file.parent.is_dir():
            fix = (f"create the folder first (mkdir -p {shlex.quote(str(file.parent))}), or give a file in an "
                   f"existing folder, e.g. --png {shlex.quote(file.name)}")
            reason = f"there is no folder {str(file.parent)!r}"
        elif file.is_dir():
            fix, reason = f"name a file in it, e.g. --png {shlex.quote(str(file / 'taps.png'))}", "it is a folder"
        else:
            fix, reason = "give a file in a folder you can write to", error.strerror or str(error)
        raise _UsageError(f"cannot write --png {path!r}: {reason}. Fix: {fix}.") from None


def _taps(args: argparse.Namespace) -> int:
    layer = {"input_size": args.input, "kernel_size": args.kernel_size, "stride": args.stride,
             "padding": args.padding, "dilation": args.dilation}
    if args.at is not None:
        _checked_index(args)
    counts = overlap_map(**layer, output_padding=args.output_padding)
    taps = None if args.at is None else transpose_taps(args.at, **layer, output_padding=args.output_padding)
    if args.png:
        _save_png(counts, args.png)
    if args.json:
        print(json.dumps({"output_size": list(counts.size), "counts": counts.counts,
                          "taps": None if taps is None else [list(tap) for tap in taps]}))
        return OK
    fewest, most = (math.prod(pick(row) for row in counts.per_dim) for pick in (min, max))  # separable map
    print(f"taps per output position, {format_shape(counts.size)} output ({fewest} to {most}):")
    print(counts)
    if taps is not None:
        terms = " + ".join(f"in[{_index(x)}]·w[{_index(j)}]" for x, j in taps) or "bias only (no taps)"
        print(f"\noutput[{_index(args.at)}] = {terms}")
    if args.png:
        print(f"\nwrote {args.png}")
    return OK


# --- the parser -------------------------------------------------------------------------------

def _add_layer_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kernel-size", type=_size, metavar="K", help="fix the kernel size")
    parser.add_argument("--stride", type=_size, metavar="S", help="fix the stride")
    parser.add_argument("--padding", type=_size, metavar="P", help="fix the padding")
    parser.add_argument("--dilation", type=_size, metavar="D", help="the dilation (default 1)")


def _model_command(commands: Any, name: str, help: str, description: str) -> argparse.ArgumentParser:
    """A command on a model named MODULE:ATTR, with its --input-shape."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=help, description=description + "MODULE:ATTR names an nn.Module instance, class or "
        "zero-argument factory: in a module importable from the current directory or the Python path "
        "(package.module:attr), or in a file (path/to/file.py:attr).")
    parser.add_argument("target", metavar="MODULE:ATTR", help="the model: package.module:attr or path/to/file.py:attr")
    parser.add_argument("--input-shape", type=_size, required=True, metavar="SHAPE",
                        help="full input shape with batch, e.g. 1,3,64,64")
    return parser


def _add_direction(parser: argparse.ArgumentParser) -> None:
    direction = parser.add_mutually_exclusive_group()
    direction.add_argument("--conv", action="store_true", help="a plain convolution (downsampling)")
    direction.add_argument("--transpose", action="store_true", help="a transposed convolution (upsampling)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autoshape", description="Exact convolution shapes: solve, plan, "
                                     "explain and inspect. Sizes are ints or comma-separated tuples (12 or 12,24).")
    parser.add_argument("--version", action="version", version=f"autoshape {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    solve = commands.add_parser("solve", help="the kernel, stride and padding that take IN to OUT exactly",
                                description="Default: transposed when OUT >= IN in every dimension (and larger "
                                "in one), a plain convolution otherwise.")
    solve.add_argument("input", type=_size, metavar="IN", help="the spatial input size, e.g. 12 or 12,24")
    solve.add_argument("output", type=_size, metavar="OUT", help="the spatial output size to reach exactly")
    _add_direction(solve)
    _add_layer_options(solve)
    solve.add_argument("--all", action="store_true",
                       help="list the ranked alternatives (up to 10): the conventional strides first, whose "
                       "lattice fits the sizes, then the tail, exact but with windows over the padding, listed for "
                       "completeness")
    solve.add_argument("--json", action="store_true", help="print the ConvParams fields as JSON")
    solve.set_defaults(run=_solve)

    plan = commands.add_parser("plan", help="N layers from IN to OUT", description="Direction as for solve.")
    plan.add_argument("input", type=_size, metavar="IN", help="the spatial input size of the first layer")
    plan.add_argument("output", type=_size, metavar="OUT", help="the spatial output size of the last layer")
    plan.add_argument("--layers", type=int, required=True, metavar="N", help="number of layers")
    plan.add_argument("--kernel-size", type=_size, metavar="K", help="fix every kernel size")
    plan.add_argument("--max-stride", type=_size, metavar="S", help="largest stride per layer (default 2)")
    plan.add_argument("--max-kernel-size", type=_size, metavar="K",
                      help="largest kernel size (default: a free kernel, at most 4·S+1)")
    _add_direction(plan)
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    plan.set_defaults(run=_plan)

    explain_ = _model_command(commands, "explain", "every layer's shapes and size formula", "")
    explain_.add_argument("--json", action="store_true", help="print the rows and notes as JSON")
    explain_.set_defaults(run=_explain)

    fix_ = _model_command(commands, "fix", "the fewest layer changes that make a model run (or give a shape)",
                          "Prints each changed layer, before → after. Exit code 0 when fixed (or nothing to fix), "
                          "1 when no fix changes at most 3 layers. ")
    fix_.add_argument("--output-shape", type=_size, metavar="SHAPE",
                      help="full output shape wanted, e.g. 1,3,64,64 (default: the forward must only run)")
    fix_.set_defaults(run=_fix)

    taps = commands.add_parser("taps", help="which inputs make each output of a transposed convolution",
                               description="Prints the overlap map (taps per output position); --at lists "
                               "the taps of one output.")
    taps.add_argument("input", type=_size, metavar="IN", help="input size of the transposed convolution")
    taps.add_argument("--kernel-size", type=_size, required=True, metavar="K")
    taps.add_argument("--stride", type=_size, default=1, metavar="S")
    taps.add_argument("--padding", type=_size, default=0, metavar="P")
    taps.add_argument("--dilation", type=_size, default=1, metavar="D")
    taps.add_argument("--output-padding", type=_size, default=0, metavar="OP")
    taps.add_argument("--at", type=_size, metavar="INDEX", help="list the taps of this output index")
    taps.add_argument("--png", metavar="FILE", help="also draw the map as a PNG (needs matplotlib)")
    taps.add_argument("--json", action="store_true", help="print the map (and taps) as JSON")
    taps.set_defaults(run=_taps)
    return parser


_FLAGS = {"kernel_size": "--kernel-size", "stride": "--stride", "padding": "--padding", "dilation": "--dilation",
          "output_padding": "--output-padding", "max_stride": "--max-stride", "max_kernel_size": "--max-kernel-size",
          "num_layers": "--layers",
          "output_index": "--at", "input_size": "IN", "output_size": "OUT", "input_shape": "--input-shape",
          "output_shape": "--output-shape"}
_DIRECTIONS = {"plan_downsampling": "--conv", "plan_upsampling": "--transpose"}


def _in_flags(message: str) -> str:
    """A library message in the command line's terms: flags for arguments, IN and OUT for sizes, ``12,24`` for
    tuples, so that its fixes can be followed as they are written. An argument is translated where it has a
    value (``stride=2``, ``output_index 11``) and where it is the subject of a check (``num_layers must be``,
    ``kernel_size needs``, ``kernel_size or max_kernel_size, not both``), the form of every range and type
    check (:mod:`autoshape.core.sizes`)."""
    def flag(match: re.Match[str]) -> str:
        name, value = match.group(1), match.group(2)
        return f"{_FLAGS[name]} {value.strip('(),').replace(' ', '')}" if name in _FLAGS else match.group(0)

    message = re.sub(r"^plan_(up|down)sampling\(.*?\): ", "", message)  # the command line shows the command
    message = re.sub(r"leave ([\w/]+) free \(None\)",
                     lambda m: "drop " + "/".join(_FLAGS.get(n, n) for n in m.group(1).split("/")), message)
    message = re.sub(r"\b(plan_downsampling|plan_upsampling)\b(?! ?\()", lambda m: _DIRECTIONS[m.group(1)], message)
    subject = rf"\b({'|'.join(_FLAGS)})(?= (?:must|needs) |(?: or \w+)?, not both)"  # what a check names
    message = re.sub(subject, lambda m: _FLAGS[m.group(1)], message)
    return re.sub(r"\b(\w+)[= ](\(\d+(?:, \d+)*,?\)|\d+)", flag, message)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``autoshape`` command line and return its exit code.

    Args:
        argv: the arguments after the program name (default: ``sys.argv[1:]``).

    Shape:
        ``solve IN OUT`` prints parameters whose output size is exactly OUT, with the formula.

    Examples:
        >>> main(["solve", "12", "24"])
        ConvTranspose 12 → 24: kernel_size=4, stride=2, padding=1
          out: (12-1)·2 - 2·1 + 1·(4-1) + 0 + 1 = 24
        0

    Raises:
        Nothing: errors become a message on stderr and exit code 1 (impossible) or 2 (usage).
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # argparse's own usage errors (2) and --help (0)
        return stop.code if isinstance(stop.code, int) else USAGE
    try:
        return int(args.run(args))
    except ShapeError as error:
        print(f"autoshape {args.command}: {_in_flags(str(error))}", file=sys.stderr)
        return IMPOSSIBLE
    except (_UsageError, TypeError, ValueError, ImportError, OSError) as error:
        print(f"autoshape {args.command}: error: {_in_flags(str(error))}", file=sys.stderr)
        return USAGE
