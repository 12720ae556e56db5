"""The training loop, top to bottom: data, model, optimizers, resume, then steps.

Every ``log_every`` steps the losses go to TensorBoard and ``metrics.jsonl``; every
``image_every`` steps a sample grid is saved; every ``save_every`` steps (and at the end) an
atomic checkpoint. A resumed run restores weights, optimizers, the step and the RNG, and the
data order is a function of (seed, epoch), so it continues the same loss trajectory.

The loop owns how a step runs (device, precision, data parallelism, the CPU kernels); a model's
``training_step`` computes the paper's losses and calls ``update`` (``i2i.train.step``).
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import yaml
from torch.utils.data import DataLoader, default_collate
from tqdm import tqdm

from i2i import parallel
from i2i.config import DataConfig, RunConfig, parse_duration, to_dict
from i2i.data.build import Pixels, open_datasets
from i2i.data.paired import EpochBatchSampler, steps_per_epoch
from i2i.data.transforms import PixelDataset, network_range, preview_view, size_rule
from i2i.device import configure_backends
from i2i.errors import ConfigError, RunExistsError, TrainingDiverged
from i2i.files import remove_stale_temps, write_text_atomic
from i2i.kernels import cpu_kernels_enabled, use_cpu_kernels
from i2i.metrics.names import better
from i2i.models import build_model, data_kind, model_card
from i2i.runs.checkpoint import (
    check_finite,
    latest_name,
    load_trainer_state,
    load_weights,
    mark_best,
    read_best,
    remove_partial_checkpoints,
    resolve_checkpoint,
    save_checkpoint,
)
from i2i.runs.layout import CONFIG, LATEST, WEIGHTS
from i2i.runs.storage import RunMirror, is_url
from i2i.train import distributed
from i2i.train.accel import accelerate, autocast, loader_workers, to_device
from i2i.train.budget import Budget, StopSignals, clock, lr_fraction
from i2i.train.evaluation import TrainingEvaluator
from i2i.train.monitor import RunMonitor, plot_loss_curves
from i2i.train.options import absolute_root
from i2i.train.step import Updater, make_optimizers

log = logging.getLogger("i2i")


@dataclass
class TrainResult:
    run_dir: Path
    checkpoint: Path
    step: int
    seconds: float
    last_losses: dict[str, float]
    main: bool = True  # the process that reports (rank 0 under torchrun)
    start_step: int = 0  # where a resumed run started
    limit: str = ""  # what ends the run: "--max-steps N" or the epochs schedule
    stopped_by: str = ""  # what ended it early: "SIGINT", "SIGTERM", "time limit"


def lr_factor(step: int, steps_per_epoch: int, epochs: int, epochs_decay: int) -> float:
    """Constant for ``epochs``, then linear decay over ``epochs_decay`` (as in pix2pix)."""
    epoch = step / steps_per_epoch
    return 1.0 - max(0.0, epoch - epochs) / (epochs_decay + 1)


def prepare_run_folder(run_dir: Path, cfg: RunConfig) -> None:
    """Create the run folder and write its ``config.yaml`` atomically (a kill at any moment
    leaves the old file or the new one); an unwritable folder is one ConfigError."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        for folder in (run_dir, run_dir / "checkpoints", run_dir / "samples"):
            if folder.is_dir():  # what writes killed mid-way left behind
                remove_stale_temps(folder)
        if (run_dir / "checkpoints").is_dir():
            remove_partial_checkpoints(run_dir / "checkpoints")
        write_text_atomic(run_dir / CONFIG, yaml.safe_dump(to_dict(cfg), sort_keys=False))
    except PermissionError as exc:
        raise ConfigError(
            f"{run_dir}: cannot write the run folder ({exc.strerror}); choose another --out"
        ) from None


