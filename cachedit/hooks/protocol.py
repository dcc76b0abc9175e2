"""The engine protocol: what the hooks hand an engine, and the parts an engine is built from.

Per pipeline call the lifecycle (`hooks/lifecycle.py`) tells each engine that the call begins
(`CacheEngine.begin_call`), then, per transformer call of one guidance branch, that a step begins
(`CacheEngine.begin_step`) and each block is about to run (`CacheEngine.run_block`), with a `StepContext`.
Engines decide with a `Policy` (skip the span this step?), may estimate what they skip with a `Calibrator`
(TaylorSeer), and defer to a `StepRule` (the step mask) and the leading guidance branch before their policy.

A new policy is one file in `cachedit/hooks/policies/` (its `Policy` and its registration), one config (a
`cachedit.configs.CacheConfig` subclass) and one YAML (`conf/cache/<name>.yaml`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Protocol

import torch

# What a step rule says of a step: it must compute, it must reuse (static mask), or the policy decides.
COMPUTE, REUSE, DECIDE = "compute", "reuse", "decide"


@dataclass
class StepContext:
    """One step of one guidance branch, as the lifecycle saw it begin. A transformer call that bypasses the cache (a
    K/V-extract pass, another pipeline's call sharing the transformer) never reaches the engine.

    Args:
        branch (`str`): the guidance branch (``cond``, ``uncond``; ``default`` where the pipeline names none).
        stats_key (`str`): ``<stack>/<branch>``, the key of this step's records in `CacheStats`.
        index (`int`): 0-based step of the branch in the current sampling loop.
        num_steps (`int`, *optional*): the steps the current call runs, once known.
        timestep (`float`, *optional*): the largest timestep value the transformer was called with (the sampler's
            own time), or None where the pipeline passes none.
        state: the engine's own state for this branch (`CacheEngine.new_state`).
    """

    branch: str
    stats_key: str
    index: int
    num_steps: int | None
    timestep: float | None
    state: Any


class EngineState(Protocol):
    """What an engine remembers per guidance branch between steps."""

    def reset(self) -> None:
        """Forget everything (a new call, or a new sampling loop within one)."""

    def invalidate(self) -> None:
        """Drop cached tensors (the input changed shape, dtype or device): the next step computes everything."""


class Policy(ABC):
    """Decides, once per step of a branch, whether the step skips its stack's cached span.

    The engine asks only where neither the step rule nor the leading branch decided, and only once a cache exists.
    """

    measures_change: bool = True  # `decide` reads the change of the first blocks' residual (a device-host sync)
    forecast_axis: str = "step"  # what a calibrator's positions are: "step" (the index) or "timestep"
    needs_step_count: bool = False  # `begin_call` must know the call's real step count (a schedule)
    # `decide` reads the calibrator's estimate of its own forecast error at this step instead of a measured change
    # (no block runs for it; one device-to-host read per computed step)
    estimates_forecast_error: bool = False

    def begin_call(self, num_steps: int | None) -> None:
        """Size whatever depends on the call's step count (at the call's first step)."""

    def cannot_skip(self, num_steps: int | None) -> str | None:
        """Why this policy can skip no step of a call of `num_steps` steps (a schedule that computes them all), in
        words; None where it may skip."""
        return None

    @abstractmethod
    def decide(self, step: StepContext, change: float | None) -> bool:
        """True: skip the span at this step. `change` is the relative L1 change of the head residual, or the
        estimated relative forecast error where the policy `estimates_forecast_error`, or None where there is none."""

    def record(self, step: StepContext, skipped: bool) -> None:
        """Learn from the decision that was taken (by this policy, the step rule or the leading branch)."""


class Calibrator(Protocol):
    """Estimates a skipped span's feature at a later position from the features of computed steps."""

    def update(self, position: float, feature: torch.Tensor) -> None: ...

    def predict(self, position: float) -> torch.Tensor: ...


class StepRule(Protocol):
    """Which steps must compute, whatever the policy says (the step computation mask)."""

    def begin_call(self, num_steps: int | None) -> None: ...

    def rule(self, step: int) -> str:
        """COMPUTE, REUSE or DECIDE."""


class CacheEngine(ABC):
    """One stack's cache: computes, skips or estimates its blocks. `hooks/lifecycle.py` drives it."""

    name: str  # the stack's name in stats and hook names
    group = None  # the context-parallel group to reduce decision metrics over; the lifecycle sets it per call

    @abstractmethod
    def new_state(self) -> EngineState:
        """Fresh per-branch state."""

    @property
    def needs_step_count(self) -> bool:
        """Whether `begin_call` must know the call's real step count (read at its first step)."""
        return False

    @abstractmethod
    def reset(self) -> None:
        """Forget what the branches share (per-branch states are reset by the lifecycle)."""

    @abstractmethod
    def begin_call(self, num_steps: int | None) -> None:
        """A pipeline call begins (after `reset`); `num_steps` is the steps it runs, where known."""

    @abstractmethod
    def begin_step(self, step: StepContext) -> None:
        """A step of `step.branch` begins: the transformer is about to run its first block."""

    @abstractmethod
    def run_block(self, step: StepContext, index: int, forward, args: tuple, kwargs: dict):
        """Block `index` of the stack: compute it with ``forward(*args, **kwargs)``, or return its estimate."""
