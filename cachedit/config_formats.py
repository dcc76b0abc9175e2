"""`load_config`: the config formats users bring -> our typed configs, with the Hydra path's checks and messages.

Accepted: a committed preset/experiment YAML path (``conf/preset/*.yaml``, ``conf/experiment/*.yaml``), a flat dict
with the cache-dit / vLLM-Omni keys (``{"Fn_compute_blocks": 1, "residual_diff_threshold": 0.12}``), a flat dict of
our own cache keys (``{"Fn": 1, ...}``, ``name`` picks the cache), or a nested dict of our groups
(``{"cache": {...}, "taylorseer": {...}, "scm": {...}, "cfg": {...}}``). YAML is read with omegaconf only: importing
this module never imports Hydra.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config_types import ConfigTypeError, check_types, convert, field_types, short_repr
from .caches import CACHE_CONFIGS, CacheConfig, DBCacheConfig, NoCacheConfig
from .configs import CFGCacheConfig, MaskedOffSteps, StepMaskConfig, StepMaskName, TaylorSeerConfig

__all__ = [
    "GROUPS", "CACHE_DIT_KEYS", "CACHE_DIT_EXTRA", "CACHE_DIT_TAYLORSEER_ORDER", "LoadedConfig",
    "load_config", "allowed_flat_keys"
]

GROUPS = {"taylorseer": TaylorSeerConfig, "scm": StepMaskConfig, "cfg": CFGCacheConfig}

# cache-dit / vLLM-Omni flat key -> our DBCache field (the others map to TaylorSeer and the step mask below).
CACHE_DIT_KEYS = {
    "Fn_compute_blocks": "Fn",
    "Bn_compute_blocks": "Bn",
    "max_warmup_steps": "max_warmup_steps",
    "max_cached_steps": "max_cached_steps",
    "max_continuous_cached_steps": "max_continuous_cached_steps",
    "residual_diff_threshold": "residual_diff_threshold",
}
# The other cache-dit keys -> (our key, its type): checked with the rules of `cachedit.config_types`.
CACHE_DIT_EXTRA = {
    "enable_taylorseer": ("enable_taylorseer", bool),
    "taylorseer_order": ("taylorseer.order", int),
    "scm_steps_mask_policy": ("scm.mask", StepMaskName | None),  # None: no mask, as in cache-dit
    "scm_steps_policy": ("scm.policy", MaskedOffSteps),
}
CACHE_DIT_TAYLORSEER_ORDER = 1  # cache-dit's default order when `enable_taylorseer` is set without one


@dataclass
class LoadedConfig:
    """The typed configs one source describes; pass them to ``enable_cache(pipe, **loaded.as_kwargs())``."""

    cache: Any = field(default_factory=DBCacheConfig)
    taylorseer: TaylorSeerConfig = field(default_factory=TaylorSeerConfig)
    scm: StepMaskConfig = field(default_factory=StepMaskConfig)
    cfg: CFGCacheConfig = field(default_factory=CFGCacheConfig)

    def __post_init__(self) -> None:
        check_types(self)

    def as_kwargs(self) -> dict:
        return {"config": self.cache, "taylorseer": self.taylorseer, "scm": self.scm, "cfg": self.cfg}


def load_config(source, base: LoadedConfig | None = None) -> LoadedConfig:
    """Typed configs from a YAML path, a flat cache-dit/vLLM-Omni dict, or a dict of our keys.

    `base` (default: our defaults) is what the source's keys change: a server's preset under a per-request
    override. Raises ``ValueError`` naming the bad key and the allowed ones before anything is built.
    """
    base = LoadedConfig() if base is None else base
    if isinstance(source, LoadedConfig):
        return source
    if isinstance(source, (str, os.PathLike)):
        return _from_yaml(Path(source), base)
    if isinstance(source, CacheConfig):
        return dataclasses.replace(base, cache=source)
    if not isinstance(source, dict):
        raise TypeError(
            f"`load_config` takes a YAML path, a dict or a cache config, got {type(source).__name__}."
        )
    if set(source) & {"cache", *GROUPS}:
        return _from_groups(source, base)
    return _from_flat(source, base)


def allowed_flat_keys(cache_cls: type = DBCacheConfig) -> list[str]:
    ours = [f.name for f in dataclasses.fields(cache_cls)]
    theirs = [key for key, target in CACHE_DIT_KEYS.items() if target in ours]  # dbprune has no max_cached_steps
    return sorted(set(ours) | set(theirs) | set(CACHE_DIT_EXTRA))


def _from_flat(flat: dict, base: LoadedConfig) -> LoadedConfig:
    """cache-dit / vLLM-Omni keys and our cache keys, in one flat dict."""
    flat = dict(_mapping(flat, "cache"))
    name = flat.pop("name", None)
    cache = _cache_base(name, base)
    cache_cls = type(cache)
    allowed = allowed_flat_keys(cache_cls)
    unknown = sorted(set(flat) - set(allowed))
    if unknown:
        raise ValueError(f"Unknown cache config keys {unknown}; allowed: {', '.join(allowed)}.")
    flat = {key: _checked(key, value, cache_cls) for key, value in flat.items()}  # types first, named as written
    ours: dict[str, Any] = {}
    for key, value in flat.items():
        if key in CACHE_DIT_KEYS:
            target = CACHE_DIT_KEYS[key]
            if target in flat and target != key and flat[target] != value:
                raise ValueError(f"`{key}`={value!r} and `{target}`={flat[target]!r} set the same knob differently.")
            ours[target] = value
        elif key not in CACHE_DIT_EXTRA:
            ours[key] = value
    if ours and cache_cls is NoCacheConfig:
        raise ValueError(f"`name`='none' caches nothing; it takes no cache keys, got {sorted(ours)}.")
    taylorseer, scm = base.taylorseer, base.scm
    if "enable_taylorseer" in flat or "taylorseer_order" in flat:
        order = flat.get("taylorseer_order", CACHE_DIT_TAYLORSEER_ORDER) if flat.get("enable_taylorseer", True) else 0
        taylorseer = _build(TaylorSeerConfig, {**_fields(base.taylorseer), "order": order}, flat)
    if "scm_steps_mask_policy" in flat or "scm_steps_policy" in flat:
        mask = flat.get("scm_steps_mask_policy", base.scm.mask)
        scm = _build(StepMaskConfig, {
            **_fields(base.scm), "mask": StepMaskName.none if mask is None else mask,
            "policy": flat.get("scm_steps_policy", base.scm.policy),
        }, flat)
    return LoadedConfig(_build(cache_cls, {**_fields(cache), **ours}, flat), taylorseer, scm, base.cfg)


def _checked(key: str, value, cache_cls: type):
    """A flat key's value, type-checked with the user's spelling of the key first in the message."""
    target = _our_key(key)
    annotation = CACHE_DIT_EXTRA[key][1] if key in CACHE_DIT_EXTRA else field_types(cache_cls)[target]
    try:
        return convert(value, annotation, target)
    except ConfigTypeError as error:
        raise ConfigTypeError(f"`{key}`: {error}" if key != target else str(error)) from None


def _mapping(value, group: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise ConfigTypeError(f"`{group}` must be a mapping of its keys, got {short_repr(value)}.")
    return value


def _from_groups(nested: dict, base: LoadedConfig) -> LoadedConfig:
    """``{"cache": {...}, "taylorseer": {...}, "scm": {...}, "cfg": {...}}``: each group onto `base`'s."""
    unknown = sorted(set(nested) - {"cache", *GROUPS})
    if unknown:
        raise ValueError(f"Unknown config groups {unknown}; allowed: cache, {', '.join(GROUPS)}.")
    loaded = _from_flat(nested["cache"], base) if "cache" in nested else base
    changes = {}
    for group, cls in GROUPS.items():
        if group in nested:
            values = dict(_mapping({} if nested[group] is None else nested[group], group))
            allowed = [f.name for f in dataclasses.fields(cls)]
            bad = sorted(set(values) - set(allowed))
            if bad:
                raise ValueError(f"Unknown `{group}` keys {bad}; allowed: {', '.join(allowed)}.")
            changes[group] = cls(**{**_fields(getattr(base, group)), **values})
    return dataclasses.replace(loaded, **changes)


