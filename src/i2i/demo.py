"""``i2i demo``: synthesize a dataset, train a small pix2pix on it, translate, and say where
everything is. The whole workflow on any machine, in a couple of minutes on a CPU."""

from __future__ import annotations

from pathlib import Path

import torch
import typer

from i2i.config import (
    DataConfig,
    DiscriminatorConfig,
    GeneratorConfig,
    Pix2PixConfig,
    RunConfig,
    TrainConfig,
)
from i2i.data.paired import PairedDataset
from i2i.data.synth import write_synthetic
from i2i.infer.batch import translate_files
from i2i.infer.translator import Translator
from i2i.metrics.evaluate import evaluate_translator
from i2i.models import Pix2Pix
from i2i.train.loop import train


def demo_config(data: Path, out: Path, steps: int) -> RunConfig:
    """A pix2pix sized for 64 px images and a CPU: a 6-level U-Net of width 32, 70 px PatchGAN."""
    return RunConfig(
        data=DataConfig(root=str(data), load_size=72, crop_size=64),
        model=Pix2PixConfig(
            generator=GeneratorConfig(kind="unet_256", depth=6, ngf=32),
            discriminator=DiscriminatorConfig(n_layers=3, ndf=32),
        ),
        train=TrainConfig(
            out=str(out),
            batch_size=4,
            lr=4e-4,
            epochs=3,
            epochs_decay=3,
            max_steps=steps,
            save_every=max(1, steps // 4),
            image_every=max(1, steps // 6),
            log_every=10,
        ),
    )


def free_name(path: Path) -> Path:
    """``path`` if unused, else ``path-1``, ``path-2``...: a demo never overwrites a run."""
    if not path.exists():
        return path
    n = 1
    while path.with_name(f"{path.name}-{n}").exists():
        n += 1
    return path.with_name(f"{path.name}-{n}")


def run_demo(out: Path, data: Path, steps: int) -> None:
    if not (data / "train").is_dir():
        typer.echo(f"writing the synthetic dataset to {data} ...")
        write_synthetic(data, n_train=400, n_val=50, size=64)
    cfg = demo_config(data, free_name(out), steps)
    typer.echo(f"training pix2pix for {steps} steps into {cfg.train.out} ...")
    result = train(cfg)

    model = Translator.load(result.run_dir)
    val = PairedDataset(cfg.data, "val", train=False)
    scores = evaluate_translator(model, val, ["l1"])
    torch.manual_seed(cfg.train.seed)  # the very weights training started from
    assert isinstance(cfg.model, Pix2PixConfig)
    untrained = Translator(Pix2Pix(cfg.model).G)
    before = evaluate_translator(untrained, val, ["l1"])
    translated = result.run_dir / "translated"
    translate_files(model, [data / "val"], translated, half="left", progress=False)

    run = result.run_dir
    typer.echo(
        f"\ndone in {result.seconds:.0f} s. Mean L1 error on the {len(val)} held-out "
        f"pairs: {before['l1']:.3f} before training -> {scores['l1']:.3f} after"
    )
    typer.echo(f"  samples (input | output | target): {run / 'samples.png'}")
    typer.echo(f"  loss curves:                       {run / 'loss_curves.png'}")
    typer.echo(f"  translated val images:             {translated}")
    typer.echo(f"  checkpoint:                        {result.checkpoint}")
    typer.echo(f"  TensorBoard:  tensorboard --logdir {run / 'tensorboard'}")
    typer.echo(
        f"  translate:    i2i translate {run} IMAGE_OR_FOLDER --out OUT_DIR "
        "(--input-half left for side-by-side pairs)"
    )
    typer.echo(f"  in Python:    model = i2i.load('{run}'); out = model(PIL.Image.open(...))")
