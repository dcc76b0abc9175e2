"""Install and remove an engine's hooks on a transformer and its blocks (instance level, removable).

Copies: diffusers chains a hooked module's forward through closures, which ``copy.deepcopy`` shares instead of
copying, so a copy of a cached module (``copy.deepcopy``, ``quantize_dynamic``) would still run the original's hooks,
blocks and weights. A cache hook therefore copies as a `CopiedHook` that only marks the copy's registry, remembers the
copy (so the original's `detach_engine` clears it too), and the original's hooks refuse to run for it.
"""

from __future__ import annotations

import copy
import weakref

import torch

from ._diffusers import HookRegistry, ModelHook
from .lifecycle import Lifecycle

_CACHE_ROOT_HOOK = "cachedit_root"
_CACHE_BLOCK_HOOK = "cachedit_block"
_FORWARD_PATCH_HOOK = "cachedit_forward_patch"
_PREFIX = "cachedit"


def _names(stack: str | None) -> tuple[str, str]:
    """Hook names of one engine: several engines (one per stack) may sit on the same transformer."""
    if stack is None:
        return _CACHE_ROOT_HOOK, _CACHE_BLOCK_HOOK
    return f"{_CACHE_ROOT_HOOK}:{stack}", f"{_CACHE_BLOCK_HOOK}:{stack}"


def copied_module_message(module: torch.nn.Module) -> str:
    return (
        f"This {type(module).__name__} is a copy of a module cached by cachedit, made while caching was on "
        f"(`copy.deepcopy`, or a transform that copies such as `torch.ao.quantization.quantize_dynamic`): its copied "
        f"cache hooks would run the original's blocks and weights, not its own. Copy before `cachedit.enable_cache` or "
        f"after `cachedit.disable_cache` (which clears the copies too), or call `cachedit.enable_cache` on the copy "
        f"(or on the pipeline that holds it; disable_cache that pipeline first): its copied hooks are replaced."
    )


class _TracksCopies:
    """A cache hook bound to the module it was registered on; a deep copy of it is a `CopiedHook`."""

    def initialize_hook(self, module: torch.nn.Module) -> torch.nn.Module:
        self.module = module
        self.copies = weakref.WeakSet()  # copies of `module` made while this hook was on it
        return module

    def pre_forward(self, module, *args, **kwargs):
        if module is not self.module:  # a copy's forward reached the original's hook chain
            raise RuntimeError(copied_module_message(module))
        return args, kwargs

    def __deepcopy__(self, memo):
        clone = CopiedHook()
        memo[id(self)] = clone
        clone.copies = weakref.WeakSet()
        clone.module = memo.get(id(getattr(self, "module", None)))  # the module's copy, when it is being copied too
        if clone.module is not None:
            self.copies.add(clone.module)
        clone.fn_ref = copy.deepcopy(self.fn_ref, memo)  # the copied registry's own references, to undo it
        return clone


class CopiedHook(_TracksCopies, ModelHook):
    """What a deep copy of a cached module holds in place of each cache hook: never runs (the copy's forward still
    reaches the original's hooks, which refuse it); removed by the original's `detach_engine` or when caching is
    enabled on the copy."""

    def __init__(self) -> None:
        ModelHook.__init__(self)


class CacheRootHook(_TracksCopies, ModelHook):
    """On the transformer: tells the lifecycle a transformer call begins and ends, and runs the call unless the
    lifecycle has its output already (a forecast step); reset with the pipeline's stateful hooks."""

    _is_stateful = True

    def __init__(self, lifecycle: Lifecycle) -> None:
        super().__init__()
        self.lifecycle = lifecycle
        self.states = lifecycle.states  # an attribute, so diffusers' `cache_context(...)` sets the branch on it

    def pre_forward(self, module, *args, **kwargs):
        super().pre_forward(module)  # refuses a copy
        self.lifecycle.begin_forward(module, args, kwargs)
        return args, kwargs

    def new_forward(self, module, *args, **kwargs):
        output = self.lifecycle.skipped_call()
        return self.fn_ref.original_forward(*args, **kwargs) if output is None else output

    def post_forward(self, module, output):
        return self.lifecycle.end_forward(output)

    def reset_state(self, module):
        self.lifecycle.reset()
        return module


class CacheBlockHook(_TracksCopies, ModelHook):
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


class ForwardPatchHook(_TracksCopies, ModelHook):
    """On a transformer whose layout patches its forward while cached (`StackLayout.forward_patch`); removed by
    reference (`detach_forward_patch`), never with the engines' hooks."""

    def __init__(self, patch) -> None:
        super().__init__()
        self.patch = patch

    def new_forward(self, module, *args, **kwargs):
        super().pre_forward(module)  # refuses a copy
        return self.patch(module, self.fn_ref.original_forward, args, kwargs)


