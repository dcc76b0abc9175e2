"""The FastAPI app: OpenAI-images-style generation and edits, health, models, Prometheus metrics.

Bodies are read on the event loop (bounded by `BodyLimit`) but parsed and validated in a worker thread, so
`/health` keeps answering while large requests arrive. Every error leaves as one envelope (`errors.py`).
"""

from __future__ import annotations

import asyncio
import threading
import time

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from .admission import Queue
from .errors import ApiError, dumps, short
from .forms import parse_edit
from .generator import CachedGenerator, ClientDisconnected, RequestTimeout
from .metrics import ServerMetrics
from .middleware import ApiKeyCheck, BodyLimit, HostCheck, ResponseGuard
from .schema import ErrorEnvelope, ImagesResponse, edit_model, generation_model, parse_json_object, validate

__all__ = [
    "DISCONNECT_POLL_S", "build_app"
]

DISCONNECT_POLL_S = 0.05  # how often a running request looks whether its client is still there
ERRORS = {status: {"model": ErrorEnvelope} for status in (400, 401, 404, 413, 429, 500, 504)}


def json_response(body, status: int = 200, headers: dict | None = None) -> Response:
    return Response(dumps(body), status, headers=headers, media_type="application/json")


async def watch_disconnect(raw: Request, disconnected: threading.Event, done: threading.Event) -> None:
    """Set `disconnected` once the client has gone away; the generator's step callback then stops the work."""
    while not done.is_set():
        if await raw.is_disconnected():
            disconnected.set()
            return
        await asyncio.sleep(DISCONNECT_POLL_S)


def _body_schema(model, media: str, extra: dict | None = None) -> dict:
    schema = model.model_json_schema()
    if extra:
        schema = {**schema, "properties": {**schema["properties"], **extra}, "required": [*extra]}
    return {"requestBody": {"required": True, "content": {media: {"schema": schema}}}}


def build_app(generator: CachedGenerator) -> FastAPI:
    server, model_name = generator.server, generator.model.name
    app = FastAPI(title="cachedit", description="Cached diffusion generation (OpenAI images API subset)")
    metrics, queue = ServerMetrics(), Queue(server.max_queue)
    app.state.metrics, metrics.queue = metrics, queue
    GenerationRequest, EditRequest = generation_model(server), edit_model(server)
    model_card = {"id": model_name, "object": "model", "owned_by": "cachedit", "created": int(time.time())}

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request, error: StarletteHTTPException):
        message = {404: f"No route {short(request.url.path)}; see /openapi.json.",
                   405: f"{request.method} is not allowed on {short(request.url.path)}."}.get(error.status_code,
                                                                                            str(error.detail))
        raise ApiError(error.status_code, message, headers=getattr(error, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, error: RequestValidationError):
        problem = error.errors()[0]
        raise ApiError(400, f"`{problem['loc'][-1]}`: {problem['msg']}.", param=str(problem["loc"][-1]))

    @app.get("/health")
    def health():
        return {"status": "ok", "model": model_name}

    @app.get("/v1/models", responses=ERRORS)
    def models():
        return {"object": "list", "data": [model_card]}

    @app.get("/v1/models/{model_id}", responses=ERRORS)
    def model(model_id: str):
        if model_id != model_name:
            raise ApiError(404, f"`model`: this server serves {model_name!r}, not {short(model_id)}.",
                           param="model", code="model_not_found")
        return model_card

    @app.get("/metrics", response_class=PlainTextResponse, responses={
        200: {"content": {"text/plain; version=0.0.4": {"schema": {"type": "string"}}}}, **ERRORS})
    def prometheus():
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    async def run(raw: Request, request: dict, image: bytes | None = None) -> Response:
        received = raw.scope["state"]["received"]  # set by ResponseGuard on arrival
        if request.get("model") is not None and request["model"] != model_name:
            raise ApiError(404, f"`model`: this server serves {model_name!r}, not {short(request['model'])}.",
                           param="model", code="model_not_found")
        queue.enter(generator.rate.typical_request_s() * (queue.admitted + 1))
        disconnected, done = threading.Event(), threading.Event()
        watcher = asyncio.create_task(watch_disconnect(raw, disconnected, done))
        try:
            # Off the event loop: /health and /metrics answer while a generation runs.
            result = await run_in_threadpool(generator.generate, request, received, disconnected, image)
        except RequestTimeout as error:
            raise ApiError(504, str(error), code="timeout", timeout_s=error.timeout_s, step=error.step,
                           steps=error.steps) from None
        except ClientDisconnected as error:  # nginx's "client closed request"; nobody reads it
            raise ApiError(499, str(error), code="client_disconnected") from None
        finally:
            done.set()
            watcher.cancel()
            queue.leave()
        metrics.record_generation(result.cache.get("cached_steps", 0), result.cache.get("steps", 0))
        return json_response({"created": int(time.time()), "data": [{"b64_json": image} for image in result.images],
                              "cache": result.cache, "usage": result.usage})

    @app.post("/v1/images/generations", responses={200: {"model": ImagesResponse}, **ERRORS},
              openapi_extra=_body_schema(GenerationRequest, "application/json"))
    async def generations(raw: Request):
        body = await raw.body()
        request = await run_in_threadpool(lambda: validate(GenerationRequest, parse_json_object(body)).model_dump())
        return await run(raw, request)

    @app.post("/v1/images/edits", responses={200: {"model": ImagesResponse}, **ERRORS},
              openapi_extra=_body_schema(EditRequest, "multipart/form-data",
                                         {"image": {"type": "string", "format": "binary"}}))
    async def edits(raw: Request):
        body = await raw.body()
        request, image = await run_in_threadpool(parse_edit, raw.headers.get("content-type", ""), body, EditRequest)
        return await run(raw, request, image)

    # outermost last: guard > host > key > body limit > routes
    app.add_middleware(BodyLimit, limit=server.max_body_bytes)
    app.add_middleware(ApiKeyCheck, api_key=server.api_key)
    app.add_middleware(HostCheck, allowed_hosts=server.allowed_hosts)
    app.add_middleware(ResponseGuard, metrics=metrics)
    return app
