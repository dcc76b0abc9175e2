"""The call and step lifecycle: the one place that knows when a call starts, how many steps it runs, which guidance
branch a transformer call belongs to, when a step (or a new sampling loop) begins, and when a call bypasses the cache.

The hooks (`hooks/attach.py`) only forward to a `Lifecycle`, which hands its engine a `StepContext`
(`hooks/protocol.py`). Calls start in `with_call_start`, the pipeline class swap, and for a bare transformer in
`cachedit.request`.
"""

from __future__ import annotations

import inspect
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial
from typing import NamedTuple

import torch

from ..adapters.call_facts import GENERIC, CallFacts
from ..distributed import context_parallel_group
from ._diffusers import BaseState, CacheContextName
from .protocol import CacheEngine, StepContext


DEFAULT_BRANCH = "default"
SHARED_BRANCH = "shared"

# ------------------------------------------------------------------------------------------------ call start

# Which cached pipeline's call is running, so a transformer shared with another pipeline caches only for the one that
# enabled caching (README, "Shared components"). A context variable, not a flag on the engine: another thread's (or
# task's) call of a pipeline sharing the transformer starts with an empty context and so runs uncached.
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


def with_call_start(cls: type, handle_of, namespace: dict) -> type:
    """A same-named subclass of the pipeline class whose ``__call__`` starts every call from empty cache state.

    Why a class swap: ``pipe(...)`` looks ``__call__`` up on the class, so an instance attribute would not run.
    `disable_cache` puts the original class back. `namespace` adds the copy and pickle support of `cachedit.cache`.
    """
    signature = inspect.signature(cls.__call__)

    def __call__(self, *args, **kwargs):
        handle = handle_of(self)
        with handle.guard.hold():  # a concurrent call waits, then starts fresh: exact, never mixed state
            handle.plan.check_still_decided(self)
            handle.begin_call(call_steps(self, signature, args, kwargs), partial(scheduler_step_count, self))
            with running_call(handle):  # the hooks cache only within this pipeline's own calls
                return cls.__call__(self, *args, **kwargs)

    extra = {"__call__": __call__, "__module__": cls.__module__, "__qualname__": cls.__qualname__}
    return type(cls.__name__, (cls,), {**namespace, **extra})


def call_steps(pipe, signature: inspect.Signature, args: tuple, kwargs: dict) -> int | None:
    """The call's `num_inference_steps`: an argument of classic pipelines; a keyword input of modular pipelines
    (``pipe(prompt=..., num_inference_steps=8)``), whose default sits on the pipeline's blocks. Only a hint: see
    `scheduler_step_count`."""
    bound = signature.bind_partial(pipe, *args, **kwargs)
    bound.apply_defaults()
    if "num_inference_steps" in bound.arguments:
        return bound.arguments["num_inference_steps"]
    if "num_inference_steps" in kwargs:
        return kwargs["num_inference_steps"]
    defaults = getattr(pipe, "default_call_parameters", None)  # ModularPipeline
    return defaults.get("num_inference_steps") if isinstance(defaults, dict) else None


def scheduler_step_count(pipe) -> int | None:
    """Steps left in `pipe`'s scheduler from where this call's loop begins, or None without readable timesteps.

    Read when the call's first step begins: a call given ``sigmas=`` or ``timesteps=`` (8 sigmas while
    `num_inference_steps` keeps its default 28), img2img's ``strength`` and second-order schedulers all run another
    count than the argument says, and by the first transformer forward every diffusers pipeline has set this call's
    timesteps.
    """
    scheduler = getattr(pipe, "scheduler", None)
    timesteps = getattr(scheduler, "timesteps", None)
    try:
        count = len(timesteps)
    except TypeError:  # no scheduler, or one whose timesteps are not set yet
        return None
    begin = getattr(scheduler, "begin_index", None)  # img2img: `strength` starts the loop later (set_begin_index)
    count -= begin if isinstance(begin, int) else 0
    return count if count > 0 else None


# ------------------------------------------------------------------------------------------------ branches


class HostTimestep(NamedTuple):
    shape: tuple[int, ...]
    values: tuple[float, ...]


def host_timestep(timestep) -> HostTimestep | None:
    """The timestep's shape and values on the host: the one device-to-host read of it per transformer call, shared
    by branch detection and the loop-restart check. Anything but a tensor counts as no timestep."""
    if isinstance(timestep, torch.Tensor):
        return HostTimestep(tuple(timestep.shape), tuple(timestep.detach().flatten().tolist()))
    return None


