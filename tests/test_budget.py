"""A time budget the schedule is fitted to, and a clean stop on Ctrl-C or SIGTERM: a
checkpoint at the current step, and a resume that continues the same trajectory."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from i2i.cli import main
from i2i.config import ConfigError, parse_duration, to_dict
from i2i.runs.checkpoint import load_trainer_state, resolve_checkpoint
from i2i.train import options
from i2i.train.budget import StopSignals, clock, lr_fraction
from i2i.train.monitor import read_metrics

from .conftest import tiny_config


def test_durations_and_the_fitted_schedule():
    assert parse_duration("30m") == 1800 and parse_duration("2h") == 7200
    assert parse_duration("90") == parse_duration("90s") == 90
    with pytest.raises(ConfigError, match="--time-limit 'soon'"):
        parse_duration("soon")
    assert lr_fraction(0.3, 0.5) == 1.0 and lr_fraction(0.75, 0.5) == pytest.approx(0.5)
    assert lr_fraction(1.0, 0.5) == 0.0
    assert (clock(42.4), clock(119), clock(1800)) == ("42s", "119s", "30min")  # the bar's


def cli(*args: object) -> list[str]:
    return [sys.executable, "-m", "i2i", *map(str, args)]


ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def config_file(synth_dir: Path, tmp_path: Path, **train: object) -> Path:
    cfg = tiny_config(synth_dir, tmp_path / "run", **train)
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(to_dict(cfg)))
    return path


def test_a_time_limit_stops_on_time_with_the_schedule_at_its_end(synth_dir, tmp_path):
    # 8,000 steps: several times what 8 s holds on any machine, so the limit is what stops it
    cfg = config_file(synth_dir, tmp_path, max_steps=None, epochs=500, epochs_decay=500,
                      save_every=10_000, log_every=1)  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(cli("train", "--config", cfg, "--time-limit", "8s", "--no-progress"),
                          capture_output=True, text=True, env=ENV, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "stopped at the time limit" in done.stdout
    assert "--resume" in done.stdout and "--time-limit 16s" in done.stdout  # a larger budget
    rows = read_metrics(tmp_path / "run" / "metrics.jsonl")
    steps = rows[-1]["step"]
    assert resolve_checkpoint(tmp_path / "run").name == f"step_{steps:08d}"  # the final save
    state = load_trainer_state(resolve_checkpoint(tmp_path / "run"))
    assert 6.5 < state["seconds"] <= 8.5  # the budget, all of it, and no more
    assert time.monotonic() - started < 8 + 15  # the interpreter, the pictures, a busy machine
    assert rows[-1]["lr"] < 0.25 * rows[0]["lr"]  # the decay ends where the time does
    assert max(r["lr"] for r in rows) == rows[0]["lr"]


def test_the_time_limit_counts_the_commands_start_up(synth_dir, tmp_path, monkeypatch):
    """`i2i train --time-limit` counts from the command's start (importing torch, reading the
    config), not from the training loop's: a 5 s start-up leaves 1 s of a 6 s limit (counted
    from the loop, the command would take 11 s and more)."""
    cfg = config_file(synth_dir, tmp_path, max_steps=None, epochs=5000, epochs_decay=5000,
                      save_every=10_000)  # fmt: skip
    real = options.new_config

    def slow_start(*args: object, **kwargs: object) -> object:
        time.sleep(5)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(options, "new_config", slow_start)
    began = time.monotonic()
    assert main(["train", "--config", str(cfg), "--time-limit", "6s", "--no-progress"]) == 0
    assert time.monotonic() - began < 5 + 5  # 6 s, a last step, the checkpoint, the pictures
    assert load_trainer_state(resolve_checkpoint(tmp_path / "run"))["seconds"] > 5  # counted


def wait_for(path: Path, predicate, seconds: float = 120) -> None:  # type: ignore[no-untyped-def]
    deadline = time.time() + seconds
    while not (path.exists() and predicate(path)):
        assert time.time() < deadline
        time.sleep(0.02)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_saves_the_current_step_and_resume_continues(synth_dir, tmp_path, sig):
    steps = 60
    straight = config_file(synth_dir, tmp_path / "s", max_steps=steps, save_every=1000)
    assert subprocess.run(cli("train", "--config", straight, "--no-progress"), env=ENV,
                          capture_output=True, timeout=300).returncode == 0  # fmt: skip
    reference = read_metrics(tmp_path / "s" / "run" / "metrics.jsonl")

    cfg = config_file(synth_dir, tmp_path, max_steps=steps, save_every=1000)
    proc = subprocess.Popen(cli("train", "--config", cfg, "--no-progress"), env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    metrics = tmp_path / "run" / "metrics.jsonl"
    wait_for(metrics, lambda p: len(p.read_text().splitlines()) >= 15)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    stopped = resolve_checkpoint(tmp_path / "run")
    at = int(stopped.name.split("_")[1])
    assert 15 <= at < steps and f"stopped by {sig.name} at step {at}" in out
    resumed = subprocess.run(cli("train", "--resume", tmp_path / "run", "--no-progress"),
                             env=ENV, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    rows = read_metrics(metrics)
    assert [r["step"] for r in rows] == list(range(1, steps + 1))
    for ref, got in zip(reference, rows, strict=True):
        for name in ("D", "G_GAN", "G_L1"):
            assert got[name] == pytest.approx(ref[name], rel=1e-5, abs=1e-7), (ref["step"], name)


def test_a_second_ctrl_c_stops_at_once(monkeypatch, capsys):
    """The first Ctrl-C asks for a stop after the step; the second raises KeyboardInterrupt,
    which the command turns into one line and exit status 130."""
    stop = StopSignals()
    stop.install()
    try:
        assert signal.getsignal(signal.SIGINT) == stop.handle
        stop.handle(signal.SIGINT, None)
        assert stop.requested == "SIGINT"
        with pytest.raises(KeyboardInterrupt):
            stop.handle(signal.SIGINT, None)
    finally:
        stop.uninstall()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("i2i.train.options.new_config", interrupted)
    assert main(["train", "--data", "x"]) == 130
    assert capsys.readouterr().err.strip().splitlines() == ["error: interrupted"]


def test_a_time_limited_run_resumes_with_the_time_left(synth_dir, tmp_path):
    cfg = config_file(synth_dir, tmp_path, max_steps=None, epochs=5000, epochs_decay=5000,
                      save_every=10_000, log_every=1)  # more steps than 10 s can take  # fmt: skip
    proc = subprocess.Popen(cli("train", "--config", cfg, "--time-limit", "10s", "--no-progress"),
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    wait_for(tmp_path / "run" / "metrics.jsonl", lambda p: len(p.read_text().splitlines()) >= 10)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    first = load_trainer_state(resolve_checkpoint(tmp_path / "run"))["seconds"]
    assert first < 9
    done = subprocess.run(cli("train", "--resume", tmp_path / "run", "--no-progress"), env=ENV,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    total = load_trainer_state(resolve_checkpoint(tmp_path / "run"))["seconds"]
    assert 8.5 < total <= 10.5 and "stopped at the time limit" in done.stdout
    again = subprocess.run(cli("train", "--resume", tmp_path / "run", "--no-progress"), env=ENV,
                           capture_output=True, text=True, timeout=120)  # fmt: skip
    assert "nothing to train" in again.stdout and "--time-limit 20s" in again.stdout
    config = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert config["train"]["time_limit"] == "10s"
    assert json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])["lr"] < (
        0.25 * 5e-4
    )
