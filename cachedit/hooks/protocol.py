"""The engine protocol: what the hooks hand an engine, and the parts an engine is built from.

Glossary (each word is used in this sense only):

- *technique*: one cache method (DBCache, DBPrune, Forecast Cache): a config, and either a policy or an engine of
  its own (``cache=none``: neither), in one module of `cachedit/caches/` that registers them.
- *policy* (`Policy`): decides, once per step of a branch, whether a span technique skips its span.
- *engine* (`CacheEngine`): runs one stack's blocks under one technique: the `SpanEngine` runs a policy's span; a
  technique that decides per block (DBPrune) is an engine of its own and has no policy.
- *step rule* (`StepRule`): which steps must compute or must reuse whatever the technique decides (the step mask).
- *calibrator* (`Calibrator`): estimates a skipped span's feature at a later position from the computed steps'
  features (TaylorSeer); its settings are the engine's *forecast* (a `TaylorSeerConfig`). (*Calibration*,
  ``runners.calibrate``, is another thing: fitting a Forecast schedule's `compute_steps` offline.)
- *schedule*: the steps a call computes (Forecast Cache): fixed from its step count before the call, or with
  ``spacing=timestep`` decided step by step from the timesteps each branch has seen.
- *stack*: the blocks one engine runs (a transformer's block lists, or one list of its own).
- *branch*: one guidance branch (``cond``, ``uncond``; ``default`` where the pipeline names none, ``default#k`` for
  its k-th repeated call at one timestep; ``shared`` for all of them with `cfg.enable_separate_cfg=false`); each
  keeps its own `EngineState`.

Per pipeline call the lifecycle (`hooks/lifecycle.py`) tells each engine that the call begins
(`CacheEngine.begin_call`), then, per transformer call of one branch, that a step begins (`CacheEngine.begin_step`),
whether the call runs at all (`CacheEngine.skipped_call`), that each block is about to run (`CacheEngine.run_block`)
and what the call returned (`CacheEngine.end_step`), with a `StepContext`. Engines defer to their step rule and
to the leading branch before their policy.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from ..configs import ForecastAxis, TaylorSeerConfig

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


class EngineState(ABC):
    """What an engine remembers per branch between steps; a new one is what `reset()` makes."""

    def __init__(self) -> None:
        self.reset()

    @abstractmethod
    def reset(self) -> None:
        """Forget everything (a new call, or a new sampling loop within one)."""

    @abstractmethod
    def invalidate(self) -> None:
        """Drop cached tensors (the input changed shape, dtype or device): the next step computes everything."""


class Policy(ABC):
    """Decides, once per step of a branch, whether the step skips its stack's cached span.

    The engine asks only where neither the step rule nor the leading branch decided, and only once a cache exists.
    """

    measures_change: bool = True  # `decide` reads the change of the first blocks' residual (a device-host sync)
    forecast_axis: ForecastAxis = ForecastAxis.step  # what a calibrator's positions are
    needs_step_count: bool = False  # `begin_call` must know the call's real step count (a schedule)
    # `decide` reads the calibrator's estimate of its own forecast error at this step instead of a measured change
    # (no block runs for it; one device-to-host read per computed step)
    estimates_forecast_error: bool = False
    forecast: TaylorSeerConfig | None = None  # a forecast of the policy's own (else the user's, where it takes one)
    moves_encoder: bool = True  # a skipped span moves the encoder (text) stream by its cached residual too
    # a skipped step's transformer output is forecast from the outputs of computed steps (the span's estimate only
    # feeds layers whose result is replaced)
    forecasts_output: bool = False
    # a computed step's output also moves the sampler back by the drift the skipped steps' forecasts caused, and the
    # forecast continues from outputs cleaned of it (`hooks/drift.py`; with `forecasts_output` on the timestep axis)
    corrects_drift: bool = False

    def optional_tail(self) -> set[int]:
        """Trailing blocks (0 .. Bn-1) that may reuse their own residual on a skipped step (`tail_reuses`)."""
        return set()

    def tail_reuses(self, change: float) -> bool:
        """Whether an optional trailing block reuses its residual at a skipped step with this measured change."""
        return False

    def begin_call(self, num_steps: int | None) -> None:
        """Size whatever depends on the call's step count (at the call's first step)."""

    def cannot_skip(self, num_steps: int | None) -> str | None:
        """Why this policy can skip no step of a call of `num_steps` steps (a schedule that computes them all), in
        words; None where it may skip."""
        return None

    def skipped_none(self, step: StepContext) -> str | None:
        """At the last step of a call in which `step.branch` skipped nothing and `cannot_skip` foresaw no reason: why,
        in words, where the policy itself chose to compute every step as the call went (a schedule on the sampler's
        time); None leaves the summary's generic reasons."""
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

    def predict(self, position: float, order: int) -> torch.Tensor: ...

    def error_estimate(self, position: float, order: int) -> float | None:
        """The estimated relative error of the order-`order` forecast at `position`; None until it can tell."""


class StepRule:
    """Which steps must compute or must reuse, whatever the technique decides. This one leaves every step to it;
    `hooks/step_mask.py`'s `StepMask` is the rule users set (``scm``)."""

    needs_step_count: bool = False  # `begin_call` must know the call's real step count

    def begin_call(self, num_steps: int | None) -> None:
        """Size the rule for a call of `num_steps` steps."""

    def rule(self, step: int) -> str:
        """COMPUTE, REUSE or DECIDE."""
        return DECIDE


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

    def end_step(self, step: StepContext, output):
        """The transformer call of `step` returned `output`: what the caller gets (by default `output` itself)."""
        return output

    def skipped_call(self, step: StepContext):
        """Before the transformer call of `step` runs: an output to hand `end_step` in place of running the call at
        all (nothing of the transformer runs: embeddings, blocks, output layers), or None to run it."""
        return None
