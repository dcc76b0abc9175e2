"""The `server` Hydra group's schema (``conf/server/*.yaml``), checked like the other groups."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

from ..config_types import check_types
from ..configs import require
from ..harness.run_config import RunConfig

__all__ = [
    "API_KEY_ENV", "ServerConfig", "ServeConfig"
]

API_KEY_ENV = "CACHEDIT_API_KEY"  # read when `server.api_key` is null, so the key need not sit on a command line


def _seconds(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and 0 < value < math.inf


@dataclass
class ServerConfig:
    """Where and how ``python -m runners.serve`` listens, and the limits every request is checked against.

    Args:
        host (`str`, defaults to `"127.0.0.1"`): loopback by default; `0.0.0.0` serves other machines (set an
            `api_key` then: without one anyone who reaches the port can generate).
        port (`int`, defaults to `8000`): TCP port; `0` picks a free one (printed at start).
        max_images (`int`, defaults to `16`): most images (`n` x labels) one request may ask for.
        max_inference_steps (`int`, defaults to `200`): most steps one request may ask for.
        max_pixels (`int`, defaults to `1048576`): most pixels (width x height) of one image; `size` beyond it is
            refused before any work (the embedded models draw 16x16 only).
        max_body_bytes (`int`, defaults to `1048576`): largest request body; a bigger one is answered 413 before it
            is read (by its `Content-Length`) or as soon as that many bytes have arrived.
        max_queue (`int`, defaults to `16`): most generation requests admitted at once (running and waiting for
            the pipeline); one more is answered 429 with `Retry-After`.
        log_level (`str`, defaults to `"warning"`): uvicorn's log level.
        request_timeout_s (`float`, *optional*, defaults to `None`): seconds a request may take from arrival
            (queueing included) before it is stopped between denoising steps and answered 504; `None`: no limit.
            It is also the most a request's own `timeout_s` may ask for.
        deadline_estimate_share (`float`, defaults to `0.5`): a request with a deadline is refused (504, nothing
            run) when this share of its estimated work already exceeds the time it has left; the estimate is
            steps x images x pixels at the fastest denoising-step rate this server has measured. `0` turns it off.
        api_key (`str`, *optional*, defaults to `None`): when set (or `CACHEDIT_API_KEY` in the environment),
            every route but `/health` needs `Authorization: Bearer <key>` (401 otherwise).
        allowed_hosts (`list[str]`, *optional*, defaults to `None`): `Host` header names accepted (the port is not
            compared); others are answered 400. `None` accepts any.
        keep_alive_s (`int`, defaults to `5`): seconds an idle keep-alive connection stays open.
        header_timeout_s (`float`, defaults to `10`): seconds a new connection has to send its first request's
            headers before it is closed (half-open connections would otherwise be held forever).
    """

    host: str = "127.0.0.1"
    port: int = 8000
    max_images: int = 16
    max_inference_steps: int = 200
    max_pixels: int = 1024 * 1024
    max_body_bytes: int = 1024 * 1024
    max_queue: int = 16
    log_level: str = "warning"
    request_timeout_s: float | None = None
    deadline_estimate_share: float = 0.5
    api_key: str | None = None
    allowed_hosts: list[str] | None = None
    keep_alive_s: int = 5
    header_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        require(
            self.request_timeout_s is None or _seconds(self.request_timeout_s),
            f"`server.request_timeout_s` must be a number of seconds > 0, or null for no limit, got {self.request_timeout_s!r}.",
        )
        check_types(self, "server")  # the timeout's own message first: it says what null means
        # types are checked above: what is left are the ranges
        require(0 <= self.port <= 65535, f"`server.port` must be in [0, 65535], got {self.port!r}.")
        for key in ("max_images", "max_inference_steps", "max_pixels", "max_body_bytes", "max_queue", "keep_alive_s"):
            require(getattr(self, key) >= 1, f"`server.{key}` must be an integer >= 1, got {getattr(self, key)!r}.")
        require(self.header_timeout_s > 0,
                f"`server.header_timeout_s` must be a number of seconds > 0, got {self.header_timeout_s!r}.")
        share = self.deadline_estimate_share
        require(0 <= share <= 1,
                f"`server.deadline_estimate_share` must be a number in [0, 1] (0: off), got {share!r}.")
        levels = ("critical", "error", "warning", "info", "debug", "trace")
        require(self.log_level in levels, f"`server.log_level` must be one of {list(levels)}, got {self.log_level!r}.")
        if self.api_key is None:
            self.api_key = os.environ.get(API_KEY_ENV) or None
        require(self.api_key is None or self.api_key.strip() == self.api_key != "",
                "`server.api_key` must be a non-empty string without surrounding spaces, or null.")
        hosts = self.allowed_hosts
        require(hosts is None or (len(hosts) > 0 and all(hosts)),
                f"`server.allowed_hosts` must be a non-empty list of host names, or null for any, got {hosts!r}.")
        if hosts is not None:
            self.allowed_hosts = [host.lower() for host in hosts]

    def __repr__(self) -> str:  # the key never reaches a log line
        shown = {**self.__dict__, "api_key": None if self.api_key is None else "***"}
        return f"ServerConfig({', '.join(f'{k}={v!r}' for k, v in shown.items())})"


@dataclass
class ServeConfig(RunConfig):
    """Root of ``conf/serve.yaml``: a generation setting (model, cache, presets) plus the `server` group."""

    server: ServerConfig = field(default_factory=ServerConfig)
