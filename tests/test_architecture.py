"""The package's structure holds: imports point down the layers without circles, registries
agree with the config's choices, and checkpoints written before the model layer existed still
load, translate, sample and resume."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import shutil
import sys
from pathlib import Path
from typing import get_args

import numpy as np
import pytest
import torch
from PIL import Image

import i2i
from i2i.config import (
    MODEL_CONFIGS,
    NET_CONFIGS,
    DiscriminatorKind,
    GeneratorConfig,
    GeneratorKind,
)
from i2i.infer.sample import load_generator
from i2i.models import MODELS, data_kind
from i2i.nets import DISCRIMINATORS, GENERATORS, HEADS
from i2i.nets.registry import ROLES
from i2i.runs.card import ModelCard
from i2i.runs.checkpoint import read_card
from i2i.train.loop import train
from i2i.train.options import resume_config

ROOT = Path(__file__).parent.parent
V1 = Path(__file__).parent / "fixtures" / "v1"  # written by i2i 0.1.0 before the model layer

spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts/import_graph.py")
assert spec and spec.loader
import_graph = importlib.util.module_from_spec(spec)
sys.modules["import_graph"] = import_graph
spec.loader.exec_module(import_graph)

# bottom to top; a module may import from its own layer and the ones below it
LAYERS = [
    {"i2i.errors", "i2i.version", "i2i.files"},
    {"i2i.config", "i2i.registry"},
    {
        "i2i.flags",
        "i2i.device",
        "i2i.parallel",
        "i2i.kernels",
        "i2i.losses",
        "i2i.data",
        "i2i.nets",
        "i2i.download",
    },
    {"i2i.runs"},
    {"i2i.models"},
    {"i2i.infer"},
    {"i2i.metrics"},
    {"i2i.train"},
    {"i2i.serve", "i2i.experiment", "i2i.demo"},
    {"i2i.cli"},
    {"i2i", "i2i.__main__"},
]


def rank(module: str) -> int:
    layer = import_graph.layer(module)
    return next(i for i, names in enumerate(LAYERS) if layer in names)


def test_imports_point_down_the_layers_without_circles():
    edges = import_graph.imports(ROOT / "src" / "i2i")
    assert len(edges) > 100
    upward = [(e.source, e.target) for e in edges if rank(e.source) < rank(e.target)]
    assert upward == []
    assert import_graph.cycles(edges) == []
    for e in edges:  # inference, serving, metrics and the model layer never need training
        if import_graph.layer(e.source) in ("i2i.infer", "i2i.serve", "i2i.metrics", "i2i.runs"):
            assert not e.target.startswith("i2i.train"), e


def test_the_graph_script_finds_a_circle(tmp_path):
    """The check above can fail: two modules importing each other, one lazily, are a cycle."""
    pkg = tmp_path / "i2i"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from i2i.b import x\n")
    (pkg / "b.py").write_text("x = 1\ndef f():\n    from i2i import a\n")
    assert import_graph.cycles(import_graph.imports(pkg)) == [["i2i.a", "i2i.b"]]


def test_registries_agree_with_the_config_choices():
    image_generators = {n for n, _ in GENERATORS.items() if n in get_args(GeneratorKind)}
    assert image_generators == set(get_args(GeneratorKind))
    for role, classes in NET_CONFIGS.items():  # every network kind a card may name is built
        kinds = {k for cls in classes for k in get_args(cls.__annotations__["kind"])}
        assert kinds <= set(ROLES[role]), (role, kinds)
    assert set(get_args(DiscriminatorKind)) <= set(DISCRIMINATORS)
    assert set(HEADS) == {"patch_mlp"}
    assert set(MODELS) == set(MODEL_CONFIGS)
    for kind, cls in MODEL_CONFIGS.items():
        assert data_kind(kind) in ("paired", "unpaired", "images")
        model_cls = MODELS.get(kind)
        assert model_cls.__init__.__annotations__["cfg"] == cls.__name__, kind


def test_an_unknown_kind_names_the_choices():
    with pytest.raises(ValueError, match="unknown generator 'unet_512'; choose from"):
        GENERATORS.get("unet_512")
    with pytest.raises(ValueError, match="unknown model 'stargan'"):
        MODELS.get("stargan")


def test_the_version_is_the_installed_package_version():
    assert i2i.__version__ == importlib.metadata.version("i2i")


@pytest.mark.parametrize(
    ("name", "direction", "key"),
    [("pix2pix", None, "pix2pix"), ("cyclegan", None, "cyclegan_AtoB"),
     ("cyclegan", "BtoA", "cyclegan_BtoA"), ("cut", None, "cut")],
)  # fmt: skip
def test_checkpoints_of_the_first_format_translate_as_before(name, direction, key):
    x = torch.from_numpy(np.load(V1 / "input.npy"))
    expected = torch.from_numpy(np.load(V1 / "outputs.npz")[key])
    model = i2i.load(V1 / name, device="cpu", direction=direction)
    torch.testing.assert_close(model.translate_tensor(x), expected, atol=1e-5, rtol=1e-5)


def test_dcgan_checkpoints_of_the_first_format_sample_as_before():
    z = torch.randn(3, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        got = load_generator(V1 / "dcgan", "cpu")(z)
    expected = torch.from_numpy(np.load(V1 / "outputs.npz")["dcgan"])
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["pix2pix", "cyclegan", "cut", "dcgan"])
def test_first_format_cards_read_typed_and_write_back(name, tmp_path):
    """Reading, writing and reading again gives the same card; what the old file said stays
    (the rewritten one may add each network's kind)."""
    old = json.loads((V1 / name / "model.json").read_text())
    card = read_card(V1 / name)
    assert card.model == old["model"] and card.step == old["step"] == 2
    assert set(card.nets) == set(old["nets"])
    again = card.to_json()
    assert ModelCard.from_json(again) == card
    for net, spec in old["nets"].items():
        assert again["nets"][net]["config"].items() >= spec["config"].items()
    assert again.get("translate") == old.get("translate")


def test_a_run_of_the_first_format_resumes(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(V1 / "dcgan_run", run)
    images = tmp_path / "imgs"  # the run's data, in a new place
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 255, (28, 28), dtype=np.uint8)).save(images / f"{i}.png")
    cfg = resume_config(str(run), {"data": str(images), "max_steps": 4}, [])
    result = train(cfg, resume=True, progress=False)
    assert (result.start_step, result.step) == (2, 4)
    assert read_card(result.checkpoint).nets["G"].config.kind == "dcgan"


def test_generator_specs_build_through_the_registry():
    card = read_card(V1 / "pix2pix")
    net = card.nets["G"].build()
    assert isinstance(card.nets["G"].config, GeneratorConfig)
    assert type(net).__name__ == "UNetGenerator" and net.size_multiple == 32
