"""The metrics by name, and which way is better: light enough for the CLI to import."""

from __future__ import annotations

from collections.abc import Sequence

from i2i.errors import ConfigError

PAIRED = ("l1", "rmse", "psnr", "ssim", "pixel_acc", "lpips", "miou")  # miou: with a palette
DISTRIBUTION = ("fid", "kid", "is", "precision", "recall", "mifid")
DESCRIPTIVE = ("colorfulness",)  # of the outputs alone (and of the real images, for comparison)
METRICS = PAIRED + DISTRIBUTION + DESCRIPTIVE
LOWER_IS_BETTER = {"l1", "rmse", "lpips", "fid", "kid", "mifid"}


def check_metrics(names: Sequence[str], where: str = "--metrics") -> list[str]:
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise ConfigError(f"{where}: unknown metric(s) {unknown}; known: {', '.join(METRICS)}")
    return list(dict.fromkeys(names))


def better(metric: str, new: float, old: float | None) -> bool:
    if old is None:
        return True
    return new < old if metric in LOWER_IS_BETTER else new > old
