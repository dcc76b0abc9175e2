"""Public entry points: `enable_cache`, `disable_cache`, `summary`, `is_cache_enabled`.

Caching belongs to the pipeline it was enabled on: another pipeline sharing its transformer (``from_pipe``,
``Pipeline(**pipe.components)``) computes uncached; `copy.deepcopy` and `pickle` give an independent cached pipeline.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import os
from dataclasses import dataclass, field

import torch

from .adapters import BlockAdapter
from .call_guard import CallGuard, TransformerHolder, holder_of, unwrap_transformer, wrap_transformer
from .config_formats import LoadedConfig, load_config
from .caches import DBCacheConfig
from .configs import CFGCacheConfig, StepMaskConfig, TaylorSeerConfig
from .hooks import attach_engine, detach_engine
from .hooks.attach import attach_forward_patch, detach_attached, detach_forward_patch
from .hooks.lifecycle import Lifecycle, with_call_start
from .plan import CachePlan, resolve_plan
from .stats import format_summary

__all__ = ["CacheSummary", "disable_cache", "enable_cache", "is_cache_enabled", "summary"]

_HANDLE = "_cachedit"


@dataclass
class _CacheHandle:
    """What `enable_cache` changed on a pipeline, so `disable_cache` can undo exactly that."""

    plan: CachePlan
    original_class: type
    lifecycles: list = field(default_factory=list)  # one per planned stack
    patches: list = field(default_factory=list)  # (transformer, hook) per attached forward patch, removed by reference
    guard: CallGuard = field(default_factory=CallGuard)  # one call at a time: state is per model

    @property
    def config(self):
        return self.plan.config

    @property
    def options(self) -> dict:  # taylorseer, scm, cfg, adapters: to enable a copy the same way
        return self.plan.options

    @property
    def stats(self):
        return self.plan.stats

    @property
    def transformers(self) -> list[torch.nn.Module]:
        return list({id(s.transformer): s.transformer for s in self.plan.stacks}.values())

    def settings(self) -> dict:
        """The snapshot of the configs in force, JSON-ready."""
        settings = {"cache": {"type": type(self.config).__name__, **_plain(self.config)}}
        for name in ("taylorseer", "scm", "cfg"):
            settings[name] = _plain(self.options.get(name))
        return settings

    def begin_call(self, num_inference_steps: int | None, read_step_count=None) -> None:
        """Every pipeline call starts from empty state, never inferred from a step counter. `read_step_count` reads
        the steps the call really runs at its first step (``sigmas=``, ``timesteps=``, img2img ``strength``)."""
        self.stats.begin_call()
        for lifecycle in self.lifecycles:
            lifecycle.begin_call(num_inference_steps, read_step_count)

    def detach_patches(self) -> None:
        while self.patches:
            detach_forward_patch(*self.patches.pop())


class CacheSummary(dict):
    """``summary(pipe)``: a dict of what the last call did; prints as one line."""

    def __str__(self) -> str:
        return format_summary(self)


def _uncached_copy(pipe, memo: dict):
    """A deep copy of `pipe` as it was before `enable_cache` (original class, no hooks); `pipe` is not touched."""
    handle = getattr(pipe, _HANDLE)
    clone = handle.original_class.__new__(handle.original_class)
    memo[id(pipe)] = clone
    state = {key: value for key, value in pipe.__dict__.items() if key != _HANDLE}
    clone.__dict__.update(copy.deepcopy(state, memo))  # the hooks on its modules are copied with them ...
    for transformer in handle.transformers:
        detach_engine(memo[id(transformer)])  # ... and removed here
    return clone


def _deepcopy_cached(pipe, memo: dict):
    """An independent cached pipeline: its own engines, state and stats, enabled with the same settings."""
    handle = getattr(pipe, _HANDLE)
    return _enable_like(_uncached_copy(pipe, memo), handle.plan.given, handle.options)  # decided for the copy


def _reduce_cached(pipe, protocol):
    """Pickle the uncached pipeline and the settings; unpickling enables caching again (the generated class
    itself cannot be pickled by name)."""
    handle = getattr(pipe, _HANDLE)
    return _enable_like, (_uncached_copy(pipe, {}), handle.plan.given, handle.options)


def _enable_like(pipe, config, options: dict):
    return enable_cache(pipe, config, **options)


def _plain(value):
    """A config dataclass as JSON-ready data (enums as their values)."""
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _target(pipe):
    """Where the handle lives: the pipeline, or the holder of a bare transformer (see `cachedit.request`)."""
    holder = holder_of(pipe) if isinstance(pipe, torch.nn.Module) else None
    return pipe if holder is None else holder


def is_cache_enabled(pipe) -> bool:
    return hasattr(_target(pipe), _HANDLE)


def enable_cache(
    pipe,
    config=None,
    *,
    taylorseer: TaylorSeerConfig | None = None,
    scm: StepMaskConfig | None = None,
    cfg: CFGCacheConfig | None = None,
    adapters: list[BlockAdapter] | None = None,
):
    """Cache `pipe`'s transformer blocks with `config` (default: ``DBCacheConfig()``); returns `pipe`.

    The configs are copied: changing them afterwards has no effect (``summary(pipe)["settings"]`` shows what is in
    force). Caching belongs to `pipe`: another pipeline sharing its transformer (``from_pipe``) computes uncached.
    ``copy.deepcopy(pipe)`` and ``pickle`` give an independent cached pipeline.

    Args:
        pipe: a diffusers pipeline (see ``cachedit.supported_pipelines()``), or any object whose transformer(s)
            the given `adapters` describe, or a bare transformer (`torch.nn.Module`) whose sampling loop someone
            else owns: each request then runs inside ``with cachedit.request(transformer, num_inference_steps=N):``.
        config (`CacheConfig`, *optional*): the cache technique (`DBCacheConfig`, `ForecastCacheConfig`, `DBPruneConfig`,
            `NoCacheConfig`, or any registered `cachedit.CacheConfig`); or anything ``cachedit.load_config`` takes
            (a preset/experiment path, a cache-dit/vLLM-Omni flat dict, our keys).
        taylorseer (`TaylorSeerConfig`, *optional*): forecast skipped spans (techniques that take it: DBCache).
        scm (`StepMaskConfig`, *optional*): steps that must compute.
        cfg (`CFGCacheConfig`, *optional*): how guidance branches share state.
        adapters (`list[BlockAdapter]`, *optional*): where the blocks are; defaults to the registry entry of
            `pipe`'s class. Unknown pipelines raise an error that shows how to write one.
    """
    if is_cache_enabled(pipe):
        raise RuntimeError(
            f"Caching is already enabled on this {type(pipe).__name__}; call `cachedit.disable_cache(pipe)` first."
        )
    if isinstance(config, (str, os.PathLike, dict, LoadedConfig)):
        config, taylorseer, scm, cfg = _loaded(load_config(config), taylorseer=taylorseer, scm=scm, cfg=cfg)
    if isinstance(pipe, torch.nn.Module):
        return _enable_on_transformer(pipe, config, taylorseer=taylorseer, scm=scm, cfg=cfg, adapters=adapters)
    # A snapshot: changing the caller's config objects later has no effect on this cache.
    config = DBCacheConfig() if config is None else copy.deepcopy(config)
    taylorseer, scm, cfg = copy.deepcopy((taylorseer, scm, cfg))
    plan = resolve_plan(pipe, config, taylorseer=taylorseer, scm=scm, cfg=cfg, adapters=adapters)  # every check
    # Nothing was attached before this point: a bad config or adapter leaves the pipeline untouched.
    handle = _CacheHandle(plan, type(pipe))
    separate = cfg.enable_separate_cfg if cfg is not None else CFGCacheConfig().enable_separate_cfg
    try:
        for stack in plan.stacks:
            lifecycle = Lifecycle(stack.engine, separate_branches=separate, call_facts=stack.call_facts)
            lifecycle.owner = handle
            if stack.forward_patch is not None:  # before the engine's hooks, which then see each call first
                hook = attach_forward_patch(stack.transformer, stack.forward_patch, stack.hook_suffix)
                handle.patches.append((stack.transformer, hook))
            attach_engine(stack.transformer, [block for block, _ in stack.blocks], lifecycle, stack.hook_suffix)
            handle.lifecycles.append(lifecycle)
    except Exception:  # e.g. a second transformer is cached by another pipeline: leave nothing of ours behind
        handle.detach_patches()
        for stack in plan.stacks[: len(handle.lifecycles)]:  # those attached, exactly: another pipeline's stay
            detach_attached(stack.transformer, [block for block, _ in stack.blocks], stack.hook_suffix)
        raise
    setattr(pipe, _HANDLE, handle)
    if not isinstance(pipe, TransformerHolder):  # a bare transformer's requests begin at `cachedit.request`
        namespace = {"__deepcopy__": _deepcopy_cached, "__reduce_ex__": _reduce_cached}
        pipe.__class__ = with_call_start(type(pipe), lambda p: getattr(p, _HANDLE), namespace)
    return pipe


def _loaded(loaded: LoadedConfig, **explicit) -> tuple:
    """The loaded configs; an explicit argument may not contradict them (which would win is no one's guess)."""
    for name, value in explicit.items():
        if value is not None and value != getattr(loaded, name):
            raise ValueError(f"`{name}` is given both in `config` ({getattr(loaded, name)}) and as an argument ({value}).")
    return loaded.cache, loaded.taylorseer, loaded.scm, loaded.cfg


def _enable_on_transformer(transformer, config, *, adapters, **kwargs):
    """Cache a bare transformer; its blocks are discovered unless `adapters` name them."""
    if holder_of(transformer) is not None:
        raise RuntimeError(
            f"Caching is already enabled on this {type(transformer).__name__}; call `cachedit.disable_cache` first."
        )
    holder = wrap_transformer(transformer)
    try:
        enable_cache(holder, config, adapters=adapters or [BlockAdapter(block_lists="auto")], **kwargs)
    except Exception:
        unwrap_transformer(transformer)
        raise
    return transformer


def disable_cache(pipe):
    """Remove every hook `enable_cache` installed; the pipeline then computes exactly what it did before."""
    if not is_cache_enabled(pipe):
        raise RuntimeError(f"Caching is not enabled on this {type(pipe).__name__}.")
    target = _target(pipe)
    handle = getattr(target, _HANDLE)
    with handle.guard.hold():  # never pull the hooks from under a running call
        handle.detach_patches()
        for transformer in handle.transformers:
            detach_engine(transformer)
        target.__class__ = handle.original_class
        delattr(target, _HANDLE)
    if target is not pipe:
        unwrap_transformer(pipe)
    return pipe


def summary(pipe) -> CacheSummary:
    """What the cache did during `pipe`'s last call (see ``CacheStats.summary``)."""
    if not is_cache_enabled(pipe):
        raise RuntimeError(f"Caching is not enabled on this {type(pipe).__name__}; nothing to summarise.")
    handle = getattr(_target(pipe), _HANDLE)
    return CacheSummary(handle.stats.summary(), settings=handle.settings())