def train(
    cfg: RunConfig, resume: bool = False, progress: bool = True, started: float | None = None
) -> TrainResult:
    """Train (or, with ``resume``, continue) the run ``cfg`` describes; see the module
    docstring. ``started``: when this session began (``time.perf_counter()``; default: now),
    from which ``--time-limit`` counts it (the command passes its own start, so imports count
    too). Raises UserErrors (RunExistsError, ConfigError, DataError, TrainingDiverged ...)
    whose messages say what to do."""
    # a time limit counts start-up and data loading too
    session_started = time.perf_counter() if started is None else started
    cfg = absolute_root(cfg)  # config.yaml records where the data is, from anywhere
    dest = cfg.train.out
    mirror = RunMirror(dest) if is_url(dest) else None  # object storage: work in a local cache
    run_dir = mirror.local if mirror else Path(dest)
    ckpt_root = run_dir / "checkpoints"
    exists = mirror.exists() if mirror else (ckpt_root / LATEST).exists()
    if not resume and exists:
        raise RunExistsError(
            f"{dest} already holds a run; resume it with --resume {dest}, or choose another --out"
        )
    procs, device = parallel.join(cfg.train.device)  # one process unless under torchrun
    distributed.check_batch(cfg.train.batch_size, procs)
    if mirror and procs.main:
        mirror.prepare(resume)
    configure_backends(device, cfg.train.deterministic)
    torch.manual_seed(cfg.train.seed)
    channels_last = cfg.train.channels_last

    # the model, then the data it can take: every training image's size is checked from its
    # header before training (a misfit is a bad file, named), and the fixed examples of the
    # sample grids come from the val split when there is one
    model = build_model(cfg)
    model.to(device)

    def fits(width: int, height: int) -> None:
        model.check_image_size(height, width, cfg.data)

    if cfg.data.preprocess != "none":  # every training input is a crop_size square
        fits(cfg.data.crop_size, cfg.data.crop_size)
    workers = loader_workers(cfg.data.num_workers, device)
    data_cfg = replace(cfg.data, num_workers=workers)
    rule = size_rule(data_cfg, fits)
    train_set, preview_set = open_datasets(data_cfg, data_kind(cfg.model.kind), rule)
    check_batch_sizes(train_set, cfg)
    if procs.main:  # once the model and data are known to fit: a refused start leaves no folder
        prepare_run_folder(run_dir, cfg)
    # an unconditional model's preview (a grid from fixed noise) is the same for every example
    n_preview = min(cfg.train.num_samples if model.conditional else 1, len(preview_set))
    previews = [
        to_device(default_collate([example]), device, channels_last)
        for example in preview_examples(preview_set, n_preview, cfg.data, fits)
    ]
    if device.type == "cpu" and cpu_kernels_enabled(cfg.train.cpu_kernels):
        use_cpu_kernels(model)
    accelerate(model, cfg.train)
    update = Updater(make_optimizers(model, cfg.train), cfg.train, device, procs.world)
    bs = cfg.train.batch_size
    epoch_steps = steps_per_epoch(len(train_set), bs, procs.world)
    total_epochs = cfg.train.epochs + cfg.train.epochs_decay
    total_steps = epoch_steps * total_epochs
    limit = (
        f"{total_epochs} epochs ({cfg.train.epochs} + {cfg.train.epochs_decay} of lr decay) "
        f"= {total_steps:,} steps"
    )
    if cfg.train.max_steps is not None and cfg.train.max_steps < total_steps:
        total_steps, limit = cfg.train.max_steps, f"--max-steps {cfg.train.max_steps:,}"

    step = 0
    if resume:
        ckpt = resolve_checkpoint(run_dir)
        state = load_trainer_state(ckpt)
        weights = load_weights(ckpt)
        check_finite(weights, f"{ckpt / WEIGHTS}: ", "a diverged run")  # trainer state: too
        model.load_state_dict(weights)
        update.load_state_dict(state)
        model.load_train_state(state["model"])
        step = state["step"]
        torch.set_rng_state(state["rng"]["torch"])
        if device.type == "cuda" and state["rng"]["cuda"]:
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    start_step = step
    spent = float(state.get("seconds", 0.0)) if resume else 0.0  # earlier sessions' time
    budget = None
    if cfg.train.time_limit is not None:
        budget = Budget(parse_duration(cfg.train.time_limit), spent, session_started)
        limit = f"--time-limit {cfg.train.time_limit} (at most {limit})"
    if procs.world > 1:
        distributed.share_start(model)
        torch.manual_seed(cfg.train.seed + procs.rank + step)  # own dropout masks per process
    monitor = RunMonitor(run_dir, resume_step=step) if procs.main else None
    evaluator = TrainingEvaluator(cfg, device) if cfg.train.eval_every and procs.main else None
    best = read_best(ckpt_root) if resume else None
    log.info(
        "%s %s run %s at step %d: %d training samples, %d steps/epoch, to step %d (%s), "
        "device %s%s",
        "resuming" if resume else "starting",
        cfg.model.kind,
        run_dir,
        step,
        len(train_set),
        epoch_steps,
        total_steps,
        limit,
        device,
        f", {procs.world} processes" if procs.world > 1 else "",
    )

    last_saved = step if resume else -1

    def checkpoint() -> Path:
        if not procs.main:  # process 0 writes the run folder
            return ckpt_root / f"step_{step:08d}"
        check_finite_weights(model, step, ckpt_root)
        writing = time.perf_counter()
        saved = save_checkpoint(
            ckpt_root,
            f"step_{step:08d}",
            model.state_dict(),
            model_card(model, cfg, step),
            trainer_state={
                "step": step,
                "seconds": spent + time.perf_counter() - session_started,
                **update.state_dict(),
                "model": model.train_state(),
                "rng": {
                    "torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else [],
                },
            },
            keep=cfg.train.keep,
        )
        if mirror:
            mirror.push(saved)
        if budget is not None:
            budget.measured_save(time.perf_counter() - writing)
        return saved

    def evaluate() -> None:
        nonlocal best, last_saved
        assert evaluator is not None and monitor is not None
        metric = evaluator.metric
        value = evaluator(model)
        monitor.evaluation(step, {metric: value})
        log.info("step %d eval %s=%.4f", step, metric, value)
        if better(metric, value, best["value"] if best else None):
            if last_saved != step:
                checkpoint()
                last_saved = step
            best = {"metric": metric, "value": value, "step": step}
            mark_best(ckpt_root, f"step_{step:08d}", best)

    def samples() -> None:
        if monitor is None or not previews:
            return
        model.eval()
        rows = [model.preview(example) for example in previews]  # images of any sizes
        model.train()
        names = list(rows[0])
        columns = [same_size([row[name] for row in rows]) for name in names]
        monitor.samples(step, columns, names)

    model.train()
    losses: dict[str, float] = {}
    unread: list[dict[str, torch.Tensor]] = []  # losses of the steps since the last read
    started, steps_done = time.perf_counter(), 0
    stop = StopSignals()
    stopped_by = ""  # what ended the run early: a signal's name or "time limit"
    schedule_end = total_steps  # with a time limit, where the lr schedule ends (estimated)
    constant_share = cfg.train.epochs / total_epochs
    if budget is not None and budget.left() <= budget.reserve:
        total_steps, stopped_by = step, "time limit"  # resumed with no time left
    bar = tqdm(
        total=total_steps,
        initial=step,
        disable=not (progress and procs.main),
        unit="step",
        dynamic_ncols=True,
        mininterval=0.5,
    )
    try:
        stop.install()
        loader = DataLoader(
            Pixels(train_set),  # 8-bit batches, mapped to [-1, 1] on the device
            batch_sampler=EpochBatchSampler(
                len(train_set),
                bs,
                cfg.train.seed,
                step,
                total_steps,
                procs.rank,
                procs.world,
            ),
            num_workers=workers,
            persistent_workers=workers > 0,
            generator=torch.Generator().manual_seed(cfg.train.seed),
            pin_memory=device.type == "cuda",
        )
        for batch in loader:
            epoch = step // epoch_steps
            if budget is None:
                lr = cfg.train.lr * lr_factor(
                    step, epoch_steps, cfg.train.epochs, cfg.train.epochs_decay
                )
            else:  # the schedule ends where the time does
                schedule_end = budget.total_steps(step, total_steps)
                lr = cfg.train.lr * lr_fraction(step / schedule_end, constant_share)
            for optimizer in update.optimizers.values():
                for group in optimizer.param_groups:
                    group["lr"] = lr
            batch = network_range(to_device(batch, device, channels_last))
            with autocast(cfg.train, device):
                out = model.training_step(batch, update)
            unread.append(out)
            step += 1
            steps_done += 1
            if budget is not None:
                budget.observe(step)
                bar.total = schedule_end
                bar.set_description(f"{clock(budget.elapsed())}/{clock(budget.limit)}")
            bar.update(1)
            if procs.world == 1 or step % cfg.train.log_every == 0:  # the same steps everywhere
                stopped_by = stopped_by or stop_reason(stop, budget, procs, device)
            last = step == total_steps or bool(stopped_by)
            logs = step % cfg.train.log_every == 0 or last
            draws = step % cfg.train.image_every == 0
            eval_every = cfg.train.eval_every
            scores = eval_every is not None and (step % eval_every == 0 or last)
            saves = step % cfg.train.save_every == 0
            # Reading a loss waits for the device to finish the step, which stops the host from
            # queueing the next one; so losses stay on the device until a step that logs,
            # draws, scores or saves (the same steps in every process), and are checked for
            # NaN before any save.
            if not (logs or draws or scores or saves):
                continue
            losses = read_losses(unread, step, procs, ckpt_root)
            unread.clear()
            bar.set_postfix_str(
                f"epoch {epoch + 1}/{total_epochs} "
                + " ".join(f"{k}={v:.3f}" for k, v in losses.items()),
                refresh=False,
            )
            if monitor and logs:
                rate = steps_done * bs / (time.perf_counter() - started)
                monitor.scalars(step, {**losses, "lr": lr, "images_per_s": rate * procs.world})
                log.info(
                    "step %d epoch %d %s",
                    step,
                    epoch + 1,
                    " ".join(f"{k}={v:.4f}" for k, v in losses.items()),
                )
            if draws:
                samples()
            if evaluator and scores:
                evaluate()
            if saves:
                checkpoint()
                last_saved = step
            if stopped_by:
                break
        final = checkpoint() if last_saved != step else ckpt_root / f"step_{step:08d}"
        samples()
        if monitor:
            plot_loss_curves(monitor.metrics_file, run_dir / "loss_curves.png", title=str(dest))
        if mirror and procs.main:
            mirror.push()
        elapsed = time.perf_counter() - started
        log.info("finished at step %d in %.1f s; checkpoint %s", step, elapsed, final)
    finally:
        stop.uninstall()
        bar.close()
        if monitor:
            monitor.close()
        parallel.finish(procs)
    return TrainResult(
        run_dir, final, step, elapsed, losses, procs.main, start_step, limit, stopped_by
    )


