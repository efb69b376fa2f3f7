"""Serving over HTTP: ``POST /predict``, ``GET /health`` and ``GET /metadata`` around one Predictor.

FastAPI and uvicorn come with the ``serve`` extra; only the ``serve`` command imports this
module, so training and the test tiers run without them.

A request's items go through the task's ``request_inputs`` and the Predictor: the checks
``predict`` makes on a file. Bad input gets a 4xx with the message the command line prints
(400 unreadable body, 413 too large, 415 wrong content type, 422 invalid items), never a 500.
"""

from __future__ import annotations

import json
import socket
import threading
from typing import Any

import pandas as pd
import uvicorn
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from .. import NAME, __version__
from ..config import ServeConfig
from ..data import REQUEST_FORMAT, request_inputs
from ..task import Upload
from .predictor import Predictor

if REQUEST_FORMAT == "files":
    # Starlette reads uploads with python-multipart: without it the first upload would fail, so fail now.
    import python_multipart  # noqa: F401

# Multipart form fields: one file, answered with one prediction, or a batch, answered with a list.
ONE_FILE, BATCH_OF_FILES = "file", "files"
HOW_TO_SEND = {
    "json": "JSON (Content-Type: application/json): one item, or a list of items as a batch",
    "files": f"a multipart/form-data upload: one file in the field '{ONE_FILE}', or a batch in the field "
    f"'{BATCH_OF_FILES}' (repeated)",
}


class JSONAnswer(JSONResponse):
    """JSON in ASCII: a message quoting the client's text (even a lone surrogate) always encodes."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


def create_app(predictor: Predictor, config: ServeConfig | None = None) -> FastAPI:
    """The HTTP application serving ``predictor``, with the request limits of ``config``."""
    config = config or ServeConfig()
    # One forward pass at a time: torch already spreads one over every core, and a model need not be thread-safe.
    lock = threading.Lock()
    # At most max_decoding requests turn their items into inputs (decode images, tokenize texts) at once:
    # the memory a burst of requests takes is that of max_decoding requests, not of every waiting one.
    decoding = threading.BoundedSemaphore(config.max_decoding)
    metadata = {
        "name": NAME,
        "version": __version__,
        "model": predictor.source.get("model"),
        "model_options": predictor.source.get("model_options"),
        "classes": predictor.classes,
        "checkpoint": {"sha256": predictor.source.get("sha256"), "epoch": predictor.source.get("epoch")},
        "input": {
            "format": REQUEST_FORMAT,
            "send": HOW_TO_SEND[REQUEST_FORMAT],
            "max_request_bytes": config.max_request_bytes,
            "max_batch": config.max_batch,
            "max_decoding": config.max_decoding,
        },
    }
    # No generated API docs: /predict reads its body itself (to enforce the limits), so they would show nothing.
    app = FastAPI(title=NAME, version=__version__, docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(HTTPException)
    async def refuse(request: Request, error: HTTPException) -> JSONAnswer:
        return JSONAnswer({"detail": error.detail}, status_code=error.status_code, headers=error.headers)

    @app.get("/health")
    async def health() -> JSONAnswer:
        return JSONAnswer({"status": "ok"})

    @app.get("/metadata")
    async def describe() -> JSONAnswer:
        return JSONAnswer(metadata)

    def answer(items: list[Any]) -> list[dict[str, Any]]:
        try:
            with decoding:
                inputs = request_inputs(items)
                with lock:
                    predictions = predictor.predict(inputs)
        except ValueError as err:  # the task's and the Predictor's checks: the message names the problem
            raise HTTPException(422, str(err)) from None
        return records(predictions, predictor.classes)

    @app.post("/predict")
    async def predict(request: Request) -> JSONAnswer:
        items, single = await read_items(request, config)
        predictions = await run_in_threadpool(answer, items)
        return JSONAnswer(predictions[0] if single else {"predictions": predictions})

    return app


async def read_items(request: Request, config: ServeConfig) -> tuple[list[Any], bool]:
    """The items of a ``/predict`` request, and whether it sent one item (rather than a batch)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    expected = "application/json" if REQUEST_FORMAT == "json" else "multipart/form-data"
    if media_type != expected:
        raise HTTPException(415, f"send {HOW_TO_SEND[REQUEST_FORMAT]}; got Content-Type {media_type or 'none'!r}")
    body = await read_body(request, config.max_request_bytes)
    if REQUEST_FORMAT == "json":
        items, single = parse_json(body)
    else:
        items, single = await parse_uploads(request, body)
    if not items:
        raise HTTPException(422, "an empty batch: send at least one item")
    if len(items) > config.max_batch:
        raise HTTPException(413, f"{len(items)} items in one request; at most {config.max_batch} (serve --max-batch)")
    return items, single


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    too_large = f"the request body exceeds {limit} bytes (serve --max-request-bytes)"
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, too_large)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:  # a body sent without a length, or longer than it said
            raise HTTPException(413, too_large)
    return bytes(body)


