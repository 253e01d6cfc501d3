"""The ASGI application of `dlbox serve`: v2 protocol routes, task routes, metrics, the page, and the gate
(request ids, access log, body limit, API key) in front of them."""

from __future__ import annotations

import asyncio
import gc
import hmac
import io
import itertools
import json
import logging
import re
import secrets
import threading
import time
import uuid
import warnings
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.staticfiles import StaticFiles

from dlbox.base.errors import UserError
from dlbox.serve.batcher import Batcher, InferenceFailed, Job, QueueFull
from dlbox.serve.metrics import Metrics
from dlbox.serve.protocol import HEADER, BadRequest, encode_response, parse_request

log = logging.getLogger("dlbox.serve")
access = logging.getLogger("dlbox.serve.access")
IMAGE_TASKS = ("classify", "detect", "face", "caffe")
OPEN_PATHS = ("/", "/favicon.ico", "/v2/health/live", "/v2/health/ready")
OPEN_PREFIXES = ("/static/",)
PREDICT_PATH = re.compile(r"^/v1/models/([^/]+)/predict$")


@dataclass
class Limits:
    max_body: int = 16 * 2**20
    max_pixels: int = 25_000_000
    max_audio_s: float = 120.0
    timeout_s: float = 30.0


@dataclass
class Entry:
    name: str
    version: str
    task: str
    source: str
    predictor: Any = None  # the model's predictor, or its description when it runs in a worker process
    batcher: Batcher | None = None
    executor: Any = None  # dlbox.serve.worker: Executor (in this process) or ProcessExecutor


