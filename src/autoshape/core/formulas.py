"""Torch's size rules written out with one layer's numbers filled in, one term per spatial dimension.

Pure string formatting: convolution, pooling and upsampling values are computed by
:mod:`autoshape.core.arithmetic`, never re-derived here, so a formula cannot disagree with the
arithmetic; padding layers and pixel (un)shuffle are a plain sum and product.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from .arithmetic import conv_out, conv_output_size, conv_transpose_out, pool_out, same_padding, scaled_size
from .sizes import dim_names
from .solver import ConvParams

__all__ = [
    "Term",
    "conv_same_term",
    "conv_term",
    "conv_transpose_term",
    "format_terms",
    "pad_term",
    "params_terms",
    "pool_term",
    "scale_term",
    "shuffle_term",
    "unshuffle_term",
]


@dataclass(frozen=True)
class Term:
    """One spatial dimension of a formula: the expression with numbers filled in, and its value."""

    expression: str
    value: int
    remark: str = ""

    def __str__(self) -> str:
        text = f"{self.expression} = {self.value}"
        return f"{text} ({self.remark})" if self.remark else text


def conv_term(i: int, k: int, s: int, p: int, d: int) -> Term:
    """``nn.Conv*d``: ``⌊(in + 2·padding - dilation·(kernel-1) - 1) / stride⌋ + 1``."""
    return Term(f"⌊({i} + 2·{p} - {d}·({k}-1) - 1) / {s}⌋ + 1", conv_out(i, k, s, p, d))


def conv_same_term(i: int, k: int, d: int) -> Term:
    """``nn.Conv*d(padding='same')``: ``in + left + right - dilation·(kernel-1)`` with torch's split."""
    left, right = same_padding(k, d)
    value = conv_output_size(i, k, 1, "same", d)
    return Term(f"{i} + {left} + {right} - {d}·({k}-1)", value, "padding='same'")


def conv_transpose_term(i: int, k: int, s: int, p: int, d: int, op: int) -> Term:
    """``nn.ConvTranspose*d``: ``(in-1)·stride - 2·padding + dilation·(kernel-1) + output_padding + 1``."""
    return Term(f"({i}-1)·{s} - 2·{p} + {d}·({k}-1) + {op} + 1", conv_transpose_out(i, k, s, p, d, op))


def pool_term(i: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> Term:
    """Max/avg/LP pooling: the conv rule with ``⌈⌉`` under ``ceil_mode``, and torch's last-window rule."""
    value = pool_out(i, k, s, p, d, ceil_mode)
    inner = f"({i} + 2·{p} - {d}·({k}-1) - 1) / {s}"
    if not ceil_mode:
        return Term(f"⌊{inner}⌋ + 1", value)
    rounded_up = conv_out(i + s - 1, k, s, p, d)  # ⌈span/s⌉ + 1, before torch drops a window
    if value == rounded_up:
        return Term(f"⌈{inner}⌉ + 1", value)
    return Term(f"⌈{inner}⌉ + 1 - 1", value, "ceil_mode drops a last window starting in the padding")


def scale_term(i: int, scale: float) -> Term:
    """``nn.Upsample(scale_factor=...)``: ``⌊in·scale⌋``."""
    return Term(f"⌊{i}·{scale!r}⌋", cast(int, scaled_size(i, scale)))


def _signed(x: int) -> str:
    return f"+ {x}" if x >= 0 else f"- {-x}"


def pad_term(i: int, before: int, after: int) -> Term:
    """Padding layers: ``in + before + after`` (negative padding crops)."""
    return Term(f"{i} {_signed(before)} {_signed(after)}", i + before + after)


def shuffle_term(i: int, factor: int) -> Term:
    """``nn.PixelShuffle``: ``in·upscale_factor``."""
    return Term(f"{i}·{factor}", i * factor)


def unshuffle_term(i: int, factor: int) -> Term:
    """``nn.PixelUnshuffle``: ``in / downscale_factor`` (torch requires it to divide)."""
    return Term(f"{i} / {factor}", i // factor)


def params_terms(params: ConvParams, input_size: Sequence[int]) -> list[Term]:
    """The terms of solved :class:`~autoshape.ConvParams` applied to ``input_size``."""
    per_dim = zip(input_size, params.kernel_size, params.stride, params.padding, params.dilation,
                  params.output_padding)
    if params.transposed:
        return [conv_transpose_term(*args) for args in per_dim]
    return [conv_term(*args[:5]) for args in per_dim]


def format_terms(terms: Sequence[Term], names: Sequence[str] | None = None) -> str:
    """``"H, W: … = 3"`` when dimensions agree, ``"H: … = 3; W: … = 5"`` otherwise."""
    labels = dim_names(len(terms)) if names is None else tuple(names)
    groups: dict[str, list[str]] = {}
    for label, term in zip(labels, terms):
        groups.setdefault(str(term), []).append(label)
    return "; ".join(f"{', '.join(group)}: {text}" for text, group in groups.items())
