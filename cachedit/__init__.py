"""cachedit: training-free caching for diffusers DiT pipelines. Importing it never imports Hydra."""

from .adapters import BlockAdapter, patterns, supported_pipelines
from .call_guard import request
from .config_formats import LoadedConfig, load_config
from .cache import disable_cache, enable_cache, is_cache_enabled, summary
from .compiling import compile
from .configs import (
    CFGCacheConfig,
    DBCacheConfig,
    DBPruneConfig,
    ForecastCacheConfig,
    ModelConfig,
    NoCacheConfig,
    ParallelConfig,
    RunConfig,
    StepMaskConfig,
    TaylorSeerConfig,
)
from .stats import format_summary


def FBCacheConfig(**kwargs) -> DBCacheConfig:
    """First Block Cache: DBCache with ``Fn=1, Bn=0``."""
    return DBCacheConfig(Fn=1, Bn=0, **kwargs)


__all__ = [
    "BlockAdapter",
    "CFGCacheConfig",
    "DBCacheConfig",
    "DBPruneConfig",
    "ForecastCacheConfig",
    "FBCacheConfig",
    "LoadedConfig",
    "ModelConfig",
    "NoCacheConfig",
    "ParallelConfig",
    "RunConfig",
    "StepMaskConfig",
    "TaylorSeerConfig",
    "compile",
    "disable_cache",
    "enable_cache",
    "format_summary",
    "is_cache_enabled",
    "load_config",
    "patterns",
    "request",
    "summary",
    "supported_pipelines",
]