@dataclass
class State:
    specs: list  # dlbox.serve.models.ModelSpec
    limits: Limits
    api_key: str | None = None
    max_batch: int = 16
    max_delay_s: float = 0.002
    max_queue: int = 256
    threads: int | None = None  # intra-op threads of runtimes made at load (onnxruntime sessions of runs)
    worker: str = "process"  # where each model runs: its own process, or a thread of this one
    metrics: Metrics = field(default_factory=Metrics)
    models: dict[str, dict[str, Entry]] = field(default_factory=dict)
    ready: bool = False
    load_error: BaseException | None = None
    on_load_error: Any = None  # called with the error (the server then stops)

    def load_all(self) -> None:
        from dlbox.serve import worker

        started = []
        try:
            for spec in self.specs:  # worker processes load side by side
                started.append((spec, worker.start(spec, self.threads, self.worker)))
            for spec, ex in started:
                e = Entry(spec.name, spec.version, spec.task, spec.source, executor=ex)
                e.predictor = ex.wait_loaded() if isinstance(ex, worker.ProcessExecutor) else ex.predictor
                e.batcher = Batcher(ex, spec.name, self.max_batch, self.max_delay_s, self.max_queue, self.metrics,
                                    spec.version)  # fmt: skip
                self.models.setdefault(spec.name, {})[spec.version] = e
                self.metrics.loaded.labels(spec.name, spec.version).set(1)
                log.info("loaded %s version %s (%s, %s, %s) from %s", spec.name, spec.version, spec.task,
                         e.predictor.meta.get("fast_path") or e.predictor.meta.get("backend"),
                         f"pid {ex.proc.pid}" if isinstance(ex, worker.ProcessExecutor) else "in-process", spec.source)  # fmt: skip
            gc.collect()
            gc.freeze()  # what is loaded stays: full collections under load then skip it (no 100 ms pauses)
            self.ready = True
        except BaseException as e:  # noqa: BLE001 - reported, and the server stops
            for _, ex in started:
                ex.close()
            self.load_error = e
            if self.on_load_error:
                self.on_load_error(e)

    def healthy(self) -> bool:
        """Loaded, and every model's worker still running."""
        return self.ready and all(e.executor.alive() for v in self.models.values() for e in v.values())

    def close(self) -> None:
        self.ready = False
        for versions in self.models.values():
            for e in versions.values():
                if e.batcher:
                    e.batcher.close()  # finishes what is queued, then stops the model's worker

    def entry(self, name: str, version: str | None = None) -> Entry:
        versions = self.models.get(name)
        if not versions:
            known = ", ".join(sorted(self.models)) or "none loaded yet"
            raise BadRequest(f"unknown model {name!r} (served: {known})", 404)
        if version is None:
            return versions[max(versions, key=int)]
        if version not in versions:
            raise BadRequest(f"model {name!r} has no version {version!r} (versions: {', '.join(sorted(versions, key=int))})", 404)
        return versions[version]


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class Gate:
    """The server's outermost ASGI app: request id, API key, body size limit, access log line, HTTP metrics; then
    the fast lane (``lane``: a raw body posted to a task route, the busiest request there is, answered without
    FastAPI's routing) or the FastAPI app (every route, the OpenAPI document, multipart uploads)."""

    def __init__(self, app, state: State, access_log: bool = True, lane=None):
        self.app, self.state, self.access_log, self.lane = app, state, access_log, lane
        prefix = secrets.token_hex(4)  # ids unique to this server: a random prefix, then a counter
        self.ids = (f"{prefix}{i:08x}" for i in itertools.count())

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        given = headers.get("x-request-id", "")
        rid = given if given and len(given) <= 64 and given.replace("-", "").isalnum() else next(self.ids)
        status = {"code": 500}

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            path = scope["path"]
            if self.state.api_key and scope["method"] != "OPTIONS" and not self._open(path) and not self._authorized(headers):
                resp = error(401, "missing or wrong API key (hint: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY')",
                             {"www-authenticate": "Bearer"})  # fmt: skip
                return await resp(scope, receive, send_with_id)
            length = headers.get("content-length")
            limit = self.state.limits.max_body
            if length is not None and (not length.isdigit() or int(length) > limit):
                resp = error(413, f"the body is over the limit of {limit} bytes (hint: --max-body-mb)")
                return await resp(scope, receive, send_with_id)
            seen = {"n": 0}

            async def limited_receive():
                message = await receive()
                if message["type"] == "http.request":
                    seen["n"] += len(message.get("body", b""))
                    if seen["n"] > limit:
                        raise BadRequest(f"the body is over the limit of {limit} bytes (hint: --max-body-mb)", 413)
                return message

            try:
                fast = self.lane and self.lane.match(scope, headers)
                if fast:
                    await self.lane(scope, limited_receive, send_with_id, headers, fast)
                else:
                    await self.app(scope, limited_receive, send_with_id)
            except BadRequest as e:  # over the limit while streaming
                await error(e.status, str(e))(scope, receive, send_with_id)
        finally:
            route = getattr(scope.get("route"), "path", None) or scope.get("dlbox.route", "unmatched")
            self.state.metrics.http.labels(scope["method"], route, str(status["code"])).inc()
            if self.access_log:
                client = scope.get("client") or ("-", 0)
                access.info('%s %s %s "%s %s" %d %.1fms', rid, client[0], "-", scope["method"], scope["path"],
                            status["code"], 1000 * (time.perf_counter() - t0))  # fmt: skip

    @staticmethod
    def _open(path: str) -> bool:
        return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)

    def _authorized(self, headers: dict[str, str]) -> bool:
        auth = headers.get("authorization", "")
        given = auth[7:] if auth[:7].lower() == "bearer " else headers.get("x-api-key", "")
        return hmac.compare_digest(given.encode(), self.state.api_key.encode())


# -- request bodies --


def _guard(entry: Entry, payload: bytes, limits: Limits) -> None:
    """Refuse what is too large before decoding it: an image's pixels, a sound's length (from the headers)."""
    if not payload:
        raise BadRequest("the body is empty (hint: send the file's bytes, or a multipart upload)")
    if entry.task in IMAGE_TASKS:
        from PIL import Image

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with Image.open(io.BytesIO(payload)) as im:
                    w, h = im.size
        except Image.DecompressionBombError:
            w = h = 10**6
        except Exception:  # not an image at all: decode says so
            return
        if w * h > limits.max_pixels:
            raise BadRequest(f"the image is {w} x {h} = {w * h / 1e6:.1f} megapixels, over the limit of "
                             f"{limits.max_pixels / 1e6:g} (hint: --max-pixels)", 413)  # fmt: skip
    elif entry.task == "asr":
        import soundfile

        try:
            info = soundfile.info(io.BytesIO(payload))
        except Exception:
            return
        if info.duration > limits.max_audio_s:
            raise BadRequest(f"the audio is {info.duration:.1f} s long, over the limit of {limits.max_audio_s:g} s "
                             "(hint: --max-audio-s)", 413)  # fmt: skip


