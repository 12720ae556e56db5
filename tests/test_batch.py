"""Batch translation: shared out over processes with the same results, resumable after a kill,
a manifest of every input (bad ones too), globs and object-storage URLs in and out."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import i2i
from i2i.cli import main
from i2i.infer import translate_files
from i2i.infer.writers import ImageWriter
from i2i.train.loop import train

from .conftest import tiny_config


@pytest.fixture(scope="module")
def run(synth_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("batch") / "run"
    return train(tiny_config(synth_dir, out, max_steps=1), progress=False).run_dir


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for i in range(24):
        size = (32, 32) if i % 3 else (48, 40)
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(
            folder / f"{i:03d}.png"
        )
    return folder


def cli(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "i2i", *map(str, args)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
    )  # fmt: skip


def manifest(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "_manifest.jsonl").read_text().splitlines()]


def test_two_processes_write_what_one_writes(run, photos, tmp_path):
    args = ["translate", run, photos, "--backend", "torch", "--device", "cpu", "--batch-size",
            "4", "--no-progress"]  # fmt: skip
    one = cli(*args, "--out", tmp_path / "one")
    assert one.returncode == 0, one.stderr
    two = cli(*args, "--out", tmp_path / "two", "--devices", "2")
    assert two.returncode == 0, two.stderr[-2000:]
    names = sorted(p.name for p in (tmp_path / "one").glob("*.png"))
    assert len(names) == 24 and names == sorted(p.name for p in (tmp_path / "two").glob("*.png"))
    for name in names:
        a = np.asarray(Image.open(tmp_path / "one" / name)).astype(int)
        b = np.asarray(Image.open(tmp_path / "two" / name)).astype(int)
        assert a.shape == b.shape and np.abs(a - b).max() <= 1, name  # a batch's rounding
    records = manifest(tmp_path / "two")
    assert len(records) == 24 and {r["status"] for r in records} == {"written"}
    assert not list((tmp_path / "two").glob("_manifest.part-*"))


def test_an_error_every_process_meets_is_said_once(run, tmp_path):
    done = cli("translate", run, tmp_path / "missing", "--out", tmp_path / "o", "--devices", "2")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [f"error: {tmp_path / 'missing'}: no such file or folder"]


def test_processes_report_bad_files_and_counts_of_all(run, tmp_path):
    """A bad file in process 0's share only: one error line, no traceback from the others;
    the side-by-side note counts every process's inputs."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "0_bad.png").write_bytes(b"not an image")  # input 0: process 0's
    for i in range(1, 5):
        Image.new("RGB", (64, 32), (50 * i, 0, 0)).save(folder / f"{i}.png")  # A|B-like
    args = ["translate", run, folder, "--devices", "2", "--no-progress"]
    bad = cli(*args, "--out", tmp_path / "o1")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr, bad.stderr[-2000:]
    assert [line for line in bad.stderr.splitlines() if line.strip()] == [
        f"error: {folder / '0_bad.png'}: not a readable image (cannot identify image file "
        f"'{folder / '0_bad.png'}'); pass --skip-bad to skip such files (1 of 5 inputs could "
        f"not be translated; the others were written; {tmp_path / 'o1' / '_manifest.jsonl'} "
        "lists them)"
    ]
    skipped = cli(*args, "--out", tmp_path / "o2", "--skip-bad")
    assert skipped.returncode == 0, skipped.stderr[-2000:]
    assert "note: 4 input(s) are twice as wide as high" in skipped.stdout


