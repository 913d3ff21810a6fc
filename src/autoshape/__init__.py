"""autoshape: declare the size you want; get the exact convolution that produces it.

The public names are those of the subpackages' ``__all__`` (the integer core, the layers, the
mirrors and the diagnosis), and :class:`ShapeError`.
"""

from . import core, diagnose, layers, mirror
from .core import *  # noqa: F403
from .diagnose import *  # noqa: F403
from .errors import ShapeError
from .layers import *  # noqa: F403
from .mirror import *  # noqa: F403
from .version import __version__ as __version__

__all__ = ["ShapeError"]
__all__ += core.__all__
__all__ += diagnose.__all__
__all__ += layers.__all__
__all__ += mirror.__all__
