"""The `server` Hydra group's schema (``conf/server/*.yaml``), checked like the other groups."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..config_types import check_types
from ..configs import RunConfig, require

__all__ = [
    "ServerConfig", "ServeConfig"
]


@dataclass
class ServerConfig:
    """Where and how ``python -m runners.serve`` listens.

    Args:
        host (`str`, defaults to `"127.0.0.1"`): loopback by default; `0.0.0.0` to serve other machines.
        port (`int`, defaults to `8000`): TCP port; `0` picks a free one (printed at start).
        max_images (`int`, defaults to `16`): most images (`n` x labels) one request may ask for.
        max_inference_steps (`int`, defaults to `200`): most steps one request may ask for.
        log_level (`str`, defaults to `"warning"`): uvicorn's log level.
        request_timeout_s (`float`, *optional*, defaults to `None`): seconds a request may take from arrival
            (queueing included) before it is stopped between denoising steps and answered 504; `None`: no limit.
            It is also the most a request's own `timeout_s` may ask for.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    max_images: int = 16
    max_inference_steps: int = 200
    log_level: str = "warning"
    request_timeout_s: float | None = None

    def __post_init__(self) -> None:
        timeout = self.request_timeout_s
        number = not isinstance(timeout, bool) and isinstance(timeout, (int, float))
        require(
            timeout is None or (number and 0 < timeout < math.inf),
            f"`server.request_timeout_s` must be a number of seconds > 0, or null for no limit, got {timeout!r}.",
        )
        check_types(self, "server")  # the timeout's own message first: it says what null means
        require(0 <= self.port <= 65535, f"`server.port` must be in [0, 65535], got {self.port}.")
        require(self.max_images >= 1, f"`server.max_images` must be >= 1, got {self.max_images}.")
        require(self.max_inference_steps >= 1, f"`server.max_inference_steps` must be >= 1, got {self.max_inference_steps}.")
        levels = ("critical", "error", "warning", "info", "debug", "trace")
        require(self.log_level in levels, f"`server.log_level` must be one of {list(levels)}, got {self.log_level!r}.")


@dataclass
class ServeConfig(RunConfig):
    """Root of ``conf/serve.yaml``: a generation setting (model, cache, presets) plus the `server` group."""

    server: ServerConfig = field(default_factory=ServerConfig)
