"""The FastAPI app: versioned endpoints over the shipped models, a web page, JSON logs.

``create_app(settings)`` builds the app; ``aigc-lessons serve`` runs it under uvicorn.

==========================  ===================================================================
``GET  /v1/digits``         digits by model, class, count and seed, as a PNG grid or JSON pixels
``POST /v1/text``           a continuation of a prompt by the character GPT (decoding options)
``POST /v1/translate``      number words to digits by the sequence-to-sequence transformer
``GET  /v1/models``         the loaded models, their SHA-256, and the request limits
``GET  /v1/health``         liveness: the process answers
``GET  /v1/ready``          readiness: 200 once every model is loaded and verified, 503 before
``GET  /v1/openapi.json``   the OpenAPI description; ``GET /docs`` renders it (no CDN)
``GET  /``                  the web page (``static/index.html``, ``app.js``, ``style.css``)
==========================  ===================================================================

Errors are JSON, ``{"error": {"status", "code", "message"}}``: 422 for invalid input (the
message names the parameter and its limit), 404 for an unknown model, 413 for a body over
64 KiB, 429 with ``Retry-After`` when a model's queue is full, 503 while loading, 504 when a
request takes longer than ``timeout_s``. Each request is logged as one JSON line (method,
path, status, latency, images in its batch). A seed makes a request reproducible; without
one the server draws a seed and returns it in the ``X-Seed`` header.

Example:
    >>> from fastapi.testclient import TestClient
    >>> app = create_app(ServeSettings(models=("cgan_mnist",)))
    >>> with TestClient(app) as client:  # doctest: +SKIP
    ...     client.get("/v1/digits", params={"digit": 3, "count": 4, "seed": 0}).headers["content-type"]
    'image/png'
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import logging
import secrets
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from .batching import DynamicBatcher, Overloaded
from .limits import MAX_SEED, ServeSettings
from .models import ServedModels, load_models, present

LOGGER = logging.getLogger("aigc_lessons.serve")
STATIC = Path(__file__).parent / "static"
# The page and its files, read once: routes name them, so no request path ever reaches the disk.
PAGES = {"/": ("index.html", "text/html; charset=utf-8"),
         "/docs": ("docs.html", "text/html; charset=utf-8"),
         "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
         "/static/docs.js": ("docs.js", "text/javascript; charset=utf-8"),
         "/static/style.css": ("style.css", "text/css; charset=utf-8")}
MAX_BODY_BYTES = 64 * 1024
SECURITY_HEADERS = {"x-content-type-options": "nosniff", "x-frame-options": "DENY",
                    "content-security-policy": "default-src 'self'; img-src 'self' data: blob:; "
                                               "object-src 'none'; frame-ancestors 'none'"}


class ApiError(Exception):
    """An error answered as JSON with a status, a machine-readable code and a message."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def error_response(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"status": status, "code": code, "message": message}}, status,
                        headers=headers)


class TextRequest(BaseModel):
    """``POST /v1/text``: a prompt and how to decode its continuation."""

    prompt: str = Field(min_length=1, description="the start of the text (characters of the plays)")
    max_new_tokens: int = Field(200, ge=1, description="characters to add")
    temperature: float = Field(0.8, gt=0, le=5, description="softmax temperature")
    top_k: int | None = Field(None, ge=1, le=1000, description="keep the k most probable characters")
    top_p: float | None = Field(None, gt=0, le=1, description="nucleus sampling: keep mass p")
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="the same seed gives the same text")


class TranslateRequest(BaseModel):
    """``POST /v1/translate``: number words such as ``"forty-two"``."""

    words: str = Field(min_length=1, description="a number from 0 to 9999 in English words")


class RequestLog:
    """ASGI middleware: one JSON log line per request; refuses bodies over ``MAX_BODY_BYTES``."""

    def __init__(self, app, enabled: bool = True) -> None:
        self.app, self.enabled, self._ids = app, enabled, itertools.count(1)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, request_id = time.perf_counter(), f"{next(self._ids):x}"
        status = [500]

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode()),
                                      *((k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items())]
            await send(message)

        length = dict(scope.get("headers", [])).get(b"content-length", b"0")
        try:
            too_large = int(length) > MAX_BODY_BYTES
        except ValueError:
            too_large = True
        try:
            if too_large:
                response = error_response(413, "body_too_large",
                                          f"the request body is over {MAX_BODY_BYTES} bytes")
                await response(scope, receive, send_with_headers)
            else:
                await self.app(scope, receive, send_with_headers)
        finally:
            if self.enabled:
                state = scope.get("state") or {}
                LOGGER.info(json.dumps({
                    "event": "request", "id": request_id, "method": scope["method"], "path": scope["path"],
                    "status": status[0], "latency_ms": round(1000 * (time.perf_counter() - started), 2),
                    "model": state.get("model"), "count": state.get("count"),
                    "batch_images": state.get("batch_images")}))


