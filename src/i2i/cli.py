"""The ``i2i`` command: parses options and calls the library. No logic of its own.

Every command shows a user's mistake as one ``error: ...`` line (``i2i.errors.UserError``) and
imports what it uses when it runs, so that ``i2i translate`` does not load the training loop.
The options of ``i2i train`` are derived from the config dataclasses (``i2i.flags``).
"""

from __future__ import annotations

import functools
import inspect
import socket
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from typer.exceptions import TyperException

from i2i.config import (
    MODEL_CONFIGS,
    CUTConfig,
    CycleGANConfig,
    Pix2PixConfig,
    RunConfig,
    parse_duration,
)
from i2i.errors import BadImageError, ConfigError, UserError
from i2i.flags import TRAIN_FLAGS
from i2i.infer.resize import RESIZE_HELP
from i2i.metrics.names import METRICS
from i2i.parallel import launch, report_error

if TYPE_CHECKING:
    from i2i.infer.tiles import Tiling

app = typer.Typer(
    help="Image-to-image translation with GANs: train, watch, translate.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts are plain: "A[i]" stays as written
)
data_app = typer.Typer(help="Make and convert datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")
pretrained_app = typer.Typer(
    help="The published pix2pix and CycleGAN generators: list them, fetch one.",
    no_args_is_help=True,
)
app.add_typer(pretrained_app, name="pretrained")
MODEL_HELP = "Run or checkpoint folder, URL, published model's name, or reference .pth file."
TILE_STATS_HELP = (
    "image | tile (with --tile): normalize by the whole image's statistics (seamless), or by "
    "each tile's own, as a model trained on crops of the tile's size saw them (--preprocess crop)"
)

F = TypeVar("F", bound=Callable[..., Any])


def main(argv: list[str] | None = None) -> int:
    """The ``i2i`` command. A mistake on the command line (an unknown option, a value out of
    its range) is one ``error:`` line, as every other user error is; warnings are one
    ``warning:`` line each."""
    warnings.formatwarning = lambda message, *_: f"warning: {message}\n"
    try:
        code = app(args=argv, standalone_mode=False)
    except (typer.Abort, KeyboardInterrupt):
        say_error("interrupted")
        return 130
    except TyperException as exc:  # Typer's usage errors: bad or unknown options
        ctx = getattr(exc, "ctx", None)
        message = exc.format_message()
        if ctx is not None and message == ctx.get_help():  # `i2i data` alone: its help
            typer.echo(message)
            return 0
        where = f" (see {ctx.command_path} --help)" if ctx is not None else ""
        say_error(f"{message}{where}")
        return 2
    return code if isinstance(code, int) else 0


def fail(message: str, code: int = 1) -> typer.Exit:
    """``error: MESSAGE`` (``say_error``) and exit with ``code``."""
    say_error(message)
    return typer.Exit(code)


def say_error(message: str) -> None:
    """``error: MESSAGE`` on stderr; in a process of ``--devices N``, handed to the launcher,
    which says each distinct message once for all processes."""
    if not report_error(message):
        typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)


