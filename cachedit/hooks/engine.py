"""What every cache engine shares: its block stack, its step rule, and routing between guidance branches."""

from __future__ import annotations

import torch

from ..adapters.patterns import ForwardPattern, StreamReader
from ..configs import CFGCacheConfig, StepMaskConfig, StepMaskName
from ..stats import CacheStats
from .protocol import CacheEngine, StepContext, StepRule
from .step_mask import StepMask


class StackEngine(CacheEngine):
    """Base of the cache engines: subclasses implement `new_state`, `begin_step` and `run_block`."""

    def __init__(
        self,
        config,
        blocks: list[tuple[torch.nn.Module, ForwardPattern]],
        stats: CacheStats,
        name: str = "transformer",
        scm: StepMaskConfig | None = None,
        cfg: CFGCacheConfig | None = None,
    ) -> None:
        self.config = config
        self.stats = stats
        self.name = name
        self.num_blocks = len(blocks)
        self.patterns = [pattern for _, pattern in blocks]
        self.readers = [StreamReader(block, pattern) for block, pattern in blocks]
        masked = scm is not None and scm.mask != StepMaskName.none
        self.step_rule: StepRule = StepMask(scm) if masked else StepRule()
        self.cfg = cfg if cfg is not None else CFGCacheConfig()
        self.leader_decisions: dict[int, bool] = {}  # step -> skipped, when branches share decisions

    @property
    def needs_step_count(self) -> bool:
        return self.step_rule.needs_step_count

    def reset(self) -> None:
        self.leader_decisions = {}

    def begin_call(self, num_steps: int | None) -> None:
        self.step_rule.begin_call(num_steps)

    # ---------------------------------------------------------------- the leading branch

    def follows_leader(self, step: StepContext) -> bool:
        """True for the second guidance branch when it reuses the first branch's decisions."""
        return not self.cfg.cfg_diff_compute_separate and step.branch != self.cfg.leader

    def leader_decision(self, step: StepContext) -> bool:
        if step.index not in self.leader_decisions:
            raise RuntimeError(
                f"`cfg.cfg_diff_compute_separate=false`: branch `{step.branch}` reached step {step.index} before "
                f"the leading branch `{self.cfg.leader}` decided it. Set `cfg.cfg_compute_first` to match the order "
                f"in which this pipeline calls its branches."
            )
        return self.leader_decisions[step.index]

    def share_decision(self, step: StepContext, skipped: bool) -> None:
        if not self.cfg.cfg_diff_compute_separate and step.branch == self.cfg.leader:
            self.leader_decisions[step.index] = skipped
