"""The REST API and web page: every endpoint and error, token on and off, in process and over
a real uvicorn server on loopback."""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn
from fastapi.testclient import TestClient
from PIL import Image

import i2i
from i2i.config import CycleGANConfig, DataConfig, DiscriminatorConfig, GeneratorConfig, RunConfig
from i2i.serve.app import ServeConfig, create_app, load_models
from i2i.train.loop import train

from .conftest import tiny_config, tiny_train


@pytest.fixture(scope="module")
def pix2pix_run(synth_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("serve") / "run"
    return train(tiny_config(synth_dir, out, max_steps=2), progress=False).run_dir


@pytest.fixture(scope="module")
def models(pix2pix_run: Path) -> dict:
    return load_models([f"maps={pix2pix_run}"], device="cpu")


def png_bytes(size: tuple[int, int] = (40, 24), mode: str = "RGB") -> bytes:
    rng = np.random.default_rng(0)
    channels = {"RGB": 3, "RGBA": 4}[mode]
    array = rng.integers(0, 255, (size[1], size[0], channels), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(array, mode).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture()
def client(models: dict) -> TestClient:
    return TestClient(create_app(models, ServeConfig(max_upload_bytes=200_000, max_pixels=10_000)))


def test_health_models_and_openapi(client: TestClient):
    assert client.get("/healthz").json() == {"status": "ok", "models": 1}
    (info,) = client.get("/v1/models").json()["models"]
    assert info["name"] == "maps" and info["model"] == "pix2pix"
    assert info["direction"] == "AtoB" and info["size_multiple"] == 32
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/v1/models/{name}/translate"]["post"]["requestBody"]
    assert {"multipart/form-data", "image/*"} <= set(body["content"])
    page = client.get("/")
    assert page.status_code == 200 and "Drop an image" in page.text


def test_translate_multipart_and_raw_keep_the_size(client: TestClient):
    r = client.post("/v1/models/maps/translate", files={"image": ("a.png", png_bytes())})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(r.content)).size == (40, 24)
    raw = client.post(
        "/v1/models/maps/translate",
        content=png_bytes(mode="RGBA"),
        headers={"content-type": "image/png", "accept": "image/jpeg"},
    )
    assert raw.status_code == 200 and raw.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(raw.content)).format == "JPEG"
    by_field = client.post(
        "/v1/models/maps/translate",
        files={"image": ("a.png", png_bytes())},
        data={"format": "jpeg"},
    )
    assert by_field.headers["content-type"] == "image/jpeg"


def test_api_matches_the_python_api(client: TestClient, pix2pix_run: Path):
    data = png_bytes((64, 32))
    r = client.post("/v1/models/maps/translate", files={"image": ("a.png", data)})
    served = np.asarray(Image.open(io.BytesIO(r.content)))
    local = np.asarray(i2i.load(pix2pix_run, device="cpu")(Image.open(io.BytesIO(data))))
    assert np.abs(served.astype(int) - local.astype(int)).max() <= 1


@pytest.mark.parametrize(
    ("kwargs", "status", "words"),
    [
        ({"content": b"not an image", "headers": {"content-type": "image/png"}}, 400, "not an"),
        ({"content": png_bytes()[:60], "headers": {"content-type": "image/png"}}, 400, "corrupt"),
        ({"content": b"", "headers": {"content-type": "image/png"}}, 400, "empty body"),
        (
            {"content": png_bytes((200, 100)), "headers": {"content-type": "image/png"}},
            413,
            "pixels",
        ),
        ({"content": b"0" * 300_000, "headers": {"content-type": "image/png"}}, 413, "limit"),
        ({"files": {"other": ("a.png", png_bytes())}}, 400, "'image'"),
        ({"files": {"image": ("a.png", png_bytes())}, "data": {"format": "gif"}}, 400, "format"),
        ({"files": {"image": ("a.png", png_bytes())}, "data": {"tile": "ten"}}, 400, "tile"),
        ({"files": {"image": ("a.png", png_bytes())}, "data": {"resize": "big"}}, 400, "resize"),
    ],
)
def test_bad_uploads_get_4xx_json_errors(client: TestClient, kwargs, status, words):
    r = client.post("/v1/models/maps/translate", **kwargs)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]
    assert client.get("/healthz").status_code == 200  # still serving


def test_a_bad_query_value_is_a_readable_422(client: TestClient):
    r = client.post("/v1/models/maps/translate?tile=abc", files={"image": ("a.png", png_bytes())})
    assert r.status_code == 422, r.text
    assert r.json()["error"].startswith("query tile: ") and "integer" in r.json()["error"]
    assert "[{" not in r.text  # not a repr of the validator's list


def test_unknown_model_is_404(client: TestClient):
    r = client.post("/v1/models/nope/translate", content=png_bytes())
    assert r.status_code == 404 and "maps" in r.json()["error"]


def test_decompression_bombs_are_refused_before_decoding(client: TestClient):
    # 400 MP is past PIL's own guard (179 MP): the message is still the server's limit
    for side in (10_000, 20_000):
        buf = io.BytesIO()  # a few kB of PNG that would decode to 100 / 400 megapixels
        Image.new("1", (side, side)).save(buf, "PNG", optimize=True)
        r = client.post("/v1/models/maps/translate", content=buf.getvalue())
        error = r.json()["error"]
        assert r.status_code == 413 and f"{side}x{side} pixels" in error, r.text
        assert "at most 10,000 (i2i serve --max-pixels)" in error and "bomb" not in error


