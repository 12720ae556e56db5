"""Serving: the FastAPI app behind ``i2i serve`` (an extra: ``pip install i2i[serve]``)."""
