"""Downloading a published file (a dataset archive, a pretrained generator) into the cache.

``download(url, dest)`` writes ``dest`` only when the whole file has arrived and checks out:
bytes go to ``dest.part`` first; a partial file left by an interrupted download is resumed with
an HTTP Range request; the size the server announced and, when the caller knows it, the SHA-256
are checked before the rename. Offline, or when the server refuses, it fails within
``timeout`` seconds with one ``DownloadError`` naming the URL and saying where to put the file
by hand. The standard library's ``urllib`` does the HTTP; tqdm shows progress.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from i2i.errors import DownloadError

CHUNK = 1 << 20  # bytes read at a time
TIMEOUT = 10.0  # s without an answer: offline machines fail within seconds


def cache_root() -> Path:
    """Where i2i keeps what it can rebuild: downloads, remote runs' local copies, ONNX exports
    (``$I2I_CACHE``, else ``~/.cache/i2i``)."""
    return Path(os.environ.get("I2I_CACHE", Path.home() / ".cache" / "i2i"))


def sha256_of(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def download(
    url: str,
    dest: str | Path,
    *,
    sha256: str | None = None,
    progress: bool = True,
    timeout: float = TIMEOUT,
) -> Path:
    """Fetch ``url`` into ``dest`` (atomically; see the module docstring) and return ``dest``.
    An existing ``dest`` is returned as it is. Raises DownloadError (offline, refused,
    interrupted, corrupt), whose message says what to do."""
    dest = Path(dest)
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "i2i"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    by_hand = f"or download it by hand and put it at {dest}"
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the part is already whole: check it below
            return _finish(part, dest, url, sha256, None)
        raise DownloadError(
            f"{url}: the server answered {exc.code} {exc.reason}; {by_hand}"
        ) from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(
            f"{url}: cannot download ({reason}); this machine may be offline: connect it and "
            f"run the command again, {by_hand}"
        ) from None
    with response:
        resumed = response.status == 206
        if not resumed:
            have = 0  # the server sends the whole file: start over
        length = response.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        with open(part, "ab" if resumed else "wb") as out, tqdm(
            total=total, initial=have, unit="B", unit_scale=True, disable=not progress,
            desc=dest.name,
        ) as bar:  # fmt: skip
            try:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    bar.update(len(chunk))
            except (OSError, TimeoutError) as exc:
                raise DownloadError(
                    f"{url}: interrupted after {out.tell():,} bytes ({exc}); run the command "
                    "again to resume the download"
                ) from None
    return _finish(part, dest, url, sha256, total)


def _finish(part: Path, dest: Path, url: str, sha256: str | None, total: int | None) -> Path:
    size = part.stat().st_size
    if total is not None and size < total:
        raise DownloadError(
            f"{url}: interrupted after {size:,} of {total:,} bytes; run the command again to "
            "resume the download"
        )
    if sha256 is not None and sha256_of(part) != sha256:
        part.unlink()
        raise DownloadError(
            f"{url}: the download is corrupt (its SHA-256 is not the published one); it was "
            "deleted: run the command again"
        )
    os.replace(part, dest)
    return dest
