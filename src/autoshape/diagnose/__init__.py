"""Reading a model's sizes back to its user: explain (with the failure of a broken forward) and the
taps of transposed convolutions."""

from .explain import ExplainRow, Explanation, explain
from .failure import ExplainFailure
from .taps import overlap_map, transpose_taps

__all__ = ["ExplainFailure", "ExplainRow", "Explanation", "explain", "overlap_map", "transpose_taps"]
