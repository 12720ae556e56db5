"""The published generators by name: downloaded (resumably, atomically) from a local server that
stands in for the publisher's, imported once and reused; a corrupt file is refused and removed,
and an offline machine gets one line naming the URL within seconds."""

from __future__ import annotations

import hashlib
import socket
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import i2i
from i2i.cli import app
from i2i.errors import ConfigError, DownloadError
from i2i.runs.checkpoint import read_card
from i2i.runs.pretrained import CATALOGUE, URL_ENV, lookup, pretrained_checkpoint

from .file_server import serve_files

OFFICIAL = Path(__file__).parent / "fixtures" / "official"
CYCLEGAN = (OFFICIAL / "cyclegan_resnet9_instance.pth").read_bytes()  # a resnet_9blocks file
PIX2PIX = (OFFICIAL / "pix2pix_unet256_batch.pth").read_bytes()  # a unet_256 batch-norm file
HORSE2ZEBRA = "/cyclegan/pretrained_models/horse2zebra.pth"


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("I2I_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_the_catalogue_is_the_reference_codes_published_generators():
    names = {e.name for e in CATALOGUE.values() if e.method == "cyclegan"}
    assert len(names) == 18 and {"horse2zebra", "style_monet", "iphone2dslr_flower"} <= names
    pix2pix = {e.name for e in CATALOGUE.values() if e.method == "pix2pix"}
    assert pix2pix == {"edges2shoes", "sat2map", "map2sat", "facades_label2photo", "day2night"}
    entry = lookup("horse2zebra")
    assert (
        entry.url()
        == "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/horse2zebra.pth"
    )
    assert entry.architecture == ("resnet_9blocks", "instance") and entry.size == 256
    facades = lookup("pix2pix/facades_label2photo")
    assert facades.url().endswith("/pix2pix/models-pytorch/facades_label2photo.pth")
    assert facades.architecture == ("unet_256", "batch") and facades.direction == "BtoA"
    with pytest.raises(ConfigError, match="say cyclegan/sat2map or pix2pix/sat2map"):
        lookup("sat2map")
    with pytest.raises(ConfigError, match="no published model 'horse2zebr'"):
        lookup("horse2zebr")
    result = CliRunner().invoke(app, ["pretrained", "list"])
    assert result.exit_code == 0 and len(result.output.splitlines()) == 1 + len(CATALOGUE)
    assert "pix2pix/sat2map" in result.output and "horse -> zebra" in result.output


def test_download_import_and_reuse(cache, monkeypatch):
    with serve_files() as server:
        server.files[HORSE2ZEBRA] = CYCLEGAN
        server.files["/pix2pix/models-pytorch/facades_label2photo.pth"] = PIX2PIX
        monkeypatch.setenv(URL_ENV, server.url)
        ckpt = pretrained_checkpoint("horse2zebra", progress=False)
        card = read_card(ckpt)
        assert card.source is not None and card.source["url"] == server.url + HORSE2ZEBRA
        assert card.model == "cyclegan" and card.translate is not None
        assert card.translate.default == "AtoB" and card.scale is not None
        assert (card.scale.load_size, card.scale.crop_size) == (286, 256)
        assert (cache / "pretrained" / "cyclegan" / "horse2zebra.pth").read_bytes() == CYCLEGAN
        assert pretrained_checkpoint("horse2zebra", progress=False) == ckpt  # reused
        assert len(server.requests) == 1
        facades = read_card(pretrained_checkpoint("pix2pix/facades_label2photo", progress=False))
        assert facades.translate is not None and facades.translate.default == "BtoA"
        assert facades.nets["G"].config.batch_stats == "image"  # type: ignore[union-attr]


def test_translate_takes_a_published_name(cache, monkeypatch, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (60, 80, 3), np.uint8)).save(
        photos / "horse.jpg")  # fmt: skip
    with serve_files() as server:
        server.files[HORSE2ZEBRA] = CYCLEGAN
        monkeypatch.setenv(URL_ENV, server.url)
        zebras = tmp_path / "zebras"
        result = CliRunner().invoke(
            app, ["translate", "horse2zebra", str(photos), "--out", str(zebras), "--no-progress"]
        )
        assert result.exit_code == 0, result.output
        assert Image.open(zebras / "horse.png").size == (80, 60)
        # the same as the file imported by hand
        by_hand = i2i.load(OFFICIAL / "cyclegan_resnet9_instance.pth", device="cpu")
        expected = np.asarray(by_hand(Image.open(photos / "horse.jpg"))).astype(int)
        got = np.asarray(Image.open(zebras / "horse.png")).astype(int)
        assert np.abs(got - expected).max() <= 1
        result = CliRunner().invoke(app, ["pretrained", "get", "horse2zebra", "--out",
                                          str(tmp_path / "copy"), "--no-progress"])  # fmt: skip
        assert result.exit_code == 0, result.output
        assert len(server.requests) == 1
        assert i2i.load(tmp_path / "copy", device="cpu").description["model"] == "cyclegan"


