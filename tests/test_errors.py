"""A user's mistake is one ``error: ...`` line that names the flag, field or file and what to
do: no traceback, no internal name the user never typed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from typer.testing import CliRunner

from i2i.cli import app, main
from i2i.train.options import new_config

TINY = ["--load-size", "36", "--crop-size", "32", "--depth", "5", "--ngf", "8", "--ndf", "8",
        "--disc-layers", "2", "--batch-size", "2", "--max-steps", "1", "--no-progress"]  # fmt: skip


def error_line(*args: object) -> str:
    """Run ``i2i ARGS`` (in-process); assert it failed with exactly one ``error:`` line and
    return that line."""
    result = CliRunner().invoke(app, [str(a) for a in args])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1, result.output
    assert ("Traceback" not in result.output and result.exception is None) or isinstance(
        result.exception, SystemExit
    ), result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("errors") / "data"
    CliRunner().invoke(app, ["data", "synth", "--out", str(out), "--n-train", "4", "--n-val",
                             "1", "--size", "40"])  # fmt: skip
    return out


def test_resnet_without_skips_names_the_flag(data, tmp_path):
    line = error_line("train", "--data", data, "--out", tmp_path / "r", "--generator",
                      "resnet_9blocks", "--no-skip", *TINY)  # fmt: skip
    assert "--no-skip" in line and "unet_128" in line


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_a_missing_gpu_is_one_line(data, tmp_path):
    line = error_line("train", "--data", data, "--out", tmp_path / "r", "--device", "cuda", *TINY)
    assert "--device cuda: CUDA is not available" in line and "--device cpu" in line


@pytest.mark.parametrize(
    ("flags", "message"),
    [(["--gan-mode", "wgan"], "--gan-mode 'wgan': use vanilla, lsgan, hinge, wgan-gp"),
     (["--ngf", "0"], "model.generator.ngf must be at least 1, got 0"),
     (["--lr", "-1"], "train.lr must be positive, got -1.0"),
     (["--dropout", "1.5"], "model.generator.dropout must be below 1, got 1.5"),
     (["--device", "tpu"], "train.device 'tpu': use auto, cpu, cuda or cuda:N"),
     (["--pool-size", "10"], "--pool-size does not apply to pix2pix; it is an option of cyclegan")],
)  # fmt: skip
def test_bad_flag_values_name_the_option(data, tmp_path, flags, message):
    assert message in error_line("train", "--data", data, "--out", tmp_path / "r", *TINY, *flags)


def test_width_flags_reach_every_model_that_has_them(tmp_path):
    """--ngf/--ndf set DCGAN's model.ngf/ndf, where pix2pix has model.generator.ngf."""
    cfg = new_config(None, "dcgan", {"ngf": 16, "ndf": 8, "data": "x"}, [])
    assert (cfg.model.ngf, cfg.model.ndf) == (16, 8)  # type: ignore[union-attr]
    cfg = new_config(None, None, {"ngf": 16, "norm": "batch", "data": "x"}, [])
    assert cfg.model.generator.ngf == 16  # type: ignore[union-attr]
    assert cfg.model.generator.norm == cfg.model.discriminator.norm == "batch"  # type: ignore[union-attr]


def test_help_shows_each_models_own_defaults():
    result = CliRunner().invoke(app, ["train", "--help"])
    text = " ".join(result.output.split())  # the help as one line, however it wrapped
    dropout = text[text.index("--dropout") : text.index("--skip /")]
    assert "(default: pix2pix, colorization: 0.5; cyclegan, cut, fastcut: 0.0)" in dropout


