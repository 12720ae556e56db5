"""``python -m i2i`` is the ``i2i`` command."""

import sys

from i2i.cli import main

sys.exit(main())
