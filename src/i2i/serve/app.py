"""``i2i serve``: a web page and a REST API that translate uploaded images.

    GET  /                              the page: pick a model, drop an image, see both, download
    GET  /healthz                       liveness, and how many models are loaded
    GET  /v1/models                     each model: name, method, direction, channels, size rules
    POST /v1/models/{name}/translate    the image as a multipart upload (field "image") or as the
                                        raw body; PNG back, or JPEG by Accept or "format";
                                        "resize" (train | auto | WxH | none) translates at the
                                        training scale (header X-I2I-Resize says what was done)

Models load once, at start. Inference runs in worker threads (``workers`` at a time), off the
event loop; at most ``queue`` requests wait for them, later ones get 503 at once rather than
piling up. Every refusal is a 4xx with a JSON ``{"error": ...}`` that says what was wrong: too
many bytes (413), too many pixels (413, checked from the header before decoding, so
decompression bombs never expand), not an image or a corrupt one (400), an unknown model (404),
a missing or wrong bearer token (401).
"""

from __future__ import annotations

import io
import re
import secrets
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi_offline import FastAPIOffline
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException, MultiPartParser

from i2i.data.images import array_to_pil, decode_bytes, open_header, picture_size
from i2i.errors import ConfigError, UserError
from i2i.infer.resize import Resize
from i2i.infer.tiles import TileStats, check_tile_stats, check_tiles, default_overlap
from i2i.infer.translator import Translator
from i2i.runs.checkpoint import read_card, resolve_checkpoint
from i2i.runs.pretrained import resolve_model

FORMATS = {
    "png": ("PNG", "image/png"),
    "jpeg": ("JPEG", "image/jpeg"),
    "jpg": ("JPEG", "image/jpeg"),
}


@dataclass
class ServeConfig:
    """The server's limits (``i2i serve`` options). Raises ConfigError for values no server
    can run with (no workers would leave every request waiting forever)."""

    max_upload_bytes: int = 20 * 2**20
    max_pixels: int = 4096 * 4096
    token: str | None = None  # when set, /v1/* needs "Authorization: Bearer TOKEN"
    workers: int = 1  # inference threads (each uses torch's intra-op threads)
    queue: int = 16  # requests allowed to wait for a worker; more get 503
    max_tile_pixels: int = 1024 * 1024  # images above this are translated in tiles

    def __post_init__(self) -> None:
        for name, value, low in (
            ("--max-upload-mb", self.max_upload_bytes, 1),
            ("--max-pixels", self.max_pixels, 1),
            ("--workers", self.workers, 1),
            ("--queue", self.queue, 0),
        ):
            if value < low:
                raise ConfigError(f"{name} must be at least {low}, got {value}")


@dataclass
class ServedModel:
    name: str
    checkpoint: str
    direction: str
    translator: Translator

    def info(self) -> dict[str, Any]:
        t = self.translator
        return {
            "name": self.name,
            "model": t.description.get("model", "unknown"),
            "direction": self.direction,
            "checkpoint": self.checkpoint,
            "backend": t.backend,
            "input_channels": t.input_channels,
            "size_multiple": t.size_multiple,
            "train_size": t.description.get("train_size"),
            "train_side": t.train_side,
            "input_rules": "any size; padded to size_multiple and cropped back; gray/RGB/RGBA "
            "and 16-bit images are converted; resize=train scales the shorter side to "
            "train_side and the result back (auto: when it is over twice train_side)",
        }


# a model's name is one URL path segment: /v1/models/NAME/translate
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class ModelSpec:
    """One model to serve: URL name, source (a checkpoint folder or an exported .onnx file),
    and the direction it translates (None: an .onnx file's own)."""

    name: str
    source: Path
    direction: str | None


def plan_models(specs: list[str]) -> list[ModelSpec]:
    """Check every ``NAME=MODEL`` spec (a checkpoint or run, a URL, a published model's name,
    a reference ``.pth``, or an exported ``.onnx``) and read each card before any model is
    loaded, so a mistake in the last spec does not wait for the first to load.
    A CycleGAN serves both directions: NAME for its training direction, NAME-BtoA (or
    NAME-AtoB) for the other. ConfigError/CheckpointError naming the spec otherwise."""
    planned: dict[str, ModelSpec] = {}
    for spec in specs:
        name, eq, path = spec.partition("=")
        if not eq or not name or not path:
            raise ConfigError(f"--model {spec!r}: expected NAME=CHECKPOINT")
        if not MODEL_NAME.fullmatch(name):
            raise ConfigError(
                f"--model {spec!r}: a name is letters, digits, '.', '_' and '-' (it is part "
                "of the URL /v1/models/NAME/translate)"
            )
        targets: list[tuple[str, str | None]]
        if path.endswith(".onnx"):
            if not Path(path).is_file():
                raise ConfigError(f"--model {spec!r}: {path} not found")
            targets = [(name, None)]
            source = Path(path)
        else:
            source = resolve_checkpoint(resolve_model(path))
            card = read_card(source)
            if card.translate is None:
                raise ConfigError(f"--model {spec!r}: a {card.model} model does not translate")
            default = card.translate.default
            targets = [
                (name if direction == default else f"{name}-{direction}", direction)
                for direction in card.translate.nets
            ]
        for key, direction in targets:
            if key in planned:
                raise ConfigError(f"--model {spec!r}: the name {key!r} is taken")
            planned[key] = ModelSpec(key, source, direction)
    return list(planned.values())


