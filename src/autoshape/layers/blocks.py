"""Composite layers a mirror builds: a torch call as a module, and the residual up block."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import Tensor, nn

__all__ = ["Applied", "ResidualUp"]


class Applied(nn.Module):
    """A module or torch call applied with fixed extra arguments, as the encoder called it
    (``x * 2``, ``torch.clamp(x, 0, 1)``, a block called as ``block(x, height, width)``).

    The input goes to positional argument ``input_at`` (an int) or to that keyword (a str). A
    module ``target`` is a submodule (its parameters are the decoder's); a function is kept as is.
    """

    def __init__(self, target: Callable[..., Tensor], args: Sequence[Any], kwargs: dict[str, Any],
                 input_at: int | str, name: str) -> None:
        super().__init__()
        self.target = target
        self.args = tuple(args)
        self.kwargs = dict(kwargs)
        self.input_at = input_at
        self.name = name

    def forward(self, input: Tensor) -> Tensor:
        if isinstance(self.input_at, str):
            return self.target(*self.args, **{**self.kwargs, self.input_at: input})
        args = (*self.args[:self.input_at], input, *self.args[self.input_at + 1:])
        return self.target(*args, **self.kwargs)

    def extra_repr(self) -> str:
        args = ["·" if n == self.input_at else repr(a) for n, a in enumerate(self.args)]
        kwargs = [f"{k}={'·' if k == self.input_at else repr(v)}" for k, v in self.kwargs.items()]
        return f"{self.name}({', '.join(args + kwargs)})"


class ResidualUp(nn.Module):
    """The mirror of a residual downsampling unit: ``main(x) + shortcut(x)``.

    ``main`` and ``shortcut`` mirror the unit's two branches layer by layer; the layers marked in
    ``main_sized`` and ``shortcut_sized`` take the unit's recorded input shape per call
    (``output_size``), so both branches hit it exactly and the sum is defined at every input size.
    An empty ``shortcut`` is the identity.
    """

    def __init__(self, main: Sequence[nn.Module], main_sized: Sequence[bool], shortcut: Sequence[nn.Module],
                 shortcut_sized: Sequence[bool]) -> None:
        super().__init__()
        self.main = nn.ModuleList(main)
        self.shortcut = nn.ModuleList(shortcut)
        self._main_sized = tuple(main_sized)
        self._shortcut_sized = tuple(shortcut_sized)

    @staticmethod
    def _run(layers: nn.ModuleList, sized: tuple[bool, ...], x: Tensor, output_size: Sequence[int] | None) -> Tensor:
        for layer, takes_size in zip(layers, sized):
            x = layer(x, output_size) if takes_size and output_size is not None else layer(x)
        return x

    def forward(self, input: Tensor, output_size: Sequence[int] | None = None) -> Tensor:
        main = self._run(self.main, self._main_sized, input, output_size)
        return main + self._run(self.shortcut, self._shortcut_sized, input, output_size)
