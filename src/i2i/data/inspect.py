"""``i2i data inspect``: what a dataset holds, before hours of training are spent on it.

For any data i2i reads (paired layouts, unpaired folders, image folders, IDX, ``.npz``; found by
:func:`i2i.data.layouts.find_dataset`, or two ``--domain-a``/``--domain-b`` folders), one pass
opens each file once (its header gives size and mode) and decodes it once, and from the pixels:

- counts per split and domain, sizes, modes and bit depths;
- the files training would stop at, with the reason: empty, unreadable, corrupt or truncated,
  32-bit float, an odd-width side-by-side pair, a partner of another size, no partner;
- duplicates within and across splits (train/val leakage), per domain: *exact* (the same size
  and pixels: CRC-32 of the pixels and the perceptual hash agree) and *near* (perceptual hashes,
  imagehash's DCT ``phash`` of 64 bits, at most ``near_bits`` apart, and mean colours close);
- each domain's RGB colour histogram and mean colour (gray images count as R = G = B, as i2i
  reads them), the first look the CycleGAN Monet notebooks take at their two domains;
- a few random samples (pairs side by side) for a contact sheet.

Pixels are compared as i2i's readers convert them (:mod:`i2i.data.images`): 8-bit, transparency
over white, 16-bit scaled. :meth:`DataReport.write` writes ``report.md``, ``report.json`` and
the figures ``sizes.png``, ``colours.png`` and ``samples.png``. Nothing here imports torch.
"""

from __future__ import annotations

import json
import time
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import imagehash
import numpy as np
from PIL import Image
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from tqdm import tqdm

from i2i.data.images import (
    BadImageError,
    list_images,
    open_image,
    pil_to_array,
    uint_array_to_float,
)
from i2i.data.layouts import FoundDataset, NpzReader, SplitFiles, find_dataset, read_idx
from i2i.errors import DataError
from i2i.files import atomic_path, write_text_atomic

NEAR_BITS = 4  # phash bits two near duplicates may differ in, of 64
# levels (0..255) their mean colours may differ in: phash sees brightness only, and takes any
# two flat images (a water tile, a park tile) for the same picture
NEAR_COLOUR = 12
THUMB = 160  # px, the longer side of a contact-sheet image
_GRAY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N"}
_BITS = {"1": 1, "I": 16, "F": 32}  # others: 16 for I;16*, 8 per channel otherwise


# -- the report ---------------------------------------------------------------------------------
@dataclass
class BadFile:
    """A file training would stop at (or skip with --skip-bad), and why."""

    split: str
    name: str  # relative to the data
    problem: str


@dataclass
class Duplicates:
    """Images of one domain that are the same picture: ``exact`` (same size and pixels) or near
    (perceptual hashes at most ``distance`` bits apart). ``members``: (split, name)."""

    domain: str
    exact: bool
    distance: int
    members: list[tuple[str, str]]

    @property
    def across_splits(self) -> bool:
        return len({split for split, _ in self.members}) > 1


@dataclass
class DomainStats:
    """One split of one domain: readable images, bad files, sizes (``"WxH"`` px) and modes
    (``"RGB 8-bit"``), each with its count, and the RGB histogram (3 x 256 pixel counts)."""

    split: str
    domain: str
    images: int = 0
    bad: int = 0
    sizes: Counter[str] = field(default_factory=Counter)
    modes: Counter[str] = field(default_factory=Counter)
    histogram: np.ndarray = field(default_factory=lambda: np.zeros((3, 256), np.int64))
    gray: int = 0  # images stored with one channel

    @property
    def mean_colour(self) -> tuple[float, float, float]:
        """Mean R, G, B over all pixels, 0..255."""
        total = self.histogram.sum(axis=1)
        means = (self.histogram @ np.arange(256)) / np.maximum(total, 1)
        return tuple(float(m) for m in means)  # type: ignore[return-value]


@dataclass
class Sample:
    """A contact-sheet entry: one image per domain of a pair, or one image; 8-bit thumbnails."""

    split: str
    name: str
    images: dict[str, Image.Image]

    @property
    def caption(self) -> str:
        """Where to find the image: its folder and file name as inside the data
        (``train/12.jpg``, ``trainA/x.jpg``, ``pairs.npz[3]``; a flat folder's file by name)."""
        return "/".join(Path(self.name).parts[-2:])