async def _uploads(request: Request) -> list[tuple[bytes, str | None, str]]:
    """(bytes, content type, file name) of each uploaded file (multipart), or of the raw body."""
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        try:
            form = await request.form(max_files=16, max_fields=16)
        except Exception as e:
            raise BadRequest(f"malformed multipart upload: {e}") from None
        out = []
        for key, value in form.multi_items():
            if hasattr(value, "read"):
                out.append((await value.read(), value.content_type, value.filename or key))
            elif key in ("text", "word", "input") and value:
                out.append((str(value).encode(), "text/plain", key))
        await form.close()
        if not out:
            raise BadRequest("the multipart upload holds no file (hint: -F file=@image.png)")
        return out
    return [(await request.body(), ctype or None, "body")]


def _pair(e: Entry, opts: dict[str, Any]) -> bool:
    """A face pair to verify: the request's two photos go to the model together, never batched with others."""
    return e.task == "face" and str(opts.get("pair", "")).lower() in ("true", "1", "yes")


def create_app(state: State, access_log: bool = True, cors: list[str] | None = None):
    """The ASGI app: the gate (and CORS when asked for) around the fast lane and the FastAPI app."""
    loader: dict[str, threading.Thread] = {}

    async def lifespan(app):
        loader["t"] = threading.Thread(target=state.load_all, name="serve-load", daemon=True)
        loader["t"].start()
        yield
        loader["t"].join()
        await run_in_threadpool(state.close)

    from dlbox import __version__

    app = FastAPI(title="dlbox serve", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="dlbox models over HTTP: the KServe Open Inference Protocol v2 (/v2), task routes "
                  "(/v1) that take images, WAV files or words and answer as the CLI's --json, and Prometheus "
                  "/metrics.")  # fmt: skip
    app.state.dlbox = state

    @app.exception_handler(BadRequest)
    async def _bad(request: Request, e: BadRequest):
        return error(e.status, str(e), {"retry-after": "1"} if e.status == 503 else None)

    @app.exception_handler(UserError)
    async def _user(request: Request, e: UserError):
        return error(400, str(e))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, e: StarletteHTTPException):
        return error(e.status_code, str(e.detail), getattr(e, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, e: RequestValidationError):
        first = e.errors()[0] if e.errors() else {}
        return error(422, f"invalid request: {'.'.join(map(str, first.get('loc', [])))}: {first.get('msg', '')}")

    @app.exception_handler(Exception)
    async def _internal(request: Request, e: Exception):
        log.error("internal error on %s: %s: %s", request.url.path, type(e).__name__, str(e)[:300])
        return error(500, f"internal error: {type(e).__name__}")

    async def _wait(entry: Entry, jobs: list[Job], announced: bool = False) -> list[Any]:
        """Queue the jobs on the model's batcher and wait for their answers (503 when full, 504 on timeout).
        ``announced``: the request was announced to the batcher; the last job's submit withdraws it."""
        futures, withdrawn = [], False
        try:
            for i, j in enumerate(jobs):
                last = announced and i == len(jobs) - 1
                withdrawn = withdrawn or last
                futures.append(entry.batcher.submit(j, withdraw=last))
        except QueueFull:
            if announced and not withdrawn:
                entry.batcher.withdraw()
            for f in futures:
                f.cancel()
            raise BadRequest(f"model {entry.name!r} has {state.max_queue} requests waiting; try again shortly", 503) from None
        try:
            return await asyncio.wait_for(asyncio.gather(*futures), state.limits.timeout_s)
        except TimeoutError:
            raise BadRequest(f"no answer within {state.limits.timeout_s:g} s (hint: --timeout-s)", 504) from None
        except UserError as e:
            raise BadRequest(str(e)) from None
        except InferenceFailed:
            raise BadRequest(f"inference failed on model {entry.name!r} (the server's log says why)", 500) from None

    async def _tracked(entry_fn, work):
        """Run ``work(entry)`` for the model, counting success/failure by status and the request's duration."""
        t0 = time.perf_counter()
        entry = entry_fn()
        labels = (entry.name, entry.version)
        try:
            result = await work(entry)
        except BadRequest as e:
            state.metrics.failure.labels(*labels, str(e.status)).inc()
            raise
        except Exception:
            state.metrics.failure.labels(*labels, "500").inc()
            raise
        state.metrics.success.labels(*labels).inc()
        state.metrics.request.labels(*labels).observe(time.perf_counter() - t0)
        return result

    @app.exception_handler(QueueFull)
    async def _full(request: Request, e: QueueFull):
        return error(503, "the queue is full; try again shortly", {"retry-after": "1"})

    # -- v2 protocol --

    @app.get("/v2/health/live", tags=["v2"], summary="the server is up")
    async def live():
        return {"live": True}

    @app.get("/v2/health/ready", tags=["v2"], summary="every model is loaded (503 while loading)")
    async def ready():
        ok = state.healthy()
        return JSONResponse({"ready": ok}, status_code=200 if ok else 503)

    @app.get("/v2", tags=["v2"], summary="server metadata")
    async def server_meta():
        return {"name": "dlbox", "version": __version__, "extensions": ["binary_tensor_data", "model_repository"]}

    def _model_meta(e: Entry) -> dict[str, Any]:
        p = e.predictor
        return {"name": e.name, "versions": sorted(state.models[e.name], key=int), "platform": f"dlbox_{e.task}",
                "inputs": [{"name": s.name, "datatype": s.datatype, "shape": list(s.shape)} for s in p.inputs],
                "outputs": [{"name": s.name, "datatype": s.datatype, "shape": list(s.shape)} for s in p.outputs],
                "parameters": {"task": e.task, "version": e.version, **_jsonable(p.meta)}}  # fmt: skip

    @app.get("/v2/models/{name}", tags=["v2"], summary="model metadata (its newest version)")
    async def model_meta(name: str):
        return _model_meta(state.entry(name))

    @app.get("/v2/models/{name}/versions/{version}", tags=["v2"], summary="model version metadata")
    async def model_version_meta(name: str, version: str):
        return _model_meta(state.entry(name, version))

    @app.get("/v2/models/{name}/ready", tags=["v2"], summary="the model is ready")
    async def model_ready(name: str):
        e = state.entry(name)
        return _ready(e, {"name": e.name})

    @app.get("/v2/models/{name}/versions/{version}/ready", tags=["v2"], summary="the model version is ready")
    async def model_version_ready(name: str, version: str):
        e = state.entry(name, version)
        return _ready(e, {"name": e.name, "version": e.version})

    def _ready(e: Entry, body: dict[str, Any]) -> JSONResponse:
        ok = e.executor.alive()
        return JSONResponse({**body, "ready": ok}, status_code=200 if ok else 503)

    infer_body = {"requestBody": {"required": True, "content": {
        "application/json": {"schema": {"type": "object", "required": ["inputs"], "properties": {
            "id": {"type": "string"}, "parameters": {"type": "object"},
            "inputs": {"type": "array", "items": {"type": "object", "required": ["name", "shape", "datatype"],
                       "properties": {"name": {"type": "string"}, "shape": {"type": "array", "items": {"type": "integer"}},
                                      "datatype": {"type": "string"}, "data": {"type": "array", "items": {}},
                                      "parameters": {"type": "object"}}}},
            "outputs": {"type": "array", "items": {"type": "object"}}}}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"},
                                     "description": f"binary tensor data extension: JSON header of {HEADER} bytes, then tensors"}}}}  # fmt: skip

    async def _infer(request: Request, name: str, version: str | None):
        async def work(e: Entry):
            body = await request.body()
            req, arrays = parse_request(body, request.headers.get(HEADER), e.predictor.inputs)
            n = next(iter(arrays.values())).shape[0]
            if n == 0:
                raise BadRequest("the batch is empty")
            key = ("infer", tuple((k, a.shape[1:], a.dtype.str) for k, a in sorted(arrays.items())))
            (out,) = await _wait(e, [Job("infer", arrays, key=key, n=n)])
            body, headers = encode_response(req, out, e.name, e.version)
            return Response(body, headers=headers)

        return await _tracked(lambda: state.entry(name, version), work)

    @app.post("/v2/models/{name}/infer", tags=["v2"], summary="inference on tensors", openapi_extra=infer_body)
    async def infer(name: str, request: Request):
        return await _infer(request, name, None)

    @app.post("/v2/models/{name}/versions/{version}/infer", tags=["v2"], summary="inference on tensors, one version",
              openapi_extra=infer_body)  # fmt: skip
    async def infer_version(name: str, version: str, request: Request):
        return await _infer(request, name, version)

    # -- task routes --

    @app.get("/v1/models", tags=["task"], summary="the models served: name, versions, task, classes")
    async def list_models():
        data = []
        for name, versions in sorted(state.models.items()):
            e = versions[max(versions, key=int)]
            meta = _jsonable(e.predictor.meta)
            data.append({"id": name, "object": "model", "owned_by": "dlbox", "task": e.task,
                         "versions": sorted(versions, key=int), "classes": meta.get("classes")})  # fmt: skip
        return {"object": "list", "ready": state.ready, "data": data}

    upload_body = {"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            "file": {"type": "string", "format": "binary"}, "text": {"type": "string"}}}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        "text/plain": {"schema": {"type": "string"}, "description": "a word, for word2vec models"}}}}  # fmt: skip

    async def _predict_uploads(e: Entry, uploads, opts: dict[str, Any]) -> list[dict[str, Any]]:
        e.batcher.announce()  # the batcher may wait for this request while its files are checked
        try:
            for data, _, _ in uploads:  # sizes from the headers, before the model's worker decodes
                _guard(e, data, state.limits)
        except BaseException:
            e.batcher.withdraw()
            raise
        payloads = [(data, ctype) for data, ctype, _ in uploads]
        if _pair(e, opts):
            jobs = [Job("call", payloads, key=uuid.uuid4().hex, options=opts)]
        else:
            key = ("predict", tuple(sorted(opts.items())))
            jobs = [Job("predict", p, key=key, options=opts) for p in payloads]
        answers = await _wait(e, jobs, announced=True)
        if jobs[0].kind == "call":
            answers = answers[0]
        results = []
        for (_, _, fname), r in zip(uploads, answers, strict=False):
            results.append({"file": fname, **_jsonable(r)} if isinstance(r, dict) else r)
        return results

    @app.post("/v1/models/{name}/predict", tags=["task"], openapi_extra=upload_body,
              summary="an image, a WAV file or a word -> the CLI's --json answer (a list, one per file)",
              description="Raw bytes (Content-Type image/png, audio/wav, text/plain) or a multipart upload of one "
              "or more files. Options in the query string, as the task's CLI: topk (classify), conf (detect), "
              "topn and vector (word2vec), beam (asr), pair, aligned, flip (face: pair=true with two images "
              "verifies them); ?version=N picks a version.")  # fmt: skip
    async def predict(name: str, request: Request):
        return await _predict_route(name, request.query_params, lambda: _uploads(request))

    async def _predict_route(name: str, query, uploads) -> list[Any]:
        """The task route's work: the model (404 first), then its files (``await uploads()``) to its batcher."""

        async def work(e: Entry):
            opts = {k: v for k, v in query.items() if k != "version"}  # checked by the model's worker
            return await _predict_uploads(e, await uploads(), opts)

        return await _tracked(lambda: state.entry(name, query.get("version")), work)

    class Lane:
        """POST /v1/models/NAME/predict with a raw body (an image, a WAV file, a word: what load tools and most
        clients send), answered by the route's own work without FastAPI's routing and validation layers;
        multipart uploads, and every other route, go to FastAPI."""

        route = "/v1/models/{name}/predict"

        def match(self, scope, headers: dict[str, str]) -> str | None:
            if scope["method"] != "POST" or headers.get("content-type", "").startswith("multipart/"):
                return None
            m = PREDICT_PATH.match(scope["path"])
            return m.group(1) if m else None

        async def __call__(self, scope, receive, send, headers: dict[str, str], name: str) -> None:
            scope["dlbox.route"] = self.route
            try:
                chunks = []
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    chunks.append(message.get("body", b""))
                    if not message.get("more_body"):
                        break
                query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
                body = b"".join(chunks)
                response = JSONResponse(await _predict_route(name, query, _raw(body, headers.get("content-type"))))
            except BadRequest as e:
                response = error(e.status, str(e), {"retry-after": "1"} if e.status == 503 else None)
            except UserError as e:
                response = error(400, str(e))
            except Exception as e:
                log.error("internal error on %s: %s: %s", scope["path"], type(e).__name__, str(e)[:300])
                response = error(500, f"internal error: {type(e).__name__}")
            await response(scope, receive, send)

    def _only(task: str, name: str | None) -> Entry:
        if name:
            e = state.entry(name)
            if e.task != task:
                raise BadRequest(f"model {name!r} is a {e.task} model, not {task}")
            return e
        found = [v[max(v, key=int)] for v in state.models.values() if v[max(v, key=int)].task == task]
        if len(found) != 1:
            raise BadRequest(f"{len(found)} {task} models are served: name one with 'model'", 404 if not found else 400)
        return found[0]

    @app.post("/v1/audio/transcriptions", tags=["openai"], summary="OpenAI-style transcription of a WAV file",
              openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                  "type": "object", "required": ["file"], "properties": {
                      "file": {"type": "string", "format": "binary"}, "model": {"type": "string"}}}}}}})  # fmt: skip
    async def transcriptions(request: Request):
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise BadRequest("send a multipart upload with 'file' (and optionally 'model')")
        try:
            form = await request.form(max_files=1, max_fields=8)
        except Exception as e:
            raise BadRequest(f"malformed multipart upload: {e}") from None
        upload, model = form.get("file"), form.get("model")
        if not hasattr(upload, "read"):
            raise BadRequest("the upload has no 'file'")
        data = await upload.read()

        async def work(e: Entry):
            (r,) = await _predict_uploads(e, [(data, upload.content_type, upload.filename or "file")], {})
            text = r.get("text", r.get("transcript", "")) if isinstance(r, dict) else str(r)
            return {"text": text, **{k: v for k, v in r.items() if k not in ("text", "file")}}

        return await _tracked(lambda: _only("asr", str(model) if model else None), work)

    @app.post("/v1/embeddings", tags=["openai"], summary="OpenAI-style embeddings: words (word2vec) or images (face, "
              "base64 data URLs)", openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                  "schema": {"type": "object", "required": ["input"], "properties": {
                      "model": {"type": "string"}, "input": {"oneOf": [{"type": "string"},
                                                                      {"type": "array", "items": {"type": "string"}}]}}}}}}})  # fmt: skip
    async def embeddings(request: Request):
        try:
            req = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError) as e:
            raise BadRequest(f"malformed JSON: {e}") from None
        if not isinstance(req, dict) or "input" not in req:
            raise BadRequest("the request needs 'input' (a string or a list of strings)")
        inputs = req["input"] if isinstance(req["input"], list) else [req["input"]]
        if not inputs or not all(isinstance(s, str) for s in inputs):
            raise BadRequest("'input' must be a string or a non-empty list of strings")
        name = req.get("model")
        if name:
            e0 = state.entry(str(name))
        else:
            found = [v[max(v, key=int)] for v in state.models.values() if v[max(v, key=int)].task in ("text", "face")]
            if len(found) != 1:
                raise BadRequest(f"{len(found)} embedding models are served: name one with 'model'")
            e0 = found[0]
        if e0.task not in ("text", "face"):
            raise BadRequest(f"model {e0.name!r} is a {e0.task} model: embeddings come from text or face models")

        uploads = []
        for s in inputs:
            if e0.task == "face":
                import base64

                try:
                    uploads.append((base64.b64decode(s.split(",", 1)[-1], validate=True), None, "input"))
                except ValueError:
                    raise BadRequest("face embeddings take base64 images (data URLs)") from None
            else:
                uploads.append((s.encode(), "text/plain", s))

        async def work(e: Entry):
            results = await _predict_uploads(e, uploads, {} if e.task == "face" else {"vector": "true"})
            data = []
            for i, r in enumerate(results):
                faces = r.get("faces") or [{}]  # face: the photo's first (largest) face
                vec = next((d[k] for d in (r, faces[0]) for k in ("embedding", "vector") if k in d), None)
                if vec is None:
                    raise BadRequest(f"model {e.name!r} gives no embedding for input {i}")
                data.append({"object": "embedding", "index": i, "embedding": vec})
            return {"object": "list", "model": e.name, "data": data}

        return await _tracked(lambda: e0, work)

    # -- metrics, page --

    @app.get("/metrics", tags=["server"], summary="Prometheus metrics (nv_inference_* names, as Triton's)")
    async def metrics():
        for versions in state.models.values():
            for e in versions.values():
                state.metrics.pending.labels(e.name, e.version).set(e.batcher.qsize())
        return Response(state.metrics.render(), media_type="text/plain; version=0.0.4")

    static = resources.files("dlbox.serve") / "static"

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(str(static / "index.html"), media_type="text/html")

    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    outer = Gate(app, state, access_log=access_log, lane=Lane())
    if cors:
        outer = CORSMiddleware(outer, allow_origins=cors, allow_methods=["GET", "POST"],
                               allow_headers=["authorization", "content-type", "x-api-key", "x-request-id", HEADER],
                               expose_headers=["x-request-id", HEADER])  # fmt: skip
    return outer


def _raw(body: bytes, ctype: str | None):
    async def uploads() -> list[tuple[bytes, str | None, str]]:
        return [(body, ctype or None, "body")]

    return uploads


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return str(obj)
