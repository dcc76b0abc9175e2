"""Public entry points: `enable_cache`, `disable_cache`, `summary`, `is_cache_enabled`."""

from __future__ import annotations

from dataclasses import dataclass, field

from .adapters import BlockAdapter, adapters_for
from .configs import DBCacheConfig, NoCacheConfig
from .factory import build_engine
from .hooks import attach_engine, detach_engine
from .stats import CacheStats, format_summary

_HANDLE = "_cachedit"


@dataclass
class _CacheHandle:
    """What `enable_cache` changed on a pipeline, so `disable_cache` can undo exactly that."""

    config: object
    original_class: type
    stats: CacheStats = field(default_factory=CacheStats)
    engines: list = field(default_factory=list)  # [(transformer, engine)]

    def begin_call(self) -> None:
        """Every pipeline call starts from empty state, never inferred from a step counter."""
        self.stats.begin_call()
        for _, engine in self.engines:
            engine.reset()


class CacheSummary(dict):
    """``summary(pipe)``: a dict of what the last call did; prints as one line."""

    def __str__(self) -> str:
        return format_summary(self)


def _with_call_reset(cls: type) -> type:
    """A same-named subclass whose ``__call__`` resets the cache first (``pipe(...)`` looks ``__call__`` up on
    the class, so an instance attribute would not work). `disable_cache` puts the original class back."""

    def __call__(self, *args, **kwargs):
        getattr(self, _HANDLE).begin_call()
        return cls.__call__(self, *args, **kwargs)

    return type(cls.__name__, (cls,), {"__call__": __call__, "__module__": cls.__module__, "__qualname__": cls.__qualname__})


def is_cache_enabled(pipe) -> bool:
    return hasattr(pipe, _HANDLE)


def enable_cache(pipe, config=None, *, adapters: list[BlockAdapter] | None = None):
    """Cache `pipe`'s transformer blocks with `config` (default: ``DBCacheConfig()``); returns `pipe`.

    Args:
        pipe: a diffusers pipeline (see ``cachedit.supported_pipelines()``), or any object whose transformer(s)
            the given `adapters` describe.
        config (`DBCacheConfig` or `NoCacheConfig`, *optional*): the cache policy.
        adapters (`list[BlockAdapter]`, *optional*): where the blocks are; defaults to the registry entry of
            `pipe`'s class. Unknown pipelines raise an error that shows how to write one.
    """
    if is_cache_enabled(pipe):
        raise RuntimeError(
            f"Caching is already enabled on this {type(pipe).__name__}; call `cachedit.disable_cache(pipe)` first."
        )
    config = DBCacheConfig() if config is None else config
    adapters = adapters_for(pipe) if adapters is None else adapters
    handle = _CacheHandle(config, type(pipe))
    if not isinstance(config, NoCacheConfig):
        # Build every engine first, so a bad config or adapter leaves the pipeline untouched.
        for adapter in adapters:
            transformer = adapter.find_transformer(pipe)
            blocks = adapter.blocks(transformer)
            engine = build_engine(config, blocks, handle.stats, adapter.transformer)
            handle.engines.append((transformer, engine, [block for block, _ in blocks]))
        for transformer, engine, blocks in handle.engines:
            attach_engine(transformer, blocks, engine)
        handle.engines = [(transformer, engine) for transformer, engine, _ in handle.engines]
    setattr(pipe, _HANDLE, handle)
    pipe.__class__ = _with_call_reset(type(pipe))
    return pipe


def disable_cache(pipe):
    """Remove every hook `enable_cache` installed; the pipeline then computes exactly what it did before."""
    if not is_cache_enabled(pipe):
        raise RuntimeError(f"Caching is not enabled on this {type(pipe).__name__}.")
    handle = getattr(pipe, _HANDLE)
    for transformer, _ in handle.engines:
        detach_engine(transformer)
    pipe.__class__ = handle.original_class
    delattr(pipe, _HANDLE)
    return pipe


def summary(pipe) -> CacheSummary:
    """What the cache did during `pipe`'s last call (see ``CacheStats.summary``)."""
    if not is_cache_enabled(pipe):
        raise RuntimeError(f"Caching is not enabled on this {type(pipe).__name__}; nothing to summarise.")
    return CacheSummary(getattr(pipe, _HANDLE).stats.summary())
