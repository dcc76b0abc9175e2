"""The FastAPI app: OpenAI-images-style generation, health, models, Prometheus metrics."""

from __future__ import annotations

import asyncio
import threading
import time

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from .generator import BadRequest, CachedGenerator, ClientDisconnected, RequestTimeout
from .metrics import ServerMetrics

__all__ = [
    "ImageRequest", "DISCONNECT_POLL_S", "build_app"
]


class ImageRequest(BaseModel):
    """``POST /v1/images/generations``; unknown fields are refused (422 naming them), never ignored."""

    model_config = ConfigDict(extra="forbid")

    prompt: str | None = None
    class_labels: list[int] | None = None
    model: str | None = None
    n: int = Field(1, ge=1)
    size: str | None = None
    num_inference_steps: int | None = None
    guidance_scale: float | None = Field(None, ge=0)
    seed: int | None = None
    response_format: str = Field("b64_json", pattern="^b64_json$")
    cache_config: dict | None = None
    # seconds from arrival; strict: a string, a bool, 0, a negative or an infinite value is refused (422 naming it)
    timeout_s: float | None = Field(None, gt=0, strict=True, allow_inf_nan=False)


DISCONNECT_POLL_S = 0.05  # how often a running request looks whether its client is still there


async def watch_disconnect(raw: Request, disconnected: threading.Event, done: threading.Event) -> None:
    """Set `disconnected` once the client has gone away; the generator's step callback then stops the work."""
    while not done.is_set():
        if await raw.is_disconnected():
            disconnected.set()
            return
        await asyncio.sleep(DISCONNECT_POLL_S)


def build_app(generator: CachedGenerator) -> FastAPI:
    app = FastAPI(title="cachedit", description="Cached diffusion generation")
    metrics = ServerMetrics()
    model_name = generator.model.name

    @app.get("/health")
    def health():
        return {"status": "ok", "model": model_name}

    @app.get("/v1/models")
    def models():
        return {"object": "list", "data": [{"id": model_name, "object": "model", "owned_by": "cachedit"}]}

    @app.get("/metrics")
    def prometheus():
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.post("/v1/images/generations")
    async def generations(request: ImageRequest, raw: Request):
        received = time.monotonic()
        if request.model is not None and request.model != model_name:
            metrics.record(404)
            return JSONResponse({"error": {"message": f"`model`: this server serves {model_name!r}, not {request.model!r}."}}, 404)
        disconnected, done = threading.Event(), threading.Event()
        watcher = asyncio.create_task(watch_disconnect(raw, disconnected, done))
        try:
            # Off the event loop: /health and /metrics answer while a generation runs.
            result = await run_in_threadpool(generator.generate, request.model_dump(), received, disconnected)
        except BadRequest as error:
            metrics.record(400)
            return JSONResponse({"error": {"message": str(error), "type": "invalid_request_error"}}, 400)
        except RequestTimeout as error:
            metrics.record(504, timeout=True)
            return JSONResponse({"error": {"message": str(error), "type": "timeout", "timeout_s": error.timeout_s,
                                           "step": error.step, "steps": error.steps}}, 504)
        except ClientDisconnected as error:
            metrics.record(499, disconnected=True)  # nginx's "client closed request"; nobody reads it
            return JSONResponse({"error": {"message": str(error), "type": "client_disconnected"}}, 499)
        finally:
            done.set()
            watcher.cancel()
        metrics.record(200, result.seconds, result.cache.get("cached_steps", 0), result.cache.get("steps", 0))
        return {"created": int(time.time()), "data": [{"b64_json": image} for image in result.images], "cache": result.cache}

    return app
