"""A run's config from the parts of an ``i2i train`` command line.

A new run: defaults <- ``--config`` YAML <- ``--model`` (that model's defaults) <- flags <-
``--set`` overrides. A resumed run: its own ``config.yaml`` <- the options a resume may change:
how long and how it trains (``train.*``), how data is loaded (``data.num_workers``,
``data.cache``) and where the same data now lives (``data.root``, ``data.domain_a`` and
``data.domain_b``).
"""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from i2i.config import RunConfig, from_dict, load_yaml, model_config, set_dotted, to_dict
from i2i.errors import ConfigError
from i2i.flags import apply_flags
from i2i.runs.layout import CONFIG
from i2i.runs.storage import RunMirror, is_url

# what --resume may change besides train.*: the same data, loaded differently or moved
RESUMABLE_DATA = (
    "data.num_workers", "data.cache", "data.root", "data.domain_a", "data.domain_b",
)  # fmt: skip


def parse_set(item: str) -> tuple[str, Any]:
    """``--set train.lr=1e-4`` -> ("train.lr", 0.0001); values are YAML."""
    key, eq, raw = item.partition("=")
    if not eq:
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. train.lr=1e-4")
    try:
        return key.strip(), yaml.safe_load(raw)
    except yaml.YAMLError:
        raise ConfigError(f"--set {item!r}: the value is not valid YAML") from None


def new_config(
    config_file: Path | None,
    model: str | None,
    flags: dict[str, Any],
    sets: list[str],
) -> RunConfig:
    """Defaults <- YAML file <- ``model``'s defaults <- flags <- ``--set`` overrides."""
    data = to_dict(RunConfig())
    if config_file is not None:
        data = to_dict(from_dict(RunConfig, load_yaml(config_file) or {}))
    if model is not None and model != data["model"]["kind"]:
        data["model"] = to_dict(model_config(model))  # that model's own defaults
    apply_flags(data, flags)
    for item in sets:
        set_dotted(data, *parse_set(item))
    return from_dict(RunConfig, data)


def load_run_config(run_dir: str | Path) -> RunConfig:
    """A run's config.yaml (a run at a URL is fetched into the local cache first)."""
    if is_url(run_dir):
        mirror = RunMirror(str(run_dir))
        mirror.pull_for_resume()
        run_dir = mirror.local
    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise ConfigError(f"{run_dir}: not a run folder (no {CONFIG})")
    data = load_yaml(path)
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{path}: empty or damaged (expected the run's options)")
    return from_dict(RunConfig, data)


def resume_config(run: str, flags: dict[str, Any], sets: list[str]) -> RunConfig:
    """``run``'s own config with the options a resume may change; the others are refused.

    A run capped by ``max_steps`` and resumed with a longer schedule (``--epochs`` or
    ``--epochs-decay``, no ``--max-steps``) trains to the end of that schedule. A dataset
    that is not where config.yaml says (moved, or a relative path from another folder) is
    one error that says how to point the run at it (``--data``)."""
    data = to_dict(load_run_config(run))
    changed = copy.deepcopy(data)
    apply_flags(changed, flags)
    for item in sets:
        set_dotted(changed, *parse_set(item))
    longer = any(flags.get(k) is not None for k in ("epochs", "epochs_decay"))
    if longer and flags.get("max_steps") is None and not any("max_steps" in s for s in sets):
        changed["train"]["max_steps"] = None  # the new schedule is the limit now
    before, after = dotted(data), dotted(changed)
    fixed = [
        key
        for key, value in after.items()
        if value != before[key] and not key.startswith("train.") and key not in RESUMABLE_DATA
    ]
    if fixed:
        raise ConfigError(
            f"--resume continues {run} with its own config.yaml; only training-length and "
            f"logging options (train.*) can change, and the data's place, not {fixed}"
        )
    changed["train"]["out"] = run
    for key, flag in (("root", "--data"), ("domain_a", "--domain-a"), ("domain_b", "--domain-b")):
        path = changed["data"][key]
        if path and not is_url(path) and not Path(path).exists():
            how = (
                "a path relative to the folder training started in; "
                if not Path(path).is_absolute()
                else ""
            )
            raise ConfigError(
                f"data.{key} {path!r} (recorded in {Path(run) / CONFIG}) is not found from "
                f"{Path.cwd()} ({how}the data may have moved); resume with {flag} PATH to "
                "point the run at the same data"
            )
    return from_dict(RunConfig, changed)


def absolute_root(cfg: RunConfig) -> RunConfig:
    """``cfg`` with its local data paths (``data.root``, and ``data.domain_a``/``domain_b``)
    made absolute, so that the run resumes from any working directory."""

    def absolute(path: str | None) -> str | None:
        if not path or is_url(path) or Path(path).is_absolute():
            return path
        return str(Path(path).expanduser().resolve())

    data = cfg.data
    paths = dict(root=absolute(data.root) or "", domain_a=absolute(data.domain_a),
                 domain_b=absolute(data.domain_b))  # fmt: skip
    return replace(cfg, data=replace(data, **paths))  # type: ignore[arg-type]


def dotted(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 1}}`` -> ``{"train.lr": 1}``."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(dotted(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
