"""``python -m lrnnspec ...``: the same command line as the ``lrnnspec`` script."""

import sys

from lrnnspec.cli import main

sys.exit(main())