def load_models(
    specs: list[str], device: str = "auto", backend: str = "torch"
) -> dict[str, ServedModel]:
    """``NAME=CHECKPOINT`` (or ``NAME=FILE.onnx``) specs -> served models, all checked first
    (:func:`plan_models`), then loaded."""
    models: dict[str, ServedModel] = {}
    for plan in plan_models(specs):
        t = Translator.load(plan.source, device, plan.direction, backend)  # type: ignore[arg-type]
        direction = plan.direction or str(t.description.get("direction", "AtoB"))
        models[plan.name] = ServedModel(plan.name, str(plan.source), direction, t)
    return models


def create_app(models: dict[str, ServedModel], cfg: ServeConfig | None = None) -> FastAPI:
    cfg = cfg or ServeConfig()
    # /docs with Swagger UI served from the package, not a CDN: it works offline
    app = FastAPIOffline(
        title="i2i",
        summary="Image-to-image translation with GANs",
        version="1",
    )
    limiter = anyio.CapacityLimiter(cfg.workers)
    waiting = 0  # requests between admission and a free worker (event-loop state, no lock)

    # every error is {"error": ...}: the API's own and the router's (unknown paths, methods)
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": exc.detail}, exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        # "query tile: Input should be a valid integer ...", one clause per field
        problems = [
            f"{' '.join(str(part) for part in e.get('loc', ()))}: {e.get('msg', 'invalid')}"
            for e in exc.errors()
        ]
        return JSONResponse({"error": "; ".join(problems)}, 422)

    def check_token(request: Request) -> None:
        if cfg.token is None:
            return
        given = request.headers.get("authorization", "")
        if not secrets.compare_digest(given.encode(), f"Bearer {cfg.token}".encode()):
            raise HTTPException(
                401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"}
            )

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(files("i2i.serve").joinpath("static/index.html").read_text())

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "models": len(models)}

    @app.get("/v1/models", responses=errors(401))
    async def list_models(request: Request) -> dict[str, Any]:
        check_token(request)
        return {"models": [m.info() for m in models.values()], "token": cfg.token is not None}

    @app.post(
        "/v1/models/{name}/translate",
        response_class=Response,
        responses={
            200: {"content": {"image/png": {}, "image/jpeg": {}}},
            **errors(400, 401, 404, 413, 422, 503),
        },
        openapi_extra={
            "requestBody": {
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["image"],
                            "properties": {
                                "image": {"type": "string", "format": "binary"},
                                "format": {"type": "string", "enum": ["png", "jpeg"]},
                                "tile": {"type": "integer"},
                                "tile_stats": {"type": "string", "enum": ["image", "tile"]},
                                "resize": {"type": "string", "example": "train"},
                            },
                        }
                    },
                    "image/*": {"schema": {"type": "string", "format": "binary"}},
                },
                "required": True,
            }
        },
    )
    async def translate(
        name: str,
        request: Request,
        format: str | None = None,
        tile: int | None = None,
        tile_stats: str | None = None,
        resize: str | None = None,
    ) -> Response:
        """Translate one image. Query or form fields: ``format`` (png | jpeg; default from the
        Accept header, else png), ``tile`` (tile size for large images), ``tile_stats`` (image,
        the default: tiles normalized by the whole image's statistics; tile: by their own, as a
        model trained on crops of the tile's size saw them) and ``resize`` (train:
        the model's training scale, auto: that when the image is over twice its size, WxH, or
        none, the default); the header ``X-I2I-Resize`` says what was done."""
        nonlocal waiting
        check_token(request)
        model = models.get(name)
        if model is None:
            raise HTTPException(
                404, f"no model {name!r}; GET /v1/models lists: {', '.join(models)}"
            )
        body = await read_limited(request, cfg.max_upload_bytes)
        data, fields = await split_upload(request, body)
        fmt = (fields.get("format") or format or accept_format(request)).lower()
        if fmt not in FORMATS:
            raise HTTPException(400, f"format {fmt!r}: use png or jpeg")
        tile_field = fields.get("tile")
        if tile_field is not None:
            if not tile_field.isdigit():
                raise HTTPException(400, f"tile {tile_field!r}: expected a whole number of pixels")
            tile = int(tile_field)
        try:
            scale = Resize.parse(fields.get("resize") or resize, "resize")
            stats = check_tile_stats(fields.get("tile_stats") or tile_stats or "image")
        except ConfigError as exc:
            raise HTTPException(400, str(exc).replace("--tile-stats", "tile_stats")) from None
        if stats == "tile" and tile is None:  # automatic tiles are for size, not statistics
            raise HTTPException(400, "tile_stats=tile goes with tile=SIZE (the training crop)")
        check_pixels(data, cfg.max_pixels)  # from the header, before any decoding
        if waiting >= cfg.queue:
            raise HTTPException(503, "busy: too many requests waiting", {"Retry-After": "1"})
        waiting += 1
        admitted = False
        try:
            async with limiter:  # wait for a free worker
                waiting -= 1
                admitted = True
                out, done = await anyio.to_thread.run_sync(
                    run_model, model.translator, data, tile, cfg, scale, stats
                )
        finally:
            if not admitted:  # the client went away while waiting
                waiting -= 1
        pil_format, media = FORMATS[fmt]
        buf = io.BytesIO()
        out.save(buf, pil_format, **({"quality": 95} if pil_format == "JPEG" else {}))
        return Response(buf.getvalue(), media_type=media, headers={"X-I2I-Resize": done})

    return app