class ServerState:
    """What the app holds between requests: settings, models, one batcher per model."""

    def __init__(self, settings: ServeSettings, served: ServedModels | None) -> None:
        self.settings, self.served = settings, served
        self.error: str | None = None
        self.batchers: dict[str, DynamicBatcher] = {}
        self.started = time.time()

    @property
    def ready(self) -> bool:
        return self.served is not None and bool(self.batchers)

    async def load(self) -> None:
        try:
            if self.served is None:
                self.served = await asyncio.to_thread(load_models, self.settings.models, self.settings.device)
            self._make_batchers()
            LOGGER.info(json.dumps({"event": "ready", "models": self.served.describe()}))
        except Exception as error:  # readiness reports it; liveness stays up so the cause is visible
            self.error = f"{type(error).__name__}: {error}"
            LOGGER.error(json.dumps({"event": "load_failed", "error": self.error}))

    def _make_batchers(self) -> None:
        s, served = self.settings, self.served
        common = {"max_pending": s.max_queue, "wait_s": s.batch_wait_ms / 1000}
        for name, model in served.digits.items():
            self.batchers[name] = DynamicBatcher(_digit_runner(model, s.threads), max_items=s.max_batch_images,
                                                 batching=s.batching, size=lambda item: len(item[0]),
                                                 **common)
        if served.text is not None:  # prompts differ in length: one at a time
            self.batchers[served.text.name] = DynamicBatcher(
                lambda items, text=served.text: [text.generate(**item) for item in items],
                batching=False, **common)
        if served.translator is not None:
            self.batchers[served.translator.name] = DynamicBatcher(
                served.translator.translate, max_items=256, batching=s.batching, **common)

    async def submit(self, name: str, item):
        try:
            return await asyncio.wait_for(self.batchers[name].submit(item), self.settings.timeout_s)
        except Overloaded as error:
            raise ApiError(429, "overloaded", str(error),
                           {"retry-after": str(max(1, round(error.retry_after_s)))}) from None
        except asyncio.TimeoutError:
            raise ApiError(504, "timeout", f"the request took longer than {self.settings.timeout_s:g} s "
                           "(the server's timeout); ask for fewer images or tokens") from None

    async def close(self) -> None:
        for batcher in self.batchers.values():
            await batcher.close()


def _digit_runner(model, threads: int = 1):
    """The batch function of a digit model: concatenate the requests' noise, one pass, split."""

    def run(items: list[tuple[torch.Tensor, torch.Tensor | None]]) -> list[tuple[np.ndarray, int]]:
        if torch.get_num_threads() != threads:  # set in the worker thread itself, where the pass runs
            torch.set_num_threads(threads)
        noise = torch.cat([noise for noise, _ in items])
        labels = torch.cat([labels for _, labels in items]) if model.conditional else None
        pixels = (model.generate(noise, labels) * 255).round().to(torch.uint8).numpy()
        out, start = [], 0
        for item_noise, _ in items:
            out.append((pixels[start:start + len(item_noise)], len(noise)))
            start += len(item_noise)
        return out

    return run


