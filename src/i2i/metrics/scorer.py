"""``Scorer``: feed it generated and real images batch by batch, then ask for the metrics.

Paired metrics (``l1 rmse psnr ssim pixel_acc lpips``) need each output next to its ground truth;
distribution metrics (``fid kid is precision recall mifid``) compare the two sets through one
feature extractor, whose features are computed once per image and shared by all of them.
``colorfulness`` describes the outputs (and, as ``colorfulness_real``, the real images).
Images are 8-bit tensors, Nx{1,3}xHxW.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from i2i.errors import ConfigError
from i2i.metrics import distribution as dist
from i2i.metrics import paired
from i2i.metrics.colorfulness import colorfulness
from i2i.metrics.features import FeatureExtractor, Features, resize_for_features
from i2i.metrics.names import DISTRIBUTION, PAIRED, check_metrics
from i2i.metrics.palette import Palette, PaletteIoU


class Scorer:
    def __init__(
        self,
        metrics: Sequence[str],
        extractor: FeatureExtractor | None = None,
        lpips: paired.LPIPS | None = None,
        pixel_threshold: float = 5.0,
        mifid_eps: float = 0.1,
        kid_subset_size: int = 1000,
        palette: Palette | None = None,
    ) -> None:
        self.metrics = check_metrics(metrics)
        if "miou" in self.metrics and palette is None:
            raise ConfigError("miou needs a palette of the targets' colours: --palette FILE")
        self.palette_iou = PaletteIoU(palette) if palette and "miou" in self.metrics else None
        wants_features = any(m in DISTRIBUTION for m in self.metrics)
        if wants_features and extractor is None:
            raise ValueError("distribution metrics need a feature extractor")
        if "lpips" in self.metrics and lpips is None:
            raise ValueError("lpips needs an LPIPS network")
        self.extractor = extractor if wants_features else None
        self.lpips = lpips
        self.pixel_threshold = pixel_threshold
        self.mifid_eps = mifid_eps
        self.kid_subset_size = kid_subset_size
        self.per_image: dict[str, list[torch.Tensor]] = {
            m: [] for m in self.metrics if m in PAIRED and m != "miou"
        }
        # colourfulness of each output and each real image, when asked for
        self.colorful: dict[str, list[torch.Tensor]] | None = None
        if "colorfulness" in self.metrics:
            self.colorful = {"colorfulness": [], "colorfulness_real": []}
        self.fake: list[torch.Tensor] = []
        self.fake_logits: list[torch.Tensor] = []
        self.real: list[torch.Tensor] = []
        self.train: list[torch.Tensor] = []
        self.count = 0

    def add_pairs(self, fake: torch.Tensor, real: torch.Tensor) -> None:
        """Outputs with their ground truth, the same size."""
        if fake.shape != real.shape:
            raise ValueError(f"output {tuple(fake.shape)} and target {tuple(real.shape)} differ")
        for name, values in self.per_image.items():
            values.append(self._paired(name, fake, real).cpu())
        if self.palette_iou is not None:
            self.palette_iou.add(fake, real)
        self.add_fakes(fake)
        self.add_reals(real)

    def add_fakes(self, fake: torch.Tensor) -> None:
        self.count += len(fake)
        if self.colorful is not None:
            self.colorful["colorfulness"].append(colorfulness(fake).cpu())
        if self.extractor is not None:
            feats = self._features(fake)
            self.fake.append(feats.embedding)
            if feats.logits is not None:
                self.fake_logits.append(feats.logits)

    def add_reals(self, real: torch.Tensor) -> None:
        if self.colorful is not None:
            self.colorful["colorfulness_real"].append(colorfulness(real).cpu())
        if self.extractor is not None:
            self.real.append(self._features(real).embedding)

    def add_train(self, images: torch.Tensor) -> None:
        """Training images, the reference of MiFID's memorization term."""
        if "mifid" in self.metrics:
            self.train.append(self._features(images).embedding)

    def compute(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for name, values in self.per_image.items():
            if not values:
                raise ValueError(f"{name} needs output/target pairs, and none were given")
            out[name] = float(torch.cat(values).double().mean())
        for name, values in (self.colorful or {}).items():
            if values:
                out[name] = float(torch.cat(values).mean())
        if self.palette_iou is not None:
            out.update(self.palette_iou.compute())
        if self.extractor is None:
            return out
        wants = set(self.metrics)
        if not self.fake or (not self.real and wants & set(DISTRIBUTION) - {"is"}):
            raise ValueError("distribution metrics need generated and real images")
        fake = torch.cat(self.fake)
        real = torch.cat(self.real) if self.real else fake[:0]
        if wants & {"fid", "mifid"}:
            fid = dist.frechet_distance(fake, real)
            if "fid" in wants:
                out["fid"] = fid
            if "mifid" in wants:
                if not self.train:
                    raise ValueError("mifid needs the training images (--train-data)")
                out["mifid"] = dist.mifid(fid, fake, torch.cat(self.train), self.mifid_eps)
        if "kid" in wants:
            out["kid"], out["kid_std"] = dist.kernel_distance(fake, real, self.kid_subset_size)
        if "is" in wants:
            if not self.fake_logits:
                raise ValueError(
                    f"is needs class logits, which the {self.extractor.name} extractor lacks"
                )
            out["is"], out["is_std"] = dist.inception_score(torch.cat(self.fake_logits))
        if wants & {"precision", "recall"}:
            p, r = dist.precision_recall(fake, real)
            out.update({k: v for k, v in (("precision", p), ("recall", r)) if k in wants})
        return out

    def _paired(self, name: str, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        if name == "pixel_acc":
            return paired.pixel_accuracy(fake, real, self.pixel_threshold)
        if name == "lpips":
            return self.lpips(fake, real)  # type: ignore[misc]
        fn = {"l1": paired.l1, "rmse": paired.rmse, "psnr": paired.psnr, "ssim": paired.ssim}
        return fn[name](fake, real)

    def _features(self, images: torch.Tensor) -> Features:
        assert self.extractor is not None
        return self.extractor(resize_for_features(images, self.extractor.input_size))
