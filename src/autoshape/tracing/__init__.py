"""The one recorder: a model's forward on meta tensors, as a record of its module and torch calls."""

from .record import Call, Failure, Record, Selector, Value, pick, select, select_all
from .recorder import InputShapes, as_examples, as_input_shape, shapes_of, trace, trace_dtype

__all__ = ["Call", "Failure", "InputShapes", "Record", "Selector", "Value", "as_examples", "as_input_shape", "pick",
           "select", "select_all", "shapes_of", "trace", "trace_dtype"]
