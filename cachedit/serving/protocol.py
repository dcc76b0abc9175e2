"""uvicorn's settings for a server facing untrusted clients: keep-alive timeout, and a header timeout uvicorn lacks
(a connection that never sends a request would be held open forever; 100 of them exhaust the process)."""

from __future__ import annotations

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from .config import ServerConfig

__all__ = [
    "header_timeout_protocol", "uvicorn_config"
]


def header_timeout_protocol(seconds: float) -> type[H11Protocol]:
    """h11 protocol closing a connection that has not sent its first request's headers within `seconds`; after
    the first request uvicorn's keep-alive timeout takes over."""

    class HeaderTimeoutProtocol(H11Protocol):
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self.header_timer = self.loop.call_later(seconds, self.drop_if_silent)

        def drop_if_silent(self) -> None:
            if self.cycle is None and not self.transport.is_closing():
                self.transport.close()

        def connection_lost(self, exc) -> None:
            self.header_timer.cancel()
            super().connection_lost(exc)

    return HeaderTimeoutProtocol


def uvicorn_config(app, server: ServerConfig, port: int | None = None) -> uvicorn.Config:
    return uvicorn.Config(
        app, host=server.host, port=server.port if port is None else port, log_level=server.log_level,
        timeout_keep_alive=server.keep_alive_s, http=header_timeout_protocol(server.header_timeout_s),
    )
