"""One loaded pipeline serving requests one at a time, each with its own cache config and fresh cache state.

Per request, under one lock: the request's config is enabled, the pipeline runs, the hooks come off again. The
pipeline holds no cache between requests, so an override cannot leak into the next request, and a request that
raises (or whose client went away) leaves nothing behind. A lock rather than a pool: one pipeline's weights once
in memory, and the tiny models are latency-bound anyway (README: serving benchmark).

A request's deadline (`timeout_s`, or `server.request_timeout_s`) counts from its arrival, queueing included. It is
checked while the request waits for the lock, before its first step, and between denoising steps through the
pipeline's `callback_on_step_end`, which raises `RequestTimeout`; the same callback raises `ClientDisconnected` once
the app has seen the client go away. The exception unwinds the pipeline call, the hooks come off as for any error,
and the next request starts fresh. A pipeline without `callback_on_step_end` is only stopped before it starts.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import inspect
import io
import logging
import math
import threading
import time

import numpy as np
import torch
from PIL import Image

import cachedit

from ..config_formats import LoadedConfig, load_config
from ..configs import ModelConfig, NoCacheConfig
from ..harness.images import to_uint8
from ..zoo.entries import get_entry
from .config import ServerConfig

__all__ = [
    "OUR_SIZE_KEYS", "DIGIT_MODELS", "LOCK_POLL_S", "BadRequest", "RequestStopped", "RequestTimeout",
    "ClientDisconnected", "StopCheck", "Generation", "CachedGenerator"
]

OUR_SIZE_KEYS = ("height", "width")
DIGIT_MODELS = ("tiny_dit", "tiny_flux")  # the embedded models: a digit class per image, 16x16 pixels


LOCK_POLL_S = 0.05  # how often a queued request looks at its deadline and its client

log = logging.getLogger(__name__)


class BadRequest(ValueError):
    """A request the server refuses before any work, with a message naming the bad key."""


class RequestStopped(Exception):
    """A generation stopped before its end; `step` denoising steps of `steps` had run."""

    def __init__(self, message: str, step: int, steps: int) -> None:
        super().__init__(message)
        self.step, self.steps = step, steps


class RequestTimeout(RequestStopped):
    """The request's deadline passed: answered 504."""

    def __init__(self, timeout_s: float, step: int, steps: int) -> None:
        where = "while queued, before its first step" if step == 0 else f"after step {step} of {steps}"
        super().__init__(f"Request exceeded its timeout of {timeout_s:g} s; stopped {where}.", step, steps)
        self.timeout_s = timeout_s


class ClientDisconnected(RequestStopped):
    """The client went away: its work stops, nobody reads the answer."""

    def __init__(self, step: int, steps: int) -> None:
        super().__init__(f"Client disconnected; stopped after step {step} of {steps}.", step, steps)


@dataclasses.dataclass
class StopCheck:
    """When one request must stop: its deadline (`time.monotonic`) or its client gone (set by the app)."""

    steps: int
    timeout_s: float | None = None
    deadline: float | None = None
    disconnected: threading.Event | None = None

    def check(self, step: int) -> None:
        if self.disconnected is not None and self.disconnected.is_set():
            raise ClientDisconnected(step, self.steps)
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise RequestTimeout(self.timeout_s, step, self.steps)

    def on_step_end(self, pipe, step_index: int, timestep, callback_kwargs: dict) -> dict:
        """`callback_on_step_end` of diffusers pipelines: raises between steps; after the last one, lets it finish."""
        if step_index + 1 < self.steps:
            self.check(step_index + 1)
        return callback_kwargs


@dataclasses.dataclass
class Generation:
    images: list[str]  # base64 PNG
    cache: dict
    seconds: float