def test_token_guards_the_api_but_not_the_page(models: dict):
    client = TestClient(create_app(models, ServeConfig(token="s3cret")))
    assert client.get("/v1/models").status_code == 401
    assert client.get("/v1/models", headers={"authorization": "Bearer wrong"}).status_code == 401
    ok = client.get("/v1/models", headers={"authorization": "Bearer s3cret"})
    assert ok.status_code == 200 and ok.json()["token"] is True
    assert client.post("/v1/models/maps/translate", content=png_bytes()).status_code == 401
    assert client.get("/").status_code == 200 and client.get("/healthz").status_code == 200


def test_resize_to_the_training_scale_through_the_api(client: TestClient, pix2pix_run: Path):
    """The model trained on images resized to 36 px: resize=train brings an upload's shorter
    side there and the result back; auto does so only for uploads over twice that."""
    (info,) = client.get("/v1/models").json()["models"]
    assert info["train_side"] == 36 and info["train_size"] == 32
    data = png_bytes((40, 24))
    r = client.post("/v1/models/maps/translate", files={"image": ("a.png", data)},
                    data={"resize": "train"})  # fmt: skip
    assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).size == (40, 24)
    assert r.headers["x-i2i-resize"] == "40x24 -> 60x36 (training scale) -> 40x24"
    local = i2i.load(pix2pix_run, device="cpu")(Image.open(io.BytesIO(data)), resize="train")
    served = np.asarray(Image.open(io.BytesIO(r.content))).astype(int)
    assert np.abs(served - np.asarray(local).astype(int)).max() <= 1
    small = client.post("/v1/models/maps/translate?resize=auto", content=data)
    assert small.headers["x-i2i-resize"] == "40x24 (own scale)"
    large = client.post("/v1/models/maps/translate?resize=auto", content=png_bytes((120, 80)))
    assert large.headers["x-i2i-resize"] == "120x80 -> 54x36 (training scale) -> 120x80"
    sized = client.post("/v1/models/maps/translate?resize=64x32", content=data)
    assert sized.headers["x-i2i-resize"] == "40x24 -> 64x32 (as asked) -> 40x24"
    assert client.post("/v1/models/maps/translate", content=data).headers["x-i2i-resize"] == (
        "40x24 (own scale)"
    )


def test_tiled_translation_through_the_api(client: TestClient):
    r = client.post(
        "/v1/models/maps/translate",
        files={"image": ("a.png", png_bytes((96, 64)))},
        data={"tile": "64"},
    )
    assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).size == (96, 64)
    bad = client.post("/v1/models/maps/translate?tile=48", content=png_bytes((96, 64)))
    assert bad.status_code == 400 and "multiple of 32" in bad.json()["error"]
    # each tile on its own statistics, as a model trained on crops of that size saw them
    own = client.post(
        "/v1/models/maps/translate?tile=32&tile_stats=tile", content=png_bytes((96, 64))
    )
    whole = client.post("/v1/models/maps/translate?tile=32", content=png_bytes((96, 64)))
    assert own.headers["x-i2i-resize"].endswith("in 32 px tiles on their own statistics")
    assert own.content != whole.content
    wrong = client.post("/v1/models/maps/translate?tile=32&tile_stats=own", content=png_bytes())
    assert wrong.status_code == 400 and wrong.json()["error"].startswith("tile_stats 'own': use")
    alone = client.post("/v1/models/maps/translate?tile_stats=tile", content=png_bytes())
    assert alone.status_code == 400 and "goes with tile=SIZE" in alone.json()["error"]


def test_cyclegan_serves_both_directions(synth_dir: Path, tmp_path: Path):
    from i2i.data.prepare import unpair

    unpaired = tmp_path / "unpaired"
    unpair(synth_dir, unpaired, seed=0)
    cfg = RunConfig(
        data=DataConfig(root=str(unpaired), load_size=36, crop_size=32),
        model=CycleGANConfig(
            generator=GeneratorConfig(kind="resnet_6blocks", ngf=8, depth=1),
            discriminator=DiscriminatorConfig(n_layers=2, ndf=8),
        ),
        train=tiny_train(tmp_path / "cyc", max_steps=1, batch_size=1),
    )
    run = train(cfg, progress=False).run_dir
    models = load_models([f"cyc={run}"], device="cpu")
    assert {(m.name, m.direction) for m in models.values()} == {
        ("cyc", "AtoB"),
        ("cyc-BtoA", "BtoA"),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def live_server(models: dict) -> Iterator[str]:
    """A real uvicorn server on loopback, in a thread."""
    port = free_port()
    app = create_app(models, ServeConfig(token="t", workers=1, queue=64))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started:
        assert time.time() < deadline, "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_real_server_handles_concurrent_requests(live_server: str):
    auth = {"authorization": "Bearer t"}
    data = png_bytes()
    errors: list[str] = []

    def client_thread() -> None:
        with httpx.Client(base_url=live_server, headers=auth, timeout=30) as c:
            for _ in range(3):
                r = c.post("/v1/models/maps/translate", files={"image": ("a.png", data)})
                if r.status_code != 200:
                    errors.append(r.text)

    threads = [threading.Thread(target=client_thread) for _ in range(6)]
    for t in threads:
        t.start()
    # the event loop keeps answering while inference runs in the worker thread
    health = httpx.get(f"{live_server}/healthz", timeout=5)
    for t in threads:
        t.join()
    assert health.status_code == 200
    assert errors == []
    assert httpx.get(f"{live_server}/v1/models", timeout=5).status_code == 401
    bad = httpx.post(f"{live_server}/v1/models/maps/translate", content=b"x", headers=auth)
    assert bad.status_code == 400 and "not an image" in bad.json()["error"]
