"""Step computation masks (``scm``): the step rule users set, from a named budget or an explicit list."""

from __future__ import annotations

from ..configs import MaskedOffSteps, StepMaskConfig, StepMaskName
from .protocol import COMPUTE, DECIDE, REUSE, StepRule

# Steps that compute out of 28; rescaled to the actual step count.
BUDGETS_OF_28 = {StepMaskName.slow: 18, StepMaskName.medium: 15, StepMaskName.fast: 11, StepMaskName.ultra: 8}


def masked_in_steps(config: StepMaskConfig, num_steps: int) -> frozenset[int]:
    """The 0-based steps that must compute in a call of `num_steps` steps.

    Named masks spend a third of their budget (rounded up) on the first steps, where the image takes shape, and
    spread the rest evenly up to the last step, which always computes.
    """
    if config.mask == StepMaskName.custom:
        outside = [s for s in config.compute_steps if s >= num_steps]
        if outside:
            raise ValueError(f"`scm.compute_steps` {outside} lie beyond this call's {num_steps} steps.")
        return frozenset(config.compute_steps)
    budget = min(num_steps, max(1, round(BUDGETS_OF_28[config.mask] * num_steps / 28)))
    first = (budget + 2) // 3
    rest = budget - first
    # Even gaps of (num_steps - first) / rest >= 1 after the first steps, ending on the last step.
    spread = [first - 1 + round(i * (num_steps - first) / rest) for i in range(1, rest + 1)]
    # With a budget of one or two (<= 4 steps) `rest` can be 0: the last step is added, as promised above.
    return frozenset(range(first)) | frozenset(spread) | {num_steps - 1}


class StepMask(StepRule):
    """A step mask resolved for the current call; regenerated whenever the step count changes."""

    needs_step_count = True

    def __init__(self, config: StepMaskConfig) -> None:
        self.config = config
        self.num_steps: int | None = None
        self.steps: frozenset[int] = frozenset()

    def begin_call(self, num_steps: int | None) -> None:
        if num_steps is None:
            raise ValueError("A step mask (`scm`) needs the call's `num_inference_steps`, and this pipeline has none.")
        if num_steps != self.num_steps:
            self.num_steps, self.steps = num_steps, masked_in_steps(self.config, num_steps)

    def rule(self, step: int) -> str:
        """COMPUTE (masked in), REUSE (masked off, static) or DECIDE (masked off, dynamic)."""
        if step in self.steps:
            return COMPUTE
        return REUSE if self.config.policy == MaskedOffSteps.static else DECIDE