def user_errors(fn: F) -> F:
    """Show errors caused by the user's input as one clear line, without a traceback: every
    ``UserError``, and the operating system refusing a path the user gave."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            raise fail(str(exc)) from None
        except (PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError,
                FileNotFoundError) as exc:  # fmt: skip
            if exc.filename is None:  # not a path: a fault of i2i's, with its traceback
                raise
            raise fail(f"{exc.filename}: {exc.strerror}") from None
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None

    return wrapper  # type: ignore[return-value]


def longer(time_limit: str) -> str:
    """Twice a ``--time-limit``, written as a user would (``30m`` -> ``1h``)."""
    seconds = 2 * parse_duration(time_limit)
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def tiling_flags(tile: int | None, overlap: int | None, tile_stats: str) -> Tiling | None:
    """``--tile``, ``--overlap`` and ``--tile-stats`` as one Tiling (None without ``--tile``;
    ``--overlap`` defaults to ``default_overlap``). ConfigError for an unknown
    ``--tile-stats``, or one given without ``--tile``."""
    from i2i.infer.tiles import Tiling, check_tile_stats, default_overlap

    stats = check_tile_stats(tile_stats)
    if tile is None:
        if stats != "image":
            raise ConfigError("--tile-stats goes with --tile SIZE")
        return None
    return Tiling(tile, default_overlap(tile) if overlap is None else overlap, stats)


def domain_folders(domain_a: Path | None, domain_b: Path | None) -> tuple[Path, Path] | None:
    """``--domain-a`` and ``--domain-b``, which go together."""
    if domain_a is None and domain_b is None:
        return None
    if domain_a is None or domain_b is None:
        raise ConfigError("--domain-a and --domain-b go together: give both folders")
    return domain_a, domain_b


def train_command(
    model: str | None,
    config: Path | None,
    resume: str | None,
    devices: int | None,
    set_: list[str],
    progress: bool,
    **flags: Any,
) -> None:
    """Train a model: pix2pix on paired data, CycleGAN or CUT on unpaired data, colorization or
    DCGAN on images. Every option below sets a field of the run's config (RUN/config.yaml);
    --set reaches all."""
    started = time.perf_counter()  # --time-limit counts from here: importing torch too
    from i2i.train.options import new_config, resume_config

    if resume is not None:
        if config is not None or model is not None:
            raise ConfigError(
                f"--resume continues {resume} with its own config.yaml; only training-length "
                "and logging options (train.*) can change, not --config or --model"
            )
        cfg = resume_config(resume, flags, list(set_))
    else:
        if flags.get("data") is None and flags.get("domain_a") is None and config is None:
            raise ConfigError(
                "give the dataset with --data DIR (unpaired: or --domain-a DIR --domain-b DIR; "
                "or a --config file)"
            )
        cfg = new_config(config, model, flags, list(set_))
    if devices is not None and devices > 1:
        if cfg.train.batch_size % devices:  # before torchrun starts a process per device
            raise ConfigError(
                f"--batch-size {cfg.train.batch_size} is the global batch and must divide "
                f"evenly among --devices {devices} processes; use a multiple of {devices}"
            )
        relaunch_under_torchrun(devices)
    from i2i.train.loop import train as run_training  # torch: only once the options are valid

    result = run_training(cfg, resume=resume is not None, progress=progress, started=started)
    if not result.main:
        return  # process 0 reports
    run = result.run_dir
    done = result.step - result.start_step
    timed_out = result.stopped_by == "time limit"
    # a time limit counts every session of a run: going on takes a larger one
    more_time = f"--time-limit {longer(cfg.train.time_limit)}" if cfg.train.time_limit else ""
    if result.start_step and not done:
        how = (
            f"a larger --time-limit ({more_time}: the limit counts all sessions)"
            if timed_out
            else "a larger --max-steps, or --epochs / --epochs-decay,"
        )
        typer.echo(
            f"\nnothing to train: the run is at step {result.step}, its limit ({result.limit}); "
            f"resume with {how} to train longer"
        )
    elif result.start_step:
        typer.echo(
            f"\ntrained {result.step} steps in all, {done} of them now (steps "
            f"{result.start_step + 1}-{result.step}) in {result.seconds:.0f} s; run folder: {run}"
        )
    else:
        typer.echo(f"\ntrained {result.step} steps in {result.seconds:.0f} s; run folder: {run}")
    typer.echo(f"  limit: {result.limit}")
    if result.stopped_by:
        why = (
            "at the time limit" if result.stopped_by == "time limit" else f"by {result.stopped_by}"
        )
        typer.echo(
            f"  stopped {why} at step {result.step}, with a checkpoint; continue with: "
            f"i2i train --resume {run}" + (f" {more_time}" if timed_out else "")
        )
    if "://" in cfg.train.out:
        typer.echo(f"  mirrored to {cfg.train.out} (checkpoints, config, logs, pictures)")
    typer.echo(f"  sample grid: {run / 'samples.png'}")
    typer.echo(f"  loss curves: {run / 'loss_curves.png'}")
    typer.echo(f"  checkpoint: {result.checkpoint}")
    if cfg.train.eval_every:
        tiling = trained_tiling(cfg)  # how --eval-every scored it
        scored = "" if tiling is None else f" (val scored in {tiling.tile} px tiles)"
        typer.echo(f"  best by {cfg.train.eval_metric}{scored}: {run / 'checkpoints' / 'best'}")
    typer.echo(f"  TensorBoard: tensorboard --logdir {run / 'tensorboard'}")
    if cfg.model.kind == "dcgan":
        typer.echo(f"  generate: i2i sample {run} -n 64 --out samples/")
    else:
        typer.echo(f"  translate: {translate_command(cfg, run)}")


def trained_tiling(cfg: RunConfig) -> Tiling | None:
    """The tiling a run translates best with: a generator trained with instance norm on crops
    at the data's own scale (``--preprocess crop``) in tiles of the crop size, each normalized
    by its own statistics, as in training (``i2i.infer.tiles.as_trained``); else None."""
    from i2i.infer.tiles import as_trained

    model = cfg.model
    instance_norm = (
        isinstance(model, Pix2PixConfig | CycleGANConfig | CUTConfig)
        and model.generator.norm == "instance"
    )
    return as_trained(cfg.data.preprocess, cfg.data.crop_size, instance_norm)


def translate_command(cfg: RunConfig, run: Path) -> str:
    """How to translate with a trained run (in tiles if ``trained_tiling`` says so)."""
    command = f"i2i translate {run} IMAGES_OR_FOLDERS --out translated/"
    tiling = trained_tiling(cfg)
    if tiling is not None:
        command += f" --tile {tiling.tile} --tile-stats {tiling.stats}"
    return command


def _train_parameters() -> list[inspect.Parameter]:
    """``train_command``'s options: its own, then one per config flag (``i2i.flags``)."""
    keyword = inspect.Parameter.KEYWORD_ONLY

    def param(name: str, annotation: Any, default: Any) -> inspect.Parameter:
        return inspect.Parameter(name, keyword, default=default, annotation=annotation)

    models = f"{' | '.join(MODEL_CONFIGS)} (default: {RunConfig().model.kind})"
    params = [
        param("model", str | None, typer.Option(None, help=f"The method: {models}.")),
        param("config", Path | None, typer.Option(None, help="YAML config (as RUN/config.yaml).")),
        param("resume", str | None, typer.Option(None, help="Continue the run in this folder.")),
        param("devices", int | None, typer.Option(
            None, help="Data-parallel processes on this machine (one per GPU), via torchrun.")),
        param("set_", list[str], typer.Option(
            [], "--set", help="Any config option as KEY=VALUE, e.g. train.lr=1e-4 (repeatable).")),
        param("progress", bool, typer.Option(True, "--progress/--no-progress")),
    ]  # fmt: skip
    for flag in TRAIN_FLAGS:
        if flag.kind is bool:
            decl = f"{flag.option}/--no-{flag.option[2:]}"
            params.append(param(flag.name, bool | None, typer.Option(None, decl, help=flag.help)))
        else:
            kind = str if flag.kind is list else flag.kind
            option = typer.Option(None, flag.option, help=flag.help)
            params.append(param(flag.name, kind | None, option))
    return params