def one_by_one(run: Path, tmp_path: Path, n: int) -> list[str]:
    """The command translating ``n`` plain 32 px inputs (written to TMP/in) into TMP/out one
    at a time: slow enough to be killed half-way."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(n):
        Image.new("RGB", (32, 32), (i % 256, 0, 0)).save(inputs / f"{i:04d}.png")
    out = str(tmp_path / "out")
    return [sys.executable, "-m", "i2i", "translate", str(run), str(inputs), "--out", out,
            "--batch-size", "1", "--backend", "torch", "--no-progress"]  # fmt: skip


def test_a_killed_run_finishes_without_redoing_anything(run, tmp_path):
    out, command = tmp_path / "out", one_by_one(run, tmp_path, 300)
    proc = subprocess.Popen(command, env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 120
    while len(list(out.glob("*.png"))) < 40:
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    assert 40 <= len(first) < 300
    again = subprocess.run(command, env={**os.environ, "OMP_NUM_THREADS": "1"},
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert again.returncode == 0, again.stderr
    after = {p.name: p.stat().st_mtime_ns for p in out.glob("*.png")}
    assert len(after) == 300
    assert all(after[name] == stamp for name, stamp in first.items())  # none redone
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files
    statuses = {r["output"]: r["status"] for r in manifest(out)}
    assert len(statuses) == 300 and "skipped" not in statuses.values()
    assert f"{len(first)} already there" in again.stdout
    rerun = cli(*command[3:])
    assert "300 already there" in rerun.stdout


class Killed(BaseException):
    """Stands for SIGKILL at one exact point (a real kill lands there by chance)."""


def test_a_kill_between_record_and_image_leaves_no_unrecorded_output(run, tmp_path, monkeypatch):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(6):
        Image.new("RGB", (32, 32), (40 * i, 0, 0)).save(inputs / f"{i}.png")
    translator, out = i2i.load(run), tmp_path / "out"
    logged = []
    real_append = ImageWriter.append_text

    def die_at_third(self, name, text):  # the kill comes as the third chunk is recorded
        logged.append(text)
        if len(logged) == 3:
            raise Killed
        real_append(self, name, text)

    monkeypatch.setattr(ImageWriter, "append_text", die_at_third)
    with pytest.raises(Killed):
        translate_files(translator, [inputs], out, batch_size=2, progress=False)
    monkeypatch.undo()
    translate_files(translator, [inputs], out, batch_size=2, progress=False)
    records = manifest(out)
    assert sorted(p.name for p in out.glob("*.png")) == [f"{i}.png" for i in range(6)]
    # every output's record says how it was made: none only "skipped" (already there)
    assert len(records) == 6 and {r["status"] for r in records} == {"written"}
    assert all(r["bytes"] == (out / r["output"]).stat().st_size for r in records)


def running_with(text: str) -> list[int]:
    """The processes whose command line holds ``text``."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text in cmdline.read_bytes().decode(errors="replace"):
                pids.append(int(cmdline.parent.name))
        except OSError:  # it ended meanwhile
            pass
    return pids


@pytest.mark.skipif(sys.platform != "linux", reason="processes die with their parent on Linux")
def test_a_killed_multiprocess_run_leaves_no_process_writing(run, tmp_path):
    out, command = tmp_path / "out", [*one_by_one(run, tmp_path, 600), "--devices", "2"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(list(out.glob("*.png"))) < 20:
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # the command only: torchrun and its processes follow
    proc.wait()
    deadline = time.time() + 30
    while running_with(str(out)) and time.time() < deadline:
        time.sleep(0.2)
    assert running_with(str(out)) == []
    written = len(list(out.glob("*.png")))
    assert written < 600  # nobody went on writing after the kill
    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert len(list(out.glob("*.png"))) == 600 and f"{written} already there" in again.stdout


def test_a_bad_input_among_two_processes_is_one_error_line(run, photos, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for p in list(photos.iterdir())[:5]:
        (inputs / p.name).write_bytes(p.read_bytes())
    (inputs / "broken.png").write_bytes(b"not a png")
    done = cli("translate", run, inputs, "--out", tmp_path / "out", "--devices", "2",
               "--backend", "torch", "--no-progress")  # fmt: skip
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr[-3000:]  # no launcher traceback, one process reports
    assert lines[0].startswith("error: ") and "broken.png" in lines[0]
    assert "1 of 6 inputs" in lines[0]  # counted over both processes
    assert len(list((tmp_path / "out").glob("*.png"))) == 5


def test_a_bad_input_is_in_the_manifest_and_the_others_are_written(run, photos, tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for p in list(photos.iterdir())[:5]:
        (inputs / p.name).write_bytes(p.read_bytes())
    (inputs / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    assert main(["translate", str(run), str(inputs), "--out", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "broken.png" in err[0] and "1 of 6 inputs" in err[0]
    assert f"{out / '_manifest.jsonl'} lists them" in err[0]
    assert len(list(out.glob("*.png"))) == 5
    failed = [r for r in manifest(out) if r["status"] == "failed"]
    assert [Path(r["input"]).name for r in failed] == ["broken.png"] and failed[0]["error"]
    out2 = tmp_path / "out2"
    assert main(["translate", str(run), str(inputs), "--out", str(out2), "--skip-bad",
                 "--no-progress"]) == 0  # fmt: skip


def test_glob_inputs_and_object_storage_in_and_out(run, photos, tmp_path, s3):
    import s3fs

    fs = s3fs.S3FileSystem()
    for p in sorted(photos.iterdir())[:4]:
        fs.put_file(str(p), f"i2i-test/photos/{p.name}")
    code = main(["translate", str(run), "s3://i2i-test/photos/", "--out", "s3://i2i-test/maps",
                 "--backend", "torch", "--no-progress"])  # fmt: skip
    assert code == 0
    written = sorted(p.rsplit("/", 1)[-1] for p in fs.ls("i2i-test/maps"))
    assert written == ["000.png", "001.png", "002.png", "003.png", "_manifest.jsonl"]
    assert main(["translate", str(run), str(photos / "00*.png"), "--out", str(tmp_path / "g"),
                 "--no-progress"]) == 0  # fmt: skip
    assert len(list((tmp_path / "g").glob("*.png"))) == 10  # 000.png-009.png
