"""Cache policies: each module here registers the engine for one config class (`register`); importing this package
imports them all, so a new policy is one file here (plus its config and its YAML)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass

from ...configs import CACHE_CONFIGS, TaylorSeerConfig


@dataclass(frozen=True)
class PolicyEntry:
    """Args:
    build (`Callable`): ``(config, blocks, stats, name, list_starts, *, taylorseer, scm, cfg) -> CacheEngine``.
    takes_taylorseer (`bool`): whether `taylorseer` forecasts what the policy skips.
    check (`Callable`, *optional*): ``(config, taylorseer) -> None``, raising on a combination it does not define.
    """

    build: Callable
    takes_taylorseer: bool = False
    check: Callable | None = None


ENGINES: dict[type, PolicyEntry] = {}


def register(config_cls: type, build: Callable, *, takes_taylorseer: bool = False, check: Callable | None = None) -> None:
    ENGINES[config_cls] = PolicyEntry(build, takes_taylorseer, check)


def check_combination(config, taylorseer: TaylorSeerConfig | None = None) -> None:
    """Refuse combinations DESIGN §3 does not define, rather than ignoring part of them."""
    entry = ENGINES.get(type(config))
    if entry is not None and entry.check is not None:
        entry.check(config, taylorseer)
    order = taylorseer.order if taylorseer is not None else 0
    if order and (entry is None or not entry.takes_taylorseer):
        raise ValueError(f"`taylorseer.order={order}` forecasts DBCache's skipped span; it needs `cache=dbcache` or `cache=fbcache`.")


def build_engine(config, blocks, stats, name: str, list_starts: tuple[int, ...] = (0,), *, taylorseer=None, scm=None, cfg=None):
    """The engine for `config` over `blocks` (``[(module, pattern), ...]``) of the stack called `name`."""
    try:
        entry = ENGINES[type(config)]
    except KeyError:
        allowed = ", ".join(cls.__name__ for cls in CACHE_CONFIGS.values())
        raise TypeError(f"Unsupported cache config {type(config).__name__}; expected one of: {allowed}.") from None
    return entry.build(config, blocks, stats, name, list_starts, taylorseer=taylorseer, scm=scm, cfg=cfg)


for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
