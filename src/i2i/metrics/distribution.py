"""Distribution metrics from features: how close the generated set is to the real one.

The formulas are torch-fidelity's (FID as in TTUR, KID with its cubic polynomial kernel, IS, and
Kynkäänniemi et al. 2019 precision/recall), called on features we extract once and share between
metrics, so any extractor works. MiFID is written here: torchmetrics measures memorization
against the *real* set it compares with, while MiFID (Kaggle, "I'm Something of a Painter")
measures it against the *training* images, which are a different set in our evaluations.
"""

from __future__ import annotations

import numpy as np
import torch
from torch_fidelity import (
    KEY_METRIC_FID,
    KEY_METRIC_ISC_MEAN,
    KEY_METRIC_ISC_STD,
    KEY_METRIC_KID_MEAN,
    KEY_METRIC_KID_STD,
    KEY_METRIC_PRECISION,
    KEY_METRIC_RECALL,
)
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric
from torch_fidelity.metric_prc import prc_features_to_metric

from i2i.data.images import DataError


def frechet_from_statistics(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^1/2), the Fréchet distance of two Gaussians."""
    stats1 = {"mu": np.asarray(mu1, np.float64), "sigma": np.asarray(sigma1, np.float64)}
    stats2 = {"mu": np.asarray(mu2, np.float64), "sigma": np.asarray(sigma2, np.float64)}
    return float(fid_statistics_to_metric(stats1, stats2, verbose=False)[KEY_METRIC_FID])


def frechet_distance(fake: torch.Tensor, real: torch.Tensor) -> float:
    """FID between two N x D feature sets (Gaussians fitted to each)."""
    _need(fake, real, 2, "FID")
    s1 = fid_features_to_statistics(fake.double())
    s2 = fid_features_to_statistics(real.double())
    return frechet_from_statistics(s1["mu"], s1["sigma"], s2["mu"], s2["sigma"])


def kernel_distance(
    fake: torch.Tensor, real: torch.Tensor, subset_size: int = 1000, subsets: int = 100
) -> tuple[float, float]:
    """KID: mean and std over random subsets of the unbiased MMD^2 (cubic polynomial kernel).
    Subsets shrink to the smaller set's size when it has fewer than ``subset_size`` images."""
    _need(fake, real, 2, "KID")
    size = min(subset_size, len(fake), len(real))
    out = kid_features_to_metric(
        fake.double(), real.double(), kid_subset_size=size, kid_subsets=subsets, verbose=False
    )
    return float(out[KEY_METRIC_KID_MEAN]), float(out[KEY_METRIC_KID_STD])


def inception_score(logits: torch.Tensor, splits: int = 10) -> tuple[float, float]:
    """IS = exp(E_x KL(p(y|x) || p(y))), mean and std over ``splits`` parts of the set."""
    splits = max(1, min(splits, len(logits) // 2))
    out = isc_features_to_metric(logits, splits=splits)
    return float(out[KEY_METRIC_ISC_MEAN]), float(out[KEY_METRIC_ISC_STD])


def precision_recall(fake: torch.Tensor, real: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Precision: share of fakes inside the real k-NN manifold; recall: share of reals inside
    the fake one (Kynkäänniemi et al. 2019)."""
    _need(fake, real, k + 1, "precision/recall")
    out = prc_features_to_metric(
        fake.float(),
        real.float(),
        prc_neighborhood=k,
        prc_batch_size=10000,
        save_cpu_ram=False,
        verbose=False,
    )
    return float(out[KEY_METRIC_PRECISION]), float(out[KEY_METRIC_RECALL])


def memorization_distance(fake: torch.Tensor, train: torch.Tensor) -> float:
    """Mean over fakes of the smallest cosine distance to any training image's features."""
    f = torch.nn.functional.normalize(fake.double(), dim=1)
    t = torch.nn.functional.normalize(train.double(), dim=1)
    nearest = torch.cat([(1 - chunk @ t.T).min(dim=1).values for chunk in f.split(1024)])
    return float(nearest.mean())


def mifid(fid: float, fake: torch.Tensor, train: torch.Tensor, eps: float = 0.1) -> float:
    """Memorization-informed FID: FID / d when the memorization distance d < eps, else FID.
    Copying training images drives d toward 0 and the score up."""
    d = memorization_distance(fake, train)
    return fid / max(d, 1e-15) if d < eps else fid


def _need(fake: torch.Tensor, real: torch.Tensor, n: int, what: str) -> None:
    if len(fake) < n or len(real) < n:
        raise DataError(
            f"{what} needs at least {n} images in each set, got {len(fake)} and {len(real)}"
        )
