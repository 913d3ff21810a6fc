"""The text formats every report shares: a shape as ``1×3×24×24``, an aligned table, and a quoted
message as a clause of a sentence."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["aligned_table", "clause", "compact", "format_inputs", "format_shape"]


def format_shape(shape: int | Sequence[int] | None) -> str:
    """``1×3×24×24`` for a shape, ``12`` for an int, ``scalar`` for ``()``, ``-`` for None (no tensor)."""
    if shape is None:
        return "-"
    if isinstance(shape, int):
        return str(shape)
    return "×".join(map(str, shape)) or "scalar"


def format_inputs(shapes: Sequence[int] | Sequence[Sequence[int]]) -> str:
    """``an input of 1×3×8×8`` for one shape, ``inputs of 8×100, 8`` for a tuple of shapes."""
    if shapes and not isinstance(shapes[0], int):
        return "inputs of " + ", ".join(format_shape(shape) for shape in shapes)
    return "an input of " + format_shape(shapes)  # type: ignore[arg-type]


def compact(values: Sequence[int]) -> int | tuple[int, ...]:
    """One value per dimension as a layer argument: ``(1, 1)`` → ``1``; ``(1, 0)`` stays a tuple."""
    return values[0] if len(set(values)) == 1 else tuple(values)


def aligned_table(lines: Sequence[Sequence[str]]) -> str:
    """Rows of cells as text columns two spaces apart; the last column is left ragged."""
    widths = [max(len(line[c]) for line in lines) for c in range(len(lines[0]) - 1)]
    return "\n".join(
        "  ".join([*(cell.ljust(w) for cell, w in zip(line, widths)), line[-1]]).rstrip() for line in lines
    )


def clause(message: object) -> str:
    """A quoted message (torch's, a model's) without its closing period, for a sentence that goes on
    after it with ``. Fix: ...``: torch ends some messages with a period and others without."""
    return str(message).rstrip().removesuffix(".")
