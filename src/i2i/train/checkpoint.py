"""Checkpoints: safetensors weights plus a JSON description, written atomically.

A checkpoint is a folder::

    RUN/checkpoints/step_00001000/
        model.safetensors   every network's weights, keys prefixed by the net's name ("G.", "D.")
        model.json          what the model is: method, each net's architecture, data direction,
                            channels, normalization, step; enough to use it without its config
        trainer.safetensors optimizer tensors and RNG states (for resume; absent in exports)
        trainer.json        the rest of the trainer state: step, epoch, optimizer settings
    RUN/checkpoints/latest  the name of the newest complete checkpoint
    RUN/checkpoints/best    with --eval-every: the name of the best-scoring one (best.json: score)

Each checkpoint is written into a temporary folder and renamed into place, then ``latest`` is
replaced (write + rename): a crash at any moment leaves the previous checkpoint intact and
``latest`` pointing at a complete one. Nothing is ever unpickled.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

# torch and safetensors.torch are imported by the functions that handle tensors: finding and
# describing a checkpoint must not cost `import torch` (2-3 s), which a translation run on ONNX
# Runtime otherwise never pays.

FORMAT = "i2i-checkpoint"
VERSION = 1
LATEST = "latest"
BEST = "best"


class CheckpointError(ValueError):
    """A path holds no usable checkpoint; the message says what was expected."""


def write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def flatten_state(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Split nested state (optimizer state dicts, RNG states) into JSON and a tensor table.

    Tensors move to ``tensors`` under their dotted path and leave ``{"$tensor": key}`` behind;
    dicts with non-string keys (optimizer states are keyed by int) keep their keys' types.
    """
    import torch

    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().cpu().contiguous()
        return {"$tensor": prefix}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: flatten_state(v, f"{prefix}.{k}", tensors) for k, v in obj.items()}
        return {"$items": [[k, flatten_state(v, f"{prefix}.{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, list | tuple):
        return [flatten_state(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]
    return obj


def unflatten_state(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if "$tensor" in obj:
            return tensors[obj["$tensor"]]
        if "$items" in obj:
            return {k: unflatten_state(v, tensors) for k, v in obj["$items"]}
        return {k: unflatten_state(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [unflatten_state(v, tensors) for v in obj]
    return obj


def save_checkpoint(
    root: Path,
    name: str,
    weights: dict[str, torch.Tensor],
    description: dict[str, Any],
    trainer_state: dict[str, Any] | None = None,
    keep: int | None = None,
) -> Path:
    """Write checkpoint ``root/name`` atomically and point ``root/latest`` at it.

    ``keep`` prunes all but the newest ``keep`` step checkpoints afterwards.
    """
    from safetensors.torch import save_file

    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-{name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        weights = {k: v.detach().cpu().contiguous() for k, v in weights.items()}
        save_file(weights, str(tmp / "model.safetensors"), metadata={"format": FORMAT})
        (tmp / "model.json").write_text(json.dumps(description, indent=2))
        if trainer_state is not None:
            tensors: dict[str, torch.Tensor] = {}
            meta = flatten_state(trainer_state, "trainer", tensors)
            save_file(tensors, str(tmp / "trainer.safetensors"))
            (tmp / "trainer.json").write_text(json.dumps(meta))
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        final = root / name
        if final.exists():  # the same step saved again (e.g. after a resume): replace it
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    write_text_atomic(root / LATEST, name)
    if keep:
        best = root / BEST
        kept = {name, best.read_text().strip() if best.is_file() else ""}
        steps = sorted(p for p in root.glob("step_*") if p.is_dir())
        for old in steps[:-keep]:
            if old.name not in kept:
                shutil.rmtree(old, ignore_errors=True)
    return final


def mark_best(root: Path, name: str, score: dict[str, Any]) -> None:
    """Point ``root/best`` at checkpoint ``name`` (kept by pruning); ``best.json`` holds its
    score. The JSON is written first, so the pointer never names an unscored checkpoint."""
    write_text_atomic(root / f"{BEST}.json", json.dumps({"checkpoint": name, **score}))
    write_text_atomic(root / BEST, name)


def read_best(root: Path) -> dict[str, Any] | None:
    path = root / f"{BEST}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder from a checkpoint folder, a ``checkpoints/`` folder, a run folder
    (its latest checkpoint) or a pointer file (``RUN/checkpoints/best``); any of these as an
    fsspec URL (``s3://...``) is downloaded to the local cache first."""
    from i2i.train.storage import fetch_checkpoint, is_url

    if is_url(path):
        return fetch_checkpoint(str(path))
    path = Path(path)
    if (path / "model.json").is_file():
        return path
    if path.is_file() and path.name in (LATEST, BEST):
        ckpt = path.parent / path.read_text().strip()
        if (ckpt / "model.json").is_file():
            return ckpt
        raise CheckpointError(f"{path} names {ckpt.name}, which is missing or incomplete")
    for folder in (path, path / "checkpoints"):
        pointer = folder / LATEST
        if pointer.is_file():
            ckpt = folder / pointer.read_text().strip()
            if (ckpt / "model.json").is_file():
                return ckpt
            raise CheckpointError(f"{pointer} names {ckpt.name}, which is missing or incomplete")
    if not path.exists():
        raise CheckpointError(f"{path}: not found")
    raise CheckpointError(
        f"{path}: no checkpoint here (expected model.json + model.safetensors, "
        "or a run folder with checkpoints/latest)"
    )


def read_description(ckpt: Path) -> dict[str, Any]:
    try:
        desc = json.loads((ckpt / "model.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{ckpt / 'model.json'}: unreadable ({exc})") from exc
    if desc.get("format") != FORMAT:
        raise CheckpointError(f"{ckpt / 'model.json'}: not an i2i checkpoint description")
    if desc.get("version", 0) > VERSION:
        raise CheckpointError(
            f"{ckpt}: written by a newer i2i (format version {desc['version']}); upgrade i2i"
        )
    return desc


def load_weights(ckpt: Path, prefix: str | None = None) -> dict[str, torch.Tensor]:
    """The tensors of ``model.safetensors``; with ``prefix`` ("G"), only that net's, unprefixed."""
    from safetensors.torch import load_file

    tensors = load_file(str(ckpt / "model.safetensors"), device="cpu")
    if prefix is None:
        return tensors
    head = prefix + "."
    return {k[len(head) :]: v for k, v in tensors.items() if k.startswith(head)}


def load_trainer_state(ckpt: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    meta_file, tensor_file = ckpt / "trainer.json", ckpt / "trainer.safetensors"
    if not meta_file.is_file():
        raise CheckpointError(f"{ckpt}: holds no trainer state, so training cannot resume from it")
    tensors = load_file(str(tensor_file), device="cpu")
    return unflatten_state(json.loads(meta_file.read_text()), tensors)
