"""DBPrune: the DBCache decision made per block (DESIGN.md §3).

Each prunable block remembers its input and residual from the last step it computed. At a later step, a block
whose input changed less than the (possibly dynamic) threshold since then returns ``input + its residual``
without running. The first `Fn`, last `Bn` and `non_prune_blocks_ids` blocks always run.
"""

from __future__ import annotations

import statistics

import torch

from ...adapters.patterns import HIDDEN
from ...configs import DBPruneConfig
from ..engine import StackEngine
from ..protocol import COMPUTE, REUSE, StepContext
from ..span import add_streams, relative_l1, sub_streams
from . import register


class DBPruneState:
    """Per guidance branch; `reset()` restores what `__init__` set."""

    def __init__(self) -> None:
        self.reset()

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
    """Decides per block, so it has no span policy: the prune rule below is its policy."""

    def __init__(self, config: DBPruneConfig, blocks, stats, name="transformer", list_starts=(0,), *, taylorseer=None,
                 **kwargs) -> None:
        super().__init__(config, blocks, stats, name, list_starts, **kwargs)
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
        rule = self.step_rule(step.index)
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


register(DBPruneConfig, DBPruneEngine)
