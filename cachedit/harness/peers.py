"""Peer caches for side-by-side benchmarks (DESIGN §5): diffusers' built-in caches and cache-dit 1.5.3.

Used by `runners.bench` only, never by the library itself. Each peer is ``enable(pipe, **params)`` returning an
``undo()`` that puts the pipeline back as it was; cache-dit is imported only when a row asks for it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from diffusers.hooks import HookRegistry


# diffusers' `hooks.apply_*` function for each cache config, for transformers without `CacheMixin.enable_cache`
APPLY = {
    "FirstBlockCacheConfig": "apply_first_block_cache", "TaylorSeerCacheConfig": "apply_taylorseer_cache",
    "MagCacheConfig": "apply_mag_cache", "SeaCacheConfig": "apply_sea_cache", "FasterCacheConfig": "apply_faster_cache",
    "PyramidAttentionBroadcastConfig": "apply_pyramid_attention_broadcast",
}


def diffusers_cache_on(transformer: torch.nn.Module, config) -> Callable[[], None]:
    """A diffusers cache `config` on `transformer` through its public API; the undo removes exactly what it added."""
    if hasattr(transformer, "enable_cache"):  # CacheMixin: the supported route, which also resets per call
        transformer.enable_cache(config)
        return transformer.disable_cache
    import diffusers.hooks

    before = hook_names(transformer)
    getattr(diffusers.hooks, APPLY[type(config).__name__])(transformer, config)
    # the root registry caches its child registries; hooks just added on blocks would get no cache context
    HookRegistry.check_if_exists_or_initialize(transformer).invalidate_child_registries_cache()
    added = hook_names(transformer) - before

    def undo():
        for module in transformer.modules():
            registry = getattr(module, "_diffusers_hook", None)
            for name in [n for n in (registry.hooks if registry else {}) if (id(module), n) in added]:
                registry.remove_hook(name, recurse=False)
        HookRegistry.check_if_exists_or_initialize(transformer).invalidate_child_registries_cache()

    return undo


def _diffusers_peer(config: str) -> Callable:
    """A `PEERS` entry: ``(pipe, **params) -> undo`` for the diffusers cache config class named `config`."""

    def enable(pipe, **params):
        import diffusers

        return diffusers_cache_on(pipe.transformer, getattr(diffusers, config)(**params))

    return enable


def hook_names(transformer: torch.nn.Module) -> set[tuple[int, str]]:
    HookRegistry.check_if_exists_or_initialize(transformer)
    return {(id(m), n) for m in transformer.modules() if hasattr(m, "_diffusers_hook") for n in m._diffusers_hook.hooks}


def _cache_dit(pipe, Fn: int = 8, Bn: int = 0, residual_diff_threshold: float = 0.08, max_warmup_steps: int = 8):
    """cache-dit's DBCache on a pipeline cache-dit adapts by class (FLUX, Qwen-Image, Wan, ...), or on a DiT through
    its `BlockAdapter` (see `cache_dit_target`)."""
    try:
        import cache_dit
    except ImportError as error:
        raise ImportError(
            "The `cache_dit` peer needs cache-dit 1.5.3: `pip install cache-dit==1.5.3` (the test extras install it: `pip install -e '.[dev]'`)."
        ) from error
    config = cache_dit.DBCacheConfig(Fn_compute_blocks=Fn, Bn_compute_blocks=Bn, max_warmup_steps=max_warmup_steps,
                                     residual_diff_threshold=residual_diff_threshold)
    return cache_dit_on(cache_dit, pipe, config)


def cache_dit_on(cache_dit, pipe, cache_config, calibrator_config=None) -> Callable[[], None]:
    """`cache_dit.enable_cache` on `pipe` (through `cache_dit_target`); returns the undo, shim included."""
    target, undo_shim = cache_dit_target(cache_dit, pipe)
    cache_dit.enable_cache(target, cache_config=cache_config, calibrator_config=calibrator_config)

    def undo():
        cache_dit.disable_cache(pipe)
        undo_shim()

    return undo


def cache_dit_target(cache_dit, pipe):
    """What to hand `cache_dit.enable_cache`, and how to undo any shim. Pipelines cache-dit knows by class name go
    as they are. DiT-style transformers (the embedded tiny DiT) go through cache-dit's public `BlockAdapter` with
    `Pattern_3` (blocks take and return `hidden_states`), plus a BENCHMARK-ONLY shim: DiT's forward reads
    ``transformer_blocks[0].norm1`` for its conditioning, and cache-dit swaps the block list for a wrapper without
    it, so the wrapper class is given a `norm1` that reads the first wrapped block's, for as long as the cache is on."""
    from diffusers import DiTTransformer2DModel

    transformer = getattr(pipe, "transformer", None)
    if not isinstance(transformer, DiTTransformer2DModel):
        return pipe, lambda: None
    from cache_dit.caching.cache_blocks.pattern_base import CachedBlocks_Pattern_Base

    CachedBlocks_Pattern_Base.norm1 = property(lambda wrapper: wrapper.transformer_blocks[0].norm1)
    adapter = cache_dit.BlockAdapter(pipe=pipe, transformer=transformer, blocks=transformer.transformer_blocks,
                                     forward_pattern=cache_dit.ForwardPattern.Pattern_3)
    return adapter, lambda: delattr(CachedBlocks_Pattern_Base, "norm1")



PEERS: dict[str, Callable] = {
    "diffusers_fbc": _diffusers_peer("FirstBlockCacheConfig"),
    "diffusers_taylorseer": _diffusers_peer("TaylorSeerCacheConfig"),
    "cache_dit": _cache_dit,
}


def check_peers(peers: dict[str, dict]) -> None:
    """Raise, before any work, on a peer row that names no known peer."""
    for label, spec in peers.items():
        name = spec.get("peer")
        if name not in PEERS:
            raise ValueError(f"Peer row `{label}`: `peer: {name}` is not a known peer. Known: {', '.join(PEERS)}.")
