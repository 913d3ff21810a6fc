"""Reading a model's sizes back to its user: explain and the taps of transposed convolutions."""

from .explain import ExplainRow, Explanation, explain
from .taps import overlap_map, transpose_taps

__all__ = ["ExplainRow", "Explanation", "explain", "overlap_map", "transpose_taps"]
