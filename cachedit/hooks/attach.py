"""Install and remove an engine's hooks on a transformer and its blocks (instance level, removable)."""

from __future__ import annotations

import torch

from ._diffusers import HookRegistry, ModelHook

_CACHE_ROOT_HOOK = "cachedit_root"
_CACHE_BLOCK_HOOK = "cachedit_block"


class CacheRootHook(ModelHook):
    """On the transformer: marks the start of each step and is reset with the pipeline's stateful hooks."""

    _is_stateful = True

    def __init__(self, engine) -> None:
        super().__init__()
        self.engine = engine
        self.states = engine.states  # an attribute, so diffusers' `cache_context(...)` sets the branch on it

    def pre_forward(self, module, *args, **kwargs):
        hidden_states = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
        self.engine.begin_step(hidden_states)
        return args, kwargs

    def reset_state(self, module):
        self.engine.reset()
        return module


class CacheBlockHook(ModelHook):
    """On each block: lets the engine compute, skip or estimate the block."""

    def __init__(self, engine, index: int) -> None:
        super().__init__()
        self.engine = engine
        self.index = index

    def new_forward(self, module, *args, **kwargs):
        return self.engine.run_block(self.index, self.fn_ref.original_forward, args, kwargs)


def attach_engine(transformer: torch.nn.Module, blocks: list[torch.nn.Module], engine) -> None:
    HookRegistry.check_if_exists_or_initialize(transformer).register_hook(CacheRootHook(engine), _CACHE_ROOT_HOOK)
    for index, block in enumerate(blocks):
        HookRegistry.check_if_exists_or_initialize(block).register_hook(CacheBlockHook(engine, index), _CACHE_BLOCK_HOOK)
    HookRegistry.check_if_exists_or_initialize(transformer).invalidate_child_registries_cache()


def detach_engine(transformer: torch.nn.Module) -> None:
    registry = HookRegistry.check_if_exists_or_initialize(transformer)
    registry.remove_hook(_CACHE_ROOT_HOOK, recurse=False)
    registry.remove_hook(_CACHE_BLOCK_HOOK, recurse=True)
    registry.invalidate_child_registries_cache()


def has_cache_hooks(transformer: torch.nn.Module) -> bool:
    return any(
        _CACHE_BLOCK_HOOK in m._diffusers_hook.hooks or _CACHE_ROOT_HOOK in m._diffusers_hook.hooks
        for m in transformer.modules()
        if hasattr(m, "_diffusers_hook")
    )
