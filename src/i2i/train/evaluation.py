"""Evaluation during training (``--eval-every N --eval-metric NAME``): score the model on the
val split's pairs (for colorization, the val images), so the loop can log the score and keep
the best checkpoint. A run trained on crops with instance norm is scored in tiles, as it
translates best (``i2i.infer.tiles.as_trained``)."""

from __future__ import annotations

import logging

import torch

from i2i.config import RunConfig
from i2i.data.build import scored_pairs
from i2i.errors import ConfigError
from i2i.infer.tiles import as_trained
from i2i.infer.translator import Translator
from i2i.metrics.evaluate import score_translations
from i2i.metrics.features import FeatureExtractor, build_extractor
from i2i.metrics.names import DESCRIPTIVE, DISTRIBUTION, check_metrics
from i2i.metrics.paired import LPIPS
from i2i.metrics.scorer import Scorer
from i2i.models import Model, data_kind
from i2i.nets import Generator

log = logging.getLogger("i2i")


class TrainingEvaluator:
    def __init__(self, cfg: RunConfig, device: torch.device) -> None:
        (self.metric,) = check_metrics([cfg.train.eval_metric], "train.eval_metric")
        if cfg.model.kind == "dcgan":
            raise ConfigError(
                "--eval-every scores translations against the val split; for DCGAN, score "
                "checkpoints with `i2i evaluate` instead"
            )
        val, kind = cfg.data.val_split, data_kind(cfg.model.kind)
        dataset = scored_pairs(cfg.data, val, kind)
        if dataset is None and kind == "images":
            raise ConfigError(f"--eval-every needs a '{val}' folder of images in {cfg.data.root}")
        if dataset is None:
            raise ConfigError(
                f"--eval-every needs a '{val}' split with pairs in {cfg.data.root} ({val}/ or "
                f"{val}A/ + {val}B/ with matching file names)"
            )
        self.cfg = cfg
        self.device = device
        self.dataset = dataset
        self.count = min(cfg.train.eval_limit or len(self.dataset), len(self.dataset))
        if self.metric == "mifid":
            raise ConfigError("--eval-metric mifid needs the training images; pick another")
        if self.metric in DESCRIPTIVE:
            raise ConfigError(
                f"--eval-metric {self.metric} describes outputs rather than scoring them; "
                "pick a metric that compares them with the targets, such as psnr or ssim"
            )
        # networks the metric needs are loaded once, and fail before training starts
        self.extractor: FeatureExtractor | None = None
        if self.metric in DISTRIBUTION:
            self.extractor = build_extractor("inception", device=device)
        self.lpips = LPIPS(device) if self.metric == "lpips" else None
        self.said_tiling = False

    def __call__(self, model: Model) -> float:
        direction = self.cfg.data.direction
        net_name = model.translate_nets(direction)[direction]
        net = model.get_submodule(net_name)
        assert isinstance(net, Generator)
        translator = Translator(net, self.device, self.cfg.data.input_nc)
        data = self.cfg.data
        # scored as it will translate: in tiles of the crop size if trained on crops with
        # instance norm (the same tiling `i2i train` prints and `i2i evaluate` advises)
        tiling = as_trained(data.preprocess, data.crop_size, translator.image_statistics)
        if tiling is not None and not self.said_tiling:
            log.info(
                "--eval-every scores val in %d px tiles, each on its own statistics, as the "
                "model was trained on %d px crops (i2i evaluate --tile %d --tile-stats tile)",
                tiling.tile, tiling.tile, tiling.tile,
            )  # fmt: skip
            self.said_tiling = True
        scorer = Scorer([self.metric], self.extractor, self.lpips)
        score_translations(
            translator, self.dataset, scorer, data.crop_size, self.count, tiling=tiling
        )
        net.train()  # the translator switched the generator to eval mode
        return scorer.compute()[self.metric]
