"""Downloads land whole or not at all: resumed after an interruption, refused when corrupt, and
one clear line within seconds when the machine is offline. A local server, never the network."""

from __future__ import annotations

import hashlib
import socket
import time

import pytest

from i2i.download import download
from i2i.errors import DownloadError

from .file_server import serve_files

DATA = bytes(range(256)) * 4096  # 1 MiB


def test_a_download_lands_whole_and_is_reused(tmp_path):
    with serve_files() as server:
        server.files["/a.bin"] = DATA
        digest = hashlib.sha256(DATA).hexdigest()
        path = download(f"{server.url}/a.bin", tmp_path / "a.bin", sha256=digest, progress=False)
        assert path.read_bytes() == DATA and not (tmp_path / "a.bin.part").exists()
        download(f"{server.url}/a.bin", tmp_path / "a.bin", progress=False)
        assert len(server.requests) == 1  # the second call found the file


def test_an_interrupted_download_resumes_where_it_stopped(tmp_path):
    with serve_files() as server:
        server.files["/a.bin"] = DATA
        server.cut_after = 300_000
        with pytest.raises(DownloadError, match="interrupted after 300,000 of 1,048,576 bytes"):
            download(f"{server.url}/a.bin", tmp_path / "a.bin", progress=False)
        assert not (tmp_path / "a.bin").exists()  # never left behind as if complete
        assert (tmp_path / "a.bin.part").stat().st_size == 300_000
        download(f"{server.url}/a.bin", tmp_path / "a.bin", progress=False)
        assert (tmp_path / "a.bin").read_bytes() == DATA
        assert server.requests[-1] == ("/a.bin", "bytes=300000-")


def test_a_corrupt_download_is_refused_and_removed(tmp_path):
    with serve_files() as server:
        server.files["/a.bin"] = DATA
        with pytest.raises(DownloadError, match="corrupt"):
            download(f"{server.url}/a.bin", tmp_path / "a.bin", sha256="0" * 64, progress=False)
        assert list(tmp_path.iterdir()) == []


def test_missing_files_and_offline_machines_say_what_to_do(tmp_path):
    with serve_files() as server, pytest.raises(DownloadError, match=r"answered 404.*put it at"):
        download(f"{server.url}/gone.bin", tmp_path / "gone.bin", progress=False)
    with socket.socket() as s:  # a port nothing listens on: refused, as offline
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(DownloadError, match=rf"127.0.0.1:{port}/x.bin: cannot download.*offline"):
        download(f"http://127.0.0.1:{port}/x.bin", tmp_path / "x.bin", progress=False)
    assert time.monotonic() - started < 5


def test_a_server_that_never_answers_times_out(tmp_path):
    with socket.socket() as listener:  # accepts connections, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/x.bin"
        started = time.monotonic()
        with pytest.raises(DownloadError, match="cannot download"):
            download(url, tmp_path / "x.bin", progress=False, timeout=1)
        assert time.monotonic() - started < 4
