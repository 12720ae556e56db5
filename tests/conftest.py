"""Shared fixtures: tiny synthetic data and tiny model configs (32 px, a few channels)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from i2i.config import (
    DataConfig,
    DiscriminatorConfig,
    GeneratorConfig,
    Pix2PixConfig,
    RunConfig,
    TrainConfig,
)
from i2i.data.synth import write_synthetic

NO_TORCH = (
    "import sys\nfrom i2i.cli import app\n"
    "try:\n    app(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
    "print('torch' in sys.modules)"
)  # runs an i2i command, then prints whether it imported torch


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Tests keep i2i's cache (ONNX exports, downloads) out of the user's home."""
    with pytest.MonkeyPatch.context() as patch:
        cache = tmp_path_factory.mktemp("i2i-cache")
        patch.setenv("I2I_CACHE", str(cache))
        yield cache


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """32 px synthetic pairs: 32 for training, 8 held out."""
    return write_synthetic(tmp_path_factory.mktemp("synth"), 32, 8, 32, seed=0, progress=False)


def tiny_train(out: Path | str, **overrides: object) -> TrainConfig:
    """Training settings for tests: a few steps, losses logged every step, no extra pictures;
    deterministic kernels, so that runs compared on a GPU differ only as they would on a CPU."""
    settings: dict[str, object] = dict(
        out=str(out),
        batch_size=4,
        lr=5e-4,
        epochs=50,
        epochs_decay=0,
        max_steps=10,
        save_every=1000,
        log_every=1,
        image_every=1000,
        num_samples=2,
        deterministic=True,
    )
    settings.update(overrides)
    return TrainConfig(**settings)  # type: ignore[arg-type]


def tiny_config(data: Path, out: Path, **train: object) -> RunConfig:
    """A pix2pix that trains on 32 px images in milliseconds per step."""
    return RunConfig(
        data=DataConfig(root=str(data), load_size=36, crop_size=32),
        model=Pix2PixConfig(
            generator=GeneratorConfig(kind="unet_256", depth=5, ngf=16),
            discriminator=DiscriminatorConfig(n_layers=2, ndf=8),
        ),
        train=tiny_train(out, **train),
    )


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 with a bucket; the environment points clients at it."""
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    patch = pytest.MonkeyPatch()
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "I2I_CACHE": str(tmp_path_factory.mktemp("cache")),
    }.items():
        patch.setenv(key, value)
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint}).mkdir("i2i-test")
    yield endpoint
    patch.undo()
    server.stop()