def parse_json(body: bytes) -> tuple[list[Any], bool]:
    """A JSON list is a batch of items; any other JSON value is one item."""

    def refuse_constant(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    try:
        value = json.loads(body, parse_constant=refuse_constant)
    except (ValueError, RecursionError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise HTTPException(400, f"the body is not valid JSON: {err}") from None
    return (value, False) if isinstance(value, list) else ([value], True)


async def parse_uploads(request: Request, body: bytes) -> tuple[list[Upload], bool]:
    """The files of a multipart body: one in the field ``file``, or a batch in the field ``files``."""

    async def replay() -> dict[str, Any]:  # the body is read already: hand it to the form parser again
        return {"type": "http.request", "body": body, "more_body": False}

    # The body is bounded already, so the parser needs no limits of its own on files and fields.
    async with Request(request.scope, replay).form(max_files=len(body), max_fields=len(body)) as form:
        fields = sorted(set(form.keys()))
        if fields not in ([ONE_FILE], [BATCH_OF_FILES]):
            raise HTTPException(422, f"send {HOW_TO_SEND['files']}; got the field(s) {fields}")
        field = fields[0]
        values = form.getlist(field)
        if field == ONE_FILE and len(values) != 1:
            raise HTTPException(
                422, f"{len(values)} files in the field '{ONE_FILE}'; send a batch in the field '{BATCH_OF_FILES}'"
            )
        uploads = []
        for value in values:
            if isinstance(value, str):
                raise HTTPException(422, f"the field '{field}' holds text, not a file (curl -F '{field}=@name.png')")
            uploads.append(Upload(value.filename or "", await value.read()))
    return uploads, field == ONE_FILE


def records(predictions: pd.DataFrame, classes: list[str]) -> list[dict[str, Any]]:
    """Prediction rows as JSON objects: the item's name where the inputs have one (an image's file
    name), ``label``, ``confidence`` and ``probabilities`` by class."""
    rows = []
    for name, row in predictions.iterrows():
        record: dict[str, Any] = {predictions.index.name: name} if predictions.index.name else {}
        record["label"] = row["label"]
        record["confidence"] = float(row["confidence"])
        record["probabilities"] = {c: float(row[f"probability_{c}"]) for c in classes}
        rows.append(record)
    return rows


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port`` (port 0: a free one); ValueError naming the address if it is taken."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as err:
        raise ValueError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as err:
        sock.close()
        raise ValueError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    return sock


def serve(predictor: Predictor, config: ServeConfig) -> None:
    """Answer requests on ``config.host``:``config.port`` until interrupted (Ctrl+C or SIGTERM)."""
    sock = listen(config.host, config.port)
    host, port = sock.getsockname()[:2]
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    fingerprint = (predictor.source.get("sha256") or "")[:12]
    print(f"serving {predictor.source.get('model')} (checkpoint {fingerprint}) on {url}", flush=True)
    server = uvicorn.Server(uvicorn.Config(create_app(predictor, config), timeout_graceful_shutdown=5))
    with sock:
        server.run(sockets=[sock])