def attach_forward_patch(transformer: torch.nn.Module, patch, stack: str | None = None) -> ForwardPatchHook:
    """Run `transformer`'s forward as ``patch(transformer, forward, args, kwargs)``; returns the hook, which
    `detach_forward_patch` takes. Attach it before the engine: the engine's root hook then sees the call first."""
    hook = ForwardPatchHook(patch)
    name = _FORWARD_PATCH_HOOK if stack is None else f"{_FORWARD_PATCH_HOOK}:{stack}"
    registry = HookRegistry.check_if_exists_or_initialize(transformer)
    _refuse_taken(registry, name, transformer)
    registry.register_hook(hook, name)
    return hook


def detach_forward_patch(transformer: torch.nn.Module, hook: ForwardPatchHook) -> None:
    """Remove `hook` (what `attach_forward_patch` returned) from `transformer`, and its copied hooks from copies."""
    registry = HookRegistry.check_if_exists_or_initialize(transformer)
    name = next((n for n, h in registry.hooks.items() if h is hook), None)
    if name is None:
        raise RuntimeError(f"This forward patch is not attached to this {type(transformer).__name__}.")
    for copied in list(hook.copies):
        detach_engine(copied, copied_only=True)
    _remove_hook(registry, name)


def attach_engine(transformer: torch.nn.Module, blocks: list[torch.nn.Module], lifecycle: Lifecycle,
                  stack: str | None = None) -> None:
    """Hook `lifecycle` (and its engine) onto `transformer` and its `blocks`; `stack` makes the hook names unique."""
    root_name, block_name = _names(stack)
    registry = HookRegistry.check_if_exists_or_initialize(transformer)
    _refuse_taken(registry, root_name, transformer)
    registry.register_hook(CacheRootHook(lifecycle), root_name)
    for index, block in enumerate(blocks):
        HookRegistry.check_if_exists_or_initialize(block).register_hook(CacheBlockHook(lifecycle, index), block_name)
    registry.invalidate_child_registries_cache()


def detach_attached(transformer: torch.nn.Module, blocks: list[torch.nn.Module], stack: str | None = None) -> None:
    """Undo one `attach_engine` exactly: its named hooks only, so another engine on the same transformer stays."""
    root_name, block_name = _names(stack)
    for module, name in [(transformer, root_name), *((block, block_name) for block in blocks)]:
        registry = getattr(module, "_diffusers_hook", None)
        if registry is not None and name in registry.hooks:
            _remove_hook(registry, name)
    HookRegistry.check_if_exists_or_initialize(transformer).invalidate_child_registries_cache()


def _refuse_taken(registry: HookRegistry, name: str, transformer: torch.nn.Module) -> None:
    if name in registry.hooks:
        raise RuntimeError(
            f"{type(transformer).__name__} already has a cache hook `{name}`: caching was enabled on another "
            f"pipeline that shares this transformer (caching belongs to the pipeline that enabled it). Call "
            f"`cachedit.disable_cache` on that pipeline first, or give this one its own copy of the transformer."
        )


def detach_engine(transformer: torch.nn.Module, copied_only: bool = False) -> None:
    """Remove every cache hook (of every engine) from `transformer` and its submodules, and the copied hooks of every
    copy made of them; `copied_only`: only the `CopiedHook`s (a copy that has its own cache since keeps it). A forward
    patch stays: whoever attached it removes it (`detach_forward_patch`)."""
    for module in transformer.modules():
        registry = getattr(module, "_diffusers_hook", None)
        if registry is None:
            continue
        for name in [n for n in registry.hooks if n.startswith(_PREFIX)]:
            hook = registry.hooks[name]
            if isinstance(hook, ForwardPatchHook) or (copied_only and not isinstance(hook, CopiedHook)):
                continue
            for copied in list(getattr(hook, "copies", ())):
                detach_engine(copied, copied_only=True)
            _remove_hook(registry, name)
    HookRegistry.check_if_exists_or_initialize(transformer).invalidate_child_registries_cache()


def _remove_hook(registry: HookRegistry, name: str) -> None:
    """``registry.remove_hook(name)`` in any order: diffusers rewires the hook above the removed one by its `forward`,
    which for a hook with a `new_forward` (the root hook, a forward patch) is that `new_forward` itself, while it
    calls down through `original_forward`, left on the removed hook's. That one is rewired instead."""
    index = registry._hook_order.index(name)
    above = registry._fn_refs[index + 1] if index + 1 < len(registry._fn_refs) else None
    if above is None or above.original_forward is None:
        registry.remove_hook(name, recurse=False)
        return
    own_forward = above.forward
    registry.remove_hook(name, recurse=False)  # sets `above.forward` to what the removed hook called down to
    above.original_forward, above.forward = above.forward, own_forward


def detach_copied_hooks(module: torch.nn.Module) -> None:
    """Clear what a copy of a cached module carries over, so caching can be enabled on the copy itself."""
    detach_engine(module, copied_only=True)


def has_cache_hooks(transformer: torch.nn.Module) -> bool:
    return any(
        any(name.startswith(_PREFIX) for name in m._diffusers_hook.hooks)
        for m in transformer.modules()
        if hasattr(m, "_diffusers_hook")
    )
