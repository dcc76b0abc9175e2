"""One loaded pipeline serving requests one at a time, each with its own cache config and fresh cache state.

Per request, under one lock: the request's config is enabled, the pipeline runs, the hooks come off again. The
pipeline holds no cache between requests, so an override cannot leak into the next request, and a request that
raises (or whose client went away) leaves nothing behind. A lock rather than a pool: one pipeline's weights once
in memory, and the tiny models are latency-bound anyway (README: serving benchmark).

Everything a request asks for is checked before any work: its model settings, its size against what the model
draws and `server.max_pixels`, its cache config through the library's own conversion (`load_config`), a custom step
mask against the call's steps, and its work estimate against its deadline (`admission.WorkRate`). A `BadRequest`
(400) names the field.

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
import threading
import time

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

import cachedit

from ..config_formats import LoadedConfig, load_config
from ..caches import NoCacheConfig
from ..configs import StepMaskName
from ..zoo.model_config import ModelConfig
from ..harness.images import to_uint8
from ..zoo.entries import get_entry
from .admission import WorkRate
from .config import ServerConfig
from .digits import digit_of
from .errors import ApiError, short

__all__ = [
    "DIGIT_MODELS", "DIGIT_SIDE", "SIZE_MULTIPLE", "LOCK_POLL_S", "BadRequest", "RequestStopped",
    "RequestTimeout", "ClientDisconnected", "StopCheck", "Generation", "CachedGenerator"
]

DIGIT_MODELS = ("tiny_dit", "tiny_flux")  # the embedded models: a digit class per image, 16x16 pixels
DIGIT_SIDE = 16
SIZE_MULTIPLE = 16  # hub DiTs: VAE factor 8 x patch 2; FLUX packs 2x2 latents


LOCK_POLL_S = 0.05  # how often a queued request looks at its deadline and its client

log = logging.getLogger(__name__)


class BadRequest(ApiError, ValueError):
    """A request the server refuses before any work (400), with a message naming the bad field."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(400, message, param=param, code=code)


class RequestStopped(Exception):
    """A generation stopped before its end; `step` denoising steps of `steps` had run."""

    def __init__(self, message: str, step: int, steps: int) -> None:
        super().__init__(message)
        self.step, self.steps = step, steps


class RequestTimeout(RequestStopped):
    """The request's deadline passed (or its estimated work cannot fit before it): answered 504."""

    def __init__(self, timeout_s: float, step: int, steps: int, estimate_s: float | None = None) -> None:
        if estimate_s is not None:
            message = (f"Request would exceed its timeout of {timeout_s:g} s: its work is estimated at "
                       f"{estimate_s:.3g} s or more at this server's fastest measured rate; not started.")
        else:
            where = "while queued, before its first step" if step == 0 else f"after step {step} of {steps}"
            message = f"Request exceeded its timeout of {timeout_s:g} s; stopped {where}."
        super().__init__(message, step, steps)
        self.timeout_s = timeout_s


class ClientDisconnected(RequestStopped):
    """The client went away: its work stops, nobody reads the answer."""

    def __init__(self, step: int, steps: int) -> None:
        super().__init__(f"Client disconnected; stopped after step {step} of {steps}.", step, steps)


@dataclasses.dataclass
class StopCheck:
    """When one request must stop: its deadline (`time.monotonic`) or its client gone (set by the app). Also
    times the denoising steps (between callbacks) for the work estimate."""

    steps: int
    timeout_s: float | None = None
    deadline: float | None = None
    disconnected: threading.Event | None = None
    step_ends: list[float] = dataclasses.field(default_factory=list)

    def check(self, step: int) -> None:
        if self.disconnected is not None and self.disconnected.is_set():
            raise ClientDisconnected(step, self.steps)
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise RequestTimeout(self.timeout_s, step, self.steps)

    def on_step_end(self, pipe, step_index: int, timestep, callback_kwargs: dict) -> dict:
        """`callback_on_step_end` of diffusers pipelines: raises between steps; after the last one, lets it finish."""
        self.step_ends.append(time.perf_counter())
        if step_index + 1 < self.steps:
            self.check(step_index + 1)
        return callback_kwargs

    def step_seconds(self) -> list[float]:
        return [b - a for a, b in zip(self.step_ends, self.step_ends[1:])]


