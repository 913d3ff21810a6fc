"""The one recorder: a model's forward on meta tensors, as a record of its module and torch calls."""

from .record import Call, Failure, Record, Value, select
from .recorder import as_input_shape, trace, trace_dtype

__all__ = ["Call", "Failure", "Record", "Value", "as_input_shape", "select", "trace", "trace_dtype"]
