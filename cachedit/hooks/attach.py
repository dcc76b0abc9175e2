"""Install and remove an engine's hooks on a transformer and its blocks (instance level, removable)."""

from __future__ import annotations

import torch

from ..distributed import context_parallel_group
from ._diffusers import HookRegistry, ModelHook, host_timestep
from .call_owner import serves_current_call

_CACHE_ROOT_HOOK = "cachedit_root"
_CACHE_BLOCK_HOOK = "cachedit_block"
_PREFIX = "cachedit"


def _names(stack: str | None) -> tuple[str, str]:
    """Hook names of one engine: several engines (one per stack) may sit on the same transformer."""
    if stack is None:
        return _CACHE_ROOT_HOOK, _CACHE_BLOCK_HOOK
    return f"{_CACHE_ROOT_HOOK}:{stack}", f"{_CACHE_BLOCK_HOOK}:{stack}"


class CacheRootHook(ModelHook):
    """On the transformer: marks the start of each step and is reset with the pipeline's stateful hooks.

    A call that stores every block's keys and values for later calls (`_writes_kv_cache`) runs uncached and is no
    step of any branch: a skipped block would store nothing, and the calls that read them are counted as usual."""

    _is_stateful = True

    def __init__(self, engine) -> None:
        super().__init__()
        self.engine = engine
        self.states = engine.states  # an attribute, so diffusers' `cache_context(...)` sets the branch on it

    def pre_forward(self, module, *args, **kwargs):
        # Not a call of the pipeline that enabled caching (another pipeline shares the transformer): run uncached.
        self.engine.bypass = _writes_kv_cache(kwargs) or not serves_current_call(self.engine.owner)
        if self.engine.bypass:
            return args, kwargs
        self.engine.group = context_parallel_group(module)  # parallelism may be enabled after the cache
        # Read to the host once: branch detection and the engine's loop check both use it.
        timestep = host_timestep(next((kwargs[k] for k in _TIMESTEP_KEYS if k in kwargs), None))
        self.states.begin_forward(timestep)
        self.engine.begin_step(_latent_input(args, kwargs), timestep)
        return args, kwargs

    def post_forward(self, module, output):
        self.engine.bypass = False
        return output

    def reset_state(self, module):
        self.engine.reset()
        return module


_TIMESTEP_KEYS = ("timestep", "timesteps", "t", "sigma")


def _writes_kv_cache(kwargs: dict) -> bool:
    """FLUX.2 Klein KV's and Qwen-Image 2.1's first step and Wan-Animate 2's reference pass (``kv_cache_mode=
    "extract"``); AnyFlow-FAR's re-encoding of a finished chunk (``kv_cache_flag["is_cache_step"]``)."""
    flag = kwargs.get("kv_cache_flag")
    return kwargs.get("kv_cache_mode") == "extract" or (isinstance(flag, dict) and bool(flag.get("is_cache_step")))


def _latent_input(args: tuple, kwargs: dict) -> torch.Tensor:
    """The transformer's latent input: ``hidden_states`` (or ``x``, ``visual_embed``), else the first argument. Z-Image
    takes a list of latents (one per image): its first tensor stands for the batch."""
    value = next((kwargs[k] for k in ("hidden_states", "x", "visual_embed", "latents") if k in kwargs), None)
    if value is None:
        value = args[0] if args else next(v for v in kwargs.values() if isinstance(v, (torch.Tensor, list, tuple)))
    while isinstance(value, (list, tuple)):
        value = value[0]
    return value


class CacheBlockHook(ModelHook):
    """On each block: lets the engine compute, skip or estimate the block."""

    def __init__(self, engine, index: int) -> None:
        super().__init__()
        self.engine = engine
        self.index = index

    def new_forward(self, module, *args, **kwargs):
        if self.engine.bypass:
            return self.fn_ref.original_forward(*args, **kwargs)
        if self.index == 0:
            if self.engine.first_block_ran:  # the transformer runs its blocks again (RFD4-Proteina's recycling)
                self.engine.begin_step(_latent_input(args, kwargs))
            self.engine.first_block_ran = True
        return self.engine.run_block(self.index, self.fn_ref.original_forward, args, kwargs)


def attach_engine(transformer: torch.nn.Module, blocks: list[torch.nn.Module], engine, stack: str | None = None) -> None:
    """Hook `engine` onto `transformer` and its `blocks`; `stack` makes the hook names unique per engine."""
    root_name, block_name = _names(stack)
    registry = HookRegistry.check_if_exists_or_initialize(transformer)
    if root_name in registry.hooks:
        raise RuntimeError(
            f"{type(transformer).__name__} already has a cache hook `{root_name}`: caching was enabled on another "
            f"pipeline that shares this transformer (caching belongs to the pipeline that enabled it). Call "
            f"`cachedit.disable_cache` on that pipeline first, or give this one its own copy of the transformer."
        )
    registry.register_hook(CacheRootHook(engine), root_name)
    for index, block in enumerate(blocks):
        HookRegistry.check_if_exists_or_initialize(block).register_hook(CacheBlockHook(engine, index), block_name)
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
