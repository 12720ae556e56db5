"""Checkpoints: safetensors weights plus a model card, written atomically.

A checkpoint is a folder::

    RUN/checkpoints/step_00001000/
        model.safetensors   every network's weights, keys prefixed by the net's name ("G.", "D.")
        model.json          the model card (i2i.runs.card): method, each net's architecture,
                            data direction, channels, normalization, step; enough to use the
                            model without its config
        trainer.safetensors optimizer tensors and RNG states (for resume; absent in exports)
        trainer.json        the rest of the trainer state: step, epoch, optimizer settings
    RUN/checkpoints/latest  the name of the newest complete checkpoint
    RUN/checkpoints/best    with --eval-every: the name of the best-scoring one (best.json: score)

Each checkpoint is written into a temporary folder and renamed into place, then ``latest`` is
replaced (write + rename): a crash at any moment leaves the previous checkpoint intact and
``latest`` pointing at a complete one. Nothing is ever unpickled.

Loading a network checks its card against the weights file's header (names and shapes) on
PyTorch's ``meta`` device before anything is allocated, and refuses non-finite weights: an
edited or damaged checkpoint is one ``CheckpointError``, not gigabytes or black images.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from i2i.errors import CheckpointError
from i2i.files import remove_stale_temps, write_text_atomic
from i2i.runs.card import ModelCard
from i2i.runs.layout import BEST, CARD, LATEST, TRAINER_JSON, TRAINER_TENSORS, WEIGHTS
from i2i.runs.storage import fetch_checkpoint, is_url

if TYPE_CHECKING:
    import torch
    from torch import nn

# torch and safetensors.torch are imported by the functions that handle tensors: finding and
# describing a checkpoint must not cost `import torch` (2-3 s), which a translation run on ONNX
# Runtime otherwise never pays.


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
    card: ModelCard,
    trainer_state: dict[str, Any] | None = None,
    keep: int | None = None,
) -> Path:
    """Write checkpoint ``root/name`` atomically and point ``root/latest`` at it.

    ``keep`` prunes all but the newest ``keep`` step checkpoints afterwards (the best one is
    kept too).
    """
    from safetensors.torch import save_file

    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-{name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        weights = {k: v.detach().cpu().contiguous() for k, v in weights.items()}
        save_file(weights, str(tmp / WEIGHTS), metadata={"format": "i2i-checkpoint"})
        (tmp / CARD).write_text(card.dumps())
        if trainer_state is not None:
            tensors: dict[str, torch.Tensor] = {}
            meta = flatten_state(trainer_state, "trainer", tensors)
            save_file(tensors, str(tmp / TRAINER_TENSORS))
            (tmp / TRAINER_JSON).write_text(json.dumps(meta))
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


def remove_partial_checkpoints(root: Path) -> int:
    """Remove what killed checkpoint writes left in ``root`` (``.tmp-*`` folders, temporary
    pointer files); returns how many. Call it only where no other process writes there."""
    partial = [p for p in root.glob(".tmp-*") if p.is_dir()]
    for folder in partial:
        shutil.rmtree(folder, ignore_errors=True)
    return len(partial) + remove_stale_temps(root)


def mark_best(root: Path, name: str, score: dict[str, Any]) -> None:
    """Point ``root/best`` at checkpoint ``name`` (kept by pruning); ``best.json`` holds its
    score. The JSON is written first, so the pointer never names an unscored checkpoint."""
    write_text_atomic(root / f"{BEST}.json", json.dumps({"checkpoint": name, **score}))
    write_text_atomic(root / BEST, name)


def read_best(root: Path) -> dict[str, Any] | None:
    path = root / f"{BEST}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def latest_name(root: Path) -> str | None:
    """The checkpoint ``root/latest`` names, or None before the first one."""
    pointer = root / LATEST
    return pointer.read_text().strip() if pointer.is_file() else None


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder from a checkpoint folder, a ``checkpoints/`` folder, a run folder
    (its latest checkpoint) or a pointer file (``RUN/checkpoints/best``); any of these as an
    fsspec URL (``s3://...``) is downloaded to the local cache first."""
    if is_url(path):
        return fetch_checkpoint(str(path))
    path = Path(path)
    if (path / CARD).is_file():
        return path
    if path.is_file() and path.name in (LATEST, BEST):
        ckpt = path.parent / path.read_text().strip()
        if (ckpt / CARD).is_file():
            return ckpt
        raise CheckpointError(f"{path} names {ckpt.name}, which is missing or incomplete")
    for folder in (path, path / "checkpoints"):
        pointer = folder / LATEST
        if pointer.is_file():
            ckpt = folder / pointer.read_text().strip()
            if (ckpt / CARD).is_file():
                return ckpt
            raise CheckpointError(f"{pointer} names {ckpt.name}, which is missing or incomplete")
    if not path.exists():
        raise CheckpointError(f"{path}: not found")
    raise CheckpointError(
        f"{path}: no checkpoint here (expected model.json + model.safetensors, "
        "or a run folder with checkpoints/latest)"
    )


def read_card(ckpt: Path) -> ModelCard:
    """The model card of checkpoint folder ``ckpt``."""
    return ModelCard.read(ckpt / CARD)


