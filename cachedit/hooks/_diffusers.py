"""The one place that imports diffusers' hook internals (``StateManager`` is not re-exported by diffusers)."""

from typing import NamedTuple

import torch
from diffusers.hooks.hooks import BaseState, HookRegistry, ModelHook, StateManager

DEFAULT_BRANCH = "default"
SHARED_BRANCH = "shared"


class HostTimestep(NamedTuple):
    shape: tuple[int, ...]
    values: tuple[float, ...]


def host_timestep(timestep) -> HostTimestep | None:
    """The timestep's shape and values on the host: the one device-to-host read of it per transformer call, shared
    by branch detection and the loop-restart check (each read on its own would wait for the device again). A value
    read already passes through; anything but a tensor counts as no timestep."""
    if isinstance(timestep, HostTimestep):
        return timestep
    if isinstance(timestep, torch.Tensor):
        return HostTimestep(tuple(timestep.shape), tuple(timestep.detach().flatten().tolist()))
    return None


class BranchStates(StateManager):
    """One state per guidance branch, keyed by the pipeline's ``cache_context`` name.

    Pipelines that never open a cache context (PixArt, DiT, ...) run every call in the single `"default"` branch
    instead of failing as diffusers' `StateManager` would. Where such a pipeline calls the transformer again at the
    same timestep (LongCat-AudioDiT's unconditional pass), the k-th call of the step gets branch ``default#k``, so
    guidance passes never share a residual. With ``separate=False`` every branch shares one state.
    """

    def __init__(self, state_cls, separate: bool = True) -> None:
        super().__init__(state_cls)
        self.separate = separate
        self._last_timestep: HostTimestep | None = None
        self._repeat = 0  # calls so far at the current timestep, outside any cache context

    def begin_forward(self, timestep) -> None:
        """Called before each transformer forward with its timestep (a tensor or `host_timestep`'s; None if none)."""
        timestep = host_timestep(timestep)
        if timestep is None or self._context is not None:
            self._last_timestep, self._repeat = None, 0
            return
        self._repeat = self._repeat + 1 if timestep == self._last_timestep else 0
        self._last_timestep = timestep

    def reset(self) -> None:
        super().reset()
        self._last_timestep, self._repeat = None, 0

    @property
    def branch(self) -> str:
        if not self.separate:
            return SHARED_BRANCH
        if self._context is not None:
            return self._context.name
        return DEFAULT_BRANCH if self._repeat == 0 else f"{DEFAULT_BRANCH}#{self._repeat}"

    def get_state(self):
        branch = self.branch
        if branch not in self._state_cache:
            self._state_cache[branch] = self._state_cls(*self._init_args, **self._init_kwargs)
        return self._state_cache[branch]


__all__ = ["BaseState", "BranchStates", "DEFAULT_BRANCH", "HookRegistry", "ModelHook", "StateManager", "HostTimestep",
           "host_timestep"]
