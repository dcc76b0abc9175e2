"""Forecast Cache: scheduled steps compute, the others forecast the skipped span (definitions: `ForecastCacheConfig`).

The span engine's bookkeeping with a schedule instead of a measured change, so with `Fn=0` a skipped step runs no
block at all and the decision needs no device-to-host sync (with `tolerance`, one read per computed step). The
forecast's axis is the step index, or with `forecast_axis="timestep"` the timestep the pipeline passes (the step
index where there is none).
"""

from __future__ import annotations

from ...configs import ForecastCacheConfig, TaylorSeerCacheType, TaylorSeerConfig
from ..protocol import Policy, StepContext
from ..span import SpanEngine
from . import register


class SchedulePolicy(Policy):
    """Skip every step the schedule does not compute."""

    measures_change = False
    needs_step_count = True  # the schedule is sized by it

    def __init__(self, config: ForecastCacheConfig) -> None:
        self.config = config
        self.forecast_axis = config.forecast_axis
        self.estimates_forecast_error = config.tolerance is not None
        self.schedule: frozenset[int] = frozenset()

    def begin_call(self, num_steps: int | None) -> None:
        if num_steps is None:
            raise ValueError(
                "`cache=forecast` schedules its steps from the call's step count, and this call has none (no "
                "`num_inference_steps`, no scheduler timesteps). Use `cache=dbcache` for pipelines without a step count."
            )
        self.schedule = self.config.scheduled_steps(num_steps)

    def cannot_skip(self, num_steps: int | None) -> str | None:
        if num_steps is None or len(self.schedule) < num_steps:  # `begin_call` sized the schedule: it skips
            return None
        return self.config.why_nothing_skips(num_steps)

    def decide(self, step: StepContext, change: float | None) -> bool:
        if change is None or self.config.tolerance is None:  # no estimate yet: the schedule decides
            return step.index not in self.schedule
        return change <= self.config.tolerance


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
