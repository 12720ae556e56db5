"""Writing files so that a crash or a kill at any moment leaves the old file or the new one,
never a part: data goes to a hidden temporary file beside the target, is flushed to disk, and
is renamed over the target (``os.replace`` is atomic on one filesystem). Temporary files left
by a killed write are found and removed by :func:`remove_stale_temps`."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TEMP_SUFFIX = ".i2i-tmp"


def temp_beside(path: Path) -> Path:
    """A fresh hidden temporary name in ``path``'s folder (``.NAME.XXXX.i2i-tmp``)."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}{TEMP_SUFFIX}")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """``with atomic_path(p) as tmp: write(tmp)``: the file appears at ``p`` whole when the
    block ends, or not at all when it raises. The parent folder must exist."""
    path = Path(path)
    tmp = temp_beside(path)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def remove_stale_temps(folder: str | Path) -> int:
    """Remove the temporary files that killed atomic writes left in ``folder`` (not below
    it); returns how many. Call it only where no other process is writing."""
    removed = 0
    for path in Path(folder).glob(f".*{TEMP_SUFFIX}"):
        path.unlink(missing_ok=True)
        removed += 1
    return removed
