"""What a run shows while it learns: TensorBoard scalars and images, ``metrics.jsonl`` (one JSON
line per logged step, the source of the loss-curve plot), ``train.log``, sample grids and the
loss-curve PNG."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torchvision.utils import save_image

from i2i.files import atomic_path, write_text_atomic
from i2i.infer.grid import sample_grid

log = logging.getLogger("i2i")
NOT_LOSSES = {"step", "lr", "images_per_s"}  # the other logged values are losses


class RunMonitor:
    def __init__(self, run_dir: Path, resume_step: int = 0) -> None:
        from torch.utils.tensorboard import SummaryWriter  # slow import; only when training

        self.run_dir = run_dir
        self.metrics_file = run_dir / "metrics.jsonl"
        if resume_step:  # drop lines a killed run logged after its last checkpoint
            _truncate_metrics(self.metrics_file, resume_step)
            _truncate_metrics(run_dir / "eval.jsonl", resume_step)
        # purge_step hides TensorBoard events the killed run wrote past the checkpoint
        self.tb = SummaryWriter(str(run_dir / "tensorboard"), purge_step=resume_step or None)
        handler = logging.FileHandler(run_dir / "train.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        self._handler = handler
        log.addHandler(handler)
        log.setLevel(logging.INFO)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for name, value in values.items():
            group = "train" if name in NOT_LOSSES else "loss"
            self.tb.add_scalar(f"{group}/{name}", value, step)
        with open(self.metrics_file, "a") as f:
            f.write(json.dumps({"step": step, **values}) + "\n")

    def evaluation(self, step: int, scores: dict[str, float]) -> None:
        """Val-split scores: TensorBoard ``eval/NAME`` and ``eval.jsonl``."""
        for name, value in scores.items():
            self.tb.add_scalar(f"eval/{name}", value, step)
        with open(self.run_dir / "eval.jsonl", "a") as f:
            f.write(json.dumps({"step": step, **scores}) + "\n")

    def samples(self, step: int, rows: Sequence[torch.Tensor], names: Sequence[str]) -> Path:
        """Save a grid whose columns are ``names`` (e.g. input | output | target)."""
        grid = sample_grid(rows, names)
        out = self.run_dir / "samples" / f"step_{step:08d}.png"
        out.parent.mkdir(exist_ok=True)
        for path in (out, self.run_dir / "samples.png"):
            with atomic_path(path) as tmp:
                save_image(grid, tmp, format="png")
        self.tb.add_image("samples", grid, step)
        return out

    def close(self) -> None:
        self.tb.close()
        log.removeHandler(self._handler)
        self._handler.close()


def _truncate_metrics(path: Path, step: int) -> None:
    """Keep the lines up to ``step`` (a resumed run logs the later ones again)."""
    if path.exists():
        keep = [row for row in read_metrics(path) if row["step"] <= step]
        write_text_atomic(path, "".join(json.dumps(row) + "\n" for row in keep))


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The logged rows; a line a kill cut short is left out."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and "step" in row:
            rows.append(row)
    return rows


def plot_loss_curves(metrics_file: Path, out: Path, title: str = "") -> Path | None:
    """One panel per loss, raw values faint and a moving average on top."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(metrics_file)
    names = [k for k in rows[0] if k not in NOT_LOSSES] if rows else []
    if not names:
        return None
    cols = min(4, len(names))
    rows_n = -(-len(names) // cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(4 * cols, 3.2 * rows_n), squeeze=False)
    steps = [r["step"] for r in rows]
    for ax in axes.flat[len(names) :]:
        ax.axis("off")
    for ax, name in zip(axes.flat, names, strict=False):
        values = [r.get(name, float("nan")) for r in rows]
        few = len(values) < 20  # a line of one point draws nothing: mark the points
        ax.plot(steps, values, alpha=1.0 if few else 0.3, color="C0", linewidth=0.8,
                marker="o" if few else None)  # fmt: skip
        ax.plot(steps, moving_average(values, max(1, len(values) // 20)), color="C0")
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.locator_params(axis="x", nbins=5, integer=True)  # 5-digit steps overlap at more
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return out


def moving_average(values: list[float], window: int) -> list[float]:
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out
