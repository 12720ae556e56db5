"""The server refuses impossible settings at start, checks every model before loading any,
stops on SIGTERM within seconds, documents its errors, and works offline (/docs included)."""

from __future__ import annotations

import contextlib
import io
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from i2i.cli import main
from i2i.errors import ConfigError
from i2i.infer.translator import Translator
from i2i.serve.app import ServeConfig, create_app, load_models, plan_models
from i2i.train.loop import train

from .conftest import tiny_config


@pytest.fixture(scope="module")
def run(synth_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("serve-limits") / "run"
    return train(tiny_config(synth_dir, out, max_steps=1), progress=False).run_dir


def error_of(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(list(args)) in (1, 2)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


@pytest.mark.parametrize(
    ("flag", "value", "words"),
    [("--workers", "0", "'--workers': Input should be greater than or equal to 1"),
     ("--queue", "-1", "'--queue': Input should be greater than or equal to 0"),
     ("--port", "99999", "'--port': Input should be less than or equal to 65535"),
     ("--max-pixels", "0", "'--max-pixels'")],
)  # fmt: skip
def test_impossible_settings_are_one_line_before_loading(capsys, run, flag, value, words):
    assert words in error_of(capsys, "serve", "--model", f"m={run}", flag, value)


def test_the_python_api_checks_the_same(run):
    with pytest.raises(ConfigError, match="--workers must be at least 1, got 0"):
        ServeConfig(workers=0)


def test_every_model_is_checked_before_any_loads(run, monkeypatch, tmp_path):
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("a model was loaded before all were checked")

    monkeypatch.setattr(Translator, "load", never)
    with pytest.raises(ConfigError, match="a name is letters, digits"):
        load_models([f"ok={run}", f"a/b={run}"])
    with pytest.raises(Exception, match="missing.onnx not found"):
        load_models([f"ok={run}", f"x={tmp_path / 'missing.onnx'}"])
    with pytest.raises(ConfigError, match="the name 'm' is taken"):
        plan_models([f"m={run}", f"m={run}"])


def test_an_exported_onnx_file_is_served(run, tmp_path, capsys):
    assert main(["export", str(run), "--onnx", str(tmp_path / "m.onnx")]) == 0
    models = load_models([f"m={tmp_path / 'm.onnx'}"], device="cpu", backend="onnxruntime")
    assert models["m"].translator.backend == "onnxruntime" and models["m"].direction == "AtoB"


def test_errors_are_documented_json_and_docs_work_offline(run):
    client = TestClient(create_app(load_models([f"m={run}"], device="cpu")))
    responses = client.get("/openapi.json").json()["paths"]["/v1/models/{name}/translate"]
    declared = responses["post"]["responses"]
    assert {"400", "401", "404", "413", "503"} <= set(declared)
    assert "ErrorBody" in str(declared["413"])
    missing = client.get("/no/such/page")
    assert missing.status_code == 404 and missing.json() == {"error": "Not Found"}
    page = client.get("/docs").text
    assert "cdn" not in page.lower()
    script = page.split('src="')[1].split('"')[0]
    assert client.get(script).status_code == 200 and "SwaggerUIBundle" in client.get(script).text


def tiny_png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), "red").save(buf, "PNG")
    return buf.getvalue()


def post_in_background(url: str, image: bytes) -> None:
    def post() -> None:
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(url, content=image, timeout=30)

    threading.Thread(target=post, daemon=True).start()


def test_sigterm_stops_the_server_while_requests_wait(run, tmp_path):
    """Case rel-07: a server whose one worker is busy and whose queue holds a request still
    stops within seconds of SIGTERM."""
    script = tmp_path / "slow_serve.py"
    script.write_text(
        "import sys, time\n"
        "from i2i.cli import main\n"
        "from i2i.infer.translator import Translator\n"
        "Translator.__call__ = lambda self, image, batch_size=8: time.sleep(60)\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, str(script), "serve", "--model", f"m={run}", "--port", str(port),
         "--backend", "torch", "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(150):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.2)
        for _ in range(2):  # one request keeps the worker busy, one waits for it
            post_in_background(f"{url}/v1/models/m/translate", tiny_png())
        time.sleep(1.5)
        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        assert time.monotonic() - started < 12
    finally:
        server.kill()