@dataclasses.dataclass
class Generation:
    images: list[str]  # base64 PNG
    cache: dict
    seconds: float
    usage: dict


@dataclasses.dataclass
class Prepared:
    """A checked request, ready to run."""

    model: ModelConfig
    loaded: LoadedConfig
    timeout: float | None
    images: int
    pixels: int
    steps: int  # the steps the call runs (img2img: the share `strength` redraws)


class CachedGenerator:
    def __init__(self, pipe, model: ModelConfig, base: LoadedConfig, server: ServerConfig) -> None:
        self.pipe, self.model, self.base, self.server = pipe, model, base, server
        self.entry = get_entry(model.name)
        self.lock = threading.Lock()
        self.rate = WorkRate()
        self._img2img = None
        pipe.set_progress_bar_config(disable=True)
        # looked up on the class as loaded: `enable_cache` later wraps `__call__` as (*args, **kwargs)
        self.stops_between_steps = "callback_on_step_end" in inspect.signature(type(pipe).__call__).parameters
        if not self.stops_between_steps:
            log.warning("%s has no `callback_on_step_end`: a timeout or a client that goes away stops a request "
                        "only before its first step, not while it runs.", type(pipe).__name__)

    # ---- checks, before any work

    def timeout(self, request: dict) -> float | None:
        """The request's `timeout_s` (the app's schema refuses bad values), at most the server's; else the server's."""
        value, ceiling = request.get("timeout_s"), self.server.request_timeout_s
        if value is None:
            return ceiling
        if ceiling is not None and value > ceiling:
            raise BadRequest(f"`timeout_s` must be at most `server.request_timeout_s`={ceiling:g}, got {short(value)}.",
                             "timeout_s")
        return float(value)

    @property
    def _draws_digits(self) -> bool:
        """The embedded models are conditioned on a digit class: `class_labels`, or a prompt naming a digit."""
        return self.model.name in DIGIT_MODELS

    def request_model(self, request: dict) -> ModelConfig:
        """The model config of one request: the server's, with the request's prompt, labels, size, steps, guidance."""
        changes = {"num_images": request.get("n") or 1}
        if request.get("num_inference_steps") is not None:
            steps = request["num_inference_steps"]
            if not 1 <= steps <= self.server.max_inference_steps:
                raise BadRequest(f"`num_inference_steps` must be in [1, {self.server.max_inference_steps}], got "
                                 f"{short(steps)}.", "num_inference_steps")
            changes["num_inference_steps"] = steps
        if request.get("guidance_scale") is not None:
            changes["guidance_scale"] = request["guidance_scale"]
        labels, prompt = request.get("class_labels"), request.get("prompt")
        if self._draws_digits:
            if prompt is not None and labels is not None:
                raise BadRequest("`prompt` and `class_labels` both name digits; send one of them.", "prompt")
            if labels is not None and (not labels or any(not 0 <= label <= 9 for label in labels)):
                raise BadRequest(f"`class_labels` must be digits in 0..9, got {short(labels)}.", "class_labels")
            if prompt is not None:
                labels = [digit_of(prompt, self.model.name)]
            changes["class_labels"] = labels if labels is not None else [0]
        else:
            if labels is not None:
                raise BadRequest(f"`class_labels`: `{self.model.name}` takes a `prompt`, not class labels.",
                                 "class_labels")
            if prompt is not None:
                changes["prompt"] = prompt
        if request.get("size") is not None:
            changes.update(self._size(request["size"]))
        count = changes["num_images"] * len(changes.get("class_labels", [None]))
        if count > self.server.max_images:
            raise BadRequest(f"`n` x labels = {count} images exceeds `server.max_images`={self.server.max_images}.", "n")
        try:
            return dataclasses.replace(self.model, **changes)
        except ValueError as error:
            raise BadRequest(str(error)) from None

    def _size(self, size: str) -> dict:
        try:
            width, height = (int(side) for side in size.lower().split("x"))
        except ValueError:
            raise BadRequest(f"`size` must be WIDTHxHEIGHT, e.g. '512x512', got {short(size)}.", "size") from None
        if self._draws_digits:
            if (width, height) != (DIGIT_SIDE, DIGIT_SIDE):
                raise BadRequest(f"`size`: `{self.model.name}` draws 16x16 images only, got {short(size)}.", "size")
            return {}
        if width <= 0 or height <= 0 or width % SIZE_MULTIPLE or height % SIZE_MULTIPLE:
            raise BadRequest(f"`size` sides must be positive multiples of {SIZE_MULTIPLE}, got {short(size)}.", "size")
        if width * height > self.server.max_pixels:
            raise BadRequest(f"`size` {width}x{height} = {width * height} pixels exceeds `server.max_pixels`="
                             f"{self.server.max_pixels}.", "size")
        return {"width": width, "height": height}

    def pixels(self, model: ModelConfig) -> int:
        if self._draws_digits:
            return DIGIT_SIDE * DIGIT_SIDE
        inputs_size = (model.width or 0) * (model.height or 0)
        return inputs_size or 512 * 512  # the pipeline's default; only scales the estimate

    def cache_config(self, override: dict | None, steps: int) -> LoadedConfig:
        loaded = self.base
        if override:
            try:
                loaded = load_config(override, base=self.base)
            except (ValueError, TypeError, KeyError) as error:
                raise BadRequest(f"`cache_config`: {error}", "cache_config") from None
        scm = loaded.scm
        if scm.mask == StepMaskName.custom:  # the engine would raise at run time; refused here, before any work
            outside = [step for step in scm.compute_steps if step >= steps]
            if outside:
                raise BadRequest(f"`cache_config`: `scm.compute_steps` {short(outside)} lie beyond this request's "
                                 f"{steps} steps (0-based).", "cache_config")
        return loaded

    def prepare(self, request: dict, steps_share: float = 1.0) -> Prepared:
        model = self.request_model(request)
        steps = max(1, min(model.num_inference_steps, int(model.num_inference_steps * steps_share)))
        loaded = self.cache_config(request.get("cache_config"), steps)
        images = model.num_images * len(model.class_labels or [None]) if self._draws_digits else model.num_images
        return Prepared(model, loaded, self.timeout(request), images, self.pixels(model), steps)

    def check_estimate(self, prepared: Prepared, stop: StopCheck) -> None:
        """Refuse (504, nothing run) work that cannot fit before the deadline, rather than run past it."""
        share = self.server.deadline_estimate_share
        if stop.deadline is None or share == 0:
            return
        estimate = self.rate.estimate(prepared.steps * prepared.images * prepared.pixels)
        if estimate is not None and estimate * share > stop.deadline - time.monotonic():
            raise RequestTimeout(stop.timeout_s, 0, prepared.steps, estimate_s=estimate)

    # ---- work

    def generate(self, request: dict, received: float | None = None, disconnected: threading.Event | None = None,
                 image: bytes | None = None) -> Generation:
        """Run one request; `received` (`time.monotonic()` at arrival) starts its deadline, `disconnected` is set
        by the app when the client goes away; `image` (PNG/JPEG bytes) makes it an edit of that image at
        `request["strength"]`. Raises `BadRequest`, `RequestTimeout` or `ClientDisconnected`."""
        received = time.monotonic() if received is None else received
        strength = request.get("strength")
        prepared = self.prepare(request, 1.0 if image is None else strength)
        pipe, inputs = self.pipe, None
        if image is not None:
            pipe, inputs = self._edit_inputs(prepared.model, image, strength)
        else:
            inputs = self.entry.inputs(self.pipe, prepared.model)
        inputs["output_type"] = "np"
        timeout = prepared.timeout
        stop = StopCheck(prepared.steps, timeout, None if timeout is None else received + timeout, disconnected)
        if self.stops_between_steps:
            inputs["callback_on_step_end"] = stop.on_step_end
        seed = request.get("seed")
        generator = torch.Generator(device=self.pipe.device)
        generator.manual_seed(seed) if seed is not None else generator.seed()
        self.check_estimate(prepared, stop)
        with self._queued(stop):  # one request at a time on this pipeline: its cache state is per model
            stop.check(0)
            self.check_estimate(prepared, stop)  # the queue may have eaten the time
            try:
                cachedit.enable_cache(pipe, **prepared.loaded.as_kwargs())
            except (ValueError, TypeError) as error:  # e.g. Fn + Bn too large for this model, TaylorSeer warmup
                raise BadRequest(f"`cache_config`: {error}", "cache_config") from None
            try:
                start = time.perf_counter()
                output = pipe(**inputs, generator=generator)
                seconds = time.perf_counter() - start
                summary = dict(cachedit.summary(pipe))
            finally:
                cachedit.disable_cache(pipe)
        self.rate.record_steps(stop.step_seconds(), prepared.images * prepared.pixels)
        self.rate.record_request(seconds)
        summary.pop("branches", None)  # per-step detail: large, and in `cachedit.summary` for whoever needs it
        summary["config"] = _describe(prepared.loaded)
        summary["seconds"] = seconds
        images = getattr(output, "images", None)
        if images is None:
            images = output[0]
        pngs = [_png_base64(image) for image in to_uint8(np.asarray(images))]
        usage = {"images": len(pngs), "denoising_steps": summary.get("steps") or prepared.steps,
                 "cached_steps": summary.get("cached_steps", 0), "seconds": seconds}
        return Generation(pngs, summary, seconds, usage)

    def _edit_inputs(self, model: ModelConfig, image: bytes, strength: float) -> tuple[object, dict]:
        """The image-to-image pipeline and its call arguments for an edit of `image`."""
        try:
            picture = Image.open(io.BytesIO(image))
            picture.load()
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as error:
            raise BadRequest(f"`image` is not a readable PNG/JPEG/WebP image ({type(error).__name__}).", "image") from None
        if picture.width * picture.height > self.server.max_pixels:
            raise BadRequest(f"`image` has {picture.width}x{picture.height} pixels, over `server.max_pixels`="
                             f"{self.server.max_pixels}.", "image")
        if self._draws_digits:
            if picture.size != (DIGIT_SIDE, DIGIT_SIDE):
                raise BadRequest(f"`image`: `{self.model.name}` edits 16x16 images, got {picture.width}x"
                                 f"{picture.height}.", "image")
            if "image" not in inspect.signature(type(self.pipe).__call__).parameters:
                raise BadRequest(f"`{self.model.name}` has no image-to-image variant.", "image", "unsupported")
            inputs = self.entry.inputs(self.pipe, model)
            gray = np.asarray(picture.convert("L"), dtype=np.float32) / 255.0
            labels = len(inputs["class_labels"])
            inputs["image"] = torch.from_numpy(gray)[None, None].expand(labels, 1, DIGIT_SIDE, DIGIT_SIDE)
            inputs["strength"] = strength
            return self.pipe, inputs
        pipe = self.img2img_pipeline()
        size = {"width": model.width or picture.width, "height": model.height or picture.height}
        model = dataclasses.replace(model, **size)
        inputs = self.entry.inputs(pipe, model)
        inputs.update(image=picture.convert("RGB"), strength=strength)
        return pipe, inputs

    def img2img_pipeline(self):
        """diffusers' image-to-image variant of the served pipeline, sharing its modules (FLUX: FluxImg2Img)."""
        if self._img2img is None:
            from diffusers import AutoPipelineForImage2Image

            try:
                self._img2img = AutoPipelineForImage2Image.from_pipe(self.pipe)
            except ValueError:
                raise BadRequest(f"`{self.model.name}` ({type(self.pipe).__name__}) has no image-to-image "
                                 f"variant in diffusers.", "image", "unsupported") from None
            self._img2img.set_progress_bar_config(disable=True)
        return self._img2img

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