def _cache_base(name, base: LoadedConfig):
    if name is None:
        return base.cache
    if not isinstance(name, str) or name not in CACHE_CONFIGS:
        raise ValueError(f"`name`={name!r} is no cache; allowed: {', '.join(sorted(CACHE_CONFIGS))}.")
    return base.cache if isinstance(base.cache, CACHE_CONFIGS[name]) else CACHE_CONFIGS[name]()


def _fields(config) -> dict:
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}


def _build(cls: type, values: dict, flat: dict):
    """`cls(**values)`: ``__post_init__`` checks the ranges with the Hydra path's messages; an error about a knob
    the user set under a cache-dit name starts with that name (``Fn_compute_blocks: `Fn` must be >= 1``)."""
    try:
        return cls(**values)
    except ValueError as error:
        written = [key for key in flat if _our_key(key) != key and f"`{_our_key(key)}`" in str(error)]
        if not written:
            raise
        raise type(error)(f"`{written[0]}`: {error}") from None


def _our_key(key: str) -> str:
    return CACHE_DIT_EXTRA[key][0] if key in CACHE_DIT_EXTRA else CACHE_DIT_KEYS.get(key, key)


################################################################################
#                       Committed YAML: presets, experiments                   #
################################################################################


def _from_yaml(path: Path, base: LoadedConfig) -> LoadedConfig:
    """A preset (``conf/preset/<model>_<cache>.yaml``) or an experiment (``conf/experiment/*.yaml``), resolved
    the way Hydra composes it: group options from the same ``conf`` directory, then the file's own keys."""
    from omegaconf import OmegaConf

    if not path.is_file():
        raise FileNotFoundError(f"No config file at {path}.")
    conf_dir = path.resolve().parent.parent
    body = OmegaConf.to_container(OmegaConf.load(path))
    if not isinstance(body, dict):
        raise ValueError(f"{path} holds no mapping.")
    options = _defaults_overrides(body.pop("defaults", []), path)
    if path.parent.name == "preset" and "cache" not in options:
        cache = path.stem.rsplit("_", 1)[-1]  # `<model>_<cache>`: applied on top of that cache option
        options["cache"] = cache if (conf_dir / "cache" / f"{cache}.yaml").is_file() else "dbcache"
    groups: dict[str, dict] = {}
    for group, option in options.items():
        if group == "model":
            continue  # which model an experiment runs on is the server's `model=`, not a cache setting
        if group not in {"cache", *GROUPS}:
            raise ValueError(f"{path}: `defaults` overrides group `{group}`; load_config reads cache, {', '.join(GROUPS)}.")
        groups[group] = _group_option(conf_dir / group, option)
    for key, value in body.items():
        if key == "model":
            continue
        if key not in {"cache", *GROUPS}:
            raise ValueError(f"{path}: key `{key}` is no cache setting; load_config reads cache, {', '.join(GROUPS)}.")
        groups[key] = {**groups.get(key, {}), **_mapping({} if value is None else value, key)}
    if "cache" in groups:
        groups["cache"].setdefault("name", "dbcache")
    return _from_groups(groups, base)


