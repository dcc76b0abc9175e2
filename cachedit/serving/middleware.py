"""ASGI middleware around the app, outermost first: `ResponseGuard` (request id, the error envelope for anything
raised, metrics by the status actually sent, `x-should-retry`), `HostCheck`, `ApiKeyCheck`, `BodyLimit`."""

from __future__ import annotations

import hmac
import logging
import time
import uuid

from starlette.datastructures import Headers, MutableHeaders

from .errors import ApiError, dumps, error_body, short, should_retry
from .metrics import ServerMetrics

__all__ = [
    "OPEN_PATHS", "ResponseGuard", "HostCheck", "ApiKeyCheck", "BodyLimit"
]

OPEN_PATHS = ("/health",)  # answered without an API key: load balancers probe it

log = logging.getLogger(__name__)


async def send_json(send, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
    payload = dumps(body)
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(key.lower().encode(), value.encode()) for key, value in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


class ResponseGuard:
    """Every response leaves through here: an `ApiError` becomes its envelope, any other exception a 500 with a
    request id (the traceback goes to the log under that id) and the connection stays usable."""

    def __init__(self, app, metrics: ServerMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        arrived, request_id = time.monotonic(), uuid.uuid4().hex[:16]
        scope.setdefault("state", {}).update(request_id=request_id, received=arrived)
        sent: list[int] = []

        async def send_marked(message) -> None:
            if message["type"] == "http.response.start":
                sent.append(message["status"])
                headers = MutableHeaders(scope=message)
                headers["x-request-id"] = request_id
                retry = should_retry(message["status"])
                if retry is not None:
                    headers["x-should-retry"] = retry
            await send(message)

        try:
            await self.app(scope, receive, send_marked)
        except ApiError as error:
            if not sent:
                await send_json(send_marked, error.status, error.body(), error.headers)
        except Exception:  # noqa: BLE001 - a server fault: logged in full, answered without Python text
            log.exception("request %s (%s %s) failed", request_id, scope.get("method"), scope.get("path"))
            if not sent:
                message = f"Internal server error; the server log has the traceback under request id {request_id}."
                await send_json(send_marked, 500, error_body(500, message, code="internal_error",
                                                             request_id=request_id))
            else:
                sent.append(500)
        finally:
            self.metrics.record_response(scope.get("path", ""), sent[-1] if sent else 500, time.monotonic() - arrived)


class HostCheck:
    """`Host` must be one of `allowed_hosts` (port ignored): a DNS-rebinding page cannot reach a local server."""

    def __init__(self, app, allowed_hosts: list[str] | None) -> None:
        self.app, self.allowed = app, allowed_hosts

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and self.allowed is not None:
            host = Headers(scope=scope).get("host", "").lower()
            name = host.rsplit("]", 1)[0] + "]" if host.startswith("[") else host.rsplit(":", 1)[0]
            if name not in self.allowed and "*" not in self.allowed:
                raise ApiError(400, f"`Host` header {short(host)} is not one of `server.allowed_hosts` "
                                    f"{self.allowed}.", param="Host", code="host_not_allowed")
        await self.app(scope, receive, send)


class ApiKeyCheck:
    """With a key set, every route but `OPEN_PATHS` needs `Authorization: Bearer <key>`."""

    def __init__(self, app, api_key: str | None) -> None:
        self.app = app
        self.expected = None if api_key is None else f"Bearer {api_key}".encode()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and self.expected is not None and scope["path"] not in OPEN_PATHS:
            given = Headers(scope=scope).get("authorization", "").encode("latin-1", "replace")
            if not hmac.compare_digest(given, self.expected):
                what = "is missing" if not given else "does not carry this server's key"
                raise ApiError(401, f"`Authorization` {what}: send `Authorization: Bearer <server.api_key>`.",
                               param="Authorization", code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})
        await self.app(scope, receive, send)


class BodyLimit:
    """Bodies over `limit` bytes: 413 from `Content-Length` before reading, or as soon as that many arrived."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    def too_large(self, size: str) -> ApiError:
        return ApiError(413, f"The request body is {size}; this server takes at most {self.limit} bytes "
                             f"(`server.max_body_bytes`).", code="body_too_large")

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise ApiError(400, f"`Content-Length` must be a byte count, got {short(declared)}.",
                               param="Content-Length", code="invalid_content_length")
            if int(declared) > self.limit:
                raise self.too_large(f"{declared} bytes")
        received = 0

        async def counted() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise self.too_large(f"over {self.limit} bytes")
            return message

        await self.app(scope, counted, send)
