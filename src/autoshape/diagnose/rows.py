"""Which calls of a record ``explain`` shows as rows: leaf modules, and torch calls made directly in
the forward of a module with submodules (a call inside a leaf, such as ``F.conv2d`` inside
``nn.Conv2d``, is that leaf's business)."""

from __future__ import annotations

from ..tracing import Call, Record, Value

__all__ = ["is_row", "row_that_made", "rows_of", "where"]


def is_row(record: Record, call: Call) -> bool:
    """A leaf module call, or a torch call made in the forward of a module that is not a leaf."""
    if call.kind == "module":
        return record.is_leaf(call)
    return call.parent is None or not record.is_leaf(record.calls[call.parent])


def rows_of(record: Record) -> list[Call]:
    """The row calls in the order they started."""
    return [call for call in record.calls if is_row(record, call)]


def row_that_made(record: Record, value: Value) -> Call | None:
    """The row call that produced ``value`` (the leaf around the torch call that made it)."""
    index = value.producer
    while index is not None:
        call = record.calls[index]
        if is_row(record, call):
            return call
        index = call.parent
    return None


def where(call: Call) -> str:
    """``'gen.0.0' ConvTranspose2d`` or ``'up' F.interpolate``: how a note names a row."""
    return f"'{call.path or '(model)'}' {call.name}"