@dataclass
class DataReport:
    """What :func:`inspect_dataset` found. ``labels``: where each domain's images come from
    ("trainA/, testA/", "left halves"); ``shapes``: every readable image's (width, height) in
    px, per domain."""

    data: str
    kind: str
    layouts: dict[str, str]  # split -> how it was read
    labels: dict[str, str]
    stats: list[DomainStats]
    bad: list[BadFile]
    duplicates: list[Duplicates]
    samples: list[Sample]
    shapes: dict[str, list[tuple[int, int]]]
    near_bits: int
    seconds: float

    @property
    def images(self) -> int:
        return sum(s.images + s.bad for s in self.stats)

    @property
    def images_per_s(self) -> float:
        return self.images / max(self.seconds, 1e-9)

    @property
    def domains(self) -> list[str]:
        return list(self.labels)

    def title(self, domain: str) -> str:
        """``domain`` with where its images come from: "A (trainA/, testA/)"."""
        return f"{domain} ({self.labels[domain]})"

    def domain_total(self, domain: str) -> DomainStats:
        """All splits of ``domain`` together."""
        total = DomainStats("all", domain)
        for s in self.stats:
            if s.domain == domain:
                total.images += s.images
                total.bad += s.bad
                total.sizes.update(s.sizes)
                total.modes.update(s.modes)
                total.histogram += s.histogram
                total.gray += s.gray
        return total

    def table(self) -> str:
        """The summary table (Markdown): one row per split and domain."""
        rows = [
            "| split | domain | images | bad | sizes (px) | modes | mean RGB |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for s in self.stats:
            mean = "" if not s.images else "(" + ", ".join(f"{m:.0f}" for m in s.mean_colour) + ")"
            rows.append(
                f"| {s.split} | {s.domain} | {s.images} | {s.bad} | {_top(s.sizes)} | "
                f"{_top(s.modes)} | {mean} |"
            )
        return "\n".join(rows)

    def summary(self) -> list[str]:
        """Lines for the terminal: the problems and duplicates in brief."""
        exact = [d for d in self.duplicates if d.exact]
        near = [d for d in self.duplicates if not d.exact]
        across = sum(d.across_splits for d in self.duplicates)
        lines = [
            f"{self.images} images in {self.seconds:.1f} s ({self.images_per_s:.0f} images/s)",
            f"bad files: {len(self.bad)}"
            + "".join(f"\n  {b.name}: {b.problem}" for b in self.bad[:5])
            + (f"\n  ... and {len(self.bad) - 5} more" if len(self.bad) > 5 else ""),
            f"duplicates: {len(exact)} exact and {len(near)} near groups "
            f"(phash within {self.near_bits} bits), {across} across splits",
        ]
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            "data": self.data,
            "kind": self.kind,
            "layouts": self.layouts,
            "domains": self.labels,
            "images": self.images,
            "seconds": round(self.seconds, 3),
            "images_per_s": round(self.images_per_s, 1),
            "splits": [
                {
                    "split": s.split,
                    "domain": s.domain,
                    "images": s.images,
                    "bad": s.bad,
                    "sizes": dict(s.sizes),
                    "modes": dict(s.modes),
                    "mean_rgb": [round(m, 2) for m in s.mean_colour],
                }
                for s in self.stats
            ],
            "bad": [vars(b) for b in self.bad],
            "duplicates": [{**vars(d), "across_splits": d.across_splits} for d in self.duplicates],
        }

    def write(self, out: str | Path) -> Path:
        """Write ``report.md`` (returned), ``report.json`` and the figures into ``out``."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        figures = plot_report(self, out)
        write_text_atomic(out / "report.json", json.dumps(self.to_json(), indent=2) + "\n")
        path = out / "report.md"
        write_text_atomic(path, self.markdown(figures))
        return path

    def markdown(self, figures: Sequence[Path] = ()) -> str:
        splits_by_how: dict[str, list[str]] = {}
        for split, how in self.layouts.items():
            splits_by_how.setdefault(how, []).append(split)
        read = "; ".join(f"{', '.join(s)}: {how}" for how, s in splits_by_how.items())
        domains = "; ".join(f"{d} = {label}" for d, label in self.labels.items())
        lines = [
            f"# Data report: {self.data}",
            "",
            f"{self.kind.capitalize()} data. Read as {read}. Domains: {domains}.",
            f"{self.images} images inspected in {self.seconds:.1f} s "
            f"({self.images_per_s:.0f} images/s).",
            "",
            self.table(),
            "",
            "## Bad files",
            "",
        ]
        if self.bad:
            lines += ["Training stops at these (or skips them with `--skip-bad`):", ""]
            lines += [f"- `{b.name}` ({b.split}): {b.problem}" for b in self.bad]
        else:
            lines.append("None: every file is readable and every pair matches in size.")
        lines += ["", "## Duplicates", ""]
        lines.append(
            "Per domain: *exact* = same size and pixels; *near* = perceptual hashes (64-bit "
            f"DCT phash) at most {self.near_bits} bits apart and mean colours within "
            f"{NEAR_COLOUR} levels (flat images, such as tiles of open water, are near "
            "duplicates of each other). Across splits means leakage: a test image the model "
            "has trained on."
        )
        lines.append("")
        if not self.duplicates:
            lines.append("None found.")
        for d in self.duplicates[:50]:
            kind = "exact" if d.exact else f"near ({d.distance} bits)"
            where = "**across splits**" if d.across_splits else "within a split"
            names = ", ".join(f"`{name}`" for _, name in d.members[:8])
            more = f" and {len(d.members) - 8} more" if len(d.members) > 8 else ""
            lines.append(f"- {d.domain}, {kind}, {where}: {names}{more}")
        if len(self.duplicates) > 50:
            lines.append(f"- ... and {len(self.duplicates) - 50} more groups (report.json)")
        titles = {"sizes.png": "Sizes", "colours.png": "Colours", "samples.png": "Samples"}
        for fig in figures:
            lines += ["", f"## {titles.get(fig.name, fig.stem)}", "", f"![{fig.stem}]({fig.name})"]
        return "\n".join(lines) + "\n"


def _top(counts: Counter[str], n: int = 2) -> str:
    if not counts:
        return "-"
    shown = ", ".join(f"{k} ({v})" if len(counts) > 1 else k for k, v in counts.most_common(n))
    return shown + (f", {len(counts) - n} more" if len(counts) > n else "")


# -- the pass over the data ---------------------------------------------------------------------
@dataclass(frozen=True)
class _Unit:
    """One file (or array entry) to read: ``how`` is ``halves`` (a side-by-side pair),
    ``pair`` (two files), ``single`` (one image of ``domains[0]``) or ``array``; a unit with a
    ``problem`` is not read, only reported."""

    split: str
    how: str
    domains: tuple[str, ...]
    names: tuple[str, ...]  # each file's name relative to the data (arrays: FILE[i])
    files: tuple[Path, ...] = ()
    arrays: tuple[np.ndarray, ...] = ()
    index: int = 0
    problem: str = ""  # known before reading (no partner, an unreadable array file)


@dataclass
class _Seen:
    """One image as the pass saw it (small: the pixels are summarized, then dropped)."""

    split: str
    domain: str
    name: str
    size: tuple[int, int] | None = None
    mode: str | None = None
    crc: int = 0
    phash: int = 0
    histogram: np.ndarray | None = None  # 3 x 256
    mean: tuple[float, ...] = ()  # R, G, B, 0..255
    gray: bool = False
    thumb: Image.Image | None = None


def inspect_dataset(
    data: str | Path | None = None,
    *,
    domains: tuple[str | Path, str | Path] | None = None,
    kind: str = "auto",
    npz_keys: tuple[str, str] = ("arr_0", "arr_1"),
    samples: int = 8,
    near_bits: int = NEAR_BITS,
    seed: int = 0,
    workers: int = 2,
    progress: bool = True,
) -> DataReport:
    """Inspect the data at ``data`` (or the two ``domains`` folders, A and B) as the module
    docstring describes. ``kind``: auto | paired | unpaired | images (how split folders and
    plain image folders are read; see :func:`i2i.data.layouts.find_dataset`); ``samples``:
    contact-sheet entries per domain (pairs for paired data); ``near_bits``: the largest phash
    distance (bits of 64) of near duplicates; ``workers``: decoding threads (PIL and zlib
    release the GIL). Raises DataError / ConfigError when no data is found; bad files are
    reported, not raised."""
    started = time.perf_counter()
    found = find_dataset(data, kind, domains)
    units, labels, layouts = _plan(found, npz_keys)
    chosen, rank = _choose_samples(units, found.kind, samples, np.random.default_rng(seed))
    stats = {
        (split, domain): DomainStats(split, domain)
        for split in dict.fromkeys(u.split for u in units)
        for domain in labels
    }
    shapes: dict[str, list[tuple[int, int]]] = {d: [] for d in labels}
    seen: list[_Seen] = []
    bad: list[BadFile] = []
    shown: list[tuple[int, Sample]] = []
    with ThreadPoolExecutor(max(1, workers)) as pool:
        results = pool.map(_read_unit, units, chosen)
        bar = tqdm(results, total=len(units), desc="inspect", unit="file", disable=not progress)
        for i, (images, problems) in enumerate(bar):
            for img in images:
                st = stats[(img.split, img.domain)]
                if img.size is None or img.histogram is None:  # unusable: counted, not summed
                    st.bad += 1
                    continue
                st.images += 1
                st.sizes[f"{img.size[0]}x{img.size[1]}"] += 1
                st.modes[img.mode or "?"] += 1
                st.histogram += img.histogram
                st.gray += img.gray
                shapes[img.domain].append(img.size)
                img.histogram = None  # summed: the per-image counts can go
                seen.append(img)
            thumbs = {img.domain: img.thumb for img in images if img.thumb is not None}
            if thumbs:
                shown.append((rank[i], Sample(images[0].split, images[0].name, thumbs)))
            bad += problems
    return DataReport(
        data=str(data) if data is not None else " + ".join(str(d) for d in domains or ()),
        kind=found.kind,
        layouts=layouts,
        labels=labels,
        stats=[s for s in stats.values() if s.images or s.bad],
        bad=bad,
        duplicates=find_duplicates(seen, near_bits),
        samples=_first_good(shown, samples),
        shapes=shapes,
        near_bits=near_bits,
        seconds=time.perf_counter() - started,
    )


_READ_AS = {
    "side_by_side": "side-by-side pairs (A left half, B right half)",
    "ab_folders": "A and B folders paired by file name",
    "unpaired": "unpaired A and B folders",
    "npz": ".npz arrays (A, B)",
    "idx": "IDX images",
    "images": "single images",
}


def _plan(
    found: FoundDataset, npz_keys: tuple[str, str]
) -> tuple[list[_Unit], dict[str, str], dict[str, str]]:
    """The units to read, each domain's label (where its images come from) and each split's
    reading."""
    units: list[_Unit] = []
    sources: dict[str, list[str]] = {}
    layouts: dict[str, str] = {}
    for sf in found.splits:
        layouts[sf.split] = _READ_AS[sf.layout]
        units += _split_units(sf, found.root, npz_keys, sources)
    labels = {d: ", ".join(dict.fromkeys(where)) for d, where in sources.items()}
    return units, labels, layouts


def _split_units(
    sf: SplitFiles, root: Path, npz_keys: tuple[str, str], sources: dict[str, list[str]]
) -> list[_Unit]:
    """The units of one split; adds where each domain's images come from to ``sources``."""
    split, paths = sf.split, sf.paths

    def rel(path: Path) -> str:  # names as the user sees them inside the data
        inside = path.is_relative_to(root) and path != root
        return str(path.relative_to(root)) if inside else path.name

    if sf.layout == "side_by_side":
        sources.setdefault("A", []).append("left halves")
        sources.setdefault("B", []).append("right halves")
        return [_Unit(split, "halves", ("A", "B"), (rel(f),), (f,)) for f in _listed(paths[0])]
    if sf.layout in ("images", "unpaired"):
        units = []
        domains = ("A", "B") if len(paths) == 2 else ("images",)
        for domain, folder in zip(domains, paths, strict=True):
            sources.setdefault(domain, []).append(rel(folder) + "/")
            units += [_Unit(split, "single", (domain,), (rel(f),), (f,)) for f in _listed(folder)]
        return units
    if sf.layout == "ab_folders":
        sources.setdefault("A", []).append(rel(paths[0]) + "/")
        sources.setdefault("B", []).append(rel(paths[1]) + "/")
        a_files, b_files = ({p.stem: p for p in _listed(f)} for f in paths)
        units = [
            _Unit(split, "pair", ("A", "B"), (rel(a_files[s]), rel(b_files[s])),
                  (a_files[s], b_files[s]))
            for s in sorted(a_files.keys() & b_files.keys())
        ]  # fmt: skip
        for domain, files, partners, other in (("A", a_files, b_files, paths[1]),
                                               ("B", b_files, a_files, paths[0])):  # fmt: skip
            units += [
                _Unit(split, "single", (domain,), (rel(p),), (p,),
                      problem=f"no partner of the same name in {rel(other)}/")
                for stem, p in sorted(files.items())
                if stem not in partners
            ]  # fmt: skip
        return units
    # arrays: a .npz of pairs or an IDX file of single images
    name = rel(paths[0])
    domains = ("A", "B") if sf.layout == "npz" else ("images",)
    for domain, key in zip(domains, npz_keys if sf.layout == "npz" else ("",), strict=False):
        sources.setdefault(domain, []).append(f"{name}[{key}]" if key else name)
    try:
        if sf.layout == "npz":
            reader = NpzReader(paths[0], npz_keys)
            arrays: tuple[np.ndarray, ...] = (reader.a, reader.b)
        else:
            arrays = (read_idx(paths[0]),)
    except DataError as exc:
        problem = str(exc).removeprefix(f"{paths[0]}: ")
        return [_Unit(split, "array", domains, (name,), problem=problem)]
    return [
        _Unit(split, "array", domains, (f"{name}[{i}]",), arrays=arrays, index=i)
        for i in range(len(arrays[0]))
    ]


