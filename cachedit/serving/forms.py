"""`POST /v1/images/edits` bodies: multipart forms read from bytes already bounded by `BodyLimit`, in a worker
thread (its own event loop), checked by the same schema as generations (numbers arrive as text)."""

from __future__ import annotations

import asyncio
import json

from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from .errors import ApiError, short
from .schema import validate

__all__ = [
    "parse_edit"
]


def parse_edit(content_type: str, body: bytes, model) -> tuple[dict, bytes]:
    """A multipart edit request: its fields checked like a generation's (numbers written as text), its image."""
    if not content_type.startswith("multipart/form-data"):
        raise ApiError(400, f"`/v1/images/edits` takes multipart/form-data, got {short(content_type)}.",
                       code="invalid_content_type")
    form = asyncio.run(_read_form(content_type, body))
    files = {key: value for key, value in form.items() if not isinstance(value, str)}
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    images = [files.pop(key) for key in ("image", "image[]") if key in files]
    if files:
        raise ApiError(400, f"{short(next(iter(files)))}: unexpected file; send the picture as `image`.", param="image")
    if len(images) != 1:
        raise ApiError(400, "`image`: send exactly one image file.", param="image", code="missing_image")
    if "cache_config" in fields:
        try:
            fields["cache_config"] = json.loads(fields["cache_config"], parse_constant=_no_constant)
        except ValueError:
            raise ApiError(400, f"`cache_config` must be a JSON object, got {short(fields['cache_config'])}.",
                           param="cache_config") from None
        if not isinstance(fields["cache_config"], dict):
            raise ApiError(400, "`cache_config` must be a JSON object.", param="cache_config")
    request = validate(model, fields, strict=False).model_dump()  # form numbers are text: "2" -> 2, "2.5" refused
    return request, images[0]


def _no_constant(name: str):
    raise ValueError(name)


async def _read_form(content_type: str, body: bytes) -> dict:
    async def stream():
        yield body

    try:
        form = await MultiPartParser(Headers({"content-type": content_type}), stream(), max_files=2,
                                     max_fields=32).parse()
    except MultiPartException as error:
        raise ApiError(400, f"The multipart body cannot be read: {str(error)[:120]}", code="invalid_multipart") from None
    values = {}
    for key, value in form.multi_items():
        if key in values:
            raise ApiError(400, f"`{short(key)}` is given more than once.", param=key)
        values[key] = _File(await value.read()) if isinstance(value, UploadFile) else value
    return values


class _File(bytes):
    """An uploaded file's bytes, told apart from a text field."""
