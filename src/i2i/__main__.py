"""``python -m i2i`` is the ``i2i`` command."""

from i2i.cli import app

app()