def _listed(folder: Path) -> list[Path]:
    try:
        return list_images(folder)
    except DataError:  # an empty folder: no images to count
        return []


def _choose_samples(
    units: list[_Unit], kind: str, per_domain: int, rng: np.random.Generator
) -> tuple[list[frozenset[str]], dict[int, int]]:
    """For each unit, the domains whose thumbnails the contact sheet may show, and each chosen
    unit's place in the random order: ``per_domain`` random pairs of paired data, of images of
    each unpaired domain, twice as many single images; twice as many candidates are drawn, so
    that bad files do not thin the sheet (:func:`_first_good` keeps the first good ones)."""
    keep: list[set[str]] = [set() for _ in units]
    rank: dict[int, int] = {}
    domains = sorted({d for u in units for d in u.domains})
    for domain in ["A"] if kind == "paired" else domains:
        having = [i for i, u in enumerate(units) if domain in u.domains]
        n = min(2 * per_domain * (2 if kind == "images" else 1), len(having))
        for place, i in enumerate(int(i) for i in rng.choice(having, n, replace=False)):
            keep[i].update(units[i].domains if kind == "paired" else {domain})
            rank.setdefault(i, place)
    return [frozenset(k) for k in keep], rank


def _first_good(shown: list[tuple[int, Sample]], per_domain: int) -> list[Sample]:
    """The contact sheet: in the random order, ``per_domain`` samples holding each domain
    (twice as many for single images)."""
    kept: list[Sample] = []
    count: Counter[str] = Counter()
    for _, sample in sorted(shown, key=lambda s: s[0]):
        wanted = {d: img for d, img in sample.images.items()
                  if count[d] < per_domain * (2 if d == "images" else 1)}  # fmt: skip
        if wanted:
            count.update(list(wanted))  # one more of each domain
            kept.append(Sample(sample.split, sample.name, wanted))
    return kept


