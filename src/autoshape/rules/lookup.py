"""Finding a call's rule, and its size formula with the call's numbers filled in."""

from __future__ import annotations

from ..core.formulas import Term
from ..tracing import Call
from . import conv, pointwise, pool, reshape, resize
from .registry import Rule, Shape

__all__ = ["RULES", "rule_for", "spatial_sizes", "terms_of"]

RULES: tuple[Rule, ...] = (*conv.RULES, *pool.RULES, *resize.RULES, *reshape.RULES, *pointwise.RULES)
"""Every family autoshape knows. A new layer type is one entry in its family's file."""

_BY_FUNCTION = {id(function): rule for rule in RULES for function in rule.functions}


def rule_for(call: Call) -> Rule | None:
    """The rule of a module call (by class, subclasses included) or of a torch call (by function)."""
    if call.kind == "function":
        return _BY_FUNCTION.get(id(call.target))
    return next((rule for rule in RULES if isinstance(call.target, rule.modules)), None)


def spatial_sizes(call: Call, rule: Rule) -> tuple[Shape, Shape | None] | None:
    """The trailing sizes the rule acts on, in and out; None without a spatial rule or a channel dim."""
    shape = call.input_shape
    if rule.ndim is None or shape is None:
        return None
    n = rule.ndim(call)
    if len(shape) <= n:
        return None
    out = call.output_shape
    return shape[-n:], None if out is None or len(out) <= n else out[-n:]


def terms_of(call: Call, rule: Rule) -> list[Term] | None:
    """The rule's formula for this call, one term per spatial dimension; None where it has none."""
    sizes = spatial_sizes(call, rule)
    if rule.terms is None or sizes is None:
        return None
    return rule.terms(call, *sizes)
