"""``cachedit.compile(pipe, mode=...)``: torch.compile that leaves the cache decisions outside compiled code.

`regional` (recommended) compiles the innermost ``forward`` of each repeated block, under any hooks: the cache hooks
stay eager Python around compiled blocks, so a decision (skip, reuse, forecast) never breaks a graph, never adds a
guard and never recompiles. Blocks of one class share one compiled graph. The compiled forward is swapped in below the
hooks, so ``compile`` and ``enable_cache``/``disable_cache`` work in either order.

`full` compiles the whole transformer; the cache hooks would run inside it (a graph break per block, guards on Python
counters, then a silent fall back to eager once the recompile limit is hit), so `full` and caching refuse each other
with an error that names `regional`.

No silent eager: past ``torch._dynamo.config.recompile_limit`` torch runs a frame eagerly with only a log line. Every
new set of active LoRA adapters recompiles the blocks (dynamo guards on the adapter names and weights), so a server
switching adapters would slow down unnoticed. While a compiled transformer runs, dynamo's
``fail_on_recompile_limit_hit`` is on, and hitting the limit raises an error naming it and the fixes.
"""

from __future__ import annotations

import copy
import functools
import re

import torch
from torch._dynamo.exc import FailOnRecompileLimitHit

from .adapters import adapters_for
from .config_types import convert
from .configs import CompileMode

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


class CompiledForward:
    """``torch.compile(forward)`` as a callable object, not a closure: a deep copy of the module (``copy.deepcopy``,
    ``quantize_dynamic``) gets one bound to its own forward, so the copy computes with its own weights."""

    def __init__(self, forward, options: dict) -> None:
        self.forward, self.options = forward, options
        self.compiled = torch.compile(forward, **options)
        functools.update_wrapper(self, forward, updated=())  # name, doc, __wrapped__ (signature)

    def __call__(self, *args, **kwargs):
        return self.compiled(*args, **kwargs)

    def __deepcopy__(self, memo):
        return CompiledForward(copy.deepcopy(self.forward, memo), self.options)  # dynamo's cache is per code object


def _compile_module(module: torch.nn.Module, options: dict) -> None:
    if hasattr(module, _EAGER):
        return
    eager = _innermost_forward(module)
    setattr(module, _EAGER, eager)
    _set_innermost_forward(module, CompiledForward(eager, options))


class NoSilentEager:
    """The transformer's forward, run with dynamo's recompile-limit fallback to eager turned into an error.

    A callable object, not a closure: a deep copy of the transformer copies it bound to the copy's own forward.
    Costs two attribute writes per transformer call; the flag is read only when dynamo compiles a frame."""

    def __init__(self, forward, name: str) -> None:
        self.forward = forward
        self.name = name
        functools.update_wrapper(self, forward, updated=())  # `inspect.signature`: pipelines read its parameters

    def __call__(self, *args, **kwargs):
        config = torch._dynamo.config
        before = config.fail_on_recompile_limit_hit
        config.fail_on_recompile_limit_hit = True
        try:
            return self.forward(*args, **kwargs)
        except FailOnRecompileLimitHit as error:
            raise RuntimeError(recompile_limit_message(self.name, error)) from error
        finally:
            config.fail_on_recompile_limit_hit = before


def recompile_limit_message(name: str, error: BaseException) -> str:
    found = re.search(r"Limit type: (\w+)", str(error.__cause__ or ""))
    limit = found.group(1) if found else "recompile_limit"
    return (
        f"torch.compile hit `torch._dynamo.config.{limit}` ({getattr(torch._dynamo.config, limit)}) in {name}: "
        f"past it torch would run the frame eagerly without a word, so cachedit stops instead. Usually each new set of "
        f"active LoRA adapters (`load_lora_weights`, `set_adapters`, `enable_lora`/`disable_lora`) compiled the blocks "
        f"again. Fix: fuse the adapters (`pipe.fuse_lora()`), or load them for hot swapping "
        f"(`pipe.enable_lora_hotswap(target_rank=...)` before the first `load_lora_weights`, then "
        f"`load_lora_weights(..., hotswap=True)`), or, if these recompiles are expected, raise the limit "
        f"(`torch._dynamo.config.{limit} = N`); `TORCH_LOGS=recompiles` says why each recompile happened."
    )


def _guard_transformer(transformer: torch.nn.Module) -> None:
    """Wrap the transformer's own forward (below the hooks) in `NoSilentEager`; `_restore_module` undoes it."""
    if hasattr(transformer, _EAGER):  # `full`: the compiled forward is wrapped
        _set_innermost_forward(transformer, NoSilentEager(_innermost_forward(transformer), type(transformer).__name__))
        return
    eager = _innermost_forward(transformer)
    setattr(transformer, _EAGER, eager)
    _set_innermost_forward(transformer, NoSilentEager(eager, type(transformer).__name__))


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

    mode = convert(mode, CompileMode, "compile")
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
        _guard_transformer(transformer)
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