def test_an_interrupted_download_resumes(cache, monkeypatch):
    with serve_files() as server:
        server.files[HORSE2ZEBRA] = CYCLEGAN
        server.cut_after = 100_000
        monkeypatch.setenv(URL_ENV, server.url)
        with pytest.raises(DownloadError, match="interrupted after 100,000 of"):
            pretrained_checkpoint("horse2zebra", progress=False)
        part = cache / "pretrained" / "cyclegan" / "horse2zebra.pth.part"
        assert part.stat().st_size == 100_000
        ckpt = pretrained_checkpoint("horse2zebra", progress=False)
        assert server.requests[-1] == (HORSE2ZEBRA, "bytes=100000-")
        digest = hashlib.sha256(CYCLEGAN).hexdigest()
        assert read_card(ckpt).source["sha256"] == digest  # type: ignore[index]
        assert (cache / "pretrained" / "cyclegan" / "horse2zebra.pth").read_bytes() == CYCLEGAN


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"<html>moved</html>" * 100, "not a PyTorch weights file"),
        (CYCLEGAN[: len(CYCLEGAN) // 2] + bytes(len(CYCLEGAN) // 2), "unreadable"),
        (PIX2PIX, "--netG resnet_9blocks, but the file holds a U-Net"),  # another model
    ],
)
def test_a_corrupt_download_is_refused_and_removed(cache, monkeypatch, body, words):
    with serve_files() as server:
        server.files[HORSE2ZEBRA] = body
        monkeypatch.setenv(URL_ENV, server.url)
        with pytest.raises(DownloadError, match=rf"horse2zebra.pth: the downloaded file is not "
                           rf"the published cyclegan generator .*{words}.*deleted"):  # fmt: skip
            pretrained_checkpoint("horse2zebra", progress=False)
        folder = cache / "pretrained" / "cyclegan"
        assert sorted(p.name for p in folder.iterdir()) == []
        server.files[HORSE2ZEBRA] = CYCLEGAN  # fixed on the server: the next try succeeds
        assert read_card(pretrained_checkpoint("horse2zebra", progress=False)).model == "cyclegan"


def test_offline_is_one_line_naming_the_url_within_seconds(cache, monkeypatch, tmp_path):
    with socket.socket() as s:  # a port nothing listens on: refused, as offline
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(URL_ENV, f"http://127.0.0.1:{port}")
    Image.new("RGB", (8, 8)).save(tmp_path / "in.png")
    started = time.monotonic()
    result = CliRunner().invoke(
        app, ["translate", "style_monet", str(tmp_path / "in.png"), "--out", str(tmp_path / "o")]
    )
    assert time.monotonic() - started < 5
    assert result.exit_code == 1
    (line,) = result.output.splitlines()
    url = f"http://127.0.0.1:{port}/cyclegan/pretrained_models/style_monet.pth"
    assert line.startswith(f"error: {url}: cannot download") and "offline" in line
    assert f"put it at {cache / 'pretrained' / 'cyclegan' / 'style_monet.pth'}" in line
