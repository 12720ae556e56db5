"""``i2i experiment GRID.yaml``: train and evaluate every cell of a grid of config overrides,
then write one table and the pictures that compare the cells.

A grid file::

    out: runs/ablation              # where cells and results go [runs/<file stem>]
    base: {...}                     # a run config, as in RUN/config.yaml (partial is fine)
    cells:                          # override sets, one cell each ([{}]: just the base)
      - {}
      - {model.discriminator.n_layers: 1}
    grid:                           # crossed with every cell: all combinations
      model.recon_loss: [l1, l2, l1+l2]
    evaluate: {metrics: [l1, psnr, ssim], size: 256, limit: 100}   # an EvalConfig

Keys are the dotted config paths of ``--set``. Each cell trains into ``OUT/cells/NAME/run`` and
writes ``result.json`` when evaluated; a re-run skips finished cells and resumes an interrupted
one from its last checkpoint. Results: ``results.csv``, ``results.md``, ``loss_curves.png``
(every cell's losses on shared axes) and ``samples.png`` (the same val inputs through every cell).
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from i2i.config import RunConfig, from_dict, load_yaml, set_dotted, to_dict
from i2i.data.build import scored_pairs
from i2i.errors import ConfigError
from i2i.files import atomic_path, write_text_atomic
from i2i.infer.translator import Translator
from i2i.metrics.evaluate import EvalConfig, evaluate_checkpoint
from i2i.metrics.names import LOWER_IS_BETTER
from i2i.models import data_kind
from i2i.runs.layout import LATEST
from i2i.train.loop import train
from i2i.train.monitor import NOT_LOSSES, moving_average, read_metrics

GRID_KEYS = {"out", "base", "cells", "grid", "evaluate"}


@dataclass
class Cell:
    name: str
    overrides: dict[str, Any]
    config: RunConfig

    @property
    def dir(self) -> Path:
        return Path(self.config.train.out).parent

    @property
    def key(self) -> str:
        """A digest of the cell's resolved config: a finished cell is reused only while its
        config is what the grid file now says."""
        resolved = json.dumps(to_dict(self.config), sort_keys=True)
        return hashlib.sha256(resolved.encode()).hexdigest()[:16]


@dataclass
class Experiment:
    out: Path
    cells: list[Cell]
    evaluate: EvalConfig


def load_experiment(
    path: str | Path, out: str | None = None, sets: dict[str, Any] | None = None
) -> Experiment:
    """Read a grid file; ``sets`` overrides the base config (``--set``, ``--data``)."""
    path = Path(path)
    spec = load_yaml(path) or {}
    if not isinstance(spec, dict) or set(spec) - GRID_KEYS:
        raise ConfigError(f"{path}: expected a mapping with keys {sorted(GRID_KEYS)}")
    root = Path(out or spec.get("out") or Path("runs") / path.stem)
    base = to_dict(from_dict(RunConfig, spec.get("base") or {}, "base"))
    for key, value in (sets or {}).items():
        set_dotted(base, key, value)
    grid = spec.get("grid") or {}
    if not isinstance(grid, dict) or any(not isinstance(v, list) or not v for v in grid.values()):
        raise ConfigError(f"{path}: grid must map config keys to non-empty lists of values")
    combos = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]
    cells: list[Cell] = []
    for i, given in enumerate(spec.get("cells") or [{}]):
        if not isinstance(given, dict):
            raise ConfigError(f"{path}: cells[{i}] must be a mapping of config keys to values")
        explicit = safe_name(str(given.get("name", "")))
        rest = {k: v for k, v in given.items() if k != "name"}
        for combo in combos:
            overrides = {**rest, **combo}
            parts = [explicit or (cell_name(rest) if rest else ""), combo and cell_name(combo)]
            name = ",".join(p for p in parts if p) or "base"
            data = json.loads(json.dumps(base))  # a deep copy
            for key, value in overrides.items():
                set_dotted(data, key, value)
            data["train"]["out"] = str(root / "cells" / name / "run")
            cells.append(Cell(name, overrides, from_dict(RunConfig, data, f"cell {name}")))
    names = [c.name for c in cells]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: two cells share a name; give them distinct 'name' keys")
    evaluate = from_dict(EvalConfig, spec.get("evaluate") or {}, "evaluate")
    evaluate.split = evaluate.split or "val"  # the split each cell is scored on and pictured from
    return Experiment(root, cells, evaluate)


def cell_name(overrides: dict[str, Any]) -> str:
    """A folder-safe name from the overrides' last key parts:
    ``{model.recon_loss: l2, model.discriminator.n_layers: 1}`` -> ``recon_loss=l2,n_layers=1``."""
    return safe_name(",".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in overrides.items()))


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9=,.+_-]", "_", text)


def run_experiment(exp: Experiment, progress: bool = True) -> Path:
    """Train and evaluate each unfinished cell, then write the results; returns results.md.

    A cell is finished when its ``result.json`` was written for its current config (the
    config's digest is its key); a cell whose config changed since is trained again, its old
    run moved aside. A cell that fails is recorded as failed, with the error, and the sweep
    goes on; the table shows it."""
    exp.out.mkdir(parents=True, exist_ok=True)
    for i, cell in enumerate(exp.cells, 1):
        result_file = cell.dir / "result.json"
        head = f"[{i}/{len(exp.cells)}] {cell.name}"
        done = json.loads(result_file.read_text()) if result_file.is_file() else None
        if done is not None and done.get("key") == cell.key and done["status"] == "done":
            print(f"{head}: done before, skipped")
            continue
        if cell.dir.is_dir() and stored_key(cell) not in (None, cell.key):
            stale = cell.dir.with_name(f"{cell.name}.stale-{stored_key(cell)}")
            shutil.rmtree(stale, ignore_errors=True)
            cell.dir.rename(stale)
            print(f"{head}: its config changed since its run (moved to {stale.name})")
        cell.dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(cell.dir / "cell.json", json.dumps({"key": cell.key}))
        resume = (cell.dir / "run" / "checkpoints" / LATEST).is_file()
        print(f"{head}: {'resuming' if resume else 'training'}", flush=True)
        result: dict[str, Any] = {"name": cell.name, "key": cell.key, "overrides": cell.overrides}
        try:
            result |= train_and_score(cell, exp.evaluate, resume, progress)
            print(f"{head}: " + ", ".join(f"{k}={v:.4g}" for k, v in result["metrics"].items()))
        except Exception as exc:  # a failed cell is a result too: the sweep goes on
            result |= {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
            print(f"{head}: failed: {exc}", flush=True)
        write_text_atomic(result_file, json.dumps(result, indent=2) + "\n")
    return write_results(exp)


def stored_key(cell: Cell) -> str | None:
    """The config digest the cell's folder was trained with, if it holds one."""
    path = cell.dir / "cell.json"
    return json.loads(path.read_text()).get("key") if path.is_file() else None


def train_and_score(
    cell: Cell, evaluate: EvalConfig, resume: bool, progress: bool
) -> dict[str, Any]:
    started = time.perf_counter()
    trained = train(cell.config, resume=resume, progress=progress)
    train_seconds = time.perf_counter() - started
    report = evaluate_checkpoint(trained.run_dir, cell.config.data.root, evaluate, progress=False)
    return {
        "status": "done",
        "metrics": report.metrics,
        "final_losses": final_losses(trained.run_dir / "metrics.jsonl"),
        "steps": trained.step,
        "train_seconds": round(train_seconds, 1),
        "resumed": resume,
        "eval_images": report.count,
    }


def failed_cells(exp: Experiment) -> list[str]:
    """``NAME: error`` of each cell whose last attempt failed."""
    out = []
    for cell in exp.cells:
        path = cell.dir / "result.json"
        result = json.loads(path.read_text()) if path.is_file() else {}
        if result.get("status") == "failed":
            out.append(f"{cell.name}: {result['error']}")
    return out


def final_losses(metrics_file: Path, share: float = 0.1) -> dict[str, float]:
    """Each loss averaged over the last ``share`` of the logged steps (single steps are noisy)."""
    rows = read_metrics(metrics_file)
    tail = rows[-max(1, int(len(rows) * share)) :]
    names = [k for k in (rows[0] if rows else {}) if k not in NOT_LOSSES]
    return {n: sum(r[n] for r in tail) / len(tail) for n in names}


def write_results(exp: Experiment) -> Path:
    recorded = [c for c in exp.cells if (c.dir / "result.json").is_file()]
    results = [json.loads((c.dir / "result.json").read_text()) for c in recorded]
    keys = list(dict.fromkeys(k for r in results for k in r["overrides"]))
    metrics = list(dict.fromkeys(k for r in results for k in r.get("metrics", {})))
    losses = list(dict.fromkeys(k for r in results for k in r.get("final_losses", {})))
    header = ["cell", *keys, "status", *metrics, *(f"loss {n}" for n in losses), "steps",
              "train s"]  # fmt: skip
    rows = [
        [
            r["name"],
            *(r["overrides"].get(k, "") for k in keys),
            "done" if r.get("status", "done") == "done" else f"failed: {r['error']}",
            *(_fmt(r.get("metrics", {}).get(m)) for m in metrics),
            *(_fmt(r.get("final_losses", {}).get(n)) for n in losses),
            r.get("steps", ""),
            r.get("train_seconds", ""),
        ]
        for r in results
    ]
    buffer = io.StringIO()
    csv.writer(buffer).writerows([header, *rows])
    write_text_atomic(exp.out / "results.csv", buffer.getvalue())
    table = [
        "| " + " | ".join(header) + " |",
        "|" + " --- |" * len(header),
        *("| " + " | ".join(str(v) for v in row) + " |" for row in rows),
    ]
    better = ", ".join(
        f"{m} {'lower' if m.removesuffix('_std') in LOWER_IS_BETTER else 'higher'}"
        for m in metrics
        if not m.endswith("_std")
    )
    done = sum(r.get("status", "done") == "done" for r in results)
    failed = len(results) - done
    md = exp.out / "results.md"
    write_text_atomic(
        md,
        f"# Experiment {exp.out.name}\n\n{done} of {len(exp.cells)} cells done"
        + (f", {failed} failed" if failed else "")
        + ". "
        f"Evaluated on the '{exp.evaluate.split}' split; better: {better}. Losses are the "
        "mean over the last 10% of logged steps.\n\n"
        + "\n".join(table)
        + "\n\n![loss curves](loss_curves.png)\n\n![val samples](samples.png)\n",
    )
    finished = [c for c, r in zip(recorded, results, strict=True) if r.get("status") == "done"]
    if finished:
        plot_cell_losses(finished, exp.out / "loss_curves.png")
        cell_samples(finished, exp.out / "samples.png", exp.evaluate.split or "val")
    return md


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def plot_cell_losses(cells: list[Cell], out: Path) -> None:
    """One panel per loss; one smoothed line per cell."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = {c.name: read_metrics(c.dir / "run" / "metrics.jsonl") for c in cells}
    names = list(dict.fromkeys(k for rows in series.values() for k in (rows[0] if rows else {})))
    names = [n for n in names if n not in NOT_LOSSES]
    cols = min(3, len(names)) or 1
    nrows = -(-len(names) // cols) or 1
    fig, axes = plt.subplots(nrows, cols, figsize=(5 * cols, 3.4 * nrows), squeeze=False)
    for ax in axes.flat[len(names) :]:
        ax.axis("off")
    for ax, loss in zip(axes.flat, names, strict=False):
        for j, (cell, rows) in enumerate(series.items()):
            points = [(r["step"], r[loss]) for r in rows if loss in r]
            if points:
                steps, values = zip(*points, strict=True)
                window = max(1, len(values) // 20)
                ax.plot(steps, moving_average(list(values), window), color=f"C{j}", label=cell)
        ax.set_title(loss)
        ax.set_xlabel("step")
        ax.locator_params(axis="x", nbins=5, integer=True)  # 5-digit steps overlap at more
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def cell_samples(cells: list[Cell], out: Path, split: str, count: int = 4) -> None:
    """The first ``count`` inputs of the split: input | target | each cell's output."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data, model = cells[0].config.data, cells[0].config.model.kind
    dataset = None if model == "dcgan" else scored_pairs(data, split, data_kind(model))
    if dataset is None:
        return  # no pairs to show (unconditional or unpaired-only data)
    items = [dataset[i] for i in range(min(count, len(dataset)))]
    inputs = torch.stack([it["A"] for it in items])
    columns = {"input": inputs, "target": torch.stack([it["B"] for it in items])}
    for cell in cells:
        columns[cell.name] = Translator.load(cell.dir / "run", device="cpu").translate_tensor(
            inputs
        )
    fig, axes = plt.subplots(
        len(items), len(columns), figsize=(2 * len(columns), 2 * len(items)), squeeze=False
    )
    for j, (title, images) in enumerate(columns.items()):
        axes[0, j].set_title(title, fontsize=7)
        for i in range(len(items)):
            picture = ((images[i].float().cpu() + 1) / 2).clamp(0, 1).permute(1, 2, 0)
            axes[i, j].imshow(picture.squeeze(-1).numpy(), cmap="gray", vmin=0, vmax=1)
            axes[i, j].axis("off")
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
