"""Draw the documentation's pictures from autoshape's public API, and copy in the examples' grids.

    python docs/pictures.py              # writes docs/images/
    python docs/pictures.py --out DIR

* ``checkerboard.png``: the taps of a transposed convolution with kernel 3, stride 2 next to
  kernel 4, stride 2 (``transpose_taps``), and their overlap maps (``overlap_map``).
* ``mirror_sizes.png``: the examples' 29×29 autoencoder and the decoder ``MirrorAutoencoder``
  builds, drawn from ``explain``'s rows: every shape, and the size formula of every step.
* ``examples/*.png``: the grids that the training examples wrote (examples/images/).

tests/test_docs.py runs this script into a temporary folder. Needs matplotlib (the docs extra).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
from matplotlib import pyplot as plt
from matplotlib.axes import Axes
from matplotlib.patches import FancyArrowPatch, Rectangle
from torch import nn

from autoshape import ExplainRow, MirrorAutoencoder, explain, overlap_map, transpose_taps

ROOT = Path(__file__).resolve().parents[1]
ENCODER_BLUE, DECODER_ORANGE, LATENT_GREEN = "#3b6ea8", "#d9822b", "#4a9a5b"
LAYERS = ({"kernel_size": 3, "stride": 2, "padding": 1}, {"kernel_size": 4, "stride": 2, "padding": 1})


def _centre(x: int, kernel_size: int, stride: int, padding: int) -> float:
    """The middle of the outputs that input ``x`` reaches: where to draw it."""
    return x * stride - padding + (kernel_size - 1) / 2


def _taps_panel(axes: Axes, input_size: int, kernel_size: int, stride: int, padding: int) -> None:
    """Inputs on top, outputs below, a line for every (input, output) pair a kernel tap joins."""
    counts = overlap_map(input_size=input_size, kernel_size=kernel_size, stride=stride, padding=padding).counts
    for o, count in enumerate(counts):
        for x, _ in transpose_taps(o, input_size=input_size, kernel_size=kernel_size, stride=stride, padding=padding):
            axes.plot([_centre(x, kernel_size, stride, padding), o], [1, 0], color="0.55", lw=1, zorder=1)
        axes.scatter([o], [0], s=260, color=plt.get_cmap("viridis")(count / 4), zorder=2, edgecolors="k")
        axes.text(o, 0, str(count), ha="center", va="center", color="white", fontsize=9, zorder=3)
    axes.scatter([_centre(x, kernel_size, stride, padding) for x in range(input_size)], [1] * input_size, s=260,
                 color="0.85", edgecolors="k", zorder=2)
    axes.text(-1.2, 1, "input", ha="right", va="center", fontsize=9)
    axes.text(-1.2, 0, "taps per\noutput", ha="right", va="center", fontsize=9)
    axes.set_xlim(-3.5, len(counts))
    axes.set_ylim(-0.4, 1.4)
    axes.axis("off")


def _map_panel(axes: Axes, input_size: int, kernel_size: int, stride: int, padding: int) -> None:
    counts = overlap_map(input_size=(input_size, input_size), kernel_size=kernel_size, stride=stride,
                         padding=padding).counts
    axes.imshow(counts, cmap="viridis", vmin=0, vmax=4)
    for y, row in enumerate(counts):
        for x, count in enumerate(row):
            axes.text(x, y, str(count), ha="center", va="center", color="white", fontsize=8)
    axes.set_xticks([])
    axes.set_yticks([])


def checkerboard(path: Path) -> None:
    """k3 s2 next to k4 s2: 1-d taps on top, the 2-d overlap map of a 4×4 input below."""
    figure, grid = plt.subplots(2, 2, figsize=(10, 6.4), gridspec_kw={"height_ratios": [1, 2]})
    for column, layer in enumerate(LAYERS):
        _taps_panel(grid[0][column], 5, **layer)
        _map_panel(grid[1][column], 4, **layer)
        k, s, p = layer.values()
        verdict = "uneven: a checkerboard" if k % s else "even: no checkerboard"
        grid[0][column].set_title(f"ConvTranspose kernel_size={k}, stride={s}, padding={p}\n{verdict}", fontsize=11)
    figure.suptitle("Taps per output position of a transposed convolution (overlap_map, transpose_taps)",
                    fontsize=12)
    figure.tight_layout()
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)


def _autoencoder_rows() -> list[ExplainRow]:
    """explain's rows for the examples' encoder (three stride-2 convs, then a 16-number code) and its mirror."""
    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]
    encoder = nn.Sequential(*block(1, 32), *block(32, 64), *block(64, 128), nn.Flatten(), nn.Linear(128 * 4 * 4, 16))
    return list(explain(MirrorAutoencoder(encoder, (1, 29, 29)), (1, 1, 29, 29)))


def _shape_text(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape[1:]))


def _tensor(axes: Axes, x: float, y: float, shape: tuple[int, ...], color: str) -> tuple[float, float]:
    """A square whose side follows the spatial size, or a bar for a flat vector; returns the y of its
    top and bottom edges."""
    side = shape[-1] / 29 * 1.5 if len(shape) == 4 else 0.16
    height = side if len(shape) == 4 else min(1.0, 0.2 + shape[-1] / 2048 * 0.8)
    axes.add_patch(Rectangle((x - side / 2, y - height / 2), side, height, color=color, alpha=0.85))
    return y + height / 2, y - height / 2


def _step(axes: Axes, start: tuple[float, float], end: tuple[float, float], row: ExplainRow, side: int) -> None:
    """An arrow from one tensor to the next, with the module's name and explain's formula beside it."""
    axes.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, color="0.3", shrinkA=4, shrinkB=4))
    formula = (row.formula or "").split(": ", 1)[-1]
    x = min(start[0], end[0]) - 0.4 if side < 0 else max(start[0], end[0]) + 0.4
    axes.text(x, (start[1] + end[1]) / 2, "\n".join(filter(None, [row.call, formula])), fontsize=8.5,
              ha="left" if side > 0 else "right", va="center", family="monospace")


def mirror_sizes(path: Path) -> None:
    """The encoder going down on the left, the decoder coming up on the right, each size on one level."""
    rows = [row for row in _autoencoder_rows() if row.output_shape != row.input_shape]
    encoder = [row for row in rows if row.name.startswith("encoder")]
    decoder = [row for row in rows if row.name.startswith("decoder")]
    shapes = [encoder[0].input_shape, *(row.output_shape for row in encoder)]
    left, right, gap = 0.0, 5.0, 2.0
    figure, axes = plt.subplots(figsize=(11, 8.6))
    edges = []  # per level: (top, bottom) of the encoder's and decoder's tensors
    for level, shape in enumerate(shapes[:-1]):
        assert shape is not None
        y = -level * gap
        edges.append(_tensor(axes, left, y, shape, ENCODER_BLUE))
        _tensor(axes, right, y, shape, DECODER_ORANGE)
        axes.plot([left + 0.9, right - 0.9], [y, y], color="0.7", ls=":", lw=1)
        axes.text((left + right) / 2, y + 0.12, _shape_text(shape), ha="center", va="bottom", fontsize=10,
                  fontweight="bold")
    latent = shapes[-1]
    assert latent is not None
    middle, bottom = (left + right) / 2, -(len(shapes) - 1) * gap
    code_top, code_bottom = _tensor(axes, middle, bottom, latent, LATENT_GREEN)
    axes.text(middle, code_bottom - 0.2, f"the code: {_shape_text(latent)} numbers", ha="center", va="top",
              fontsize=10, fontweight="bold")
    tops = [top for top, _ in edges[1:]] + [code_top]
    points_down = [(left, edges[level][1]) for level in range(len(encoder))]
    ends_down = [(left, top) for top in tops[:-1]] + [(middle - 0.3, code_top)]
    for row, start, end in zip(encoder, points_down, ends_down):
        _step(axes, start, end, row, side=-1)
    for row, start, end in zip(reversed(decoder), points_down, ends_down):  # each undoes its encoder step
        _step(axes, (left + right - end[0], end[1]), (left + right - start[0], start[1]), row, side=1)
    axes.text(left, 1.1, "encoder (written by hand)", ha="center", fontsize=11, color=ENCODER_BLUE)
    axes.text(right, 1.1, "MirrorAutoencoder's decoder", ha="center", fontsize=11, color=DECODER_ORANGE)
    axes.set_title("explain(MirrorAutoencoder(encoder, (1, 29, 29)), (1, 1, 29, 29)): every size comes back",
                   fontsize=12)
    axes.set_xlim(left - 5.5, right + 5.5)
    axes.set_ylim(bottom - 1.0, 1.7)
    axes.set_aspect("equal")
    axes.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)


def examples(out: Path) -> None:
    """The grids the training examples wrote, copied so the site holds them."""
    (out / "examples").mkdir(exist_ok=True)
    for grid in sorted((ROOT / "examples" / "images").glob("*.png")):
        shutil.copyfile(grid, out / "examples" / grid.name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "images")
    out = parser.parse_args(argv).out
    out.mkdir(parents=True, exist_ok=True)
    checkerboard(out / "checkerboard.png")
    mirror_sizes(out / "mirror_sizes.png")
    examples(out)


if __name__ == "__main__":
    main()
