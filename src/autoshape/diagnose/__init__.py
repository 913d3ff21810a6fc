"""Reading a model's sizes back to its user: explain (with the failure of a broken forward), fix (the
fewest layer changes that make it run or give a size) and the taps of transposed convolutions."""

from .explain import ExplainRow, Explanation, explain
from .failure import ExplainFailure
from .fix import Change, Fix, fix
from .taps import overlap_map, transpose_taps

__all__ = ["Change", "ExplainFailure", "ExplainRow", "Explanation", "Fix", "explain", "fix", "overlap_map",
           "transpose_taps"]
