"""Typed configs -> strategy objects. One explicit registry, so new algorithms plug in by adding an entry."""

from __future__ import annotations

from .configs import CFGCacheConfig, DBCacheConfig, NoCacheConfig, StepMaskConfig, TaylorSeerConfig
from .hooks.dbcache import DBCacheEngine
from .stats import CacheStats

ENGINES = {DBCacheConfig: DBCacheEngine}
CACHE_CONFIGS = {"none": NoCacheConfig, "dbcache": DBCacheConfig}


def check_companions(
    taylorseer: TaylorSeerConfig | None = None, scm: StepMaskConfig | None = None, cfg: CFGCacheConfig | None = None
) -> None:
    """Refuse companion settings this version cannot honour, rather than ignoring them."""
    if taylorseer is not None and taylorseer.order > 0:
        raise NotImplementedError("`taylorseer.order` > 0: TaylorSeer is not available yet; use `taylorseer=none`.")
    if scm is not None and scm.policy != "none":
        raise NotImplementedError(f"`scm.policy={scm.policy}`: step masks are not available yet; use `scm=none`.")
    if cfg is not None and not cfg.enable_separate_cfg:
        raise NotImplementedError("`cfg.enable_separate_cfg=false` is not available yet; use `cfg=none`.")


def build_engine(config, blocks, stats: CacheStats, name: str):
    """The engine for `config` over `blocks` (``[(module, pattern), ...]``) of the transformer called `name`."""
    try:
        engine_cls = ENGINES[type(config)]
    except KeyError:
        allowed = ", ".join(cls.__name__ for cls in (NoCacheConfig, *ENGINES))
        raise TypeError(f"Unsupported cache config {type(config).__name__}; expected one of: {allowed}.") from None
    return engine_cls(config, blocks, stats, name)
