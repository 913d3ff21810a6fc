"""The registry of layer rules: what autoshape knows about each family of torch layers.

Every part that reads a model asks here: ``explain`` for formulas, the mirrors for the layers
that undo a step, the U-Net for where a stage may end.
"""

from .lookup import RULES, rule_for, spatial_sizes, terms_of
from .registry import POOL_MIRRORS, Mirror, MirrorRequest, Options, PoolMirror, Rule, Shape

__all__ = [
    "POOL_MIRRORS",
    "RULES",
    "Mirror",
    "MirrorRequest",
    "Options",
    "PoolMirror",
    "Rule",
    "Shape",
    "rule_for",
    "spatial_sizes",
    "terms_of",
]