class BranchState(BaseState):
    """The lifecycle's record of one guidance branch, holding the engine's own state for it."""

    def __init__(self, engine_state) -> None:
        self.engine_state = engine_state
        self.step = -1
        self.signature: tuple | None = None  # (shape, dtype, device) of the transformer input
        self.timestep: float | None = None  # the last timestep seen, and the direction the loop runs (-1, 0, 1)
        self.direction = 0
        self.return_dict = None  # the `return_dict` of the last call that ran: the form of its output

    def new_loop(self) -> None:
        """A new sampling loop (a new call, or a chunk, window or stage within one): nothing before it applies."""
        self.engine_state.reset()
        self.step = -1
        self.signature = None

    def reset(self) -> None:
        self.new_loop()
        self.timestep, self.direction = None, 0


class BranchStates(CacheContextName):
    """One state per guidance branch, keyed by the pipeline's ``cache_context`` name (it sits on the root hook, where
    diffusers' ``cache_context`` sets the name).

    A pipeline that never opens a cache context runs every call in the single `"default"` branch. Where such a
    pipeline calls the transformer again at the same timestep (an unconditional pass of its own), the k-th call of the
    step gets branch ``default#k``, so guidance passes never share a residual. With ``separate=False`` every branch
    shares one state.
    """

    def __init__(self, new_state, separate: bool = True) -> None:
        super().__init__()
        self.new_state = new_state
        self.separate = separate
        self.by_branch: dict[str, BranchState] = {}
        self._last_timestep: HostTimestep | None = None
        self._repeat = 0  # calls so far at the current timestep, outside any cache context

    def begin_forward(self, timestep: HostTimestep | None) -> None:
        """Called before each transformer forward with its timestep read to the host (None if it has none)."""
        if timestep is None or self.context_name is not None:
            self._last_timestep, self._repeat = None, 0
            return
        self._repeat = self._repeat + 1 if timestep == self._last_timestep else 0
        self._last_timestep = timestep

    def reset(self) -> None:
        for state in self.by_branch.values():
            state.reset()
        self.by_branch.clear()
        super().reset()
        self._last_timestep, self._repeat = None, 0

    @property
    def branch(self) -> str:
        if not self.separate:
            return SHARED_BRANCH
        if self.context_name is not None:
            return self.context_name
        return DEFAULT_BRANCH if self._repeat == 0 else f"{DEFAULT_BRANCH}#{self._repeat}"

    def get_state(self) -> BranchState:
        branch = self.branch
        if branch not in self.by_branch:
            self.by_branch[branch] = self.new_state()
        return self.by_branch[branch]


# ------------------------------------------------------------------------------------------------ steps

_TIMESTEP_KEYS = ("timestep", "timesteps", "t", "sigma")


def _latent_input(args: tuple, kwargs: dict) -> torch.Tensor:
    """The transformer's latent input: ``hidden_states`` (or ``x``, ``visual_embed``), else the first argument. Of a
    list of latents (one per image) the first tensor stands for the batch."""
    value = next((kwargs[k] for k in ("hidden_states", "x", "visual_embed", "latents") if k in kwargs), None)
    if value is None:
        value = args[0] if args else next(v for v in kwargs.values() if isinstance(v, (torch.Tensor, list, tuple)))
    while isinstance(value, (list, tuple)):
        value = value[0]
    return value


