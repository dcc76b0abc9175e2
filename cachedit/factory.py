"""Typed configs -> strategy objects. One explicit registry, so new algorithms plug in by adding an entry."""

from __future__ import annotations

import dataclasses

from .configs import (
    CFGCacheConfig,
    DBCacheConfig,
    DBPruneConfig,
    ForecastCacheConfig,
    NoCacheConfig,
    StepMaskConfig,
    TaylorSeerConfig,
)
from .hooks.dbcache import DBCacheEngine
from .hooks.dbprune import DBPruneEngine
from .hooks.forecast import ForecastEngine
from .stats import CacheStats

ENGINES = {DBCacheConfig: DBCacheEngine, DBPruneConfig: DBPruneEngine, ForecastCacheConfig: ForecastEngine}


def check_combination(config, taylorseer: TaylorSeerConfig | None = None) -> None:
    """Refuse combinations DESIGN §3 does not define, rather than ignoring part of them."""
    order = taylorseer.order if taylorseer is not None else 0
    if order == 0:
        return
    if isinstance(config, ForecastCacheConfig):
        raise ValueError(
            f"`taylorseer.order={order}` with `cache=forecast`: the forecast cache has its own `cache.order`; "
            f"set that and leave `taylorseer=none`."
        )
    if not isinstance(config, DBCacheConfig):
        raise ValueError(f"`taylorseer.order={order}` forecasts DBCache's skipped span; it needs `cache=dbcache` or `cache=fbcache`.")
    if not config.cache_encoder and taylorseer.encoder:
        raise ValueError(
            "`cache.cache_encoder=false` leaves the text stream as it entered a skipped span, so there is nothing "
            "to forecast on it: set `taylorseer.encoder=false` too (TaylorSeer on the image stream only)."
        )


def config_for(config, transformer: str, known: list[str]):
    """`config` with its `per_transformer` overrides for `transformer` applied (and validated again)."""
    unknown = sorted(set(getattr(config, "per_transformer", {})) - set(known))
    if unknown:
        raise ValueError(f"`per_transformer` names {unknown}, but this pipeline's transformers are {known}.")
    overrides = getattr(config, "per_transformer", {}).get(transformer, {})
    return dataclasses.replace(config, **overrides, per_transformer={}) if overrides else config


def build_engine(
    config,
    blocks,
    stats: CacheStats,
    name: str,
    list_starts: tuple[int, ...] = (0,),
    *,
    taylorseer: TaylorSeerConfig | None = None,
    scm: StepMaskConfig | None = None,
    cfg: CFGCacheConfig | None = None,
):
    """The engine for `config` over `blocks` (``[(module, pattern), ...]``) of the transformer called `name`."""
    try:
        engine_cls = ENGINES[type(config)]
    except KeyError:
        allowed = ", ".join(cls.__name__ for cls in (NoCacheConfig, *ENGINES))
        raise TypeError(f"Unsupported cache config {type(config).__name__}; expected one of: {allowed}.") from None
    check_combination(config, taylorseer)
    extra = {"taylorseer": taylorseer} if engine_cls is DBCacheEngine else {}
    return engine_cls(config, blocks, stats, name, list_starts, scm=scm, cfg=cfg, **extra)