def _read_unit(unit: _Unit, thumbs: frozenset[str]) -> tuple[list[_Seen], list[BadFile]]:
    """Decode ``unit`` once and summarize each of its images (with a thumbnail for the domains
    in ``thumbs``); a unit with a bad file is unusable as a whole (training skips the pair),
    so its images come back unsummarized."""
    seen = [_Seen(unit.split, d, unit.names[0]) for d in unit.domains]
    if unit.problem:
        return seen, [BadFile(unit.split, unit.names[0], unit.problem)]
    decoded: list[tuple[Image.Image, str]] = []
    problems: list[BadFile] = []
    try:
        if unit.how == "array":
            decoded = [_array_image(a[unit.index], unit.names[0]) for a in unit.arrays]
    except BadImageError as exc:
        problems.append(BadFile(unit.split, unit.names[0], exc.problem))
    for path, name in zip(unit.files, unit.names, strict=False):  # arrays: no files
        try:
            decoded.append(_decode(path))
        except BadImageError as exc:
            problems.append(BadFile(unit.split, name, exc.problem))
    if not problems and unit.how in ("halves", "pair"):
        decoded, problem = (
            _halves(decoded) if unit.how == "halves" else (decoded, _mismatch(decoded))
        )
        if problem:
            problems.append(BadFile(unit.split, unit.names[-1], problem))
    if problems:
        return seen, problems
    for img, (im, mode) in zip(seen, decoded, strict=True):
        _summarize(img, im, mode, img.domain in thumbs)
    return seen, []