class ErrorBody(BaseModel):
    """Every refusal's JSON body."""

    error: str


ERRORS = {
    400: "not an image, a corrupt one, or a bad field (format, tile, tile_stats, resize)",
    401: "missing or wrong bearer token (when the server has one)",
    404: "no model of that name (GET /v1/models lists them), or no such path",
    413: "upload over --max-upload-mb, or image over --max-pixels (read from its header)",
    422: "a query parameter of the wrong type",
    503: "busy: --queue requests are waiting already; retry after Retry-After seconds",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the errors a route can answer."""
    return {code: {"model": ErrorBody, "description": ERRORS[code]} for code in codes}


def run_model(
    translator: Translator,
    data: bytes,
    tile: int | None,
    cfg: ServeConfig,
    resize: Resize | None = None,
    tile_stats: TileStats = "image",
) -> tuple[Image.Image, str]:
    """Runs in a worker thread: decode, scale as ``resize`` says, then translate whole, or in
    tiles (normalized by ``tile_stats``) when asked or when the image to translate is large.
    Returns the result at the upload's size and what was done, in words."""
    resize = resize or Resize()
    try:
        image = decode_bytes(data, "upload", cfg.max_pixels)
        size = picture_size(image)
        w, h = resize.target(*size, translator.train_side) or size
        if tile is None and w * h > cfg.max_tile_pixels:
            tile = 512
        overlap = default_overlap(tile) if tile else 0
        if tile:
            check_tiles(tile, overlap, translator.size_multiple)
        out, done = translator.translate_image(image, resize, tile, overlap, tile_stats=tile_stats)
        own = " on their own statistics" if tile_stats == "tile" else ""
        return array_to_pil(out), done + (f", in {tile} px tiles{own}" if tile else "")
    except UserError as exc:  # a corrupt upload, 32-bit float pixels, a tile that cannot fit
        raise HTTPException(400, str(exc).replace("--tile", "tile")) from None


async def read_limited(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"upload of {int(declared)} bytes; the limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"upload over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def split_upload(request: Request, body: bytes) -> tuple[bytes, dict[str, str]]:
    """(image bytes, text fields) from a multipart form (file field "image") or a raw body."""
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith("multipart/form-data"):
        if not body:
            raise HTTPException(400, "empty body: send an image (raw, or multipart field 'image')")
        return body, {}

    async def once() -> AsyncGenerator[bytes, None]:
        yield body

    try:
        form = await MultiPartParser(request.headers, once(), max_files=1, max_fields=8).parse()
    except MultiPartException as exc:
        raise HTTPException(400, f"unreadable multipart form: {exc.message}") from None
    upload = form.get("image")
    if not isinstance(upload, UploadFile):
        raise HTTPException(400, "multipart form without a file field named 'image'")
    data = await upload.read()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    return data, fields


def accept_format(request: Request) -> str:
    accept = request.headers.get("accept", "")
    return "jpeg" if "image/jpeg" in accept and "image/png" not in accept else "png"


def check_pixels(data: bytes, max_pixels: int) -> None:
    """Refuse (413) an image with more than ``max_pixels`` (``i2i serve --max-pixels``) by
    reading its header only; 400 for something that is not an image at all."""
    try:
        with open_header(io.BytesIO(data)) as image:  # this server's limit, not PIL's 179 MP
            w, h = image.size
    except UnidentifiedImageError:
        raise HTTPException(400, "not an image (PNG, JPEG, TIFF, BMP, WebP ...)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise HTTPException(400, f"unreadable image header ({exc})") from None
    if w * h > max_pixels:
        raise HTTPException(
            413,
            f"image of {w}x{h} pixels ({w * h:,}); this server takes at most {max_pixels:,} "
            "(i2i serve --max-pixels)",
        )
