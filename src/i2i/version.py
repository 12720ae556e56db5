"""i2i's version, recorded in every model card and ONNX export (kept in step with
pyproject.toml)."""

__version__ = "0.1.0"
