"""``cachedit.compile(pipe, mode=...)``: torch.compile that leaves the cache decisions outside compiled code.

`regional` (recommended) compiles the innermost ``forward`` of each repeated block, under any hooks: the cache hooks
stay eager Python around compiled blocks, so a decision (skip, reuse, forecast) never breaks a graph, never adds a
guard and never recompiles. Blocks of one class share one compiled graph. The compiled forward is swapped in below the
hooks, so ``compile`` and ``enable_cache``/``disable_cache`` work in either order.

`full` compiles the whole transformer; the cache hooks would run inside it (a graph break per block, guards on Python
counters, then a silent fall back to eager once the recompile limit is hit), so `full` and caching refuse each other
with an error that names `regional`.
"""

from __future__ import annotations

import torch

from .adapters import adapters_for
from .configs import CompileMode, _enum

__all__ = [
    "compile", "check_cacheable"
]

_EAGER = "_cachedit_eager_forward"  # on a module whose forward `compile` replaced: the forward to restore
_MODE = "_cachedit_compile_mode"  # on the transformer: the mode it was compiled with


def _innermost_forward(module: torch.nn.Module):
    """The forward below every diffusers hook (the module's own computation)."""
    registry = getattr(module, "_diffusers_hook", None)
    refs = registry._fn_refs if registry is not None else []
    if not refs:
        return module.forward
    return refs[0].original_forward if refs[0].original_forward is not None else refs[0].forward


def _set_innermost_forward(module: torch.nn.Module, forward) -> None:
    registry = getattr(module, "_diffusers_hook", None)
    refs = registry._fn_refs if registry is not None else []
    if not refs:
        module.forward = forward
    elif refs[0].original_forward is not None:
        refs[0].original_forward = forward
    else:
        refs[0].forward = forward


def _compile_module(module: torch.nn.Module, options: dict) -> None:
    if hasattr(module, _EAGER):
        return
    eager = _innermost_forward(module)
    setattr(module, _EAGER, eager)
    _set_innermost_forward(module, torch.compile(eager, **options))


def _restore_module(module: torch.nn.Module) -> None:
    if hasattr(module, _EAGER):
        _set_innermost_forward(module, getattr(module, _EAGER))
        delattr(module, _EAGER)


def _transformers_and_blocks(pipe, adapters=None):
    adapters = adapters_for(pipe) if adapters is None else adapters
    for adapter in adapters:
        if adapter.present(pipe):
            transformer = adapter.find_transformer(pipe)
            yield transformer, [block for block, _ in adapter.blocks(transformer)]


def compile(pipe, mode: str | CompileMode = CompileMode.regional, *, adapters=None, **options):
    """Compile `pipe`'s transformer(s); returns `pipe`. `options` go to ``torch.compile`` (``backend``, ``mode``, ...).

    Args:
        mode (`str`, defaults to `"regional"`): `regional` compiles each repeated block's own forward (cache decisions
            stay outside compiled code: no graph break, no recompile across decisions); `full` the whole transformer
            (refused while caching is enabled); `none` restores the eager forwards.
        adapters (`list[BlockAdapter]`, *optional*): where the blocks are, as for ``enable_cache``.
    """
    from .hooks.attach import has_cache_hooks

    mode = _enum(CompileMode, mode, "compile")
    pairs = list(_transformers_and_blocks(pipe, adapters))
    for transformer, blocks in pairs:  # restore first: switching modes never stacks two compiles
        for module in [transformer, *blocks]:
            _restore_module(module)
        if hasattr(transformer, _MODE):
            delattr(transformer, _MODE)
    if mode == CompileMode.none:
        return pipe
    for transformer, blocks in pairs:
        if mode == CompileMode.full and has_cache_hooks(transformer):
            raise RuntimeError(_full_with_cache_message(transformer))
        for module in blocks if mode == CompileMode.regional else [transformer]:
            _compile_module(module, options)
        setattr(transformer, _MODE, mode)
    return pipe


def _full_with_cache_message(transformer: torch.nn.Module) -> str:
    return (
        f"`compile=full` compiles the cache hooks of {type(transformer).__name__} into the graph: a break per block and "
        "guards on Python counters, then a silent fall back to eager at the recompile limit. With caching use "
        "`compile=regional` (`cachedit.compile(pipe, mode='regional')`): the blocks compile, the decisions stay eager."
    )


def check_cacheable(transformer: torch.nn.Module) -> None:
    """Called by ``enable_cache``: refuse a transformer compiled as a whole (by `full` or by the user)."""
    whole = (
        getattr(transformer, _MODE, None) == CompileMode.full
        or isinstance(transformer, torch._dynamo.eval_frame.OptimizedModule)  # torch.compile(pipe.transformer)
        or getattr(transformer, "_compiled_call_impl", None) is not None  # pipe.transformer.compile()
    )
    if whole:
        raise RuntimeError(_full_with_cache_message(transformer))
