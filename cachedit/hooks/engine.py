"""What every cache engine shares: the block stack, per-branch state, the step mask and branch routing.

Hooks call `begin_step` before each transformer forward and `run_block` for each block; the pipeline-call
wrapper calls `begin_call` first, so every call starts from empty state.
"""

from __future__ import annotations

import torch

from ..adapters.patterns import ForwardPattern, StreamReader
from ..configs import CFGCacheConfig, StepMaskConfig, StepMaskName
from ..stats import CacheStats
from ._diffusers import BranchStates, HostTimestep, host_timestep
from .step_mask import DECIDE, StepMask


class StackEngine:
    """Base of the cache engines; subclasses set `state_cls` and implement `run_block`."""

    state_cls: type

    def __init__(
        self,
        config,
        blocks: list[tuple[torch.nn.Module, ForwardPattern]],
        stats: CacheStats,
        name: str = "transformer",
        list_starts: tuple[int, ...] = (0,),
        scm: StepMaskConfig | None = None,
        cfg: CFGCacheConfig | None = None,
    ) -> None:
        config.check_block_count(len(blocks), f"`{name}`")
        self.config = config
        self.stats = stats
        self.name = name
        self.num_blocks = len(blocks)
        self.patterns = [pattern for _, pattern in blocks]
        self.list_starts = list_starts  # stack index where each block list begins
        self.readers = [StreamReader(block, pattern) for block, pattern in blocks]
        self.mask = StepMask(scm) if scm is not None and scm.mask != StepMaskName.none else None
        self.cfg = cfg if cfg is not None else CFGCacheConfig()
        self.states = BranchStates(self.state_cls, separate=self.cfg.enable_separate_cfg)
        self.leader_decisions: dict[int, bool] = {}  # step -> skipped, when branches share decisions
        self.bypass = False  # the current transformer call runs uncached and uncounted (a K/V extract pass)
        self.owner = None  # the cache handle of the pipeline whose calls this engine serves (None: every call)
        self.loops: dict[str, tuple[float, int]] = {}  # branch -> (last timestep, its direction: -1, 0 or 1)
        self.first_block_ran = False  # within the current step: a second pass over the blocks is a step of its own
        self.group = None  # the context-parallel group decision metrics are reduced over; set per transformer call
        self.call_steps: int | None = None  # the call's `num_inference_steps` argument: a hint, see hooks/schedule.py
        self.num_steps: int | None = None  # the steps the current call runs, once known
        self.pending_schedule = None  # reads the real step count at the call's first step

    # ---------------------------------------------------------------- lifecycle

    def reset(self) -> None:
        self.states.reset()
        self.leader_decisions = {}
        self.loops = {}

    def begin_call(self, num_inference_steps: int | None, schedule=None) -> None:
        """`schedule`: a callable giving the steps the call really runs (`hooks.schedule.scheduled_steps`), read
        when its first step begins; without one (a bare transformer's request) the given count sizes the masks now."""
        self.reset()
        self.call_steps = num_inference_steps
        self.pending_schedule = schedule if self.needs_step_count else None  # others never read the scheduler
        if self.pending_schedule is None:
            self.size_steps(num_inference_steps)

    @property
    def needs_step_count(self) -> bool:
        return self.mask is not None

    def size_steps(self, num_steps: int | None) -> None:
        """Size everything that depends on the call's step count (the step mask; Forecast's schedule)."""
        self.num_steps = num_steps
        if self.mask is not None:
            self.mask.begin_call(num_steps)

    def begin_step(self, hidden_states: torch.Tensor, timestep: torch.Tensor | HostTimestep | None = None) -> None:
        """Called before each transformer forward: one step of the current branch begins."""
        if self.pending_schedule is not None:  # the call's first step: its scheduler now holds this call's schedule
            read, self.pending_schedule = self.pending_schedule, None
            self.size_steps(read() or self.call_steps)
        state = self.states.get_state()
        if self._starts_new_loop(timestep):
            state.reset()  # a chunk, window, tile or pyramid stage: nothing cached before it applies
        self.first_block_ran = False
        state.step += 1
        state.skip = False
        state.stats_key = self.branch  # built once per step, not once per block
        signature = (tuple(hidden_states.shape), hidden_states.dtype, hidden_states.device)
        if state.signature is not None and signature != state.signature:
            state.invalidate()  # recompute, never broadcast a cached tensor of another shape
        state.signature = signature

    def _starts_new_loop(self, timestep) -> bool:
        """Whether the branch's timestep turned back: a pipeline that runs one sampling loop per chunk, window, tile
        or stage within a call (AnyFlow-FAR, Framepack, Helios, Kandinsky 6 SR, MiniMax-Music3) starts the next one.
        The direction is learned from the loop itself (LongCat-AudioDiT's timesteps rise)."""
        timestep = host_timestep(timestep)  # no second read when the root hook passes the host values
        if timestep is None or not timestep.values:
            return False
        t = max(timestep.values)
        last, direction = self.loops.get(self.states.branch, (None, 0))
        new_loop = False
        if last is not None and t != last:
            step = 1 if t > last else -1
            new_loop = direction not in (0, step)
            direction = 0 if new_loop else step
        self.loops[self.states.branch] = (t, direction)
        return new_loop

    # ---------------------------------------------------------------- helpers for subclasses

    @property
    def branch(self) -> str:
        """Stats key of the current branch, e.g. ``transformer/cond``."""
        return f"{self.name}/{self.states.branch}"

    def step_rule(self, step: int) -> str:
        return self.mask.rule(step) if self.mask is not None else DECIDE

    @property
    def follows_leader(self) -> bool:
        """True for the second guidance branch when it reuses the first branch's decisions."""
        return not self.cfg.cfg_diff_compute_separate and self.states.branch != self.cfg.leader

    def leader_decision(self, step: int) -> bool:
        if step not in self.leader_decisions:
            raise RuntimeError(
                f"`cfg.cfg_diff_compute_separate=false`: branch `{self.states.branch}` reached step {step} before "
                f"the leading branch `{self.cfg.leader}` decided it. Set `cfg.cfg_compute_first` to match the order "
                f"in which this pipeline calls its branches."
            )
        return self.leader_decisions[step]

    def share_decision(self, step: int, skipped: bool) -> None:
        if not self.cfg.cfg_diff_compute_separate and self.states.branch == self.cfg.leader:
            self.leader_decisions[step] = skipped
