"""Run folders and checkpoints in object storage (``s3://bucket/runs/maps``, any fsspec URL).

Training always works in a local folder; with a URL as ``--out`` that folder is a cache
(``~/.cache/i2i/runs/...``, or ``$I2I_CACHE``) and ``RunMirror`` uploads each checkpoint as it
is written, then the run's small files, then the ``latest`` pointer last: an object store
writes each object atomically, so a reader that follows ``latest`` always finds a complete
checkpoint. Reading (``i2i translate s3://...``, ``i2i serve --model maps=s3://...``,
``--resume s3://...``) downloads the checkpoint the pointer names into the cache.

Credentials and endpoints come from the usual places (``AWS_*`` variables, ``~/.aws``,
``AWS_ENDPOINT_URL`` for S3-compatible servers); fsspec and s3fs do the transfers.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

from i2i.download import cache_root
from i2i.errors import CheckpointError, ConfigError, StorageError
from i2i.runs.layout import (
    BEST,
    CARD,
    LATEST,
    POINTERS,
    RUN_FILES,
    RUN_FOLDERS,
    TRAINER_JSON,
    TRAINER_TENSORS,
    WEIGHTS,
)


def is_url(path: str | Path) -> bool:
    return "://" in str(path)


def cache_dir(kind: str, url: str) -> Path:
    digest = hashlib.sha1(url.rstrip("/").encode()).hexdigest()[:16]
    return cache_root() / kind / digest


def url_fs(url: str, probe: bool = True) -> tuple[Any, str]:
    """(fsspec filesystem, path in it) of ``url``; ConfigError without the storage extra.
    ``probe`` makes a first request (``exists``), so that unreachable storage is one
    StorageError here; callers that already reached the same storage (per file of a listed
    folder) skip it."""
    try:
        import fsspec
    except ImportError:  # pragma: no cover - depends on the install
        raise ConfigError(
            f"{url}: object storage needs the storage extra: pip install 'i2i[storage]'"
        ) from None
    try:
        fs, path = fsspec.core.url_to_fs(url)
        if probe:
            fs.exists(path)  # a first request, so that missing credentials show up here
    except (ImportError, ValueError) as exc:  # an unknown scheme, or its package missing
        raise StorageError(f"{url}: {exc}") from None
    except Exception as exc:
        raise StorageError(
            f"{url}: the storage cannot be reached ({type(exc).__name__}: {exc}); check its "
            "credentials and endpoint (s3: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or "
            "~/.aws/credentials, and AWS_ENDPOINT_URL for a non-AWS server)"
        ) from None
    return fs, path.rstrip("/")


def fetch_checkpoint(url: str, with_trainer: bool = False) -> Path:
    """Download the checkpoint ``url`` names (a checkpoint, a run, or a pointer) to the cache."""
    fs, path = url_fs(url)
    candidates = [path] if fs.exists(f"{path}/{CARD}") else []
    if not candidates:
        for pointer in (path, f"{path}/{LATEST}", f"{path}/checkpoints/{LATEST}"):
            if fs.isfile(pointer) and pointer.rsplit("/", 1)[-1] in (LATEST, BEST):
                name = fs.cat_file(pointer).decode().strip()
                candidates.append(f"{pointer.rsplit('/', 1)[0]}/{name}")
                break
    if not candidates or not fs.exists(f"{candidates[0]}/{CARD}"):
        raise CheckpointError(f"{url}: no checkpoint there (model.json, or checkpoints/latest)")
    remote = candidates[0]
    local = cache_dir("checkpoints", f"{fs.protocol}:{remote}")
    names = [CARD, WEIGHTS]
    if with_trainer:
        names += [TRAINER_JSON, TRAINER_TENSORS]
    local.mkdir(parents=True, exist_ok=True)
    for name in names:
        target = local / name
        if not target.exists():  # checkpoints never change once written
            tmp = target.with_suffix(target.suffix + ".part")
            fs.get_file(f"{remote}/{name}", str(tmp))
            os.replace(tmp, target)
    return local


class RunMirror:
    """Mirrors a local run folder to ``url`` as training writes it."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.fs, self.path = url_fs(url)
        self.local = cache_dir("runs", self.url)
        self.uploaded: dict[str, tuple[int, int]] = {}  # run-folder file -> (size, mtime)

    def exists(self) -> bool:
        return bool(self.fs.exists(f"{self.path}/checkpoints/{LATEST}"))

    def prepare(self, resume: bool) -> None:
        """A fresh local cache for a new run; the remote run's state for a resumed one."""
        if self.local.exists():
            shutil.rmtree(self.local)
        if resume:
            self.pull_for_resume()

    def pull_for_resume(self) -> None:
        """Bring the run's files and latest checkpoint down, so training can resume here."""
        pointer = f"{self.path}/checkpoints/{LATEST}"
        if not self.fs.exists(pointer):
            raise CheckpointError(f"{self.url}: no run to resume (no checkpoints/latest)")
        name = self.fs.cat_file(pointer).decode().strip()
        ckpts = self.local / "checkpoints"
        (ckpts / name).mkdir(parents=True, exist_ok=True)
        self.fs.get(f"{self.path}/checkpoints/{name}/", str(ckpts / name), recursive=True)
        for pointer_name in POINTERS:
            if self.fs.exists(f"{self.path}/checkpoints/{pointer_name}"):
                self.fs.get_file(
                    f"{self.path}/checkpoints/{pointer_name}", str(ckpts / pointer_name)
                )
        for file in RUN_FILES:
            if self.fs.exists(f"{self.path}/{file}"):
                self.fs.get_file(f"{self.path}/{file}", str(self.local / file))

    def push(self, checkpoint: Path | None = None) -> None:
        """Upload ``checkpoint`` (a folder under checkpoints/), the run files, then pointers;
        remove remote checkpoints that local pruning removed."""
        ckpts = self.local / "checkpoints"
        if checkpoint is not None:
            for f in sorted(checkpoint.iterdir()):
                self.fs.put_file(str(f), f"{self.path}/checkpoints/{checkpoint.name}/{f.name}")
        for file in RUN_FILES:
            if (self.local / file).is_file():
                self.fs.put_file(str(self.local / file), f"{self.path}/{file}")
        for folder in RUN_FOLDERS:  # TensorBoard events and step grids, new or grown ones
            for path in sorted((self.local / folder).rglob("*")):
                if not path.is_file() or path.name.startswith("."):
                    continue
                name, stat = path.relative_to(self.local).as_posix(), path.stat()
                if self.uploaded.get(name) != (stat.st_size, stat.st_mtime_ns):
                    self.fs.put_file(str(path), f"{self.path}/{name}")
                    self.uploaded[name] = (stat.st_size, stat.st_mtime_ns)
        for pointer in POINTERS:
            if (ckpts / pointer).is_file():
                self.fs.put_file(str(ckpts / pointer), f"{self.path}/checkpoints/{pointer}")
        kept = {p.name for p in ckpts.glob("step_*")}
        for remote in self.fs.glob(f"{self.path}/checkpoints/step_*"):
            if remote.rsplit("/", 1)[-1] not in kept:
                self.fs.rm(remote, recursive=True)
