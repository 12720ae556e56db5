"""Translating many files: ``i2i translate`` and ``translate_files``.

Inputs are files, folders (the images directly inside), glob patterns and fsspec URLs of files
or folders (``s3://bucket/tiles/``). Outputs go to a folder, a URL or a ``.zip``, one per input,
named by the input's stem. One process or many: under torchrun (``i2i translate --devices N``,
or ``torchrun --nnodes ... -m i2i translate ...`` across machines) input ``i`` of the sorted
list goes to process ``i % world``, and every process writes into the same destination the
names a single process would write.

A run can be repeated: an output that exists is complete (each is written whole or not at all)
and is skipped, so a killed run restarted with the same command translates only what is
missing (``overwrite`` redoes everything). ``_manifest.jsonl`` in the destination records every
input, bad ones included: output name, status (written, skipped, failed), sizes, error. Each
record goes on file just before its output is moved into place, so no output a killed run left
lacks one. A bad input never stops the others; they are written, and the bad ones reported at
the end.
"""

from __future__ import annotations

import glob
import json
import math
from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np
from tqdm import tqdm

from i2i.data.images import (
    IMAGE_EXTENSIONS,
    Picture,
    array_to_pil,
    crop,
    decode_bytes,
    list_images,
    open_image,
    picture_size,
    pil_to_array,
)
from i2i.errors import BadImageError, ConfigError, DataError, InputNotFound
from i2i.files import TEMP_SUFFIX
from i2i.infer.resize import Resize
from i2i.infer.tiles import Tiling, translate_tiled
from i2i.infer.writers import ImageWriter, encode
from i2i.parallel import Processes
from i2i.runs.storage import is_url, url_fs

if TYPE_CHECKING:
    from i2i.infer.translator import Translator

Half = Literal["left", "right"]
T = TypeVar("T")
MANIFEST = "_manifest.jsonl"
# the pixel budget of one image translated in tiles: 1 GP, 3 GiB as 8-bit RGB (--max-pixels)
TILED_MAX_PIXELS = 2**30
GLOB_CHARS = "*?["
# one input's output on its way to the destination: pixels, a written temporary file, or none
Output = np.ndarray | Path | None


@dataclass(frozen=True)
class Source:
    """One input: where it is (a path or a URL) and the stem its output is named by."""

    location: str
    stem: str

    @property
    def suffix(self) -> str:
        return Path(self.location).suffix.lower()


@dataclass
class Record:
    """A manifest line: what became of one input."""

    input: str
    output: str
    status: Literal["written", "skipped", "failed"]
    width: int | None = None  # of the input, px
    height: int | None = None
    bytes: int | None = None  # of the output
    error: str | None = None


class Translated(list[str]):
    """The names this process wrote, plus how many inputs all processes skipped (outputs
    already there), what this process failed on (with the reason), how many inputs of all
    processes looked like side-by-side A|B pairs translated whole, and (process 0) the
    manifest's counts per status over all processes and runs."""

    def __init__(self) -> None:
        super().__init__()
        self.skipped = 0
        self.failed: list[Record] = []
        self.pair_like = 0
        self.summary: dict[str, int] = {}
        self.manifest = ""  # where the manifest is


def expand_inputs(inputs: Iterable[str | Path], arrays: bool = False) -> list[Source]:
    """Files as given, folders as the images directly inside them (and with ``arrays``, the
    ``.npy`` arrays too: tiled translation takes them), glob patterns as their matches, and
    URLs (``s3://...``) of files, folders or patterns likewise; sorted within each item.
    InputNotFound for an item that names nothing."""
    sources: list[Source] = []
    for item in inputs:
        text = str(item)
        if is_url(text):
            sources += _remote(text)
            continue
        path = Path(text)
        if path.is_dir():
            found = list_images(path, extra=(".npy",) if arrays else ())
            sources += [Source(str(p), p.stem) for p in found]
        elif path.is_file():
            sources.append(Source(str(path), path.stem))
        elif any(c in text for c in GLOB_CHARS):
            matches = sorted(glob.glob(text))
            if not matches:
                raise InputNotFound(f"{text}: no file matches this pattern")
            sources += [Source(m, Path(m).stem) for m in matches if Path(m).is_file()]
        else:
            raise InputNotFound(f"{path}: no such file or folder")
    return sources


