"""Strict field types for every config dataclass, read from its annotations.

Hydra's typed nodes already refuse ``cache.Fn=foo``; a Python object, a ``cachedit.load_config`` dict, a YAML file
or a server request's ``cache_config`` reach the same dataclasses without them. Each config's ``__post_init__``
therefore starts with :func:`check_types`, before any range check, so every way a config arrives is held to one
rule set, and a field added later is covered by its annotation alone:

- ``bool`` is ``True``/``False`` only: ``"false"`` or ``0`` is an error, never truthy;
- ``int`` is a whole-number type (no ``float``, not even ``2.0``; no ``bool``);
- ``float`` takes an int or a float (stored as float), never a bool, NaN or inf unless the field's metadata
  sets ``ALLOW_NONFINITE``;
- ``str`` is a ``str``; an ``Enum`` takes a member or its exact value and stores the member;
- ``list[T]`` takes a list, tuple or OmegaConf ``ListConfig`` of ``T`` (stored as a list); ``dict[K, V]`` a
  mapping of ``K`` to ``V`` (stored as a dict); ``X | None`` also takes ``None``; a dataclass an instance of it.

A field whose default is omegaconf's ``MISSING`` may keep it (the Hydra path refuses it when composing).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import types
import typing
from collections.abc import Mapping
from enum import Enum
from typing import Any

from omegaconf import MISSING, DictConfig, ListConfig, OmegaConf

__all__ = ["ALLOW_NONFINITE", "ConfigTypeError", "check_types", "convert", "describe", "field_types", "short_repr"]

ALLOW_NONFINITE = "allow_nonfinite"  # field(metadata={ALLOW_NONFINITE: True}): this float may be NaN or +-inf

# Why a value of the innermost refused type is refused: the cases users hit (a YAML string, a JSON number).
_NOTES = {
    bool: "a bool is true or false; strings such as 'false' and numbers such as 0 are not bools",
    int: "an int is a whole number; floats (even 2.0), bools and strings are refused",
    float: "a float takes an int or a float; bools, strings, NaN and inf are refused",
    str: "a str is text; numbers and bools are refused",
}


class ConfigTypeError(ValueError):
    """A config value of the wrong type: the message names the key, the value given and what is allowed."""


class _Mismatch(Exception):
    """Raised inside a nested value; the top level turns it into one ConfigTypeError for the whole key."""

    def __init__(self, where: str, value: Any, annotation: Any) -> None:
        super().__init__(where)
        self.where, self.value, self.annotation = where, value, annotation


def short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    """The resolved annotation of every field of dataclass `cls` (postponed annotations evaluated once)."""
    return typing.get_type_hints(cls)


def check_types(config: Any, prefix: str = "") -> None:
    """Check every field of dataclass instance `config` against its annotation and store the converted value.

    `prefix` is the config's group as users write it (``taylorseer`` -> ``taylorseer.order``); cache configs have
    none. Raises :class:`ConfigTypeError` for the first field of the wrong type.
    """
    hints = field_types(type(config))
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.default == MISSING and isinstance(value, str) and value == MISSING:
            continue  # not filled: only the plain-Python API gets here; Hydra refuses it when composing
        key = f"{prefix}.{f.name}" if prefix else f.name
        converted = convert(value, hints[f.name], key, allow_nonfinite=f.metadata.get(ALLOW_NONFINITE, False))
        if converted is not value:
            setattr(config, f.name, converted)


def convert(value: Any, annotation: Any, key: str, *, allow_nonfinite: bool = False) -> Any:
    """`value` checked against `annotation` and converted (enum member, list, dict, float); raises
    :class:`ConfigTypeError` naming `key`, the value given and what `annotation` allows."""
    try:
        return _convert(value, annotation, "", allow_nonfinite)
    except _Mismatch as mismatch:
        message = f"`{key}` must be {describe(annotation)}, got {short_repr(value)}"
        if mismatch.where:  # a nested item: say which
            message += f" (at {mismatch.where.strip()}: {short_repr(mismatch.value)} is not {describe(mismatch.annotation)})"
        note = _NOTES.get(mismatch.annotation)
        raise ConfigTypeError(f"{message}; {note}." if note else f"{message}.") from None


def describe(annotation: Any) -> str:
    """What `annotation` allows, in words: ``a list of int or None``."""
    if annotation is Any:
        return "any value"
    if annotation is type(None):
        return "None"
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(arm) for arm in args)
    if origin is list or annotation is list:
        return f"a list of {_plain(args[0]) if args else 'any value'}"
    if origin is dict or annotation is dict:
        return f"a dict of {_plain(args[0])} to {_plain(args[1])}" if args else "a dict"
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return f"one of {[member.value for member in annotation]}"
    name = getattr(annotation, "__name__", repr(annotation))
    return f"an {name}" if name[0] in "aeiouAEIOU" else f"a {name}"


def _plain(annotation: Any) -> str:
    """`describe` without the article, for the element types of lists and dicts."""
    return describe(annotation).removeprefix("an ").removeprefix("a ")


def _convert(value: Any, annotation: Any, where: str, allow_nonfinite: bool) -> Any:
    if annotation is Any:
        return value
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return _convert_union(value, annotation, args, where, allow_nonfinite)
    if origin is list or annotation is list:
        return _convert_list(value, args[0] if args else Any, where, allow_nonfinite)
    if origin is dict or annotation is dict:
        key_type, value_type = args if args else (Any, Any)
        return _convert_dict(value, key_type, value_type, where, allow_nonfinite)
    if annotation is bool:
        if value is True or value is False:
            return value
    elif annotation is int:
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return int(value)
    elif annotation is float:
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            if allow_nonfinite or math.isfinite(value):
                return float(value)
    elif annotation is str:
        if isinstance(value, str):
            return value
    elif isinstance(annotation, type) and issubclass(annotation, Enum):
        return _convert_enum(value, annotation, where)
    elif dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):
            return value
    else:
        raise TypeError(f"cachedit.config_types has no rule for the annotation {annotation!r}; add one.")
    raise _Mismatch(where, value, annotation)


def _convert_union(value, annotation, args, where, allow_nonfinite):
    if value is None and type(None) in args:
        return None
    arms = [arm for arm in args if arm is not type(None)]
    if len(arms) == 1:  # `X | None`: X's own mismatch says which item is wrong
        return _convert(value, arms[0], where, allow_nonfinite)
    for arm in arms:
        try:
            return _convert(value, arm, where, allow_nonfinite)
        except _Mismatch:
            pass
    raise _Mismatch(where, value, annotation)


def _convert_enum(value, enum_cls: type[Enum], where: str):
    if isinstance(value, enum_cls):
        return value
    for member in enum_cls:  # the exact value only: no other enum's member, no 1 for True
        if type(value) is type(member.value) and value == member.value:
            return member
    raise _Mismatch(where, value, enum_cls)


def _convert_list(value, item_type, where: str, allow_nonfinite: bool) -> list:
    if isinstance(value, ListConfig):
        value = OmegaConf.to_container(value, resolve=True)
    if not isinstance(value, (list, tuple)):
        raise _Mismatch(where, value, list[item_type])
    return [_convert(item, item_type, f"{where}[{i}]", allow_nonfinite) for i, item in enumerate(value)]


def _convert_dict(value, key_type, value_type, where: str, allow_nonfinite: bool) -> dict:
    if isinstance(value, DictConfig):
        value = OmegaConf.to_container(value, resolve=True)
    if not isinstance(value, Mapping):
        raise _Mismatch(where, value, dict[key_type, value_type])
    return {
        _convert(k, key_type, f"{where} key {k!r}", allow_nonfinite):
            _convert(v, value_type, f"{where}[{k!r}]", allow_nonfinite)
        for k, v in value.items()
    }
