"""One error envelope for every status, OpenAI's: ``{"error": {"message", "type", "param", "code"}}``.

Messages are capped and bad values are shown by a short prefix only (a 50 MB value must not come back as a 50 MB
error), and the body is NaN-safe JSON. Clients are told not to retry what cannot succeed on a retry.
"""

from __future__ import annotations

import json
import math

__all__ = [
    "MAX_MESSAGE_CHARS", "ERROR_TYPES", "ApiError", "short", "json_safe", "error_body", "should_retry", "dumps"
]

MAX_MESSAGE_CHARS = 600
VALUE_PREFIX_CHARS = 40
ERROR_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error", 405: "invalid_request_error",
    413: "request_too_large", 429: "rate_limit_error", 499: "client_disconnected", 500: "server_error",
    504: "timeout",
}


class ApiError(Exception):
    """An answer other than 200, raised anywhere in the app or its middleware and rendered by `ResponseGuard`."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None, **extra) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.headers, self.extra = dict(headers or {}), extra

    def body(self) -> dict:
        return error_body(self.status, self.message, self.param, self.code, **self.extra)


def short(value) -> str:
    """A bad value as the client can recognise it, never more than a prefix (its repr, cut)."""
    text = repr(value)
    return text if len(text) <= VALUE_PREFIX_CHARS else f"{text[:VALUE_PREFIX_CHARS]}... ({len(text)} chars)"


def json_safe(value):
    """`value` with every non-finite float replaced by None (JSON has no NaN/inf; `json.dumps` would raise)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


def error_body(status: int, message: str, param: str | None = None, code: str | None = None, **extra) -> dict:
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[:MAX_MESSAGE_CHARS] + "... (cut)"
    if param is not None and len(param) > VALUE_PREFIX_CHARS:
        param = param[:VALUE_PREFIX_CHARS] + "..."
    error = {"message": message, "type": ERROR_TYPES.get(status, "invalid_request_error"), "param": param,
             "code": code, **extra}
    return {"error": json_safe(error)}


def should_retry(status: int) -> str | None:
    """`x-should-retry` (read by the OpenAI SDKs): false where a retry gets the same answer or repeats the work
    that ran out of time; true on 429, whose `Retry-After` says when room is expected."""
    if status == 429:
        return "true"
    if 400 <= status < 500 or status == 504:
        return "false"
    return None


def dumps(body) -> bytes:
    return json.dumps(json_safe(body), allow_nan=False, separators=(",", ":")).encode()
