"""The one place that imports diffusers' hook internals (``StateManager`` is not re-exported by diffusers)."""

from diffusers.hooks.hooks import BaseState, HookRegistry, ModelHook, StateManager

DEFAULT_BRANCH = "default"


class BranchStates(StateManager):
    """One state per guidance branch, keyed by the pipeline's ``cache_context`` name.

    Pipelines that never open a cache context (PixArt, DiT, ...) run every call in the single `"default"` branch
    instead of failing as diffusers' `StateManager` would.
    """

    @property
    def branch(self) -> str:
        return self._context.name if self._context is not None else DEFAULT_BRANCH

    def get_state(self):
        if self.branch not in self._state_cache:
            self._state_cache[self.branch] = self._state_cls(*self._init_args, **self._init_kwargs)
        return self._state_cache[self.branch]


__all__ = ["BaseState", "BranchStates", "DEFAULT_BRANCH", "HookRegistry", "ModelHook", "StateManager"]
