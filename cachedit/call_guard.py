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

import torch

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


def holder_of(module: torch.nn.Module) -> TransformerHolder | None:
    return module.__dict__.get(_HOLDER)


def wrap_transformer(transformer: torch.nn.Module) -> TransformerHolder:
    """The holder `enable_cache` caches; the transformer refuses forwards outside a `request` boundary."""
    holder = TransformerHolder(transformer)
    transformer.__dict__[_HOLDER] = holder  # not a submodule: `transformer.modules()` stays as it was

    def check_boundary(module, args):
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