def _halves(decoded: list[tuple[Image.Image, str]]) -> tuple[list[tuple[Image.Image, str]], str]:
    ((im, mode),) = decoded
    if im.width % 2:
        return decoded, f"width {im.width} is odd, so its A|B halves differ in size"
    half = im.width // 2
    left, right = im.crop((0, 0, half, im.height)), im.crop((half, 0, im.width, im.height))
    return [(left, mode), (right, mode)], ""


def _mismatch(decoded: list[tuple[Image.Image, str]]) -> str:
    (a, _), (b, _) = decoded
    if a.size == b.size:
        return ""
    return (
        f"size {b.width}x{b.height} differs from its partner's ({a.width}x{a.height}); "
        "the two images of a pair must be the same size"
    )


def _decode(path: Path) -> tuple[Image.Image, str]:
    """The file decoded once (as viewers show it: :func:`i2i.data.images.open_image`) and
    converted to 8-bit L or RGB by i2i's rules, with the stored mode ("RGB 8-bit"; 16-bit
    colour arrives as a uint16 array). Raises BadImageError."""
    picture = open_image(path)
    if isinstance(picture, np.ndarray):  # 48/64-bit colour PNG or TIFF
        mode = f"{'RGBA' if picture.shape[-1] == 4 else 'RGB'} 16-bit"
        return _to_pil(pil_to_array(picture, 3, path)), mode
    bits = _BITS.get(picture.mode, 16 if picture.mode.startswith("I;16") else 8)
    mode = f"{picture.mode} {bits}-bit"
    if picture.mode in ("L", "RGB"):
        return picture, mode
    gray = picture.mode in _GRAY_MODES
    arr = pil_to_array(picture, 1 if gray else 3, path)  # alpha over white, 16-bit scaled
    return _to_pil(arr), mode


