"""The one recorder: a model's forward on meta tensors, as a record of its module and torch calls."""

from .record import Call, Failure, Record, Selector, Value, pick, select, select_all
from .recorder import as_input_shape, trace, trace_dtype

__all__ = ["Call", "Failure", "Record", "Selector", "Value", "as_input_shape", "pick", "select", "select_all", "trace",
           "trace_dtype"]