class CachedGenerator:
    def __init__(self, pipe, model: ModelConfig, base: LoadedConfig, server: ServerConfig) -> None:
        self.pipe, self.model, self.base, self.server = pipe, model, base, server
        self.entry = get_entry(model.name)
        self.lock = threading.Lock()
        pipe.set_progress_bar_config(disable=True)
        # looked up on the class as loaded: `enable_cache` later wraps `__call__` as (*args, **kwargs)
        self.stops_between_steps = "callback_on_step_end" in inspect.signature(type(pipe).__call__).parameters
        if not self.stops_between_steps:
            log.warning("%s has no `callback_on_step_end`: a timeout or a client that goes away stops a request "
                        "only before its first step, not while it runs.", type(pipe).__name__)

    def timeout(self, request: dict) -> float | None:
        """The request's `timeout_s`, checked (the app's schema already refuses most bad values), or the server's."""
        value, ceiling = request.get("timeout_s"), self.server.request_timeout_s
        if value is None:
            return ceiling
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
            raise BadRequest(f"`timeout_s` must be a number of seconds > 0, got {value!r}.")
        if ceiling is not None and value > ceiling:
            raise BadRequest(f"`timeout_s` must be at most `server.request_timeout_s`={ceiling:g}, got {value!r}.")
        return float(value)

    @property
    def _draws_digits(self) -> bool:
        """The embedded models are conditioned on a digit class, not on text: requests name `class_labels`."""
        return self.model.name in DIGIT_MODELS

    def request_model(self, request: dict) -> ModelConfig:
        """The model config of one request: the server's, with the request's prompt, labels, size, steps, guidance."""
        changes = {"num_images": request.get("n") or 1}
        if request.get("num_inference_steps") is not None:
            steps = request["num_inference_steps"]
            if not 1 <= steps <= self.server.max_inference_steps:
                raise BadRequest(f"`num_inference_steps` must be in [1, {self.server.max_inference_steps}], got {steps}.")
            changes["num_inference_steps"] = steps
        if request.get("guidance_scale") is not None:
            changes["guidance_scale"] = request["guidance_scale"]
        labels = request.get("class_labels")
        if self._draws_digits:
            if request.get("prompt") is not None:
                raise BadRequest(f"`prompt`: `{self.model.name}` draws digits; send `class_labels` (0..9) instead.")
            if labels is not None and (not labels or any(not 0 <= label <= 9 for label in labels)):
                raise BadRequest(f"`class_labels` must be digits in 0..9, got {labels}.")
            changes["class_labels"] = labels if labels is not None else [0]
        else:
            if labels is not None:
                raise BadRequest(f"`class_labels`: `{self.model.name}` takes a `prompt`, not class labels.")
            if request.get("prompt") is not None:
                changes["prompt"] = request["prompt"]
        if request.get("size") is not None:
            changes.update(self._size(request["size"]))
        count = changes["num_images"] * len(changes.get("class_labels", [None]))
        if count > self.server.max_images:
            raise BadRequest(f"`n` x labels = {count} images exceeds `server.max_images`={self.server.max_images}.")
        try:
            return dataclasses.replace(self.model, **changes)
        except ValueError as error:
            raise BadRequest(str(error)) from None

    def _size(self, size: str) -> dict:
        try:
            width, height = (int(side) for side in size.lower().split("x"))
        except ValueError:
            raise BadRequest(f"`size` must be WIDTHxHEIGHT, e.g. '512x512', got {size!r}.") from None
        if self._draws_digits:
            if (width, height) != (16, 16):
                raise BadRequest(f"`size`: `{self.model.name}` draws 16x16 images only, got {size!r}.")
            return {}
        if width <= 0 or height <= 0 or width % 8 or height % 8:
            raise BadRequest(f"`size` sides must be positive multiples of 8, got {size!r}.")
        return {"width": width, "height": height}

    def cache_config(self, override: dict | None) -> LoadedConfig:
        if not override:
            return self.base
        try:
            return load_config(override, base=self.base)
        except (ValueError, TypeError) as error:
            raise BadRequest(f"`cache_config`: {error}") from None

    def generate(self, request: dict, received: float | None = None,
                 disconnected: threading.Event | None = None) -> Generation:
        """Run one request; `received` (`time.monotonic()` at arrival) starts its deadline, `disconnected` is set
        by the app when the client goes away. Raises `BadRequest`, `RequestTimeout` or `ClientDisconnected`."""
        received = time.monotonic() if received is None else received
        model = self.request_model(request)
        loaded = self.cache_config(request.get("cache_config"))
        timeout = self.timeout(request)
        stop = StopCheck(model.num_inference_steps, timeout, None if timeout is None else received + timeout,
                         disconnected)
        inputs = self.entry.inputs(self.pipe, model)
        inputs["output_type"] = "np"
        if self.stops_between_steps:
            inputs["callback_on_step_end"] = stop.on_step_end
        seed = request.get("seed")
        generator = torch.Generator(device=self.pipe.device)
        generator.manual_seed(seed) if seed is not None else generator.seed()
        with self._queued(stop):  # one request at a time on this pipeline: its cache state is per model
            stop.check(0)
            try:
                cachedit.enable_cache(self.pipe, **loaded.as_kwargs())
            except ValueError as error:  # e.g. Fn + Bn too large for this model, TaylorSeer warmup
                raise BadRequest(f"`cache_config`: {error}") from None
            try:
                start = time.perf_counter()
                output = self.pipe(**inputs, generator=generator)
                seconds = time.perf_counter() - start
                summary = dict(cachedit.summary(self.pipe))
            finally:
                cachedit.disable_cache(self.pipe)
        summary.pop("branches", None)  # per-step detail: large, and in `cachedit.summary` for whoever needs it
        summary["config"] = _describe(loaded)
        summary["seconds"] = seconds
        images = getattr(output, "images", None)
        if images is None:
            images = output[0]
        return Generation([_png_base64(image) for image in to_uint8(np.asarray(images))], summary, seconds)

    @contextlib.contextmanager
    def _queued(self, stop: StopCheck):
        """Hold the lock; while waiting for it, give up once the deadline passes or the client is gone."""
        while not self.lock.acquire(timeout=LOCK_POLL_S):
            stop.check(0)
        try:
            yield
        finally:
            self.lock.release()


def _png_base64(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def _describe(loaded: LoadedConfig) -> dict:
    cache = loaded.cache
    return {
        "cache": "none" if isinstance(cache, NoCacheConfig) else cache.strify(),
        "taylorseer_order": loaded.taylorseer.order,
        "scm": loaded.scm.mask.value,
    }
