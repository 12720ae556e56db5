"""``i2i experiment``: a grid trains and evaluates every cell, tabulates, and resumes."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from i2i.cli import app
from i2i.config import ConfigError
from i2i.experiment import load_experiment

GRID = {
    "base": {
        "data": {"load_size": 36, "crop_size": 32},
        "model": {
            "kind": "pix2pix",
            "generator": {"kind": "unet_256", "depth": 5, "ngf": 8},
            "discriminator": {"n_layers": 2, "ndf": 8},
        },
        "train": {"batch_size": 4, "max_steps": 6, "log_every": 1, "image_every": 1000},
    },
    "grid": {"model.recon_loss": ["l1", "l2"]},
    "cells": [{"name": "patch70"}],
    "evaluate": {"metrics": ["l1", "psnr", "ssim"]},
}


def write_grid(tmp_path: Path, spec: dict) -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_grid_trains_evaluates_tabulates_and_skips_finished_cells(synth_dir, tmp_path):
    grid = write_grid(tmp_path, GRID)
    out = tmp_path / "exp"
    args = ["experiment", str(grid), "--out", str(out), "--data", str(synth_dir), "--no-progress"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["model.recon_loss"] for r in rows] == ["l1", "l2"]
    for row in rows:
        assert float(row["l1"]) > 0 and float(row["psnr"]) > 0 and row["ssim"]
        assert row["steps"] == "6"
    assert "loss G_L1" in rows[0] and rows[1]["loss G_L2"]
    md = (out / "results.md").read_text()
    assert "2 of 2 cells done" in md and "recon_loss=l1" in md
    assert (out / "loss_curves.png").stat().st_size > 0
    assert (out / "samples.png").stat().st_size > 0

    results = sorted(out.glob("cells/*/result.json"))
    stamps = [p.stat().st_mtime_ns for p in results]
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert again.output.count("done before, skipped") == 2
    assert [p.stat().st_mtime_ns for p in results] == stamps


def test_an_interrupted_cell_resumes_from_its_checkpoint(synth_dir, tmp_path):
    spec = {**GRID, "grid": {"model.recon_loss": ["l1"]}}
    spec["base"] = {**GRID["base"], "train": {**GRID["base"]["train"], "save_every": 3}}
    grid = write_grid(tmp_path, spec)
    out = tmp_path / "exp"
    exp = load_experiment(grid, str(out), {"data.root": str(synth_dir)})
    (cell,) = exp.cells
    cell.config.train.max_steps = 3  # an interrupted sweep: the cell stopped at step 3
    from i2i.train.loop import train

    train(cell.config, progress=False)
    args = ["experiment", str(grid), "--out", str(out), "--data", str(synth_dir), "--no-progress"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "resuming" in result.output
    with open(out / "results.csv") as f:
        (row,) = list(csv.DictReader(f))
    assert row["steps"] == "6"


def test_bad_grids_are_refused_with_the_reason(tmp_path):
    with pytest.raises(ConfigError, match="non-empty lists"):
        load_experiment(write_grid(tmp_path, {**GRID, "grid": {"model.recon_loss": "l1"}}))
    with pytest.raises(ConfigError, match="no such option"):
        load_experiment(write_grid(tmp_path, {**GRID, "grid": {"model.nope": [1]}}))
    with pytest.raises(ConfigError, match="share a name"):
        load_experiment(write_grid(tmp_path, {**GRID, "cells": [{"name": "a"}, {"name": "a"}]}))


def test_shipped_grids_load():
    root = Path(__file__).parent.parent / "experiments"
    grids = sorted(root.glob("*.yaml"))
    assert len(grids) >= 2
    for grid in grids:
        exp = load_experiment(grid)
        assert len(exp.cells) >= 3, grid


def test_a_changed_cell_trains_again_and_a_failed_one_does_not_stop_the_sweep(synth_dir, tmp_path):
    spec = {**GRID, "grid": {"train.max_steps": [2, 3]}}
    args = ["experiment", "--out", str(tmp_path / "exp"), "--data", str(synth_dir), "--no-progress"]
    first = CliRunner().invoke(app, ["experiment", str(write_grid(tmp_path, spec)), *args[1:]])
    assert first.exit_code == 0, first.output
    # the grid file changes the cells' config: nothing finished may be reused
    spec["base"]["model"]["generator"]["ngf"] = 4
    changed = CliRunner().invoke(app, ["experiment", str(write_grid(tmp_path, spec)), *args[1:]])
    assert changed.exit_code == 0, changed.output
    assert "done before" not in changed.output and changed.output.count("config changed") == 2
    # a cell that cannot train is recorded as failed; the next cell still runs
    spec["grid"] = {"model.generator.depth": [9, 5]}  # 9 levels need 512 px crops
    failing = CliRunner().invoke(app, ["experiment", str(write_grid(tmp_path, spec)), *args[1:]])
    assert failing.exit_code == 1 and "1 of 2 cells failed" in failing.output
    md = (tmp_path / "exp" / "results.md").read_text()
    assert "1 of 2 cells done, 1 failed" in md and "failed: ConfigError" in md