def stop_reason(
    stop: StopSignals, budget: Budget | None, procs: parallel.Processes, device: torch.device
) -> str:
    """Why to stop after this step ("" to go on): a signal, or the time limit. Under torchrun
    every process stops at the same step (the reasons are gathered, at logging steps)."""
    reason = stop.requested or ("time limit" if budget is not None and budget.exhausted() else "")
    if procs.world == 1:
        return reason
    flag = torch.tensor([1.0 if reason else 0.0], device=device)
    torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
    return reason or ("stopped by another process" if flag.item() else "")


def preview_examples(
    preview_set: PixelDataset, n: int, data: DataConfig, fits: Callable[[int, int], None]
) -> list[dict[str, Any]]:
    """The first ``n`` examples of the preview set as the sample grids show them. With
    ``--preprocess none`` each keeps its own size, and one the networks cannot take
    (``fits`` raises ConfigError) is left out with a warning: only the training images are
    screened before training, and a misfit would stop the run at its first grid."""
    examples: list[dict[str, Any]] = []
    for i in range(len(preview_set)):
        if len(examples) == n:
            break
        example = preview_view(preview_set[i], data)
        if data.preprocess == "none":
            image = next(v for v in example.values() if isinstance(v, torch.Tensor))
            try:
                fits(image.shape[-1], image.shape[-2])
            except ConfigError as exc:
                warnings.warn(f"sample grids leave out preview example {i}: {exc}", stacklevel=2)
                continue
        examples.append(example)
    return examples


