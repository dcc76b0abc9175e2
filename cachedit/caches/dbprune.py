"""DBPrune: the DBCache decision made per block (DESIGN.md §3).

Each prunable block remembers its input and residual from the last step it computed. At a later step, a block
whose input changed less than the (possibly dynamic) threshold since then returns ``input + its residual``
without running. The first `Fn`, last `Bn` and `non_prune_blocks_ids` blocks always run.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

import torch

from ..adapters.patterns import HIDDEN
from ..config_types import check_types
from ..configs import require
from ..hooks.engine import StackEngine
from ..hooks.protocol import COMPUTE, REUSE, EngineState, StepContext
from ..hooks.span import add_streams, relative_l1, sub_streams
from . import CacheConfig, check_cap, register

__all__ = ["DBPruneConfig", "DBPruneEngine"]


@dataclass
class DBPruneConfig(CacheConfig):
    r"""Dynamic Block Prune: the DBCache decision made per block. Each prunable block keeps its own residual; a
    block whose input changed less than the threshold since it last computed returns ``input + its residual``.
    Uses one residual per block (more memory than DBCache) for finer-grained skipping. DESIGN.md §3.

    Args:
        Fn (`int`, defaults to `1`): leading blocks never pruned.
        Bn (`int`, defaults to `0`): trailing blocks never pruned.
        residual_diff_threshold (`float`, defaults to `0.05`):
            Relative L1 change of a block's input since its last computation below which it is pruned.
        max_warmup_steps (`int`, defaults to `8`): steps (per branch) that prune nothing.
        max_pruned_steps (`int`, defaults to `-1`): most steps per call in which blocks may be pruned; -1: no limit.
        non_prune_blocks_ids (`list[int]`, *optional*): global block indices that are never pruned.
        enable_dynamic_prune_threshold (`bool`, defaults to `False`):
            Raise the threshold within a step to ``relax_ratio x`` the mean change already measured at that step
            (never above `max_dynamic_prune_threshold`): blocks that change no more than their neighbours prune.
        dynamic_prune_threshold_relax_ratio (`float`, defaults to `1.25`): see above; larger prunes more.
        max_dynamic_prune_threshold (`float`, *optional*): cap of the dynamic threshold; default 2x the threshold.
        residual_cache_update_interval (`int`, defaults to `4`):
            A block pruned this many steps in a row computes at the next step, refreshing its residual.
        per_transformer (`dict`, defaults to `{}`): knob overrides per transformer, e.g. ``{transformer_2: {Fn: 2}}``.
    """

    name: str = "dbprune"
    Fn: int = 1
    Bn: int = 0
    residual_diff_threshold: float = 0.05
    max_warmup_steps: int = 8
    max_pruned_steps: int = -1
    non_prune_blocks_ids: list[int] | None = None
    enable_dynamic_prune_threshold: bool = False
    dynamic_prune_threshold_relax_ratio: float = 1.25
    max_dynamic_prune_threshold: float | None = None
    residual_cache_update_interval: int = 4
    per_transformer: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_types(self)  # before the range checks below compare anything
        require(self.Fn >= 0 and self.Bn >= 0, f"`Fn` and `Bn` must be >= 0, got Fn={self.Fn}, Bn={self.Bn}.")
        require(self.residual_diff_threshold >= 0, f"`residual_diff_threshold` must be >= 0, got {self.residual_diff_threshold}.")
        require(self.max_warmup_steps >= 0, f"`max_warmup_steps` must be >= 0, got {self.max_warmup_steps}.")
        check_cap("max_pruned_steps", self.max_pruned_steps)
        require(
            self.dynamic_prune_threshold_relax_ratio >= 1,
            f"`dynamic_prune_threshold_relax_ratio` must be >= 1, got {self.dynamic_prune_threshold_relax_ratio}.",
        )
        cap = self.max_dynamic_prune_threshold
        require(cap is None or cap >= self.residual_diff_threshold,
                f"`max_dynamic_prune_threshold` ({cap}) must be >= `residual_diff_threshold` ({self.residual_diff_threshold}).")
        require(self.residual_cache_update_interval >= 1,
                f"`residual_cache_update_interval` must be >= 1, got {self.residual_cache_update_interval}.")
        require(all(i >= 0 for i in self.non_prune_blocks_ids or []), f"`non_prune_blocks_ids` must be >= 0, got {self.non_prune_blocks_ids}.")
        self.check_per_transformer()

    def check_block_count(self, num_blocks: int, where: str = "the transformer") -> None:
        super().check_block_count(num_blocks, where)
        bad = [i for i in self.non_prune_blocks_ids or [] if i >= num_blocks]
        require(not bad, f"`non_prune_blocks_ids` {bad} are out of range for the {num_blocks} blocks of {where}.")

    def strify(self) -> str:
        dynamic = f"_D{self.dynamic_prune_threshold_relax_ratio:g}" if self.enable_dynamic_prune_threshold else ""
        return f"DBPrune_F{self.Fn}B{self.Bn}_W{self.max_warmup_steps}_R{self.residual_diff_threshold:g}{dynamic}"

    def setting(self) -> str:
        return f"R{self.residual_diff_threshold:g}"


class DBPruneState(EngineState):
    """What one guidance branch remembers between its steps."""

    def reset(self) -> None:
        self.pruned_steps = 0  # steps of this call in which at least one block was pruned
        self.record = None  # the StepRecord of the current step
        self.step_diffs: list[float] = []  # input changes measured so far in the current step
        self.block_inputs: dict[int, torch.Tensor] = {}  # hidden-state input at the block's last computation
        self.block_residuals: dict[int, dict[str, torch.Tensor]] = {}
        self.consecutive_pruned: dict[int, int] = {}

    def invalidate(self) -> None:
        self.block_inputs = {}
        self.block_residuals = {}
        self.consecutive_pruned = {}


class DBPruneEngine(StackEngine):
    """A technique of its own: it decides per block, not per step, so it has no `Policy` (`_may_prune` decides)."""

    def __init__(self, config: DBPruneConfig, blocks, stats, name="transformer", list_starts=(0,), **kwargs) -> None:
        super().__init__(config, blocks, stats, name, **kwargs)  # one residual per block: list boundaries do not matter
        if not self.cfg.cfg_diff_compute_separate:
            raise ValueError("`cfg.cfg_diff_compute_separate=false` is not supported with `cache=dbprune`; use `cfg=none`.")
        n = self.num_blocks
        self.protected = set(range(config.Fn)) | set(range(n - config.Bn, n)) | set(config.non_prune_blocks_ids or [])

    def new_state(self) -> DBPruneState:
        return DBPruneState()

    def begin_step(self, step: StepContext) -> None:
        pass

    def run_block(self, step: StepContext, index: int, forward, args: tuple, kwargs: dict):
        state = step.state
        pattern = self.patterns[index]
        inputs = self.readers[index](args, kwargs)
        if index == 0:
            state.step_diffs = []
            state.record = self.stats.record_step(step.stats_key, step.index, computed=True, diff=None)

        if index not in self.protected and self._may_prune(step, index, inputs[HIDDEN]):
            self.stats.record_block(step.stats_key, skipped=True)
            state.consecutive_pruned[index] = state.consecutive_pruned.get(index, 0) + 1
            result = pattern.pack(add_streams(inputs, state.block_residuals[index]))
        else:
            result = forward(*args, **kwargs)
            self.stats.record_block(step.stats_key, skipped=False)
            if index not in self.protected:
                state.block_inputs[index] = inputs[HIDDEN]
                state.block_residuals[index] = sub_streams(pattern.unpack(result), inputs)
                state.consecutive_pruned[index] = 0

        if index == self.num_blocks - 1:
            self._close_step(state)
        return result

    @torch.compiler.disable
    def _may_prune(self, step: StepContext, index: int, hidden: torch.Tensor) -> bool:
        c, state = self.config, step.state
        reference = state.block_inputs.get(index)
        if reference is None or reference.shape != hidden.shape:
            return False
        rule = self.step_rule.rule(step.index)
        pruned_this_step = state.record.skipped_blocks > 0
        if rule == COMPUTE or state.consecutive_pruned.get(index, 0) >= c.residual_cache_update_interval:
            return False
        if rule == REUSE:
            return True
        if step.index < c.max_warmup_steps:
            return False
        if c.max_pruned_steps >= 0 and state.pruned_steps >= c.max_pruned_steps and not pruned_this_step:
            return False
        diff = relative_l1(hidden, reference, self.group)
        threshold = self._threshold(state)
        state.step_diffs.append(diff)
        return diff < threshold

    def _threshold(self, state: DBPruneState) -> float:
        """The base threshold, or with the dynamic threshold: relax_ratio x this step's mean change, capped."""
        c = self.config
        if not c.enable_dynamic_prune_threshold or not state.step_diffs:
            return c.residual_diff_threshold
        cap = c.max_dynamic_prune_threshold if c.max_dynamic_prune_threshold is not None else 2 * c.residual_diff_threshold
        relaxed = c.dynamic_prune_threshold_relax_ratio * statistics.fmean(state.step_diffs)
        return max(c.residual_diff_threshold, min(relaxed, cap))

    def _close_step(self, state: DBPruneState) -> None:
        record = state.record
        record.computed = record.skipped_blocks == 0
        record.diff = statistics.fmean(state.step_diffs) if state.step_diffs else None
        state.pruned_steps += int(not record.computed)


register(DBPruneConfig, engine=DBPruneEngine)
