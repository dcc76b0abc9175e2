"""The one place that imports diffusers' hook internals (``StateManager`` is not re-exported by diffusers)."""

from diffusers.hooks.hooks import BaseState, HookRegistry, ModelHook, StateManager

__all__ = ["BaseState", "CacheContextName", "HookRegistry", "ModelHook"]


class CacheContextName(StateManager):
    """The name of the ``cache_context`` a pipeline has opened around the transformer call (None outside one).

    diffusers' ``cache_context(name)`` reaches a hook only through its `StateManager` attributes (calling their
    public `set_context`), so this is one; it keeps none of the base class's state: subclasses keep their own.
    """

    def __init__(self) -> None:
        super().__init__(BaseState)
        self.context_name: str | None = None

    def set_context(self, context) -> None:
        self.context_name = None if context is None else context.name

    def get_state(self):
        raise NotImplementedError(f"{type(self).__name__} keeps its own states.")

    def reset(self) -> None:
        self.context_name = None