def resolve_sampler(path: str | Path) -> tuple[Path, ModelCard]:
    """The checkpoint folder and card of an unconditional model (DCGAN: it samples images from
    noise), found as :func:`resolve_checkpoint` finds one. CheckpointError for a model that
    translates images. Reads JSON only (no torch), so a wrong model is refused at once."""
    ckpt = resolve_checkpoint(path)
    card = read_card(ckpt)
    if card.sample is None:
        raise CheckpointError(
            f"{ckpt}: a {card.model} model translates images; use `i2i translate`"
        )
    return ckpt, card


def weight_shapes(ckpt: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """Each tensor's shape and safetensors dtype ("F32", "I64", ...) in
    ``ckpt/model.safetensors``, from the file's header alone (no tensor is read).
    CheckpointError for a missing, truncated or foreign file."""
    from safetensors import SafetensorError, safe_open

    path = ckpt / WEIGHTS
    try:
        with safe_open(str(path), "np") as f:
            return {
                k: (tuple(f.get_slice(k).get_shape()), f.get_slice(k).get_dtype())
                for k in f.keys()  # noqa: SIM118
            }
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing; a checkpoint needs its weights") from None
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None


def load_weights(ckpt: Path, prefix: str | None = None) -> dict[str, torch.Tensor]:
    """The tensors of ``model.safetensors``; with ``prefix`` ("G"), only that net's, unprefixed."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(ckpt / WEIGHTS), device="cpu")
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(
            f"{ckpt / WEIGHTS}: not a readable safetensors file ({exc})"
        ) from None
    if prefix is None:
        return tensors
    head = prefix + "."
    return {k[len(head) :]: v for k, v in tensors.items() if k.startswith(head)}


def check_card_matches_weights(ckpt: Path, card: ModelCard, net_name: str) -> None:
    """Refuse a card whose network ``net_name`` would not hold the weights file's tensors:
    the network is built on PyTorch's ``meta`` device (no memory) and its parameter names and
    shapes compared with the safetensors header. One CheckpointError naming the first
    difference."""
    import torch

    with torch.device("meta"):
        expected = card.nets[net_name].build().state_dict()
    stored = {
        k[len(net_name) + 1 :]: shape_dtype
        for k, shape_dtype in weight_shapes(ckpt).items()
        if k.startswith(net_name + ".")
    }
    where = f"{ckpt}: {CARD} and {WEIGHTS} disagree"
    missing = sorted(set(expected) - set(stored))
    if missing:
        raise CheckpointError(
            f"{where}: the card's {net_name} needs {net_name}.{missing[0]}, which the weights "
            f"lack ({len(missing)} missing); the checkpoint is inconsistent"
        )
    extra = sorted(set(stored) - set(expected))
    if extra:
        raise CheckpointError(
            f"{where}: the weights hold {net_name}.{extra[0]}, which the card's {net_name} "
            f"does not have ({len(extra)} extra); the checkpoint is inconsistent"
        )
    for key, tensor in expected.items():
        shape, dtype = stored[key]
        if tuple(tensor.shape) != shape:
            raise CheckpointError(
                f"{where}: {net_name}.{key} is {list(shape)} in the weights, but the "
                f"card's architecture ({_describe(card, net_name)}) needs "
                f"{list(tensor.shape)}; the checkpoint is inconsistent"
            )
        if tensor.is_floating_point() != dtype.startswith(("F", "BF")):
            raise CheckpointError(
                f"{where}: {net_name}.{key} is stored as {dtype}, but the network holds "
                f"{str(tensor.dtype).removeprefix('torch.')} there; the checkpoint is inconsistent"
            )


def _describe(card: ModelCard, net_name: str) -> str:
    spec = card.nets[net_name]
    fields = ", ".join(f"{k}={v}" for k, v in vars(spec.config).items())
    return f"{fields}, in_channels={spec.in_channels}"


def check_finite(weights: dict[str, torch.Tensor], where: str, saved_from: str) -> None:
    """CheckpointError when a floating-point tensor of ``weights`` holds NaN or infinite values
    (``where`` prefixes the key in the message)."""
    import torch

    for key, tensor in weights.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(
                f"{where}{key} holds NaN or infinite values (saved from {saved_from}?); use an "
                "earlier checkpoint"
            )


def load_network(ckpt: Path, card: ModelCard, net_name: str) -> nn.Module:
    """Network ``net_name`` of checkpoint ``ckpt``, weights loaded, on the CPU, in eval mode.

    The card is checked against the weights before anything is allocated; the weights are
    adopted as they are read (no second copy) and must be finite. CheckpointError otherwise."""
    import torch

    if net_name not in card.nets:
        raise CheckpointError(f"{ckpt / CARD}: no network {net_name!r}")
    check_card_matches_weights(ckpt, card, net_name)
    weights = load_weights(ckpt, net_name)
    check_finite(weights, f"{ckpt / WEIGHTS}: {net_name}.", "a diverged run")
    for key, tensor in weights.items():
        if tensor.is_floating_point():
            weights[key] = tensor.float()  # the networks compute in float32
    with torch.device("meta"):
        net = card.nets[net_name].build()
    net.load_state_dict(weights, strict=True, assign=True)
    return net.eval()


def load_trainer_state(ckpt: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    meta_file, tensor_file = ckpt / TRAINER_JSON, ckpt / TRAINER_TENSORS
    if not meta_file.is_file():
        raise CheckpointError(f"{ckpt}: holds no trainer state, so training cannot resume from it")
    tensors = load_file(str(tensor_file), device="cpu")
    check_finite(tensors, f"{tensor_file}: ", "a diverged run")  # optimizer moments, ...
    return unflatten_state(json.loads(meta_file.read_text()), tensors)
