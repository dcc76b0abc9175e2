"""Which cached pipeline's call is running, so a transformer shared with another pipeline caches only for the one
that enabled caching (README, "Shared components"): caching belongs to the pipeline, not to its weights.

A context variable, not a flag on the engine: another thread's (or another task's) call of a pipeline that shares
the transformer starts with an empty context and so runs uncached."""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

_RUNNING: ContextVar[object | None] = ContextVar("cachedit_running_call", default=None)


@contextmanager
def running_call(owner: object):
    """Marks the current context as a call of the pipeline whose cache handle is `owner`."""
    token = _RUNNING.set(owner)
    try:
        yield
    finally:
        _RUNNING.reset(token)


def serves_current_call(owner: object | None) -> bool:
    """Whether an engine owned by `owner` caches now: an engine without owner (built directly) always does."""
    return owner is None or _RUNNING.get() is owner