def _array_image(pixels: np.ndarray, name: str) -> tuple[Image.Image, str]:
    """One image of an array file (uint8/uint16, HxW or HxWxC) as 8-bit L or RGB."""
    channels = 1 if pixels.ndim == 2 or pixels.shape[-1] == 1 else 3
    bits = 8 * pixels.dtype.itemsize
    mode = f"{'L' if channels == 1 else 'RGB'} {bits}-bit"
    if pixels.dtype == np.uint8 and (pixels.ndim == 2 or pixels.shape[-1] in (1, 3)):
        return Image.fromarray(
            pixels.squeeze(-1) if pixels.ndim == 3 and channels == 1 else pixels
        ), mode
    return _to_pil(uint_array_to_float(pixels, name, channels)), mode


def _to_pil(arr: np.ndarray) -> Image.Image:
    """A float HxWxC array in [0, 1] as an 8-bit L or RGB image."""
    u8 = (np.clip(arr, 0, 1) * 255 + 0.5).astype(np.uint8)
    return Image.fromarray(u8[..., 0] if u8.shape[-1] == 1 else u8)


def _summarize(img: _Seen, im: Image.Image, mode: str, keep_thumb: bool) -> None:
    """Size, mode, colour histogram, pixel CRC and perceptual hash of one 8-bit image."""
    img.size, img.mode, img.gray = im.size, mode, im.mode == "L"
    counts = np.asarray(im.histogram(), np.int64).reshape(-1, 256)
    img.histogram = np.repeat(counts, 3, axis=0) if img.gray else counts  # gray: R = G = B
    img.mean = tuple(img.histogram @ np.arange(256) / (im.width * im.height))
    img.crc = zlib.crc32(im.tobytes())
    # phash shrinks the image to 32 x 32 anyway: a box reduction first makes that cheap
    factor = max(1, min(im.size) // 64)
    small = im.reduce(factor) if factor > 1 else im
    img.phash = int(str(imagehash.phash(small)), 16)
    if keep_thumb:
        thumb = im.convert("RGB")
        thumb.thumbnail((THUMB, THUMB))
        img.thumb = thumb


def _popcount(x: np.ndarray) -> np.ndarray:
    """Set bits of each uint64 (a byte lookup table: works with any NumPy)."""
    table = np.array([bin(i).count("1") for i in range(256)], np.uint8)
    return table[x.view(np.uint8)].reshape(*x.shape, 8).sum(axis=-1, dtype=np.int64)


def _near_groups(
    hashes: np.ndarray, means: np.ndarray, near_bits: int
) -> Iterator[tuple[list[int], int]]:
    """Indices of ``hashes`` (uint64) joined where two are at most ``near_bits`` apart and their
    mean colours (``means``, n x 3, 0..255) within :data:`NEAR_COLOUR` levels, each with the
    largest hash distance inside it: the connected components of the near-pair graph."""
    rows, cols, dists = [], [], []
    block = 256  # rows at a time: a block x n matrix of distances
    for start in range(0, len(hashes), block):
        dist = _popcount(hashes[start : start + block, None] ^ hashes[None, :])
        shift = np.abs(means[start : start + block, None] - means[None, :]).max(axis=-1)
        r, c = np.nonzero((dist <= near_bits) & (shift <= NEAR_COLOUR))
        upper = c > r + start  # each pair once, no self-pairs
        rows.append(r[upper] + start)
        cols.append(c[upper])
        dists.append(dist[r[upper], c[upper]])
    row, col, dist = np.concatenate(rows), np.concatenate(cols), np.concatenate(dists)
    if not len(row):
        return
    graph = coo_matrix((np.ones(len(row)), (row, col)), shape=(len(hashes), len(hashes)))
    _, label = connected_components(graph, directed=False)
    for component in np.unique(label[row]):
        members = np.flatnonzero(label == component)
        yield members.tolist(), int(dist[label[row] == component].max())


def find_duplicates(images: Sequence[_Seen], near_bits: int = NEAR_BITS) -> list[Duplicates]:
    """Groups of the same picture within each domain: exact (same size, pixel CRC and phash)
    and near (phash at most ``near_bits`` apart and mean colours close, joined transitively).
    Pairwise over the hashes, in blocks: O(n^2) bit operations, seconds for tens of thousands
    of images."""
    groups: list[Duplicates] = []
    by_domain: dict[str, list[_Seen]] = {}
    for img in images:
        by_domain.setdefault(img.domain, []).append(img)
    for domain, imgs in by_domain.items():
        exact: dict[tuple[Any, ...], list[_Seen]] = {}
        for img in imgs:
            exact.setdefault((img.size, img.crc, img.phash), []).append(img)
        reps = list(exact.values())  # one entry per distinct picture
        groups += [
            Duplicates(domain, True, 0, [(i.split, i.name) for i in same])
            for same in reps
            if len(same) > 1
        ]
        hashes = np.array([same[0].phash for same in reps], np.uint64)
        means = np.array([same[0].mean for same in reps], np.float64).reshape(-1, 3)
        for members, distance in _near_groups(hashes, means, near_bits):
            names = [(img.split, img.name) for i in members for img in reps[i]]
            groups.append(Duplicates(domain, False, distance, names))
    return groups


# -- figures ------------------------------------------------------------------------------------
def plot_report(report: DataReport, out: Path) -> list[Path]:
    """Write the report's figures into ``out``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for name, draw in (("sizes.png", _plot_sizes), ("colours.png", _plot_colours),
                       ("samples.png", _plot_samples)):  # fmt: skip
        fig = draw(report, plt)
        if fig is not None:
            with atomic_path(out / name) as tmp:
                fig.savefig(tmp, dpi=100, format="png")
            plt.close(fig)
            written.append(out / name)
    return written


_DOMAIN_COLOURS = {"A": "tab:blue", "B": "tab:orange", "images": "tab:green"}


def _plot_sizes(report: DataReport, plt: Any) -> Any:
    shapes = {d: v for d, v in report.shapes.items() if v}
    if not shapes:
        return None
    fig, (scatter, hist) = plt.subplots(1, 2, figsize=(11, 4.2))
    fig.suptitle(f"Image sizes: {report.data}")
    shorter = [min(wh) for v in shapes.values() for wh in v]
    crop = 256  # i2i's default --crop-size
    low, high = min(*shorter, crop), max(*shorter, crop)
    bins = np.linspace(low * 0.9, high * 1.1, 31)
    for domain, sizes in shapes.items():
        counts = Counter(sizes)
        (w, h), n = counts.most_common(1)[0]
        colour = _DOMAIN_COLOURS.get(domain, "tab:gray")
        xs, ys, ns = zip(*((w, h, n) for (w, h), n in counts.items()), strict=True)
        label = f"{report.title(domain)}: most {w}x{h} ({n:,})"
        area = [30 + 400 * n / max(ns) for n in ns]
        scatter.scatter(xs, ys, s=area, alpha=0.5, color=colour, label=label)
        hist.hist([min(wh) for wh in sizes], bins=bins, alpha=0.5, color=colour,
                  label=report.title(domain))  # fmt: skip
    widest = max(w for v in shapes.values() for w, _ in v)
    tallest = max(h for v in shapes.values() for _, h in v)
    scatter.set(xlim=(0, widest * 1.15), ylim=(0, tallest * 1.15), xlabel="width (px)",
                ylabel="height (px)", title="Width x height (dot area: images)")  # fmt: skip
    scatter.legend(fontsize=8, loc="lower right")
    hist.axvline(crop, color="k", linestyle="--", linewidth=1)
    hist.text(crop, 0.97, f" default --crop-size ({crop} px)", fontsize=8, va="top",
              transform=hist.get_xaxis_transform())  # fmt: skip
    hist.set(xlabel="shorter side (px)", ylabel="images",
             title="Shorter side (below the crop: upscaled in training)")  # fmt: skip
    hist.legend(fontsize=8, loc="center left")
    fig.tight_layout()
    return fig


def _plot_colours(report: DataReport, plt: Any) -> Any:
    totals = [report.domain_total(d) for d in report.domains]
    totals = [t for t in totals if t.images]
    if not totals:
        return None
    fig, axes = plt.subplots(2, len(totals), figsize=(5.5 * len(totals), 5.2), squeeze=False,
                             gridspec_kw={"height_ratios": [3, 1]})  # fmt: skip
    fig.suptitle(f"Colours per domain: {report.data}")
    for col, t in enumerate(totals):
        ax, swatch = axes[0, col], axes[1, col]
        share = 100 * t.histogram / np.maximum(t.histogram.sum(axis=1, keepdims=True), 1)
        if t.gray == t.images:  # all gray: the three channels are one curve
            ax.plot(share[0], color="0.3", label="gray")
        else:
            for channel, colour in zip(share, ("red", "green", "blue"), strict=True):
                ax.plot(channel, color=colour, label=colour[0].upper())
        ax.set(xlim=(0, 255), ylim=(0, None), xlabel="pixel value (0-255)",
               ylabel="share of pixels (%), own scale",
               title=f"{report.title(t.domain)}: {t.images:,} images")  # fmt: skip
        ax.legend(fontsize=8)
        mean = t.mean_colour
        swatch.imshow(np.array(mean, np.float64).reshape(1, 1, 3) / 255, aspect="auto")
        ink = "white" if sum(mean) / 3 < 128 else "black"
        swatch.text(0, 0, "mean colour  RGB (" + ", ".join(f"{m:.0f}" for m in mean) + ")",
                    ha="center", va="center", color=ink, fontsize=10)  # fmt: skip
        swatch.set_xticks([])
        swatch.set_yticks([])
    fig.tight_layout()
    return fig


def _plot_samples(report: DataReport, plt: Any) -> Any:
    if not report.samples:
        return None
    domains = report.domains
    paired = report.kind == "paired"
    cells: list[tuple[str, Image.Image]] = []
    if paired:  # each sample is a pair: A then B, side by side
        per_row = 2 * (2 if len(report.samples) > 4 else 1)
        for s in report.samples:
            cells += [(f"{s.caption} ({d})", s.images[d]) for d in domains
                      if d in s.images]  # fmt: skip
    else:
        per_row = 4
        for d in domains:
            row = [(f"{d}: {s.caption}", s.images[d]) for s in report.samples
                   if d in s.images]  # fmt: skip
            cells += row + [("", None)] * (-len(row) % per_row)  # type: ignore[list-item]
    rows = -(-len(cells) // per_row)
    fig, axes = plt.subplots(rows, per_row, figsize=(2.3 * per_row, 2.5 * rows), squeeze=False)
    how = "pairs: A | B" if paired else "random images per domain"
    fig.suptitle(f"Random samples ({how}): {report.data}")
    for ax in axes.flat:
        ax.axis("off")
    for ax, (title, image) in zip(axes.flat, cells, strict=False):
        if image is not None:
            ax.imshow(image)
            ax.set_title(title, fontsize=7)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))  # room for the title
    return fig
