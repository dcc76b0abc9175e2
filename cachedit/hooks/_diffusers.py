"""The one place that imports diffusers' hook internals (``StateManager`` is not re-exported by diffusers)."""

from diffusers.hooks.hooks import BaseState, HookRegistry, ModelHook, StateManager

__all__ = ["BaseState", "HookRegistry", "ModelHook", "StateManager"]