def _train_entry(**options: Any) -> None:
    own = [options.pop(k) for k in ("model", "config", "resume", "devices", "set_", "progress")]
    train_command(*own, **options)


_train_entry.__signature__ = inspect.Signature(_train_parameters())  # type: ignore[attr-defined]
_train_entry.__annotations__ = {p.name: p.annotation for p in _train_parameters()}
_train_entry.__doc__ = train_command.__doc__
app.command("train")(user_errors(_train_entry))


def relaunch_under_torchrun(devices: int) -> None:
    """Run this same command in ``devices`` processes under torchrun, which sets up and watches
    them (and stops all if one fails); returns only through its exit status."""
    args, skip = [], False
    for arg in sys.argv[1:]:  # the command line without --devices
        if skip:
            skip = False
        elif arg == "--devices":
            skip = True
        elif not arg.startswith("--devices="):
            args.append(arg)
    code, errors = launch(devices, args)
    for message in errors:
        say_error(message)
    raise typer.Exit(code)


@app.command()
@user_errors
def translate(
    checkpoint: str = typer.Argument(..., help=MODEL_HELP),
    inputs: list[str] = typer.Argument(
        ..., help="Image files, folders, glob patterns or URLs (s3://bucket/tiles/)."
    ),
    out: str = typer.Option(..., help="Folder or URL (s3://...), or a .zip written as it goes."),
    direction: str = typer.Option(None, help="AtoB | BtoA (CycleGAN) [the training direction]"),
    limit: int = typer.Option(None, min=1, help="Translate at most this many inputs."),
    batch_size: int = typer.Option(8, min=1, help="Images per forward pass."),
    input_half: str = typer.Option(None, help="left | right: translate one half of A|B pairs."),
    image_format: str = typer.Option("png", "--format", help="png | jpg"),
    device: str = typer.Option("auto", help="auto | cpu | cuda"),
    backend: str = typer.Option(
        "auto", help="auto | torch | onnxruntime (CPU); auto: the fastest installed."
    ),
    tile: int = typer.Option(None, min=1, help="Translate in SIZE x SIZE tiles (huge images)."),
    overlap: int = typer.Option(
        None, min=0, help="Tile overlap in px, blended (with --tile) [64, at most tile/4]."
    ),
    tile_stats: str = typer.Option("image", help=TILE_STATS_HELP),
    max_pixels: int = typer.Option(
        None, min=1, help="Largest image to decode, pixels [179 M; 1 G with --tile]."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Translate inputs whose output exists already too."
    ),
    devices: int = typer.Option(
        None, min=1, help="Processes on this machine (one per GPU, or CPU cores split), torchrun."
    ),
    resize: str = typer.Option("none", help=RESIZE_HELP + "."),
    dropout: bool = typer.Option(False, "--dropout", help="Keep dropout on (test-time noise)."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip unreadable images, warn."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Translate images of any size with a trained, imported or published model, or an exported
    .onnx file, into a folder, a URL or a .zip; --tile for images too large for one pass,
    --resize train to translate at the model's training scale. Outputs that exist are
    skipped, so a killed run restarted with the same command finishes what is missing;
    OUT/_manifest.jsonl records every input. --devices N (or torchrun) shares the inputs out."""
    from i2i.infer.batch import translate_files
    from i2i.infer.resize import Resize
    from i2i.infer.tiles import check_tiles
    from i2i.infer.translator import BACKENDS, Translator
    from i2i.parallel import Processes, join_sharded, under_torchrun

    if input_half not in (None, "left", "right"):
        raise ConfigError(f"--input-half must be left or right, got {input_half!r}")
    if image_format not in ("png", "jpg"):
        raise ConfigError(f"--format must be png or jpg, got {image_format!r}")
    if backend not in BACKENDS:
        raise ConfigError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if devices is not None and devices > 1:
        if out.lower().endswith(".zip"):
            raise ConfigError(
                f"--out {out}: several processes cannot share one zip; --out a folder"
            )
        relaunch_under_torchrun(devices)
    procs, threads = Processes(), None
    if under_torchrun():
        procs, device, threads = join_sharded(device)
    tiling = tiling_flags(tile, overlap, tile_stats)
    scale = Resize.parse(resize)
    translator = Translator.load(
        checkpoint,
        device,
        direction,
        backend,  # type: ignore[arg-type]
        threads,
        dropout,
    )
    if tiling is not None:
        check_tiles(tiling.tile, tiling.overlap, translator.size_multiple)
    try:
        written = translate_files(
            translator,
            inputs,
            out,
            batch_size,
            input_half,  # type: ignore[arg-type]
            f".{image_format}",
            skip_bad=skip_bad,
            progress=progress,
            limit=limit,
            tiling=tiling,
            max_pixels=max_pixels,
            overwrite=overwrite,
            procs=procs,
            resize=scale,
        )
    except BadImageError:
        if not procs.main:  # process 0 reports the inputs of all
            raise typer.Exit(1) from None
        raise
    finally:
        if procs.world > 1:
            from i2i.parallel import finish

            finish(procs)
    if not procs.main:
        return  # process 0 reports
    if procs.world > 1 or out.lower().endswith(".zip"):
        typer.echo(f"translated into {out} in {procs.world} process(es)")
    else:
        typer.echo(f"translated {len(written)} image(s) into {out}")
    if scale.mode in ("train", "auto"):
        side = translator.train_side
        typer.echo(
            f"  at the training scale: shorter side {side} px"
            if side
            else "  at their own scale: the model learned at its images' own scale"
        )
    if written.skipped:
        typer.echo(f"  {written.skipped} already there, skipped (--overwrite redoes them)")
    if written.pair_like:
        typer.echo(
            f"note: {written.pair_like} input(s) are twice as wide as high, like side-by-side "
            "A|B pairs, and were translated whole; pass --input-half left (or right) to "
            "translate one half"
        )
    counts = ", ".join(f"{n} {status}" for status, n in written.summary.items())
    typer.echo(f"  {written.manifest}: {counts}" if counts else "")


@app.command()
@user_errors
def export(
    checkpoint: str = typer.Argument(..., help=MODEL_HELP),
    onnx: Path = typer.Option(..., help="Output .onnx file."),
    direction: str = typer.Option(None, help="AtoB | BtoA (CycleGAN) [the training direction]"),
) -> None:
    """Export a translation generator to ONNX (dynamic batch, height and width)."""
    from i2i.infer.translator import Translator

    translator = Translator.load(checkpoint, "cpu", direction)
    path = translator.export_onnx(onnx)
    size = path.stat().st_size / 2**20
    typer.echo(f"wrote {path} ({size:.1f} MiB); input 'image' Nx{translator.input_channels}xHxW")
    typer.echo(f"  in [-1, 1], H and W multiples of {translator.size_multiple}")


@app.command()
@user_errors
def sample(
    checkpoint: str = typer.Argument(..., help="Run folder or checkpoint of a dcgan model."),
    n: int = typer.Option(64, "-n", min=1, help="How many images."),
    out: Path = typer.Option(..., help="Folder, or a .zip written as it goes."),
    seed: int = typer.Option(0, min=0, help="Latent-noise seed."),
    device: str = typer.Option("auto", help="auto | cpu | cuda"),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Generate new images with an unconditional model (DCGAN), plus a grid PNG."""
    from i2i.runs.checkpoint import resolve_sampler

    if n < 1:
        raise ConfigError(f"-n must be at least 1, got {n}")
    ckpt, _ = resolve_sampler(checkpoint)  # a translation model is refused before torch loads

    from i2i.infer.sample import sample_images

    grid = sample_images(ckpt, n, out, seed=seed, device=device, progress=progress)
    typer.echo(f"wrote {n} image(s) to {out}; grid: {grid}")


@app.command()
@user_errors
def evaluate(
    checkpoint: str = typer.Argument(None, help=MODEL_HELP),
    data: Path = typer.Option(None, help="Dataset whose split the checkpoint is scored on."),
    split: str = typer.Option(None, help="Split of --data [val, else test]."),
    domain_a: Path = typer.Option(None, help="Instead of --data: folder of domain A images..."),
    domain_b: Path = typer.Option(None, help="...and of domain B (unpaired: FID, KID ...)."),
    real: Path = typer.Option(None, help="Instead of a checkpoint: folder of real images..."),
    fake: Path = typer.Option(None, help="...and folder of outputs (paired by file name)."),
    metrics: str = typer.Option(None, help="Comma list [all that apply]: " + ", ".join(METRICS)),
    out: Path = typer.Option(None, help="Output folder [RUN/eval-SPLIT, -tilesN with --tile]."),
    direction: str = typer.Option(None, help="AtoB | BtoA (CycleGAN) [training direction]."),
    size: int = typer.Option(None, min=1, help="Compare at SIZE x SIZE [model's training size]."),
    limit: int = typer.Option(None, min=1, help="Score only the first N images."),
    threshold: float = typer.Option(
        5.0, min=0, max=255, help="pixel_acc: max channel difference, 8-bit."
    ),
    palette: Path = typer.Option(
        None, help="Palette of the targets' colours (YAML): per-class IoU and miou."
    ),
    tile: int = typer.Option(None, min=1, help="Translate in SIZE x SIZE tiles, as translate."),
    overlap: int = typer.Option(None, min=0, help="Tile overlap in px (with --tile) [64]."),
    tile_stats: str = typer.Option("image", help=TILE_STATS_HELP),
    features: str = typer.Option("inception", help="inception | package.module:factory"),
    inception_weights: str = typer.Option(None, help="FID Inception weights file."),
    train_data: Path = typer.Option(None, help="Training images, for mifid."),
    mifid_eps: float = typer.Option(0.1, min=0, help="MiFID memorization threshold."),
    batch_size: int = typer.Option(8, min=1, help="Images per forward pass."),
    device: str = typer.Option("auto", help="auto | cpu | cuda"),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Score a checkpoint on a dataset split (or --fake against --real): paired metrics,
    FID/KID/IS/precision/recall/MiFID. Writes metrics.json and a Markdown table."""
    from i2i.metrics.evaluate import EvalConfig, evaluate_checkpoint, evaluate_folders
    from i2i.runs.checkpoint import resolve_checkpoint
    from i2i.runs.pretrained import resolve_model

    if tile is None and overlap is not None:  # scores would silently differ from what was asked
        raise ConfigError("--overlap goes with --tile SIZE")
    tiling = tiling_flags(tile, overlap, tile_stats)
    if tiling is not None and checkpoint is None:
        raise ConfigError("--tile is how a CHECKPOINT translates; --fake is scored as it is")
    cfg = EvalConfig(
        metrics=metrics.split(",") if metrics else None,
        split=split,
        size=size,
        limit=limit,
        batch_size=batch_size,
        pixel_threshold=threshold,
        features=features,
        inception_weights=inception_weights,
        mifid_eps=mifid_eps,
        device=device,
        palette=str(palette) if palette else None,
        tiling=tiling,
    )
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)  # before the scoring: a bad --out says so now
    if checkpoint is not None:
        if real is not None or fake is not None:
            raise ConfigError("with a CHECKPOINT, give --data DIR (not --real/--fake)")
        model = resolve_model(checkpoint, progress)
        domains = domain_folders(domain_a, domain_b)
        report = evaluate_checkpoint(
            model, data, cfg, direction, train_data, progress=progress, domains=domains
        )
        run = resolve_checkpoint(model).parent.parent
        scored = report.source.get("split", "domains")
        own_run = "://" not in checkpoint and model == checkpoint  # not the cache's import
        tiles = f"-tiles{tile}" if tile is not None else ""  # beside the whole-image scores
        out = out or (run / f"eval-{scored}{tiles}" if own_run else Path(f"eval{tiles}"))
    elif real is not None and fake is not None:
        report = evaluate_folders(real, fake, cfg, train_data, None, progress)
        out = out or Path("eval")
    else:
        raise ConfigError("give a CHECKPOINT with --data DIR, or --real DIR and --fake DIR")
    typer.echo(report.table())  # first: an unwritable --out then costs no scores
    for note in report.notes:
        typer.echo(f"note: {note}")
    path = report.write(out)
    typer.echo(f"{report.count} images; wrote {path} and {path.with_suffix('.md')}")


@app.command()
@user_errors
def experiment(
    grid: Path = typer.Argument(..., help="Grid file (see experiments/)."),
    out: str = typer.Option(None, help="Results folder [the grid's out, or runs/GRID]."),
    data: str = typer.Option(None, help="Dataset for every cell (sets data.root)."),
    set_: list[str] = typer.Option([], "--set", help="Base-config KEY=VALUE (repeatable)."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Train and evaluate each cell of a grid of config overrides; finished cells are skipped,
    so an interrupted sweep resumes. Writes results.md/.csv, loss curves and a sample grid."""
    from i2i.experiment import failed_cells, load_experiment, run_experiment
    from i2i.train.options import parse_set

    overrides = dict(parse_set(item) for item in set_)
    if data is not None:
        overrides["data.root"] = data
    exp = load_experiment(grid, out, overrides)
    typer.echo(f"{len(exp.cells)} cells into {exp.out}: {', '.join(c.name for c in exp.cells)}")
    results = run_experiment(exp, progress=progress)
    typer.echo(f"results: {results} (and results.csv, loss_curves.png, samples.png)")
    failed = failed_cells(exp)
    if failed:
        raise ConfigError(
            f"{len(failed)} of {len(exp.cells)} cells failed ({'; '.join(failed)}); fix them "
            "and run the same command again: finished cells are kept"
        )


@app.command()
@user_errors
def serve(
    model: list[str] = typer.Option(
        ..., help="NAME=MODEL (repeatable): a checkpoint, published name or .pth."
    ),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, min=0, max=65535, help="Port (0: any free one)."),
    token: str = typer.Option(None, envvar="I2I_TOKEN", help="Bearer token for /v1/*."),
    backend: str = typer.Option("auto", help="auto | torch | onnxruntime"),
    device: str = typer.Option("auto", help="auto | cpu | cuda"),
    max_upload_mb: float = typer.Option(20, min=0.001, help="Largest upload, MiB."),
    max_pixels: int = typer.Option(4096 * 4096, min=1, help="Largest image, pixels."),
    workers: int = typer.Option(1, min=1, help="Inference threads."),
    queue: int = typer.Option(16, min=0, help="Requests that may wait; more get 503."),
) -> None:
    """Serve models over a REST API and a web page (FastAPI under uvicorn)."""
    try:
        import uvicorn

        from i2i.infer.translator import BACKENDS
        from i2i.serve.app import ServeConfig, create_app, load_models
    except ImportError as exc:
        hint = f"serving needs the serve extra: pip install 'i2i[serve]' ({exc})"
        raise ConfigError(hint) from None
    if backend not in BACKENDS:
        raise ConfigError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    cfg = ServeConfig(int(max_upload_mb * 2**20), max_pixels, token, workers, queue)
    check_port(host, port)  # before minutes of loading models
    models = load_models(model, device, backend)
    names = ", ".join(f"{m.name} ({m.direction})" for m in models.values())
    typer.echo(f"serving {names} on http://{host}:{port}/ (API docs at /docs)")
    # SIGTERM stops the server within seconds even while requests wait for a worker
    uvicorn.run(create_app(models, cfg), host=host, port=port, timeout_graceful_shutdown=5)


def check_port(host: str, port: int) -> None:
    """ConfigError when ``host:port`` cannot be listened on (in use, or not this machine's)."""
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise ConfigError(
            f"--host {host} --port {port}: cannot listen there ({exc.strerror}); "
            "choose another --port, or --port 0 for any free one"
        ) from None


@app.command("import")
@user_errors
def import_command(
    pth: Path = typer.Argument(
        ..., help="A generator's .pth (latest_net_G.pth) of the reference code."
    ),
    out: Path = typer.Option(..., help="Folder for the i2i checkpoint (used like a run folder)."),
    netg: str = typer.Option(
        None, "--netG", help="unet_128 | unet_256 | resnet_6blocks | resnet_9blocks [inferred]"
    ),
    ngf: int = typer.Option(None, help="Width of the first layer [inferred]."),
    norm: str = typer.Option(None, help="batch | instance | none [inferred]."),
    input_nc: int = typer.Option(None, help="Input channels [inferred]."),
    output_nc: int = typer.Option(None, help="Output channels [inferred]."),
    no_dropout: bool = typer.Option(
        None, "--no-dropout/--dropout", help="Dropout layers [ResNet: inferred; U-Net: yes]."
    ),
    batch_stats: str = typer.Option(
        "image",
        help="Batch norm in translation: image (each image's own, the reference test "
        "script's default) | running (its --eval).",
    ),
    model: str = typer.Option(
        None,
        help="pix2pix | cyclegan | colorization [1 -> 2 channels: colorization; else U-Net: "
        "pix2pix, ResNet: cyclegan]",
    ),
    direction: str = typer.Option("AtoB", help="AtoB | BtoA: the input side of its dataset."),
    preprocess: str = typer.Option("resize_and_crop", help="How its training images were scaled."),
    load_size: int = typer.Option(286, help="Its training load size, px."),
    crop_size: int = typer.Option(256, help="Its training crop size, px."),
) -> None:
    """Import a generator saved by the reference pix2pix/CycleGAN code (a state dict, read
    without unpickling) as an i2i checkpoint; the architecture is inferred from the weights."""
    from i2i.config import from_dict
    from i2i.runs.checkpoint import read_card
    from i2i.runs.importer import Architecture, ImportConfig, import_reference

    given = {
        "generator": netg, "ngf": ngf, "norm": norm, "input_nc": input_nc,
        "output_nc": output_nc, "dropout": None if no_dropout is None else not no_dropout,
        "batch_stats": batch_stats, "model": model, "direction": direction,
        "preprocess": preprocess, "load_size": load_size, "crop_size": crop_size,
    }  # fmt: skip
    flags = {"generator": "netG"}
    try:
        cfg = from_dict(ImportConfig, {k: v for k, v in given.items() if v is not None}, "import")
    except ConfigError as exc:  # name the flag, not the field
        text = str(exc)
        for field in given:
            flag = flags.get(field, field.replace("_", "-"))
            text = text.replace(f"import.{field}", f"--{flag}")
        raise ConfigError(text) from None
    ckpt = import_reference(pth, out, cfg)
    card = read_card(ckpt)
    assert card.source is not None
    arch = Architecture(**card.source["architecture"])
    typer.echo(f"imported {pth} into {out}: a {card.model} generator, {arch.describe()}")
    if arch.norm == "batch":
        typer.echo(f"  batch norm on {cfg.batch_stats} statistics (--batch-stats)")
    typer.echo(f"  translate: i2i translate {out} IMAGES --out translated/ --resize train")


@pretrained_app.command("list")
@user_errors
def pretrained_list() -> None:
    """The published generators: name, method, task, dataset and input side, architecture."""
    from i2i.runs.pretrained import CATALOGUE, short_name

    rows = [("name", "method", "task", "dataset (input)", "architecture", "size")]
    for e in CATALOGUE.values():
        kind, norm = e.architecture
        rows.append((short_name(e), e.method, e.task, f"{e.dataset} ({e.direction})",
                     f"{kind}, {norm} norm", f"{e.size} px"))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


@pretrained_app.command("get")
@user_errors
def pretrained_get(
    name: str = typer.Argument(..., help="A name from `i2i pretrained list`."),
    out: Path = typer.Option(None, help="Also copy the checkpoint here [only the cache]."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Download a published generator (resumable) and import it, once: it is kept in the cache
    ($I2I_CACHE) and used by name (`i2i translate horse2zebra photos/ --out zebras/`)."""
    import shutil

    from i2i.files import write_text_atomic
    from i2i.runs.layout import LATEST
    from i2i.runs.pretrained import pretrained_checkpoint

    ckpt = pretrained_checkpoint(name, progress)
    typer.echo(f"{name}: {ckpt}")
    if out is not None:
        if (out / LATEST).exists():
            raise ConfigError(f"--out {out} already holds a checkpoint; choose another folder")
        shutil.copytree(ckpt, out / ckpt.name, dirs_exist_ok=True)
        write_text_atomic(out / LATEST, ckpt.name)
        typer.echo(f"  copied to {out}")
    typer.echo(f"  translate: i2i translate {name} IMAGES --out translated/ --resize train")


@data_app.command("unpair")
@user_errors
def data_unpair(
    source: Path = typer.Argument(None, help="Paired dataset (side-by-side, A/ B/, or .npz)."),
    out: Path = typer.Option(..., help="Output folder (trainA/ trainB/ valA/ valB/ ...)."),
    seed: int = typer.Option(0, min=0, help="Shuffle seed."),
    domain_a: Path = typer.Option(None, help="Instead of SOURCE: a folder of domain A images..."),
    domain_b: Path = typer.Option(None, help="...and one of domain B, copied to trainA/ trainB/."),
) -> None:
    """Split a paired dataset into an unpaired one (val/test keep their pairs by file name), or
    gather two folders of any names into the CycleGAN layout."""
    from i2i.data.prepare import unpair

    domains = domain_folders(domain_a, domain_b)
    if (source is None) == (domains is None):
        raise ConfigError("give a paired SOURCE, or --domain-a DIR --domain-b DIR (not both)")
    if domains is not None:
        counts = unpair(None, out, seed, domains=domains)
        typer.echo(f"copied {counts['trainA']} + {counts['trainB']} images into {out}")
        return
    counts = unpair(source, out, seed)
    splits = ", ".join(f"{n:,} {split} (to {split}A/ {split}B/)" for split, n in counts.items())
    typer.echo(f"split the pairs into halves: {splits} in {out}")


@data_app.command("download")
@user_errors
def data_download(
    name: str = typer.Argument(None, help="Dataset name (see --list)."),
    out: Path = typer.Option(None, help="Folder the dataset goes into [data/NAME]."),
    list_: bool = typer.Option(False, "--list", help="List the datasets: kind, size, licence."),
    keep_archive: bool = typer.Option(False, help="Keep the archive in the cache afterwards."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Download a standard pix2pix or CycleGAN dataset, laid out as i2i reads it; prints the
    i2i train line that uses it. A partial download resumes."""
    from i2i.data.download import catalogue_table, download_dataset

    if list_:
        typer.echo(catalogue_table())
        return
    if name is None:
        raise ConfigError("name a dataset: i2i data download NAME (i2i data download --list)")
    got = download_dataset(name, out, keep_archive=keep_archive, progress=progress)
    where = "downloaded into" if got.fetched else "already at (not downloaded again)"
    typer.echo(f"{name}: {where} {got.path}")
    if got.found is not None:
        splits = ", ".join(f"{s.split} ({s.layout})" for s in got.found.splits)
        typer.echo(f"  {got.found.kind} data; splits: {splits}")
        typer.echo(f"  look at it: i2i data inspect {got.path}")
        typer.echo(f"  train on it: {got.train_command}")
    else:
        typer.echo("  no training split: its images are for trying trained models on")


@data_app.command("inspect")
@user_errors
def data_inspect(
    data: Path = typer.Argument(None, help="Dataset: folder, .npz or IDX file."),
    out: Path = typer.Option(None, help="Report folder [reports/NAME]."),
    domain_a: Path = typer.Option(None, help="Instead of DATA: folder of domain A images..."),
    domain_b: Path = typer.Option(None, help="...and folder of domain B images."),
    kind: str = typer.Option("auto", help="auto | paired | unpaired | images: how to read it."),
    npz_keys: str = typer.Option("arr_0,arr_1", help="Source,target array names in a .npz."),
    samples: int = typer.Option(8, min=0, max=64, help="Random samples per domain (picture)."),
    near_bits: int = typer.Option(4, min=0, max=64, help="Near duplicates: phash bits apart."),
    workers: int = typer.Option(2, min=1, max=64, help="Decoding threads."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 when any file is bad (CI)."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Look at a dataset before training on it: counts, sizes, modes, bad files, duplicates
    within and across splits, colour histograms per domain and random samples. Writes
    report.md with PNG figures."""
    from i2i.data.inspect import inspect_dataset

    keys = tuple(npz_keys.split(","))
    if len(keys) != 2:
        raise ConfigError(f"--npz-keys needs two names, got {npz_keys!r}")
    domains = domain_folders(domain_a, domain_b)
    if (data is None) == (domains is None):
        raise ConfigError("name the data: DATA, or --domain-a DIR --domain-b DIR (not both)")
    report = inspect_dataset(
        data, domains=domains, kind=kind, npz_keys=keys, samples=samples,
        near_bits=near_bits, workers=workers, progress=progress,
    )  # fmt: skip
    name = data.resolve().name if data else "+".join(Path(d).name for d in domains or ())
    path = report.write(out or Path("reports") / name)
    typer.echo(report.table())
    for line in report.summary():
        typer.echo(line)
    typer.echo(f"report: {path} (figures: sizes.png, colours.png, samples.png)")
    if strict and report.bad:
        raise fail(f"{len(report.bad)} bad file(s) in {report.data} (listed in {path})")


@data_app.command("synth")
@user_errors
def data_synth(
    out: Path = typer.Option(..., help="Folder to write train/ and val/ into."),
    n_train: int = typer.Option(400, min=1, help="Training pairs."),
    n_val: int = typer.Option(50, min=0, help="Validation pairs."),
    size: int = typer.Option(64, min=8, max=4096, help="Side of each square image, px."),
    seed: int = typer.Option(0, min=0),
) -> None:
    """Write the built-in synthetic paired dataset (label maps -> renderings)."""
    from i2i.data.synth import write_synthetic

    write_synthetic(out, n_train, n_val, size, seed)
    typer.echo(f"wrote {n_train} training and {n_val} validation pairs to {out}")


@data_app.command("prepare")
@user_errors
def data_prepare(
    source: Path = typer.Argument(..., help="Paired dataset (side-by-side, A/ B/, or .npz)."),
    out: Path = typer.Option(..., help="Output folder."),
    to: str = typer.Option("side_by_side", help="side_by_side | npz"),
    split: str = typer.Option(None, help="Fractions train,val,test, e.g. 0.8,0.1,0.1."),
    size: int = typer.Option(None, min=1, max=16384, help="Resize each image to SIZE x SIZE."),
    seed: int = typer.Option(0, min=0, help="Shuffle seed for --split."),
    npz_keys: str = typer.Option("arr_0,arr_1", help="Source,target array names in a .npz."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip unreadable images, warn."),
) -> None:
    """Combine A/ B/ folders into side-by-side pairs, split, resize, or write .npz archives."""
    from i2i.data.prepare import parse_fractions, prepare

    if to not in ("side_by_side", "npz"):
        raise ConfigError(f"--to must be side_by_side or npz, got {to!r}")
    keys = tuple(npz_keys.split(","))
    if len(keys) != 2:
        raise ConfigError(f"--npz-keys needs two names, got {npz_keys!r}")
    fractions = parse_fractions(split) if split else None
    counts = prepare(source, out, to, fractions, size, seed, skip_bad, keys)  # type: ignore[arg-type]
    typer.echo(f"wrote {counts} pairs to {out}")


@app.command()
@user_errors
def demo(
    out: Path = typer.Option(Path("runs/demo"), help="Run folder (a free name is picked)."),
    data: Path = typer.Option(Path("data/synth"), help="Where the synthetic data goes."),
    steps: int = typer.Option(600, min=1, help="Training steps (about 2 minutes on 2 CPU cores)."),
) -> None:
    """Train a small pix2pix on built-in synthetic data: the whole workflow in minutes."""
    from i2i.demo import run_demo

    run_demo(out, data, steps)
