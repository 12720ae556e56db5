"""``i2i data download``: standard datasets land whole, in the layout the readers expect, or not
at all. Tiny archives made here, served by a local server on 127.0.0.1, never the network."""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from i2i.cli import app
from i2i.config import DataConfig
from i2i.data.build import open_datasets
from i2i.data.download import download_dataset, extract_archive
from i2i.download import cache_root
from i2i.errors import ConfigError, DataError, DownloadError

from .conftest import NO_TORCH
from .file_server import serve_files


def png(width: int, height: int, seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


def tar_gz(files: dict[str, bytes], *extra: tarfile.TarInfo) -> bytes:
    """A .tar.gz of ``files``, then the (empty) members ``extra``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for member in extra:
            tar.addfile(member, io.BytesIO(b""))
    return buf.getvalue()


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


# the pix2pix archives: side-by-side pairs in split folders, under one top-level folder
FACADES = {f"facades/{s}/{i}.png": png(32, 16, i) for s in ("train", "val") for i in range(3)}
# the CycleGAN archives: trainA/ trainB/ testA/ testB/, names unrelated across domains
HORSES = {
    f"horse2zebra/{split}{side}/n0{side}_{i}.jpg": png(16, 16, 10 * n + i)
    for split in ("train", "test")
    for side, n in (("A", 3), ("B", 2))
    for i in range(n)
}
HORSES["__MACOSX/horse2zebra/trainA/._n0A_0.jpg"] = b"\x00\x05\x16\x07 macOS metadata"


@pytest.fixture
def server(monkeypatch, tmp_path):
    """The archive server, and a cache of the test's own (archives are reused from the cache)."""
    monkeypatch.setenv("I2I_CACHE", str(tmp_path / "cache"))
    with serve_files() as srv:
        monkeypatch.setenv("I2I_DATASETS_URL", srv.url)
        yield srv


def test_a_paired_archive_lands_in_the_pix2pix_layout_and_is_not_fetched_twice(server, tmp_path):
    server.files["/pix2pix/datasets/facades.tar.gz"] = tar_gz(FACADES)
    got = download_dataset("facades", tmp_path / "data" / "facades", progress=False)
    assert got.fetched and got.path == tmp_path / "data" / "facades"
    assert sorted(p.name for p in got.path.iterdir()) == ["train", "val"]
    assert len(list((got.path / "train").iterdir())) == 3
    assert got.found is not None and got.found.kind == "paired"
    assert [(s.split, s.layout) for s in got.found.splits] == [
        ("train", "side_by_side"),
        ("val", "side_by_side"),
    ]
    assert got.train_command == f"i2i train --data {got.path} --out runs/facades"
    archive = cache_root() / "datasets" / "pix2pix" / "facades.tar.gz"
    assert not archive.exists()  # deleted once extracted
    assert not [p for p in got.path.parent.iterdir() if p.name.startswith(".")]  # no temp left
    again = download_dataset("facades", got.path, progress=False)
    assert not again.fetched and len(server.requests) == 1


def test_an_unpaired_archive_trains_and_previews_from_test_a_b(server, tmp_path):
    server.files["/cyclegan/datasets/horse2zebra.zip"] = zip_bytes(HORSES)
    got = download_dataset("horse2zebra", tmp_path / "h2z", progress=False, keep_archive=True)
    assert sorted(p.name for p in got.path.iterdir()) == ["testA", "testB", "trainA", "trainB"]
    assert not (tmp_path / "__MACOSX").exists() and not (tmp_path / "h2z" / "__MACOSX").exists()
    assert got.found is not None and got.found.kind == "unpaired"
    assert (
        got.train_command == f"i2i train --model cyclegan --data {got.path} --out runs/horse2zebra"
    )
    assert (cache_root() / "datasets" / "cyclegan" / "horse2zebra.zip").is_file()
    # the readers take it as it is: training reads trainA/B, the sample grids testA/B
    train, preview = open_datasets(DataConfig(root=str(got.path), crop_size=16), "unpaired")
    assert (len(train.a), len(train.b)) == (3, 2)  # type: ignore[union-attr]
    assert preview.a.files[0].parent.name == "testA"  # type: ignore[union-attr]


def test_an_interrupted_download_resumes(server, tmp_path):
    data = tar_gz(FACADES)
    server.files["/pix2pix/datasets/facades.tar.gz"] = data
    server.cut_after = len(data) // 3
    with pytest.raises(DownloadError, match="interrupted.*run the command again to resume"):
        download_dataset("facades", tmp_path / "facades", progress=False)
    assert not (tmp_path / "facades").exists()
    got = download_dataset("facades", tmp_path / "facades", progress=False)
    assert server.requests[-1] == ("/pix2pix/datasets/facades.tar.gz", f"bytes={len(data) // 3}-")
    assert len(list((got.path / "val").iterdir())) == 3


@pytest.mark.parametrize(
    ("name", "path", "archive"),
    [
        ("facades", "/pix2pix/datasets/facades.tar.gz", tar_gz(FACADES)[:-200]),  # truncated
        ("horse2zebra", "/cyclegan/datasets/horse2zebra.zip", zip_bytes(HORSES)[:-300]),
    ],
)
def test_a_corrupt_archive_is_an_error_and_leaves_nothing_behind(
    server, tmp_path, name, path, archive
):
    server.files[path] = archive  # served whole: the size checks out, the content does not
    with pytest.raises(DataError, match="corrupt or truncated.*deleted: run the command again"):
        download_dataset(name, tmp_path / "data" / name, progress=False)
    assert not (tmp_path / "data" / name).exists()
    assert list((tmp_path / "data").iterdir()) == []  # no half-extracted temporary folder
    assert not list((cache_root() / "datasets").rglob(Path(path).name))  # downloaded afresh next


def test_a_zip_member_whose_crc_fails_is_corrupt(tmp_path):
    good = zip_bytes({"d/trainA/a.png": png(16, 16, 0)})
    at = good.index(b"IDAT") + 8  # inside the compressed PNG data
    bad = good[:at] + bytes([good[at] ^ 0xFF]) + good[at + 1 :]
    (tmp_path / "d.zip").write_bytes(bad)
    with pytest.raises(DataError, match="corrupt or truncated"):
        extract_archive(tmp_path / "d.zip", tmp_path / "out", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.zip"]  # kept: not ours to delete


@pytest.mark.parametrize("kind", ["tar", "tar link", "zip", "zip absolute"])
def test_members_that_escape_the_target_are_refused(server, tmp_path, kind):
    if kind.startswith("zip"):
        evil = "../evil.txt" if kind == "zip" else str(tmp_path / "evil.txt")
        server.files["/cyclegan/datasets/horse2zebra.zip"] = zip_bytes({**HORSES, evil: b"x"})
        name = "horse2zebra"
    else:
        member = tarfile.TarInfo("facades/../../evil.txt")
        if kind == "tar link":  # a link out of the folder, then a file written through it
            member = tarfile.TarInfo("facades/up")
            member.type, member.linkname = tarfile.SYMTYPE, "../.."
        server.files["/pix2pix/datasets/facades.tar.gz"] = tar_gz(FACADES, member)
        name = "facades"
    with pytest.raises(DataError, match="refused.*nothing was extracted.*deleted"):
        download_dataset(name, tmp_path / "data" / name, progress=False)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "data" / "evil.txt").exists()
    assert list((tmp_path / "data").iterdir()) == []


def test_absolute_tar_members_are_kept_inside(server, tmp_path):
    """The data filter strips a leading slash, as GNU tar does: the file lands inside."""
    server.files["/pix2pix/datasets/facades.tar.gz"] = tar_gz(
        FACADES, tarfile.TarInfo(str(tmp_path / "evil.txt"))
    )
    got = download_dataset("facades", tmp_path / "data" / "facades", progress=False)
    assert not (tmp_path / "evil.txt").exists()
    assert (got.path / str(tmp_path).lstrip("/") / "evil.txt").is_file()


def test_offline_is_one_line_within_seconds(monkeypatch, tmp_path):
    with socket.socket() as s:  # a port nothing listens on: refused, as offline
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("I2I_DATASETS_URL", f"http://127.0.0.1:{port}")
    started = time.monotonic()
    result = CliRunner().invoke(app, ["data", "download", "maps", "--out", str(tmp_path / "m")])
    assert time.monotonic() - started < 5
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"error: http://127.0.0.1:{port}/pix2pix/datasets/maps.tar.gz: cannot download"
    )
    assert "offline" in lines[0] and not (tmp_path / "m").exists()


def test_the_list_and_the_names_that_are_not_downloaded():
    listing = CliRunner().invoke(app, ["data", "download", "--list"]).output
    for row in ("maps  ", "horse2zebra", "monet2photo", "edges2handbags", "ae_photos"):
        assert row in listing
    assert "unpaired  111 MB" in listing and "~8.0 GB" in listing
    with pytest.raises(DataError, match="cityscapes: its licence forbids redistribution"):
        download_dataset("cityscapes", progress=False)
    with pytest.raises(ConfigError, match="unknown dataset 'mapz'; choose from facades, maps"):
        download_dataset("mapz", progress=False)


def test_the_command_prints_the_train_line_and_imports_no_torch(server, tmp_path):
    server.files["/pix2pix/datasets/facades.tar.gz"] = tar_gz(FACADES)
    out = tmp_path / "facades"
    args = ["data", "download", "facades", "--out", str(out), "--no-progress"]
    done = subprocess.run([sys.executable, "-c", NO_TORCH, *args], capture_output=True, text=True)
    assert f"i2i train --data {out} --out runs/facades" in done.stdout, done.stderr
    assert f"i2i data inspect {out}" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "False"  # torch was not imported
