"""The FastAPI application behind `zerograd serve`: the page (static files in the package) and its JSON API.

    GET  /              the page (static/index.html, app.js, style.css): draw a digit, or upload an image
    GET  /health        {"status": "ok", "models": COUNT}
    GET  /api/models    {"default": NAME, "max_request_bytes": 2 MB, "models": [{"name", "arch", "test_accuracy",
                        "label", "kind" ("digits" | "images"), "classes", "channels", "image_size" [H, W]}, ...]}
    POST /api/predict   {"image": DATA_URL_OR_BASE64, "model": NAME?} ->
                        {"label", "class", "classes", "probabilities" (one per class), "input", "saliency", "model"}

A digit model's "input" is the 28x28 digit prepared like MNIST's and its "saliency" the signed gradient (28, 28);
an image model's "input" is the image as prepared for it, in [0, 1] ((H, W, 3) colour, (H, W) grey), and its
"saliency" the maximum over channels of the gradient's absolute value (H, W).

Bad input gets 413 (body over 2 MB), 422 (not JSON, missing or mistyped field), 400 (not an image, blank
image: the message `zerograd predict` gives) or 404 (unknown model); every error body is {"detail": MESSAGE}.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from pathlib import Path
from typing import Any, Sequence

from ..errors import DataError, ZerogradError

try:
    import pydantic
    from fastapi import FastAPI, HTTPException, Request
    from fastapi.responses import FileResponse, JSONResponse
    from fastapi.staticfiles import StaticFiles
    from starlette.concurrency import run_in_threadpool
    from starlette.types import ASGIApp, Message, Receive, Scope, Send
except ImportError as exc:  # an optional extra: say how to get it
    raise ZerogradError(f'zerograd serve needs FastAPI ({exc.name} is missing): pip install "zerograd[serve]"') from exc

from .inference import ServedModel, predict_bytes

__all__ = ["create_app", "MAX_BODY_BYTES", "MAX_IMAGE_PIXELS"]

STATIC = Path(__file__).resolve().parent / "static"
MAX_BODY_BYTES = 2 * 1024 * 1024
DRAIN_LIMIT = 16 * 1024 * 1024  # past this much, a too-large body is cut off rather than read to its end
# A few hundred pixels across is a digit, and an image model reads a few dozen; a 2 MB PNG can still unpack
# to a huge image, so cap the pixels before decoding (a 12-megapixel phone photo still fits).
MAX_IMAGE_PIXELS = 4096 * 4096
UPLOAD = "the uploaded image"  # how error messages name the image, where `zerograd predict` names the file
REQUEST_SHAPE = 'send JSON {"image": "<data URL or base64 of a PNG/JPEG>", "model": "<optional name>"}'


class PredictRequest(pydantic.BaseModel):
    """Body of POST /api/predict."""

    image: str
    model: str | None = None


class BodySizeLimit:
    """ASGI middleware: answers 413 to a request body over `limit` bytes, by its Content-Length and its real size."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await self._too_large(scope, receive, send, more=int(length) <= DRAIN_LIMIT)
            return
        # Read the body here, counting, rather than trusting the header (chunked bodies have none,
        # and a client can lie); then hand the app a receive() that replays it.
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            more = message.get("more_body", False)
            if size > self.limit:
                await self._too_large(scope, receive, send, more)
                return
            chunks.append(chunk)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as Starlette expects

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, more: bool = True) -> None:
        # A client still sending when the server answers and closes gets a reset, not the 413: read
        # (and drop) the rest of a moderately large body first, so that it sees the answer.
        drained = 0
        while more and drained <= DRAIN_LIMIT:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            drained += len(message.get("body", b""))
            more = message.get("more_body", False)
        mb = self.limit / (1024 * 1024)
        detail = f"the request body is over {mb:g} MB; send a smaller image (a few hundred pixels across is plenty)"
        await JSONResponse({"detail": detail}, status_code=413)(scope, receive, send)


def _validation_message(err: pydantic.ValidationError) -> str:
    """One line naming what is wrong with a /api/predict body, and what to send."""
    parts = []
    for e in err.errors(include_url=False):
        if e["type"] == "json_invalid":
            parts.append(f"the body is not valid JSON ({e.get('ctx', {}).get('error', e['msg'])})")
        elif e["loc"]:
            parts.append(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}")
        else:
            parts.append(f"the body must be a JSON object ({e['msg']})")
    return "; ".join(parts) + f"; {REQUEST_SHAPE}"


def _image_bytes(text: str) -> bytes:
    """The file bytes inside a data URL ("data:image/png;base64,...") or plain base64 text."""
    if text.startswith("data:"):
        header, comma, text = text.partition(",")
        if not comma or not header.endswith(";base64"):
            raise DataError(f"{UPLOAD} is a data URL without base64 data; send data:image/png;base64,...")
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as err:
        raise DataError(
            f"{UPLOAD} is neither a data URL nor base64 ({err}); send data:image/png;base64,... "
            "or the PNG/JPEG file's bytes in base64"
        ) from err


def create_app(models: Sequence[ServedModel]) -> FastAPI:
    """The web app serving `models` (the first is the default) and the page."""
    if not models:
        raise ZerogradError("create_app needs at least one model to serve")
    by_name = {m.name: m for m in models}
    default = models[0].name
    # Requests run in a thread pool; one prediction at a time holds one decoded image in memory and leaves
    # zerograd's own worker threads to it.
    lock = threading.Lock()
    app = FastAPI(title="zerograd serve", docs_url=None, redoc_url=None)  # the docs pages load assets from a CDN
    app.add_middleware(BodySizeLimit, limit=MAX_BODY_BYTES)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "models": len(models)}

    @app.get("/api/models")
    def list_models() -> dict[str, Any]:
        return {"default": default, "max_request_bytes": MAX_BODY_BYTES, "models": [m.describe() for m in models]}

    def predict_locked(served: ServedModel, data: bytes) -> dict[str, Any]:
        with lock:
            return predict_bytes(served, data, where=UPLOAD, max_pixels=MAX_IMAGE_PIXELS)

    @app.post("/api/predict")
    async def predict(request: Request) -> JSONResponse:
        start = time.perf_counter()
        try:
            body = PredictRequest.model_validate_json(await request.body())
        except pydantic.ValidationError as err:
            raise HTTPException(422, _validation_message(err)) from err
        name = default if body.model is None else body.model
        if name not in by_name:
            raise HTTPException(404, f"no model named {name!r} is served; served: {', '.join(by_name)}")
        try:
            result = await run_in_threadpool(predict_locked, by_name[name], _image_bytes(body.image))
        except ZerogradError as err:
            raise HTTPException(400, str(err)) from err
        result["model"] = name
        ms = (time.perf_counter() - start) * 1000
        # Server-Timing is the standard header browsers' dev tools show; the page reads it too.
        return JSONResponse(result, headers={"Server-Timing": f"predict;dur={ms:.1f}"})

    return app
