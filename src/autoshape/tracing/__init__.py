"""The one recorder: a model's forward on meta tensors, as a record of module and torch calls."""

from .recorder import Trace, TracedCall, as_input_shape, trace, trace_dtype

__all__ = ["Trace", "TracedCall", "as_input_shape", "trace", "trace_dtype"]
