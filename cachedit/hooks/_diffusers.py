"""The one place that imports diffusers' hook internals (``StateManager`` is not re-exported by diffusers)."""

from diffusers.hooks.hooks import BaseState, HookRegistry, ModelHook, StateManager

DEFAULT_BRANCH = "default"
SHARED_BRANCH = "shared"


class BranchStates(StateManager):
    """One state per guidance branch, keyed by the pipeline's ``cache_context`` name.

    Pipelines that never open a cache context (PixArt, DiT, ...) run every call in the single `"default"` branch
    instead of failing as diffusers' `StateManager` would. With ``separate=False`` every branch shares one state.
    """

    def __init__(self, state_cls, separate: bool = True) -> None:
        super().__init__(state_cls)
        self.separate = separate

    @property
    def branch(self) -> str:
        if not self.separate:
            return SHARED_BRANCH
        return self._context.name if self._context is not None else DEFAULT_BRANCH

    def get_state(self):
        branch = self.branch
        if branch not in self._state_cache:
            self._state_cache[branch] = self._state_cls(*self._init_args, **self._init_kwargs)
        return self._state_cache[branch]


__all__ = ["BaseState", "BranchStates", "DEFAULT_BRANCH", "HookRegistry", "ModelHook", "StateManager"]