def test_the_error_path_is_one_line_in_a_real_process(tmp_path):
    """As a user runs it: stderr holds one line, and reporting it did not import torch."""
    script = (
        "import sys\nfrom i2i.cli import app\n"
        "try:\n    app(sys.argv[1:])\nexcept SystemExit as exit:\n"
        "    print('torch' in sys.modules, file=sys.stdout)\n    raise\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, "train", "--data", str(tmp_path), "--set", "train.lr=x"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == ["error: train.lr: expected a number, got 'x'"]
    assert done.stdout.strip() == "False"


def test_yaml_mistakes_name_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  root: data\n   load_size: 36\n")
    assert f"{bad} line 3: mapping values are not allowed here" in error_line(
        "train", "--config", bad
    )
    tagged = tmp_path / "tag.yaml"
    tagged.write_text('data: !!python/object/apply:os.system ["echo hi"]\n')
    assert str(tagged) in error_line("train", "--config", tagged)


def test_numbers_in_yaml_and_set_read_as_numbers(tmp_path, data):
    """YAML 1.1 reads 2e-4 as text; i2i reads it as the number the user meant."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"train": {"lr": "2e-4"}}).replace("'", ""))
    assert new_config(cfg, None, {}, ["train.beta1=.5", "model.lambda_recon=1E2"]).train.lr == 2e-4


@pytest.fixture(scope="module")
def run(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("errors-run") / "run"
    result = CliRunner().invoke(app, ["train", "--data", str(data), "--out", str(out), *TINY])
    assert result.exit_code == 0, result.output
    return out


def main_error(capsys: pytest.CaptureFixture[str], *args: object) -> str:
    """Run the real entry point; assert one ``error:`` line on stderr and return it."""
    assert main([str(a) for a in args]) in (1, 2)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


@pytest.mark.parametrize(
    ("args", "words"),
    [(["--tile", "50"], "--tile 50: a tile must be a multiple of 32"),
     (["--tile", "128", "--overlap", "-8"], "'--overlap': Input should be greater than or equal"),
     (["--tile", "128", "--overlap", "100"], "--tile 128 needs --overlap of at most 64"),
     (["--tile-stats", "tile"], "--tile-stats goes with --tile SIZE"),
     (["--tile", "64", "--tile-stats", "own"], "--tile-stats 'own': use image"),
     (["--batch-size", "0"], "'--batch-size': Input should be greater than or equal to 1"),
     (["--limit", "-1"], "'--limit': Input should be greater than or equal to 1")],
)  # fmt: skip
def test_translate_values_are_checked(capsys, run, data, tmp_path, args, words):
    assert words in main_error(capsys, "translate", run, data / "val", "--out", tmp_path, *args)


@pytest.mark.parametrize(
    "args, words",
    [(["--tile-stats", "tile"], "error: --tile-stats goes with --tile SIZE"),
     (["--overlap", "8"], "error: --overlap goes with --tile SIZE"),
     (["--tile", "64", "--tile-stats", "own"], "error: --tile-stats 'own': use image")],
)  # fmt: skip
def test_evaluate_tiling_flags_are_checked(capsys, run, data, tmp_path, args, words):
    line = main_error(capsys, "evaluate", run, "--data", data, "--out", tmp_path, *args)
    assert words in line, line


def test_a_tile_size_alone_works(capsys, run, data, tmp_path):
    """Case rel-10: --tile 64 alone used to fail on the default overlap of 64."""
    assert main(["translate", str(run), str(data / "val"), "--out", str(tmp_path), "--tile",
                 "64", "--no-progress"]) == 0  # fmt: skip
    assert len(list(tmp_path.glob("*.png"))) == 1


@pytest.mark.parametrize(
    "args",
    [["data", "synth", "--out", "x", "--size", "0"],
     ["data", "synth", "--out", "x", "--n-train", "-5"],
     ["sample", "run", "--out", "x", "-n", "0"],
     ["evaluate", "--real", "a", "--fake", "b", "--threshold", "-1"]],
)  # fmt: skip
def test_other_commands_check_their_values(capsys, args):
    assert "Input should be greater than or equal" in main_error(capsys, *args)


def test_paths_in_the_way_are_one_line(capsys, run, data, tmp_path):
    """An --out that is a file, and a .pth of foreign bytes, are named without a traceback."""
    (tmp_path / "taken.txt").write_text("x")
    line = main_error(capsys, "translate", run, data / "val", "--out", tmp_path / "taken.txt")
    assert "taken.txt" in line
    (tmp_path / "junk.pth").write_text("junk\n")
    line = main_error(capsys, "import", tmp_path / "junk.pth", "--out", tmp_path / "imported")
    assert "junk.pth: not a PyTorch state dict" in line and "not a PyTorch file" in line


def test_inputs_that_would_share_an_output_are_named(capsys, run, data, tmp_path):
    photo = next((data / "val").iterdir())
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes(photo.read_bytes())
    (tmp_path / "in" / "a.jpg").write_bytes(photo.read_bytes())
    line = main_error(capsys, "translate", run, tmp_path / "in", "--out", tmp_path / "out")
    assert "a.jpg and" in line and "a.png would be written as the same a.png" in line
    assert "rename one" in line


@pytest.mark.parametrize("file", ["model.safetensors", "trainer.safetensors"])
def test_resuming_from_non_finite_state_is_refused(capsys, data, tmp_path, file):
    """NaN in the discriminator's weights or in the optimizer's moments: named at resume,
    before training on from it."""
    from safetensors.torch import load_file, save_file

    from i2i.runs.checkpoint import resolve_checkpoint

    assert main(["train", "--data", str(data), "--out", str(tmp_path / "run"), *TINY]) == 0
    path = resolve_checkpoint(tmp_path / "run") / file
    tensors = load_file(str(path))
    key = next(k for k, v in tensors.items() if v.is_floating_point() and not k.startswith("G."))
    tensors[key] = torch.full_like(tensors[key], float("nan"))
    save_file(tensors, str(path))
    capsys.readouterr()
    line = main_error(capsys, "train", "--resume", tmp_path / "run", "--max-steps", "3")
    assert f"{key} holds NaN or infinite values" in line and file in line


def test_a_batch_larger_than_the_data_is_refused(data, tmp_path):
    line = error_line("train", "--data", data, "--out", tmp_path / "run", *TINY,
                      "--batch-size", "8")  # 4 training pairs  # fmt: skip
    assert "--batch-size 8 is more than the 4 training examples" in line


def test_a_bad_image_in_evaluate_says_what_evaluate_can_do(capsys, data, tmp_path):
    photo = next((data / "val").iterdir())
    for side in ("real", "fake"):
        (tmp_path / side).mkdir()
        (tmp_path / side / "a.png").write_bytes(photo.read_bytes())
    (tmp_path / "fake" / "a.png").write_bytes(b"not a png")
    line = main_error(capsys, "evaluate", "--real", tmp_path / "real", "--fake",
                      tmp_path / "fake", "--metrics", "l1", "--no-progress")  # fmt: skip
    assert "a.png" in line and "fix or remove the file" in line
    assert "--skip-bad" not in line  # evaluate has no such option


def test_an_unwritable_evaluate_out_is_named_before_scoring(capsys, data, tmp_path):
    (tmp_path / "taken").write_text("x")
    line = main_error(capsys, "evaluate", "--real", data / "val", "--fake", data / "val",
                      "--metrics", "l1", "--out", tmp_path / "taken", "--no-progress")  # fmt: skip
    assert "taken" in line


def test_a_dataset_url_says_datasets_are_local(data, tmp_path):
    line = error_line("train", "--data", f"file://{data}", "--out", tmp_path / "run", *TINY)
    assert f"file://{data}: datasets are read from local folders" in line


def test_object_storage_without_credentials_is_one_line(run, data, tmp_path):
    pytest.importorskip("s3fs")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_EC2_METADATA_DISABLED="true", AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "n"),
               AWS_CONFIG_FILE=str(tmp_path / "n"))  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "i2i", "translate", str(run), str(data / "val"), "--out",
         "s3://bucket/maps/", "--no-progress"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr[-3000:]
    assert lines[0].startswith("error: s3://bucket/maps: the storage cannot be reached")
    assert "credentials" in lines[0]
