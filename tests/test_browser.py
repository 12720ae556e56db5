"""The web page in a real browser: headless Chromium (Debian's package) driven by Playwright
opens the page, uploads an image, and sees the translation appear, at its own scale and at the
model's training scale."""

from __future__ import annotations

import io
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import uvicorn
from PIL import Image

from i2i.serve.app import ServeConfig, create_app, load_models
from i2i.train.loop import train

from .conftest import tiny_config
from .test_serve import free_port

CHROMIUM = os.environ.get("I2I_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def test_page_uploads_an_image_and_shows_the_translation(synth_dir: Path, tmp_path: Path):
    from playwright.sync_api import expect, sync_playwright

    assert Path(CHROMIUM).exists(), (
        f"no Chromium at {CHROMIUM}: install Debian's chromium package (see the README's test "
        "command) or set I2I_CHROMIUM"
    )
    run = train(tiny_config(synth_dir, tmp_path / "run", max_steps=1), progress=False).run_dir
    app = create_app(load_models([f"maps={run}"], device="cpu"), ServeConfig())
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    upload = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), np.uint8)).save(upload)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            expect(page.locator("#model option")).to_have_text("maps (pix2pix, AtoB)")
            page.set_input_files("#file", str(upload))
            expect(page.locator("#status")).to_contain_text("Done", timeout=30_000)
            output = page.locator("#output")
            width = output.evaluate("img => img.naturalWidth")
            height = output.evaluate("img => img.naturalHeight")
            assert (width, height) == (64, 48)
            expect(page.locator("#download")).to_be_visible()
            href = page.locator("#download").get_attribute("href")
            assert href and href.startswith("blob:")
            png = page.evaluate(
                "async (url) => Array.from(new Uint8Array(await (await fetch(url)).arrayBuffer()))",
                href,
            )
            assert Image.open(io.BytesIO(bytes(png))).size == (64, 48)
            # the scale: auto keeps a small upload's own, "training scale" brings it to 36 px
            note = page.locator("#scale-note")
            expect(note).to_have_text("Translated at: 64x48 (own scale).")
            expect(page.locator("#model-info")).to_contain_text("trained on images of 36 px")
            page.select_option("#resize", "train")  # translates the image shown again
            expect(note).to_have_text(
                "Translated at: 64x48 -> 48x36 (training scale) -> 64x48.", timeout=30_000
            )
            assert output.evaluate("img => img.naturalWidth") == 64
            browser.close()
    finally:
        server.should_exit = True
        thread.join(10)
