"""Composite layers a mirror builds: a torch call as a module, and the residual up block."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import Tensor, nn

__all__ = ["Pointwise", "ResidualUp"]


class Pointwise(nn.Module):
    """A shape-keeping torch call with fixed arguments (``x * 2``, ``torch.clamp(x, 0, 1)``) as a module.

    The input goes to positional argument ``input_at`` (an int) or to that keyword (a str).
    """

    def __init__(self, function: Callable[..., Tensor], args: Sequence[Any], kwargs: dict[str, Any],
                 input_at: int | str, name: str) -> None:
        super().__init__()
        self.function = function
        self.args = tuple(args)
        self.kwargs = dict(kwargs)
        self.input_at = input_at
        self.name = name

    def forward(self, input: Tensor) -> Tensor:
        if isinstance(self.input_at, str):
            return self.function(*self.args, **{**self.kwargs, self.input_at: input})
        args = (*self.args[:self.input_at], input, *self.args[self.input_at + 1:])
        return self.function(*args, **self.kwargs)

    def extra_repr(self) -> str:
        args = ["·" if n == self.input_at else repr(a) for n, a in enumerate(self.args)]
        kwargs = [f"{k}={'·' if k == self.input_at else repr(v)}" for k, v in self.kwargs.items()]
        return f"{self.name}({', '.join(args + kwargs)})"


class ResidualUp(nn.Module):
    """The mirror of a residual downsampling unit: ``posts(main(x) + shortcut(x))``.

    ``main`` and ``shortcut`` mirror the unit's two branches layer by layer; the layers marked in
    ``sized`` take the unit's recorded input shape per call (``output_size``), so both branches hit
    it exactly and the sum is defined at every input size. ``posts`` are what the unit applied after
    its sum (its output activation). An empty ``shortcut`` is the identity.
    """

    def __init__(self, main: Sequence[nn.Module], main_sized: Sequence[bool], shortcut: Sequence[nn.Module],
                 shortcut_sized: Sequence[bool], posts: Sequence[nn.Module]) -> None:
        super().__init__()
        self.main = nn.ModuleList(main)
        self.shortcut = nn.ModuleList(shortcut)
        self.posts = nn.Sequential(*posts)
        self._main_sized = tuple(main_sized)
        self._shortcut_sized = tuple(shortcut_sized)

    @staticmethod
    def _run(layers: nn.ModuleList, sized: tuple[bool, ...], x: Tensor, output_size: Sequence[int] | None) -> Tensor:
        for layer, takes_size in zip(layers, sized):
            x = layer(x, output_size) if takes_size and output_size is not None else layer(x)
        return x

    def forward(self, input: Tensor, output_size: Sequence[int] | None = None) -> Tensor:
        main = self._run(self.main, self._main_sized, input, output_size)
        shortcut = self._run(self.shortcut, self._shortcut_sized, input, output_size)
        out: Tensor = self.posts(main + shortcut)
        return out
