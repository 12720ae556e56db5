"""The options of ``i2i train``, derived from the config dataclasses (``i2i.config``).

Every config field declared with ``option(..., flag="name")`` becomes the flag ``--name``. A flag
sets each field of that name that the run's config has: ``--ngf`` is
``model.generator.ngf`` for pix2pix/CycleGAN/CUT and ``model.ngf`` for DCGAN; ``--norm`` sets
both networks' norm. Help texts and defaults come from the fields themselves (per model where
the models differ), so nothing is restated by hand. Imports no torch.
"""

from __future__ import annotations

import dataclasses
import types
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from i2i.config import MODEL_CONFIGS, RunConfig, has_dotted, model_config, set_dotted, to_dict
from i2i.errors import ConfigError


@dataclass(frozen=True)
class Flag:
    """``--name``: sets the config fields ``paths`` (those the run's config has)."""

    name: str  # python identifier, e.g. "load_size" for --load-size
    paths: tuple[str, ...]
    kind: type  # int, float, str, bool or list (comma-separated on the command line)
    help: str
    choices: tuple[str, ...] = ()

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    def parse(self, value: Any) -> Any:
        """The config value of a command-line ``value``; ConfigError naming the flag."""
        if self.kind is list and isinstance(value, str):
            return [v.strip() for v in value.split(",")]
        if self.choices and value not in self.choices:
            raise ConfigError(f"{self.option} {value!r}: use {', '.join(self.choices)}")
        return value


def _base_type(tp: Any) -> tuple[type, tuple[str, ...]]:
    """(int | float | str | bool | list, Literal choices) of a field's annotation."""
    if get_origin(tp) in (Union, types.UnionType):
        tp = next(a for a in get_args(tp) if a is not type(None))
    if get_origin(tp) is Literal:
        return str, tuple(str(a) for a in get_args(tp))
    if get_origin(tp) is list:
        return list, ()
    return tp, ()


def _collect(cls: type, prefix: str, found: dict[str, list[Any]]) -> None:
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            _collect(tp, f"{prefix}{f.name}.", found)  # type: ignore[arg-type]
        elif f.metadata.get("flag"):
            found.setdefault(f.metadata["flag"], []).append((f"{prefix}{f.name}", tp, f))


def _defaults(paths: tuple[str, ...]) -> str:
    """The defaults of ``paths`` as help text: one value, or one per model where they differ
    (and the models a flag applies to)."""
    run = to_dict(RunConfig())
    if not paths[0].startswith("model."):
        return _show(_get(run, paths[0]))
    by_value: dict[str, list[str]] = {}
    for kind in MODEL_CONFIGS:
        data = {"model": to_dict(model_config(kind))}
        for path in paths:
            if has_dotted(data, path):
                by_value.setdefault(_show(_get(data, path)), []).append(kind)
                break
    if len(by_value) == 1 and sum(map(len, by_value.values())) == len(MODEL_CONFIGS):
        return next(iter(by_value))
    return "; ".join(f"{', '.join(kinds)}: {value}" for value, kinds in by_value.items())


def _get(data: dict[str, Any], path: str) -> Any:
    for key in path.split("."):
        data = data[key]
    return data


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, list):
        return ",".join(map(str, value))
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def train_flags() -> list[Flag]:
    """Every flag of ``i2i train`` that sets a config field, in declaration order."""
    found: dict[str, list[Any]] = {}
    for section in ("data", "train"):
        _collect(get_type_hints(RunConfig)[section], f"{section}.", found)
    for cls in dict.fromkeys(MODEL_CONFIGS.values()):
        _collect(cls, "model.", found)
    flags = []
    for name, fields in found.items():
        paths = tuple(dict.fromkeys(path for path, _, _ in fields))
        kind, choices = _base_type(fields[0][1])
        text = fields[0][2].metadata["help"].rstrip(".")
        if choices:
            text += f" ({' | '.join(choices)})"
        default = _defaults(paths)
        text += f" (default: {default})." if default else "."
        flags.append(Flag(name, paths, kind, text, choices))
    return flags


TRAIN_FLAGS = train_flags()


def apply_flags(data: dict[str, Any], values: dict[str, Any]) -> None:
    """Set each given flag's fields in ``data`` (a run config as a dict); a flag with no field
    in this model's config is a ConfigError that says which models have it."""
    by_name = {f.name: f for f in TRAIN_FLAGS}
    for name, value in values.items():
        if value is None:
            continue
        flag = by_name[name]
        paths = [p for p in flag.paths if has_dotted(data, p)]
        if not paths:
            kind = data["model"].get("kind", "pix2pix")
            owners = [
                k for k in MODEL_CONFIGS
                if any(has_dotted({"model": to_dict(model_config(k))}, p) for p in flag.paths)
            ]  # fmt: skip
            raise ConfigError(
                f"{flag.option} does not apply to {kind}; it is an option of {', '.join(owners)}"
            )
        for path in paths:
            set_dotted(data, path, flag.parse(value))
