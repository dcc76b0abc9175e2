"""The request schemas, built per server so their bounds are this server's limits (and `/openapi.json` says so).

Strict: a string is never a number, a bool never a number, NaN/inf are refused, integers are bounded (a seed past
64 bits never reaches torch). A violation is a 400 naming the field, what is allowed and a short prefix of the
value given, raised before any work.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from .config import ServerConfig
from .errors import ApiError, short

__all__ = [
    "MAX_PROMPT_CHARS", "MAX_GUIDANCE_SCALE", "MAX_SEED", "SIZE_PATTERN", "generation_model", "edit_model",
    "parse_json_object", "validate", "ImagesResponse", "ErrorEnvelope"
]

MAX_PROMPT_CHARS = 4000
MAX_GUIDANCE_SCALE = 100.0
MAX_SEED = 2**64 - 1  # torch.Generator.manual_seed takes [0, 2**64)
MAX_TIMEOUT_S = 24 * 3600.0
SIZE_PATTERN = r"^[0-9]{1,6}[xX][0-9]{1,6}$"


def _fields(server: ServerConfig) -> dict:
    steps, images = server.max_inference_steps, server.max_images
    timeout_cap = server.request_timeout_s or MAX_TIMEOUT_S
    return {
        "prompt": (Annotated[str | None, Field(max_length=MAX_PROMPT_CHARS, description=(
            "What to draw. The embedded digit models take a prompt naming one digit ('7', 'seven', "
            "'a handwritten 7')."))], None),
        "class_labels": (Annotated[list[Annotated[int, Field(ge=0, le=9)]] | None, Field(
            min_length=1, max_length=images, description="Digits 0..9 (embedded digit models only).")], None),
        "model": (Annotated[str | None, Field(max_length=200, description="The served model's id, if given.")], None),
        "n": (Annotated[int, Field(ge=1, le=images, description="Images per prompt or label.")], 1),
        "size": (Annotated[str | None, Field(pattern=SIZE_PATTERN, description=(
            f"WIDTHxHEIGHT, at most {server.max_pixels} pixels, sides the model can draw."))], None),
        "num_inference_steps": (Annotated[int | None, Field(ge=1, le=steps)], None),
        "guidance_scale": (Annotated[float | None, Field(ge=0, le=MAX_GUIDANCE_SCALE, allow_inf_nan=False)], None),
        "seed": (Annotated[int | None, Field(ge=0, le=MAX_SEED)], None),
        "response_format": (Literal["b64_json"], "b64_json"),
        "cache_config": (Annotated[dict | None, Field(description=(
            "Overrides the served cache preset for this request: cache-dit/vLLM-Omni keys or cachedit's."))], None),
        "timeout_s": (Annotated[float | None, Field(gt=0, le=timeout_cap, allow_inf_nan=False, description=(
            "Seconds from arrival (queueing included) before the request is stopped and answered 504."))], None),
    }


_STRICT = ConfigDict(extra="forbid", strict=True)


def generation_model(server: ServerConfig) -> type[BaseModel]:
    """``POST /v1/images/generations``."""
    return create_model("ImageGenerationRequest", __config__=_STRICT, **_fields(server))


def edit_model(server: ServerConfig) -> type[BaseModel]:
    """``POST /v1/images/edits`` (multipart): the generation fields but labels, plus `strength`."""
    fields = _fields(server)
    fields.pop("class_labels")
    fields["strength"] = (Annotated[float, Field(gt=0, le=1, allow_inf_nan=False, description=(
        "How much of the schedule is redrawn: the input is noised to this share and denoised from there."))], 0.6)
    return create_model("ImageEditRequest", __config__=_STRICT, **fields)


def parse_json_object(body: bytes) -> dict:
    """The body as a JSON object; bad UTF-8, bad JSON and numbers past Python's digit limit are 400s. `NaN` and
    `Infinity` literals parse (to floats) so the field holding one is named: the schema refuses them."""
    if not body.strip():
        raise ApiError(400, "The request body is empty; send a JSON object.", code="empty_body")
    try:
        value = json.loads(body)
    except (ValueError, RecursionError) as error:  # JSONDecodeError, UnicodeDecodeError, int digit limit
        raise ApiError(400, f"The request body is not valid JSON: {str(error)[:120]}", code="invalid_json") from None
    if not isinstance(value, dict):
        raise ApiError(400, f"The request body must be a JSON object, got {type(value).__name__}.", code="invalid_json")
    return value


def validate(model: type[BaseModel], values: dict, strict: bool = True) -> BaseModel:
    """`values` checked against `model`; the first violations as one 400 naming the fields. Inside `cache_config`
    (free-form here, checked by the library's conversion) a NaN/inf is refused naming its key."""
    try:
        request = model.model_validate(values, strict=strict)
    except ValidationError as error:
        problems = error.errors(include_url=False)
        first = problems[0]
        raise ApiError(400, " ".join(_describe(model, p) for p in problems[:3]), param=_param(first["loc"]),
                       code=first["type"]) from None
    except RecursionError:
        raise ApiError(400, "The request body nests too deeply.", code="invalid_json") from None
    _refuse_non_finite(request.cache_config, "cache_config")
    return request


def _refuse_non_finite(value, path: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ApiError(400, f"`{path}` must be a finite number, got {value}.", param=path, code="finite_number")
    if isinstance(value, dict):
        for key, item in value.items():
            _refuse_non_finite(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_non_finite(item, f"{path}[{index}]")


def _param(loc: tuple) -> str:
    """Field path as a client writes it: `class_labels[2]`, `cache_config`."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part not in ("int", "float", "str", "list[int]", "dict[any,any]", "function-after"):
            text += f".{part}" if text else str(part)
    return text


def _describe(model: type[BaseModel], problem: dict) -> str:
    param = _param(problem["loc"])
    if problem["type"] == "extra_forbidden":
        return f"`{param}`: unknown field; allowed: {', '.join(model.model_fields)}."
    return f"`{param}`: {problem['msg']}, got {short(problem.get('input'))}."


class ImageData(BaseModel):
    b64_json: str


class ImagesResponse(BaseModel):
    """OpenAI's images response, plus the request's cache summary and its work in `usage`."""

    created: int
    data: list[ImageData]
    cache: dict
    usage: dict


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorEnvelope(BaseModel):
    error: ErrorBody