def _remote(url: str) -> list[Source]:
    fs, path = url_fs(url)
    protocol = url.split("://", 1)[0]
    if any(c in path for c in GLOB_CHARS):
        found = sorted(fs.glob(path))
    elif fs.isdir(path):
        found = sorted(p for p in fs.ls(path, detail=False) if Path(p).suffix.lower()
                       in IMAGE_EXTENSIONS)  # fmt: skip
    elif fs.exists(path):
        found = [path]
    else:
        raise InputNotFound(f"{url}: no such file or folder")
    return [Source(f"{protocol}://{p}", Path(p).stem) for p in found]


def check_array_file(path: str) -> tuple[int, int]:
    """A ``.npy`` mosaic's (width, height) from its header; BadImageError naming the file
    unless it holds H x W or H x W x C (C = 1 to 4) uint8 or uint16 pixels."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:  # truncated, foreign, pickled objects
        raise BadImageError(path, f"not a readable .npy array ({exc})") from None
    if array.dtype not in (np.uint8, np.uint16):
        raise BadImageError(
            path, f"{array.dtype} pixels; save the array as uint8 (0..255) or uint16 (0..65535)"
        )
    if array.ndim not in (2, 3) or (array.ndim == 3 and not 1 <= array.shape[2] <= 4):
        raise BadImageError(path, f"shape {array.shape}; expected H x W or H x W x C (C 1-4)")
    return array.shape[1], array.shape[0]


def read_source(source: Source, half: Half | None, budget: int | None) -> Picture:
    """Decode an input as viewers show it (``open_image``), or its ``half`` of an A|B pair."""
    if is_url(source.location):
        fs, path = url_fs(source.location, probe=False)  # listing the inputs reached it
        picture = decode_bytes(fs.cat_file(path), source.location, budget)
    else:
        picture = open_image(source.location, budget)
    if half is not None:
        w, h = picture_size(picture)
        picture = crop(picture, (0, 0, w // 2, h) if half == "left" else (w // 2, 0, w, h))
    return picture


def translate_files(
    translator: Translator,
    inputs: Iterable[str | Path],
    out: str | Path,
    batch_size: int = 8,
    half: Half | None = None,
    suffix: str = ".png",
    skip_bad: bool = False,
    progress: bool = True,
    limit: int | None = None,
    tiling: Tiling | None = None,
    max_pixels: int | None = None,
    overwrite: bool = False,
    procs: Processes | None = None,
    resize: Resize | str | None = None,
) -> Translated:
    """Translate image files, folders, patterns or URLs into ``out`` (a folder, a URL or a
    ``.zip``; see the module docstring). Outputs keep each input's stem with ``suffix``;
    ``limit`` takes the first that many inputs. With ``tiling``, each image is translated in
    overlapping tiles (``i2i.infer.tiles``), however large, normalized by the whole image's
    statistics or each tile's own as ``tiling.stats`` says; ``.npy`` arrays are then
    memory-mapped in and out. ``resize`` translates each image at the model's training scale
    or another and back (``i2i.infer.resize``). ``procs``: this process's share under torchrun.

    Returns the names this process wrote. Raises BadImageError after the good inputs are
    written when some could not be read, unless ``skip_bad``: in every process, each counting
    the inputs of all (the CLI prints process 0's)."""
    procs = procs or Processes()
    resize = Resize.parse(resize)
    sources = expand_inputs(inputs, arrays=tiling is not None)[:limit]
    repeated = sorted(stem for stem, n in Counter(s.stem for s in sources).items() if n > 1)
    if repeated:
        clash = [s.location for s in sources if s.stem == repeated[0]]
        raise DataError(
            f"{' and '.join(clash)} would be written as the same {repeated[0]}{suffix} "
            f"in {out} ({len(repeated)} such name(s)); rename one, or translate them into "
            "separate --out folders"
        )
    if translator.backend == "torch" and str(translator.device) == "cpu":
        from i2i.device import keep_freed_memory  # imports torch, loaded already on this path

        keep_freed_memory()  # each batch reuses the last one's memory: no fresh page faults
    share = sources[procs.rank :: procs.world]
    tiled = tiling is not None
    chunk_size = 1 if tiled else batch_size
    # rounds of one chunk each, the same number in every process: they count progress together
    rounds = math.ceil(math.ceil(len(sources) / procs.world) / chunk_size)
    budget = max_pixels or (TILED_MAX_PIXELS if tiled else None)
    result = Translated()
    records: list[Record] = []
    part = f"_manifest.part-{procs.rank:05d}-of-{procs.world:05d}.jsonl"
    with ImageWriter(out) as writer:
        if writer.zip is not None and procs.world > 1:
            raise ConfigError(
                f"--out {out}: several processes cannot share one zip; --out a folder"
            )
        if procs.main:
            writer.remove_stale_temps()
        _barrier(procs)  # nobody writes before stale temporary files are gone
        done = set() if overwrite else writer.existing()
        chunks = [share[i * chunk_size : (i + 1) * chunk_size] for i in range(rounds)]

        def read(chunk: list[Source]) -> list[tuple[Source, Picture | None, Record]]:
            out_items = []
            for source in chunk:
                name = source.stem + (".npy" if tiled and source.suffix == ".npy" else suffix)
                record = Record(source.location, name, "written")
                picture: Picture | None = None
                if name in done:
                    record.status = "skipped"
                    out_items.append((source, picture, record))
                    continue
                try:
                    if source.suffix != ".npy":
                        picture = read_source(source, half, budget)
                        record.width, record.height = picture_size(picture)
                    elif not tiled:
                        raise BadImageError(
                            source.location,
                            ".npy arrays are translated in tiles, memory-mapped; add --tile "
                            "SIZE (e.g. --tile 512)",
                        )
                    else:  # memory-mapped later: checked from its header now
                        record.width, record.height = check_array_file(source.location)
                except BadImageError as exc:
                    record.status, record.error = "failed", exc.problem
                out_items.append((source, picture, record))
            return out_items

        def write(items: list[tuple[Record, Output]]) -> None:
            staged: list[tuple[Record, bytes | Path | None]] = []
            for record, output in items:
                if isinstance(output, np.ndarray):
                    data = encode(array_to_pil(output), record.output)
                    record.bytes = len(data)
                    staged.append((record, data))
                else:
                    staged.append((record, output))
            # on record before in place: a run killed in between leaves a record of an output
            # that is missing, which the rerun translates and records anew, never an output
            # that no record says how it was made
            writer.append_text(part, "".join(json.dumps(asdict(r)) + "\n" for r, _ in items))
            for record, ready in staged:
                if isinstance(ready, bytes):
                    writer.write_bytes(record.output, ready)
                elif isinstance(ready, Path):
                    ready.replace(writer.out / record.output)
                if ready is not None:
                    result.append(record.output)

        bar = tqdm(total=len(sources), disable=not (progress and procs.main), unit="img")
        with ThreadPoolExecutor(1) as reader, ThreadPoolExecutor(1) as encoder:
            # threads decode the next chunk and encode the previous results while the network
            # runs (decoding and PNG/JPEG encoding release the GIL)
            ahead = reader.submit(read, chunks[0]) if chunks else None
            writing: Future[None] | None = None
            finished = 0
            for r in range(rounds):
                assert ahead is not None
                items = ahead.result()
                ahead = reader.submit(read, chunks[r + 1]) if r + 1 < rounds else None
                outputs = _translate(translator, items, writer, tiling, batch_size, resize)
                for _, picture, record in items:
                    if half is None and picture is not None and _pair_like(picture):
                        result.pair_like += 1
                    records.append(record)
                if writing is not None:
                    writing.result()  # in order, one chunk at a time (a zip takes one writer)
                writing = encoder.submit(write, outputs)
                finished += len(items)
                bar.n = _total(finished, procs)
                bar.refresh()
            if writing is not None:
                writing.result()
        bar.close()
        for record in records:
            if record.status == "skipped":
                result.skipped += 1
            elif record.status == "failed":
                result.failed.append(record)
        merged = _merge_manifest(writer, procs)
        result.manifest = writer.location(MANIFEST)
        result.summary = dict(Counter(r["status"] for r in merged))
        # every process's counts, for one report
        result.skipped, failed = _total(result.skipped, procs), _total(len(result.failed), procs)
        result.pair_like = _total(result.pair_like, procs)
    if failed and not skip_bad:
        # process 0 names the first failure of any process (the merged manifest has them
        # all), another process its own first, if it had one
        count = f"{failed} of {len(sources)} inputs could not be translated" + (
            "" if failed == len(sources) else "; the others were written"
        )
        own = [asdict(r) for r in result.failed]
        first = next((r for r in [*merged, *own] if r["status"] == "failed"), None)
        if first is None:  # a process other than 0 whose own inputs were all fine
            raise BadImageError(result.manifest, f"{count}; process 0 names the first")
        raise BadImageError(
            first["input"],
            f"{first['error']}; pass --skip-bad to skip such files ({count}; "
            f"{result.manifest} lists them)",
        )
    for record in result.failed:
        tqdm.write(f"could not translate {record.input} (skipped, --skip-bad): {record.error}")
    return result


def _translate(
    translator: Translator,
    items: list[tuple[Source, Picture | None, Record]],
    writer: ImageWriter,
    tiling: Tiling | None,
    batch_size: int,
    resize: Resize,
) -> list[tuple[Record, Output]]:
    """Each item's output (None for those skipped or failed): pixels of whole images batched
    by size (each at the scale ``resize`` asks for) or tiled one image at a time; ``.npy``
    mosaics translated straight into a memory-mapped temporary file, moved into place once
    recorded."""
    outputs: list[tuple[Record, Output]] = []
    wanted = [(s, p, r) for s, p, r in items if r.status == "written"]
    if tiling is not None:
        for source, picture, record in wanted:
            if picture is None:  # a .npy mosaic: memory-mapped in and out
                if resize.mode != "none":
                    raise ConfigError(
                        f"{source.location}: .npy mosaics are tiled at their own scale; "
                        "drop --resize"
                    )
                outputs.append(
                    (record, _translate_npy(translator, source, record, writer, tiling, batch_size))
                )
            else:
                pixels, _ = translator.translate_image(
                    picture, resize, tiling.tile, tiling.overlap, batch_size, tiling.stats
                )
                outputs.append((record, pixels))
    else:
        arrays = [pil_to_array(p, translator.input_channels, s.location) for s, p, _ in wanted
                  if p is not None]  # fmt: skip
        results = translator.translate_arrays(arrays, batch_size, resize)
        outputs = [(r, y) for (_, _, r), y in zip(wanted, results, strict=True)]
    return outputs + [(r, None) for _, _, r in items if r.status != "written"]


def _translate_npy(
    translator: Translator,
    source: Source,
    record: Record,
    writer: ImageWriter,
    tiling: Tiling,
    batch_size: int,
) -> Path:
    """Translate a ``.npy`` mosaic in tiles into a temporary file beside its output; returns
    that file (``write`` moves it into place after recording it)."""
    if writer.zip is not None or writer.url is not None:
        raise ConfigError(
            f"{source.location}: .npy inputs are written as .npy files; --out a folder"
        )
    array = np.load(source.location, mmap_mode="r", allow_pickle=False)  # checked by read()
    target = writer.out / record.output
    partial = target.with_name(f".{target.name}{TEMP_SUFFIX}")  # a killed run's is cleared
    translate_tiled(translator, array, tiling.tile, tiling.overlap, batch_size, out=partial,
                    stats=tiling.stats)  # fmt: skip
    record.bytes = partial.stat().st_size
    return partial


def _pair_like(picture: Picture) -> bool:
    """Twice as wide as high: maybe a side-by-side A|B pair, translated whole."""
    w, h = picture_size(picture)
    return w == 2 * h


def _barrier(procs: Processes) -> None:
    if procs.world > 1:
        import torch.distributed as dist  # only under torchrun, where torch is loaded

        dist.barrier()


def _total(count: int, procs: Processes) -> int:
    """``count`` summed over the processes (every process calls this at every round)."""
    if procs.world == 1:
        return count
    import torch
    import torch.distributed as dist

    total = torch.tensor([count])
    dist.all_reduce(total)
    return int(total.item())


def _merge_manifest(writer: ImageWriter, procs: Processes) -> list[dict[str, Any]]:
    """Once every process is done, process 0 merges the manifest of earlier runs and every
    part file (this run's, and those a killed run left) into ``_manifest.jsonl``: the newest
    record of an input wins, but "skipped" never hides how the output was made. Returns its
    records (process 0; the others get none)."""
    _barrier(procs)
    if not procs.main:
        return []
    parts = writer.names("_manifest.part-*.jsonl")
    merged: dict[str, dict[str, Any]] = {}
    for text in [writer.read_text(MANIFEST) or ""] + [writer.read_text(p) or "" for p in parts]:
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # the last line of a killed run's part
                continue
            if record["status"] == "skipped" and record["input"] in merged:
                continue
            merged[record["input"]] = record
    writer.write_text(MANIFEST, "".join(json.dumps(r) + "\n" for r in merged.values()))
    for name in parts:
        writer.remove(name)
    return list(merged.values())


def batched(items: Iterable[T], n: int) -> Iterator[list[T]]:
    """Lists of ``n`` items (the last may be shorter); ``itertools.batched`` from Python 3.12."""
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