def check_batch_sizes(train_set: PixelDataset, cfg: RunConfig) -> None:
    """A batch fits in the training set (a larger one would silently shrink to it, and the
    images/s with it); images that keep their own sizes batch only with their like: refuse
    mixed sizes unless each batch holds one image, naming two files that differ."""
    if cfg.train.batch_size > len(train_set):
        raise ConfigError(
            f"--batch-size {cfg.train.batch_size} is more than the {len(train_set)} training "
            f"examples of the data: use --batch-size {len(train_set)} or less"
        )
    if cfg.data.preprocess != "none" or cfg.train.batch_size == 1:
        return
    sizes = train_set.stored_sizes()
    if len(sizes) > 1:
        (size_a, file_a), (size_b, file_b) = list(sizes.items())[:2]
        raise ConfigError(
            f"with --preprocess none, images keep their own sizes, and {file_a} "
            f"({size_a[0]}x{size_a[1]}) and {file_b} ({size_b[0]}x{size_b[1]}) differ "
            f"({len(sizes)} sizes in all): a batch holds one size, so train with --batch-size 1, "
            "or resize them (--preprocess resize or resize_and_crop)"
        )


def same_size(images: list[torch.Tensor]) -> torch.Tensor:
    """1xCxHxW images of any sizes as one batch at the first one's size (bilinear), for a
    sample grid."""
    h, w = images[0].shape[-2:]
    resized = [
        x if x.shape[-2:] == (h, w) else F.interpolate(x.float(), (h, w), mode="bilinear")
        for x in images
    ]
    return torch.cat(resized)


