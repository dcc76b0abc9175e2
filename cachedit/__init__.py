"""cachedit: training-free caching for diffusers DiT pipelines.

This package is the core: it imports only torch, diffusers, omegaconf and numpy, what ``pip install cachedit`` brings
(never Hydra, the harness in `cachedit.harness`, the model zoo in `cachedit.zoo` or the server in `cachedit.serving`;
tests/test_layers.py, tests/test_dependencies.py).
"""

from .adapters import BlockAdapter, patterns, supported_pipelines
from .call_guard import request
from .config_formats import LoadedConfig, load_config
from .cache import disable_cache, enable_cache, is_cache_enabled, summary
from .compiling import compile
from .caches import CacheConfig, DBCacheConfig, DBPruneConfig, FBCacheConfig, ForecastCacheConfig, NoCacheConfig
from .configs import CFGCacheConfig, ParallelConfig, StepMaskConfig, TaylorSeerConfig
from .plan import CachePlan, resolve_plan
from .stats import format_summary


__all__ = [
    "BlockAdapter",
    "CacheConfig",
    "CachePlan",
    "CFGCacheConfig",
    "DBCacheConfig",
    "DBPruneConfig",
    "ForecastCacheConfig",
    "FBCacheConfig",
    "LoadedConfig",
    "NoCacheConfig",
    "ParallelConfig",
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
    "resolve_plan",
    "summary",
    "supported_pipelines",
]
