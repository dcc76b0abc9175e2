"""Forecast Cache: scheduled steps compute, the others forecast the skipped span (definitions: `ForecastCacheConfig`).

It shares DBCache's block bookkeeping (segments cut at list boundaries, residuals per stream, the TaylorSeer
forecasters) and replaces only the decision: a schedule instead of a measured change, so with `Fn=0` a skipped step
runs no block at all and the decision needs no device-to-host sync. The forecast's axis is the timestep the
pipeline passes (the sampler's own time, uneven under FLUX's shift), or the step index where there is none.
"""

from __future__ import annotations

import torch

from ..configs import ForecastCacheConfig, TaylorSeerCacheType, TaylorSeerConfig
from .dbcache import DBCacheEngine, DBCacheState


class ForecastEngine(DBCacheEngine):
    """The Forecast Cache decision for one transformer."""

    def __init__(self, config: ForecastCacheConfig, blocks, stats, name="transformer", list_starts=(0,), **kwargs) -> None:
        forecast = TaylorSeerConfig(order=config.order, cache_type=TaylorSeerCacheType.residual, encoder=True)
        super().__init__(config, blocks, stats, name, list_starts, taylorseer=forecast, **kwargs)
        self.schedule: frozenset[int] = frozenset()

    needs_step_count = True  # the schedule is sized by it

    def size_steps(self, num_steps: int | None) -> None:
        super().size_steps(num_steps)
        if num_steps is None:
            raise ValueError(
                "`cache=forecast` schedules its steps from the call's step count, and this call has none (no "
                "`num_inference_steps`, no scheduler timesteps). Use `cache=dbcache` for pipelines without a step count."
            )
        self.schedule = self.config.scheduled_steps(num_steps)

    def begin_step(self, hidden_states: torch.Tensor, timestep=None) -> None:
        super().begin_step(hidden_states, timestep)
        state = self.states.get_state()
        # the timestep the loop-restart check already read to the host this step: no second sync
        timestep_value = self.loops.get(self.states.branch, (None, 0))[0]
        if timestep_value is not None:
            state.position = timestep_value
        if self.config.Fn == 0:
            self._decide(state, None)

    @torch.compiler.disable
    def _decide(self, state: DBCacheState, head_residual: torch.Tensor | None) -> None:
        state.skip = self._skips(state, has_cache=len(state.segment_residuals) == len(self.segments))
        if state.skip:
            state.cached_steps += 1
        self.stats.record_step(state.stats_key, state.step, computed=not state.skip, diff=None)

    def _may_skip(self, state: DBCacheState) -> bool:
        return state.step not in self.schedule