def read_losses(
    unread: list[dict[str, torch.Tensor]], step: int, procs: parallel.Processes, ckpt_root: Path
) -> dict[str, float]:
    """The losses of the steps ``unread`` (the last of them ``step``), averaged over the
    processes, in one wait for the device. Returns the last step's; raises
    ``TrainingDiverged`` naming the first step with a NaN or infinite loss."""
    names = list(unread[0])
    table = torch.stack([torch.stack([out[k].float() for k in names]) for out in unread])
    rows = distributed.average(table, procs).tolist()  # steps x losses
    for i, row in enumerate(rows):
        bad = [f"{k}={v}" for k, v in zip(names, row, strict=True) if not math.isfinite(v)]
        if bad:
            raise TrainingDiverged(
                f"loss {', '.join(bad)} at step {step - len(rows) + i + 1}: training stopped. "
                f"{_last_good(ckpt_root)}; resume from it with a lower learning rate (--lr) "
                "or another --gan-mode."
            )
    return dict(zip(names, rows[-1], strict=True))


def check_finite_weights(model: torch.nn.Module, step: int, ckpt_root: Path) -> None:
    """Refuse to save weights that hold NaN or inf: the loss of a step is computed before its
    update, so an update can blow up weights while every logged loss was finite."""
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise TrainingDiverged(
                f"weights ({name}) became NaN or infinite by step {step}: training stopped "
                f"without saving them. {_last_good(ckpt_root)}; resume from it with a lower "
                "learning rate (--lr) or another --gan-mode."
            )


def _last_good(ckpt_root: Path) -> str:
    name = latest_name(ckpt_root)
    if name is None:
        return "No checkpoint was written yet"
    return f"The last good checkpoint ({ckpt_root / name}) is untouched"
