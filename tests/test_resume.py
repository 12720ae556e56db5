"""A run resumes from any working directory, with its data moved, and past a --max-steps cap;
the summary says what this session trained and which limit applies."""

from __future__ import annotations

import shutil

import pytest
import yaml

from i2i.cli import main

SMALL = ["--load-size", "36", "--crop-size", "32", "--generator", "unet_128", "--depth", "5",
         "--ngf", "8", "--ndf", "8", "--disc-layers", "2", "--no-progress"]  # fmt: skip


@pytest.fixture()
def project(synth_dir, tmp_path, monkeypatch):
    """A run trained with a relative --data from its project folder (case 07)."""
    shutil.copytree(synth_dir, tmp_path / "project" / "data")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "project")
    assert main(["train", "--data", "data", "--out", "run", "--max-steps", "2", *SMALL]) == 0
    return tmp_path


def test_a_run_resumes_from_any_folder(project, monkeypatch, capsys):
    config = yaml.safe_load((project / "project" / "run" / "config.yaml").read_text())
    assert config["data"]["root"] == str(project / "project" / "data")  # absolute
    monkeypatch.chdir(project / "elsewhere")
    capsys.readouterr()
    assert main(["train", "--resume", str(project / "project" / "run"), "--max-steps", "4",
                 "--no-progress"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "trained 4 steps in all, 2 of them now (steps 3-4)" in out
    assert "limit: --max-steps 4" in out


def test_moved_data_is_one_line_and_data_points_at_it(project, monkeypatch, capsys):
    run = str(project / "project" / "run")
    (project / "project" / "data").rename(project / "moved")
    monkeypatch.chdir(project / "elsewhere")
    capsys.readouterr()
    assert main(["train", "--resume", run, "--max-steps", "3", "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not found from" in err[0] and "--data PATH" in err[0]
    assert main(["train", "--resume", run, "--data", str(project / "moved"), "--max-steps",
                 "3", "--no-progress"]) == 0  # fmt: skip


def test_a_capped_run_extends_by_epochs_and_says_when_it_is_done(project, capsys):
    run = str(project / "project" / "run")
    capsys.readouterr()
    assert main(["train", "--resume", run, "--no-progress"]) == 0
    assert "nothing to train: the run is at step 2, its limit (--max-steps 2)" in (
        capsys.readouterr().out
    )
    assert main(["train", "--resume", run, "--epochs", "1", "--epochs-decay", "0",
                 "--no-progress"]) == 0  # fmt: skip
    out = capsys.readouterr().out  # 32 pairs at batch 1: one epoch is 32 steps
    assert "trained 32 steps in all, 30 of them now" in out
    assert "limit: 1 epochs (1 + 0 of lr decay) = 32 steps" in out


def test_leftovers_of_killed_writes_are_cleaned_and_bad_folders_are_one_line(project, capsys):
    run = project / "project" / "run"
    (run / ".config.yaml.0123456789ab.i2i-tmp").write_text("half a con")
    (run / "checkpoints" / ".tmp-step_00000009-deadbeef").mkdir()
    (run / "samples").mkdir(exist_ok=True)
    (run / "samples" / ".step_00000009.png.0123456789ab.i2i-tmp").write_bytes(b"\x89PNG")
    assert main(["train", "--resume", str(run), "--max-steps", "3", "--no-progress"]) == 0
    leftovers = [p for folder in (run, run / "checkpoints", run / "samples")
                 for p in folder.iterdir() if p.name.startswith(".")]  # fmt: skip
    assert leftovers == []
    capsys.readouterr()
    assert main(["train", "--data", "data", "--out", "/dev/null/run", *SMALL]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: /dev/null/run: Not a directory"]
