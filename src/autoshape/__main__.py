"""``python -m autoshape``: the same command line as the ``autoshape`` script."""

from .cli import main

raise SystemExit(main())