def _defaults_overrides(defaults: list, path: Path) -> dict[str, str]:
    """``- override /cache: fbcache`` entries -> ``{"cache": "fbcache"}``."""
    options = {}
    for entry in defaults:
        if entry == "_self_":
            continue
        if not isinstance(entry, dict) or len(entry) != 1:
            raise ValueError(f"{path}: unsupported defaults entry {entry!r}.")
        (key, option), = entry.items()
        options[key.removeprefix("override ").strip().lstrip("/")] = option
    return options


def _group_option(group_dir: Path, option: str) -> dict:
    """One group option's values, its own ``defaults`` (another option of the group) merged first."""
    from omegaconf import OmegaConf

    file = group_dir / f"{option}.yaml"
    if not file.is_file():
        found = sorted(p.stem for p in group_dir.glob("*.yaml"))
        raise ValueError(f"`{group_dir.name}={option}` is no option; allowed: {', '.join(found)}.")
    body = OmegaConf.to_container(OmegaConf.load(file)) or {}
    values: dict = {}
    for entry in body.pop("defaults", []):
        if isinstance(entry, str) and entry != "_self_" and not entry.startswith("/cachedit/"):
            values.update(_group_option(group_dir, entry))
    if group_dir.name == "cache":
        values.setdefault("name", option if option in CACHE_CONFIGS else None)
    return {**values, **body}
