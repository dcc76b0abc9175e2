"""Install and remove an engine's hooks on a transformer and its blocks (instance level, removable)."""

from __future__ import annotations

import torch

from ._diffusers import HookRegistry, ModelHook
from .lifecycle import Lifecycle

_CACHE_ROOT_HOOK = "cachedit_root"
_CACHE_BLOCK_HOOK = "cachedit_block"
_PREFIX = "cachedit"


def _names(stack: str | None) -> tuple[str, str]:
    """Hook names of one engine: several engines (one per stack) may sit on the same transformer."""
    if stack is None:
        return _CACHE_ROOT_HOOK, _CACHE_BLOCK_HOOK
    return f"{_CACHE_ROOT_HOOK}:{stack}", f"{_CACHE_BLOCK_HOOK}:{stack}"


class CacheRootHook(ModelHook):
    """On the transformer: tells the lifecycle a transformer call begins and ends; reset with the pipeline's
    stateful hooks."""

    _is_stateful = True

    def __init__(self, lifecycle: Lifecycle) -> None:
        super().__init__()
        self.lifecycle = lifecycle
        self.states = lifecycle.states  # an attribute, so diffusers' `cache_context(...)` sets the branch on it

    def pre_forward(self, module, *args, **kwargs):
        self.lifecycle.begin_forward(module, args, kwargs)
        return args, kwargs

    def post_forward(self, module, output):
        self.lifecycle.end_forward()
        return output

    def reset_state(self, module):
        self.lifecycle.reset()
        return module


class CacheBlockHook(ModelHook):
    """On each block: lets the engine compute, skip or estimate the block."""

    def __init__(self, lifecycle: Lifecycle, index: int) -> None:
        super().__init__()
        self.lifecycle = lifecycle
        self.engine = lifecycle.engine
        self.index = index

    def new_forward(self, module, *args, **kwargs):
        if self.lifecycle.bypass:
            return self.fn_ref.original_forward(*args, **kwargs)
        step = self.lifecycle.enter_block(self.index, args, kwargs)
        return self.engine.run_block(step, self.index, self.fn_ref.original_forward, args, kwargs)


def attach_engine(transformer: torch.nn.Module, blocks: list[torch.nn.Module], lifecycle: Lifecycle,
                  stack: str | None = None) -> None:
    """Hook `lifecycle` (and its engine) onto `transformer` and its `blocks`; `stack` makes the hook names unique."""
    root_name, block_name = _names(stack)
    registry = HookRegistry.check_if_exists_or_initialize(transformer)
    if root_name in registry.hooks:
        raise RuntimeError(
            f"{type(transformer).__name__} already has a cache hook `{root_name}`: caching was enabled on another "
            f"pipeline that shares this transformer (caching belongs to the pipeline that enabled it). Call "
            f"`cachedit.disable_cache` on that pipeline first, or give this one its own copy of the transformer."
        )
    registry.register_hook(CacheRootHook(lifecycle), root_name)
    for index, block in enumerate(blocks):
        HookRegistry.check_if_exists_or_initialize(block).register_hook(CacheBlockHook(lifecycle, index), block_name)
    registry.invalidate_child_registries_cache()


def detach_engine(transformer: torch.nn.Module) -> None:
    """Remove every cache hook (of every engine) from `transformer` and its submodules."""
    for module in transformer.modules():
        registry = getattr(module, "_diffusers_hook", None)
        if registry is None:
            continue
        for name in [n for n in registry.hooks if n.startswith(_PREFIX)]:
            registry.remove_hook(name, recurse=False)
    HookRegistry.check_if_exists_or_initialize(transformer).invalidate_child_registries_cache()


def has_cache_hooks(transformer: torch.nn.Module) -> bool:
    return any(
        any(name.startswith(_PREFIX) for name in m._diffusers_hook.hooks)
        for m in transformer.modules()
        if hasattr(m, "_diffusers_hook")
    )
