"""One request at a time per cached model, and request boundaries for engines that own their sampling loop.

Cache state lives on the model (one residual per branch), so two requests running at once on one cached pipeline
mix their states: a KeyError, a shape mismatch or a silently wrong image. `CallGuard` serialises them: a second
thread waits until the first call has finished, then starts from fresh state, so its result is exact.

A bare transformer (``cachedit.enable_cache(transformer, config)``) has no pipeline ``__call__`` that marks where
a request begins; ``with cachedit.request(transformer, num_inference_steps=N):`` does, and a forward outside one
raises instead of carrying state from one request into the next.
"""

from __future__ import annotations

import contextlib
import threading
import weakref

import torch

from .hooks.attach import copied_module_message
from .hooks.lifecycle import running_call

_HOLDER = "_cachedit_request_holder"


class CallGuard:
    """A lock held for a whole cached call; copies and pickles get a fresh one (a lock is no state to share)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.owner: int | None = None  # thread id of the running request

    def __reduce__(self):
        return (CallGuard, ())

    def __deepcopy__(self, memo):
        return CallGuard()

    @contextlib.contextmanager
    def hold(self):
        self._lock.acquire()
        self.owner = threading.get_ident()
        try:
            yield
        finally:
            self.owner = None
            self._lock.release()

    def held_here(self) -> bool:
        return self.owner == threading.get_ident()


class TransformerHolder:
    """Stands in for a pipeline around a bare transformer, so `enable_cache` installs the same engines."""

    def __init__(self, transformer: torch.nn.Module) -> None:
        self.transformer = transformer
        self.copies = weakref.WeakSet()  # deep copies of the transformer, cleared with it (`unwrap_transformer`)

    def __deepcopy__(self, memo):
        """A deep copy of the cached transformer is not cached (its copied hooks refuse to run, `hooks/attach.py`):
        it holds a `CopiedHolder` instead, which lets `enable_cache` on the copy, or the original's `disable_cache`,
        remove the boundary check the copy carried over."""
        return CopiedHolder(self, self.transformer, memo)


class CopiedHolder:
    """In a copy of a cached bare transformer: which boundary check it carried over, and whose (weakly)."""

    def __init__(self, origin: TransformerHolder, module: torch.nn.Module, memo: dict) -> None:
        self.origin = weakref.ref(origin)
        self.hook_id = origin.boundary_hook.id
        copied = memo.get(id(module))  # the module's copy, when the module itself is being copied
        self.module = weakref.ref(copied) if copied is not None else lambda: None
        if copied is not None:
            origin.copies.add(copied)

    def __deepcopy__(self, memo):  # a copy of the copy: cleared with the original too
        origin, module = self.origin(), self.module()
        return CopiedHolder(origin, module, memo) if origin is not None and module is not None else None


def holder_of(module: torch.nn.Module) -> TransformerHolder | None:
    holder = module.__dict__.get(_HOLDER)
    return holder if isinstance(holder, TransformerHolder) else None


def _clear_copied_holder(module: torch.nn.Module) -> None:
    """Remove what a copy of a cached bare transformer carried over: the marker and the original's boundary check."""
    copied = module.__dict__.get(_HOLDER)
    if isinstance(copied, CopiedHolder):
        module._forward_pre_hooks.pop(copied.hook_id, None)
        del module.__dict__[_HOLDER]


def wrap_transformer(transformer: torch.nn.Module) -> TransformerHolder:
    """The holder `enable_cache` caches; the transformer refuses forwards outside a `request` boundary."""
    _clear_copied_holder(transformer)
    holder = TransformerHolder(transformer)
    transformer.__dict__[_HOLDER] = holder  # not a submodule: `transformer.modules()` stays as it was

    def check_boundary(module, args):
        if module.__dict__.get(_HOLDER) is not holder:  # a copy's forward, with the hook it carried over
            raise RuntimeError(copied_module_message(module))
        handle = getattr(holder, "_cachedit", None)
        if handle is not None and not handle.guard.held_here():
            raise RuntimeError(
                f"This cached {type(module).__name__} is called outside a request boundary; wrap each request's "
                f"sampling loop in `with cachedit.request(transformer, num_inference_steps=N):` so its cache "
                f"state starts fresh (and step masks and warmup count this request's steps)."
            )

    holder.boundary_hook = transformer.register_forward_pre_hook(check_boundary)
    return holder


def unwrap_transformer(transformer: torch.nn.Module) -> TransformerHolder:
    holder = transformer.__dict__.pop(_HOLDER)
    holder.boundary_hook.remove()
    for copied in list(holder.copies):
        _clear_copied_holder(copied)
    return holder


@contextlib.contextmanager
def request(transformer: torch.nn.Module, num_inference_steps: int | None = None):
    """One request on a cached bare transformer: waits for any running request, starts from fresh state.

    Args:
        transformer: a transformer passed to ``cachedit.enable_cache``.
        num_inference_steps (`int`, *optional*): this request's step count; needed by a step mask (`scm`).
    """
    holder = holder_of(transformer)
    if holder is None or not hasattr(holder, "_cachedit"):
        raise RuntimeError(
            f"`cachedit.request` needs a transformer cached with `cachedit.enable_cache(transformer, config)`; "
            f"this {type(transformer).__name__} is not."
        )
    handle = holder._cachedit
    with handle.guard.hold(), running_call(handle):  # the engines cache only within their owner's calls
        handle.begin_call(num_inference_steps)
        yield handle