def png_grid(pixels: np.ndarray, columns: int) -> bytes:
    """``(N, 28, 28)`` uint8 images as one PNG grid of ``columns`` columns (2-pixel gaps)."""
    from PIL import Image

    count, height, width = pixels.shape
    rows = -(-count // columns)
    grid = np.zeros((rows * (height + 2) - 2, columns * (width + 2) - 2), dtype=np.uint8)
    for index, image in enumerate(pixels):
        row, column = divmod(index, columns)
        grid[row * (height + 2):row * (height + 2) + height, column * (width + 2):column * (width + 2) + width] = image
    buffer = io.BytesIO()
    Image.fromarray(grid, mode="L").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _validation_message(error: RequestValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item.get("loc", ()) if p not in ("query", "body")) or "request"
        got = f" (got {item['input']!r})" if "input" in item and not isinstance(item["input"], dict) else ""
        parts.append(f"{where}: {item.get('msg', 'invalid')}{got}")
    return "; ".join(parts)


def create_app(settings: ServeSettings | None = None, served: ServedModels | None = None) -> FastAPI:
    """The app; models load at startup (in a thread) unless ``served`` gives them already loaded.

    Example:
        >>> app = create_app(ServeSettings(models=("cgan_mnist",)))
        >>> sorted(route.path for route in app.routes if route.path.startswith("/v1/"))[:3]
        ['/v1/digits', '/v1/health', '/v1/models']
    """
    settings = settings or ServeSettings()
    state = ServerState(settings, served)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        loading = asyncio.create_task(state.load())
        yield
        loading.cancel()
        await state.close()

    app = FastAPI(title="AIGC Lessons generator server", version="1", lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url="/v1/openapi.json",
                  description="The book's shipped models behind a versioned HTTP API.")
    app.state.server = state
    app.add_middleware(RequestLog, enabled=settings.log_requests)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, error: ApiError):
        return error_response(error.status, error.code, error.message, error.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError):
        return error_response(422, "invalid_request", _validation_message(error))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(error.status_code, "http_error")
        return error_response(error.status_code, code, str(error.detail))

    def require_ready() -> ServedModels:
        if not state.ready:
            message = (f"the models failed to load: {state.error}" if state.error
                       else "the server is still loading its models; retry shortly")
            raise ApiError(503, "not_ready", message, {"retry-after": "1"})
        return state.served

    def pick_seed(seed: int | None) -> int:
        return secrets.randbelow(MAX_SEED + 1) if seed is None else seed

    @app.get("/v1/health", tags=["service"])
    async def health() -> dict:
        """Liveness: the process is up and its event loop answers."""
        return {"status": "ok", "uptime_s": round(time.time() - state.started, 1)}

    @app.get("/v1/ready", tags=["service"])
    async def ready():
        """Readiness: 200 once the models are loaded and verified; 503 (with the reason) before."""
        if not state.ready:
            return error_response(503, "not_ready", state.error or "loading models", {"retry-after": "1"})
        stats = {name: {"batches": b.stats.batches, "requests": b.stats.requests, "items": b.stats.items,
                        "largest_batch": b.stats.largest, "rejected": b.stats.rejected, "pending": b.pending}
                 for name, b in state.batchers.items()}
        return {"status": "ready", "models": sorted(state.batchers), "batchers": stats}

    @app.get("/v1/models", tags=["service"])
    async def models() -> dict:
        """The loaded models (name, task, SHA-256 verified at start) and the request limits."""
        served = require_ready()
        missing = [name for name in settings.models if name not in present(settings.models)]
        return {"models": served.describe(), "not_shipped": missing, "limits": settings.public()}

    @app.get("/v1/digits", tags=["generate"],
             responses={200: {"content": {"image/png": {}, "application/json": {}},
                              "description": "a PNG grid (format=png) or pixel values (format=json)"}})
    async def digits(request: Request,
                     model: str = Query("cgan_mnist", max_length=64, description="a digit model's name"),
                     digit: int | None = Query(None, ge=0, le=9, description="the class; none: 0, 1, 2, ..."),
                     count: int = Query(8, ge=1, le=settings.max_count, description="images to draw"),
                     seed: int | None = Query(None, ge=0, le=MAX_SEED, description="the noise seed"),
                     format: Literal["png", "json"] = Query("png", description="png grid or json"),
                     columns: int = Query(8, ge=1, le=64, description="columns of the PNG grid")):
        """Digits from a shipped generator; the same model, digit, count and seed give the same images."""
        served = require_ready()
        if model not in served.digits:
            raise ApiError(404, "unknown_model", f"no digit model named {model!r}; loaded: "
                           f"{', '.join(sorted(served.digits)) or 'none'}")
        chosen = served.digits[model]
        limit = settings.max_count_diffusion if chosen.kind == "diffusion" else settings.max_count
        if count > limit:
            raise ApiError(422, "invalid_request", f"count: at most {limit} images per request for "
                           f"{model} (got {count})")
        if digit is not None and not chosen.conditional:
            raise ApiError(422, "invalid_request", f"digit: {model} is unconditional, it cannot be asked "
                           "for a class; leave digit out or pick a conditional model")
        seed = pick_seed(seed)
        labels = None
        if chosen.conditional:
            labels = torch.full((count,), digit) if digit is not None else torch.arange(count) % 10
        request.state.model, request.state.count = model, count
        pixels, batch_images = await state.submit(model, (chosen.draw_noise(count, seed), labels))
        request.state.batch_images = batch_images
        headers = {"x-seed": str(seed), "x-model-sha256": chosen.sha256, "x-batch-images": str(batch_images)}
        if format == "json":
            return JSONResponse({"model": model, "digit": digit, "count": count, "seed": seed,
                                 "labels": None if labels is None else labels.tolist(),
                                 "shape": list(pixels.shape), "images": pixels.tolist()}, headers=headers)
        # Encoded in a thread: zlib releases the GIL, so the event loop keeps answering meanwhile.
        png = await asyncio.to_thread(png_grid, pixels, min(columns, count))
        return Response(png, media_type="image/png", headers=headers)

    @app.post("/v1/text", tags=["generate"])
    async def text(request: Request, body: TextRequest) -> JSONResponse:
        """A continuation of ``prompt`` by the character GPT trained on Shakespeare."""
        served = require_ready()
        if served.text is None:
            raise ApiError(404, "unknown_model", "the text model is not loaded on this server")
        limit = min(settings.max_prompt_chars, served.text.module.context_length)
        if len(body.prompt) > limit:
            raise ApiError(422, "invalid_request", f"prompt: at most {limit} characters (got {len(body.prompt)})")
        if body.max_new_tokens > settings.max_new_tokens:
            raise ApiError(422, "invalid_request", f"max_new_tokens: at most {settings.max_new_tokens} "
                           f"(got {body.max_new_tokens})")
        unknown = sorted(set(body.prompt) - set(served.text.vocab.characters))
        if unknown:
            raise ApiError(422, "invalid_request", f"prompt: the model knows no character {''.join(unknown)!r}; "
                           "use the letters, digits and punctuation of the plays")
        seed = pick_seed(body.seed)
        request.state.model, request.state.count = served.text.name, body.max_new_tokens
        item = {"prompt": body.prompt, "max_new_tokens": body.max_new_tokens, "temperature": body.temperature,
                "top_k": body.top_k, "top_p": body.top_p, "seed": seed}
        continuation = await state.submit(served.text.name, item)
        request.state.batch_images = 1
        return JSONResponse({"model": served.text.name, "prompt": body.prompt, "text": continuation,
                             "seed": seed, "sha256": served.text.sha256}, headers={"x-seed": str(seed)})

    @app.post("/v1/translate", tags=["generate"])
    async def translate(request: Request, body: TranslateRequest) -> JSONResponse:
        """Number words to digits (``"forty-two"`` → ``"42"``), greedy decoding."""
        served = require_ready()
        if served.translator is None:
            raise ApiError(404, "unknown_model", "the translation model is not loaded on this server")
        words = body.words.strip().lower()
        limit = min(settings.max_words_chars, served.translator.module.source_length)
        if len(words) > limit:
            raise ApiError(422, "invalid_request", f"words: at most {limit} characters (got {len(words)})")
        allowed = set(served.translator.words.characters)
        unknown = sorted(set(words) - allowed)
        if unknown:
            raise ApiError(422, "invalid_request", f"words: characters {''.join(unknown)!r} are not used in "
                           "number words; write a number such as 'three hundred and five'")
        request.state.model, request.state.count = served.translator.name, 1
        digits_text = await state.submit(served.translator.name, words)
        return JSONResponse({"model": served.translator.name, "words": words, "digits": digits_text})

    def page(path: str):
        name, media_type = PAGES[path]
        content = (STATIC / name).read_bytes()

        async def serve_page() -> Response:
            return Response(content, media_type=media_type, headers={"cache-control": "no-cache"})

        return serve_page

    for path in PAGES:
        app.get(path, include_in_schema=False)(page(path))
    return app


def run(settings: ServeSettings) -> None:
    """Verify the weights, then serve ``create_app(settings)`` with uvicorn until interrupted."""
    import uvicorn

    from .models import verify_models

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(settings.threads)
    names = present(settings.models)
    verified = verify_models(names)  # a file that does not match its card stops the server here
    LOGGER.info(json.dumps({"event": "verified", "sha256": {k: v[:16] for k, v in verified.items()}}))
    LOGGER.info(json.dumps({"event": "listening", "url": f"http://{settings.host}:{settings.port}"}))
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="warning",
                access_log=False, timeout_graceful_shutdown=5)
