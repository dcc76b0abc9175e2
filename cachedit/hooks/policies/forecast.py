"""Forecast Cache: scheduled steps compute, the others forecast the skipped span (definitions: `ForecastCacheConfig`).

The span engine's bookkeeping with a schedule instead of a measured change, so with `Fn=0` a skipped step runs no
block at all and the decision needs no device-to-host sync (with `tolerance`, one read per computed step). The
forecast's axis is the step index, or with `forecast_axis="timestep"` the timestep the pipeline passes (the step
index where there is none). Which steps compute: a fixed set sized at the call's start, or with `spacing=timestep`
a rule decided online from the timesteps each branch has seen (`TimeSpacing`).
"""

from __future__ import annotations

from ...configs import ForecastCacheConfig, TaylorSeerCacheType, TaylorSeerConfig
from ..protocol import Policy, StepContext
from ..span import SpanEngine
from . import register


_HALF_UP = 1e-3  # in steps: far above float32 rounding of the timesteps (1e-7 relative), far below any real gap


class TimeSpacing:
    """One branch's uncalibrated schedule on the sampler's time, decided step by step.

    A step's position is the time travelled since step 0 in mean steps, ``(t0 - t) / unit``. The unit is the mean
    gap between the call's steps, which lies between ``t0 / N`` (trailing timesteps, FLUX's: the last step still
    travels a full gap to 0) and ``t0 / (N - 1)`` (timesteps that end at t = 0, the tiny DiT's ends at 0.001): the
    first gap, clamped to that range (on evenly spaced timesteps it is the mean gap exactly, whatever the
    convention; under a shift it is smaller and the clamp gives ``t0 / N``, so the computed steps are about
    ``N / interval`` at any shift). After the warmup, the targets are the last warmup step's position
    + k * `interval`; a step computes where a target lies in its cell, ``[position - gap / 2, position + gap / 2)``
    with `gap` its distance from the previous step: the step nearest the target, judged with the next step's gap
    taken equal to this one's (unknown before it runs; exact on even timesteps, one step late at most under a
    shift); no target past ``N - 1/2`` computes. Without a usable timestep (none, t0 <= 0, or a rising one) the
    position is the step index from that step on.
    """

    def __init__(self, num_steps: int, warmup: int, interval: float, compute_last_step: bool = False) -> None:
        self.num_steps, self.warmup, self.interval = num_steps, warmup, interval
        self.compute_last_step = compute_last_step
        self.first: float | None = None  # the timestep of step 0; None: positions are step indices
        self.unit = 1.0  # the mean gap between steps, in timestep units (fixed at step 1)
        self.position = 0.0  # of the last step seen
        self.target = 0.0  # the next position that asks for a computed step
        self.index = -1  # the last step seen
        self.computes = True  # whether that step is on the schedule

    def observe(self, index: int, timestep: float | None) -> bool:
        """Whether step `index` is on the schedule (each step once, in order; asking again repeats the answer)."""
        if index == self.index:
            return self.computes
        if index == 0:
            self.first = timestep if timestep is not None and timestep > 0 else None
        elif self.first is not None and (timestep is None or timestep > self.first):
            self.first = None  # no time axis from here on: fall back to the step index
        elif index == 1 and self.first is not None:
            lowest, highest = self.first / self.num_steps, self.first / max(self.num_steps - 1, 1)
            self.unit = min(max(self.first - timestep, lowest), highest)
        position = index if self.first is None else (self.first - timestep) / self.unit
        gap = max(position - self.position, 0.0) if index else 0.0
        self.index, self.position = index, position
        if index < self.warmup:
            self.computes, self.target = True, position + self.interval
            return True
        upper = position + gap / 2 - _HALF_UP  # a target on the boundary goes to the later step, as halves round up
        # nor a target in the call's last half mean step: the step rule's target N - 1/2 rounds past the last step
        self.computes = self.target < min(upper, self.num_steps - 0.5 - _HALF_UP)
        self.computes |= self.compute_last_step and index == self.num_steps - 1
        while self.target < upper:  # every target in this step's cell is served by it
            self.target += self.interval
        return self.computes


def time_spaced_steps(timesteps: list[float | None], warmup: int, interval: float, compute_last_step: bool = False) -> list[int]:
    """The steps `TimeSpacing` computes along a whole call's `timesteps` (what the engine decides online)."""
    spacing = TimeSpacing(len(timesteps), warmup, interval, compute_last_step)
    return [i for i, t in enumerate(timesteps) if spacing.observe(i, t)]


class SchedulePolicy(Policy):
    """Skip every step the schedule does not compute."""

    measures_change = False
    needs_step_count = True  # the schedule is sized by it

    def __init__(self, config: ForecastCacheConfig) -> None:
        self.config = config
        self.forecast_axis = config.forecast_axis
        self.estimates_forecast_error = config.tolerance is not None
        self.schedule: frozenset[int] = frozenset()
        self.by_time = config.spaced_by_time()
        self.num_steps = 0
        self.spacings: dict[str, TimeSpacing] = {}  # per guidance branch (`spacing=timestep`)

    def begin_call(self, num_steps: int | None) -> None:
        if num_steps is None:
            raise ValueError(
                "`cache=forecast` schedules its steps from the call's step count, and this call has none (no "
                "`num_inference_steps`, no scheduler timesteps). Use `cache=dbcache` for pipelines without a step count."
            )
        self.schedule = self.config.scheduled_steps(num_steps)
        self.num_steps, self.spacings = num_steps, {}

    def cannot_skip(self, num_steps: int | None) -> str | None:
        if num_steps is None or len(self.schedule) < num_steps:  # `begin_call` sized the schedule: it skips
            return None
        return self.config.why_nothing_skips(num_steps)

    def scheduled(self, step: StepContext) -> bool:
        if not self.by_time:
            return step.index in self.schedule
        spacing = self.spacings.get(step.branch)
        if spacing is None or step.index < spacing.index:  # the branch's first step, or a new sampling loop of it
            spacing = self.spacings[step.branch] = TimeSpacing(self.num_steps, self.config.warmup,
                                                               self.config.interval, self.config.compute_last_step)
        return spacing.observe(step.index, step.timestep)

    def decide(self, step: StepContext, change: float | None) -> bool:
        if change is None or self.config.tolerance is None:  # no estimate yet: the schedule decides
            return not self.scheduled(step)
        return change <= self.config.tolerance

    def record(self, step: StepContext, skipped: bool) -> None:
        self.scheduled(step)  # every step's time moves the schedule on, whoever decided it


def _check(config: ForecastCacheConfig, taylorseer: TaylorSeerConfig | None) -> None:
    order = taylorseer.order if taylorseer is not None else 0
    if order:
        raise ValueError(
            f"`taylorseer.order={order}` with `cache=forecast`: the forecast cache has its own `cache.order`; "
            f"set that and leave `taylorseer=none`."
        )


def _build(config: ForecastCacheConfig, blocks, stats, name, list_starts, *, taylorseer=None, **kwargs) -> SpanEngine:
    forecast = TaylorSeerConfig(order=config.order, cache_type=TaylorSeerCacheType.residual, encoder=True)
    return SpanEngine(config, blocks, stats, name, list_starts, policy=SchedulePolicy(config), calibrator=forecast,
                      **kwargs)


register(ForecastCacheConfig, _build, check=_check)