class Lifecycle:
    """Drives one engine through calls and steps; the engine's hooks forward to it.

    A transformer call that stores every block's keys and values for later calls (its class's `CallFacts` say when,
    `cachedit.adapters.call_facts`) runs uncached and is no step of any branch: a skipped block would store nothing,
    and the calls that read them count as usual. So does a call of another pipeline that shares the transformer
    (`serves_current_call`). A class without facts (`GENERIC`) has every call a step.
    """

    def __init__(self, engine: CacheEngine, separate_branches: bool = True,
                 call_facts: CallFacts = GENERIC) -> None:
        self.engine = engine
        self.call_facts = call_facts
        self.states = BranchStates(lambda: BranchState(engine.new_state()), separate=separate_branches)
        self.owner = None  # the cache handle of the pipeline whose calls this engine serves (None: every call)
        self.bypass = False  # the current transformer call runs uncached and uncounted
        self.first_block_ran = False  # within the current step: a second pass over the blocks is a step of its own
        self.call_steps: int | None = None  # the call's `num_inference_steps` argument: a hint
        self.num_steps: int | None = None  # the steps the current call runs, once known
        self.read_step_count = None  # reads the real step count at the call's first step
        self.step: StepContext | None = None  # the step now running
        self.return_dict = None  # the current call's `return_dict` argument (None where it passes none)

    def reset(self) -> None:
        """Forget every branch (a new call; diffusers' reset of stateful hooks)."""
        self.states.reset()
        self.engine.reset()

    def begin_call(self, num_inference_steps: int | None, read_step_count=None) -> None:
        """`read_step_count`: a callable giving the steps the call really runs (`scheduler_step_count`), called when
        its first step begins; without one (a bare transformer's request) the given count sizes the engine now."""
        self.reset()
        self.call_steps = num_inference_steps
        self.read_step_count = read_step_count if self.engine.needs_step_count else None  # others never read it
        if self.read_step_count is None:
            self._size(num_inference_steps)

    def _size(self, num_steps: int | None) -> None:
        self.num_steps = num_steps
        self.engine.begin_call(num_steps)

    def begin_forward(self, module: torch.nn.Module, args: tuple, kwargs: dict) -> None:
        """Before each transformer forward: bypass, or the branch and the step that begin."""
        self.bypass = self.call_facts.stores_kv_cache(kwargs) or not serves_current_call(self.owner)
        if self.bypass:
            return
        self.engine.group = context_parallel_group(module)  # parallelism may be enabled after the cache
        # Read to the host once: branch detection and the loop check both use it.
        timestep = host_timestep(next((kwargs[k] for k in _TIMESTEP_KEYS if k in kwargs), None))
        self.states.begin_forward(timestep)
        self._begin_step(_latent_input(args, kwargs), timestep)
        self.return_dict = kwargs.get("return_dict")

    def skipped_call(self):
        """After `begin_forward`: the output that stands for this call without running it (the engine's, where it
        forecasts the whole output and the call asks for the same form of output as the last one that ran), or
        None to run it."""
        if self.bypass or self.step is None or self.return_dict != self.states.get_state().return_dict:
            return None
        return self.engine.skipped_call(self.step)

    def end_forward(self, output):
        """After each transformer forward: what the caller gets (the engine's say on a step, else `output`)."""
        bypassed, self.bypass = self.bypass, False
        if bypassed or self.step is None:
            return output
        # a call that did not run asked for the form of the last one that ran: recording it again changes nothing
        self.states.get_state().return_dict = self.return_dict
        return self.engine.end_step(self.step, output)

    def enter_block(self, index: int, args: tuple, kwargs: dict) -> StepContext:
        """Before block `index` runs: a second pass over the blocks within one transformer call (a model that
        recycles its blocks) is a step of its own."""
        if index == 0:
            if self.first_block_ran:
                self._begin_step(_latent_input(args, kwargs), None)
            self.first_block_ran = True
        return self.step

    def _begin_step(self, hidden_states: torch.Tensor, timestep: HostTimestep | None) -> None:
        if self.read_step_count is not None:  # the call's first step: its scheduler now holds this call's timesteps
            read, self.read_step_count = self.read_step_count, None
            self._size(read() or self.call_steps)
        branch = self.states.get_state()
        if self._starts_new_loop(branch, timestep):
            branch.new_loop()
        self.first_block_ran = False
        branch.step += 1
        signature = (tuple(hidden_states.shape), hidden_states.dtype, hidden_states.device)
        if branch.signature is not None and signature != branch.signature:
            branch.engine_state.invalidate()  # recompute, never broadcast a cached tensor of another shape
        branch.signature = signature
        name = self.states.branch
        self.step = StepContext(name, f"{self.engine.name}/{name}", branch.step, self.num_steps, branch.timestep,
                                branch.engine_state)
        self.engine.begin_step(self.step)

    @staticmethod
    def _starts_new_loop(branch: BranchState, timestep: HostTimestep | None) -> bool:
        """Whether the branch's timestep turned back: a pipeline that runs one sampling loop per chunk, window, tile
        or stage within a call starts the next one. Generic: a loop that never turns is unaffected, so no transformer
        needs a fact for it. The direction is learned from the loop itself (some audio DiTs' timesteps rise)."""
        if timestep is None or not timestep.values:
            return False
        t = max(timestep.values)
        last, direction = branch.timestep, branch.direction
        new_loop = False
        if last is not None and t != last:
            step = 1 if t > last else -1
            new_loop = direction not in (0, step)
            direction = 0 if new_loop else step
        branch.timestep, branch.direction = t, direction
        return new_loop
