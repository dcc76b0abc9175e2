"""Forecast Cache: the steps of its schedule compute, the others forecast the skipped span (definitions:
`ForecastCacheConfig`). Its config, its schedule (`computed_steps`) and its policy (`SchedulePolicy`).

The span engine's bookkeeping with a schedule instead of a measured change, so with `Fn=0` a skipped step runs no
block at all and the decision needs no device-to-host sync (with `tolerance`, one read per computed step). The
forecast's axis is the step index, or with `forecast_axis="timestep"` the timestep the pipeline passes (the step
index where there is none). Which steps compute: a fixed set sized at the call's start, or with `spacing=timestep`
a rule decided online from the timesteps each branch has seen (`TimeSpacing`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from diffusers import FlowMatchEulerDiscreteScheduler

from ..config_types import check_types
from ..configs import ForecastAxis, TaylorSeerCacheType, TaylorSeerConfig, require
from ..hooks.protocol import Policy, StepContext
from . import CacheConfig, register

__all__ = ["ForecastSpacing", "ForecastTarget", "ForecastCacheConfig", "SchedulePolicy", "TimeSpacing", "computed_steps",
           "integrates_by_euler", "why_nothing_skips"]


class ForecastSpacing(str, Enum):
    step = "step"  # `interval` counts step indices
    timestep = "timestep"  # `interval` counts the sampler's time travelled, in mean steps (denser where it runs fast)


class ForecastTarget(str, Enum):
    residual = "residual"  # the skipped span's residual, added to its input; the head runs on the estimate
    output = "output"  # the transformer's output itself, what the sampler receives, polynomial in the timestep


@dataclass
class ForecastCacheConfig(CacheConfig):
    r"""Forecast Cache: on scheduled steps compute the blocks, on every other step compute none of them and forecast
    what the sampler receives, the transformer's output, from the outputs of the computed steps with a Newton
    polynomial in the timestep (TaylorSeer's idea applied to the whole model; `target=residual` forecasts the
    skipped span's residual instead, in the step index by default). A skipped step costs only the `Fn` + `Bn` blocks
    that always run (none by default, and none possible with `target=output`, where the transformer's call does not
    run at all), so the work saved is the share of skipped steps.

    Why it beats reuse: a cached residual reused unchanged is at best what running fewer steps gives (the
    Euler step with a constant velocity is the same update); a forecast of order 1 is a multistep method that
    follows the trajectory's trend between computed steps.

    The schedule (`computed_steps`). Without `compute_steps` (the default, no calibration): step 0 computes, then the step nearest to every
    `interval`-th position after it (0, 4, 8, ... at `interval=4`; 0, 5, 9, 14, ... at 4.67), so the computed steps
    are spread evenly over the whole call; positions are measured on the sampler's own time (`spacing`), which
    on evenly spaced timesteps is the step index. Why this and not the former warmup of 2 then every `interval`-th step
    (which trailed diffusers' TaylorSeer on whole blocks): replaying diffusers' own computed steps, this forecast (the
    whole span's residual, in the timestep) scores 0.8-1.1 dB above diffusers' (each block's output, in the step
    index) on the tiny DiT, so diffusers led by its schedule alone: it spends no step right after its warmup and
    often none at the end, where the former schedule spent both. A warmup step buys less fidelity than a step
    spent later (the first residual reused over the first gap is a small error), and the last steps are forecast
    well from the trend. At 45 dB and above `warmup=2` is the better setting (the bench sweeps both).

    A fitted schedule (`compute_steps`, from ``python -m runners.calibrate``) is a set of stretches of the call's
    time: step `s` of `reference_steps` covers the share ``[s, s + 1) / reference_steps`` of the call; a call of `N`
    steps computes the step covering the middle of each (``floor((s + 1/2) * N / reference_steps)``; step 0 stays). The
    forecast's errors follow the gaps on that axis, which this keeps, so the fidelity stays about that of the
    fitted step count, and the schedule computes as many steps as it lists (fewer where two land on one step; a
    call too short to skip anything says so in its summary). Not the nearest start (``s * N / reference_steps``
    rounded): that moves a step fitted just before the end onto the last step (26 of 28 -> 19 of 20), which
    measured 4 dB worse at 20 steps. The steps that enter the forecast as values only (before the second of 28) are
    placed the same way (`first_difference_step`): at 50 steps a fitted ``[0, 1, ...]`` computes ``[0, 2, ...]``, and
    a slope through steps 0 and 2 cost tiny FLUX 8-15 dB at 5-9 computed steps.

    Args:
        Fn (`int`, defaults to `0`): leading blocks computed at every step (0: skip the whole stack).
        Bn (`int`, defaults to `0`): trailing blocks computed at every step, correcting the forecast.
        order (`int`, defaults to `1`): order of the forecast (0 reuses the last residual, 1 is linear in the
            timestep, 2 quadratic). Order 1 is the robust choice on trained models; higher orders amplify noise.
        warmup (`int`, defaults to `1`): steps at the start of each call that always compute (without
            `compute_steps`); the interval counts from the last of them.
        interval (`float`, defaults to `4.0`): after the warmup, the step nearest to every `interval`-th position
            computes (1 never skips; a fraction spreads the computed steps evenly, e.g. 28 / 6 = 4.67).
        compute_last_step (`bool`, defaults to `False`): also compute the last step (without `compute_steps`).
        spacing (`ForecastSpacing`, defaults to `timestep`): the axis `interval` is measured on (without
            `compute_steps`). ``step``: step indices. ``timestep``: the sampler's own time, the timestep the pipeline
            passes, in mean steps (the mean gap between the call's steps), so a step computes where the time
            travelled reaches the next multiple of `interval` (the step whose time lies nearest to it, decided
            online from the timesteps seen so far: no calibration, no block, no device read). On evenly spaced
            timesteps (the tiny DiT) both compute the same steps; under a shift (FLUX) ``timestep`` computes as
            many steps, denser late where the sampler moves fastest, as the calibrated tiny-FLUX preset does, and
            it transfers across step counts and shifts by construction. Measured held out on tiny FLUX
            (`bench=spacing`, 20 digits, ours / diffusers' TaylorSeerCache at 35/40/45 dB): ``timestep``
            1.10-1.53x on every condition, ``step`` 0.94-1.37x (it lost at guidance 4.0). Where the pipeline
            passes no timestep (or a rising one), the step index. `interval=1` computes every step either way.
        compute_steps (`list[int]`, *optional*): the 0-based steps that compute, fitted for a call of
            `reference_steps` steps and placed by time share at other step counts; overrides warmup/interval/spacing.
        reference_steps (`int`, defaults to `28`): the step count `compute_steps` was fitted for.
        tolerance (`float`, *optional*): decide online instead: skip a step only while the estimated relative
            error of the forecast there stays at most this. The estimate is the next Newton term (the forecast's
            divided difference of order + 1 times the gaps to the computed steps, as an adaptive ODE solver's
            embedded error estimate): no block runs for it, one device-to-host read per computed step. Until
            `order` + 2 steps computed, the schedule decides. Measured on the tiny DiT it does not beat the even
            schedule, so it is off by default.
        forecast_axis (`ForecastAxis`, *optional*): what the forecast is polynomial in: `step` (the step index) or
            `timestep` (the timestep the pipeline passes, uneven under FLUX's shift; the step index where there is
            none). Default: the target's own, `step` for ``residual`` (under tiny FLUX's shift, replaying diffusers'
            TaylorSeer schedules, the step axis scored 0.0-0.2 dB above diffusers and the timestep axis 1.9-2.3 dB
            below it) and `timestep` for ``output`` (the sampler integrates the output over its time). Where
            timesteps are evenly spaced (the tiny DiT) both are the same.
        target (`ForecastTarget`, defaults to `output`): what a skipped step forecasts. ``residual``: the
            skipped span's residual, added to the span's input (the blocks after the span and the transformer's
            output layers run on the estimate; `forecast_axis` applies). ``output``: the transformer's output itself
            (the velocity or noise the sampler receives), by default polynomial in the timestep (`forecast_axis`):
            a skipped step runs nothing of the transformer (no embedding, block or output layer: its call returns
            the forecast), and the transformer's own output layers, which modulate by the timestep and normalise,
            no longer bend the forecast. Needs `Fn=0`, `Bn=0` (nothing of
            the stack runs on a skipped step) and one block stack per transformer. Held out (`bench=pareto` on the
            tiny DiT, `bench=pareto_small` on tiny FLUX; README, Benchmarks; issue 22's fifth stop, before drift
            correction), the uncalibrated default beat diffusers' TaylorSeerCache by >= 1.15x at 35-45 dB in 27 of
            30 cells with ``output`` and 21 with ``residual``, and the output's front lay above the residual's at
            35 dB on 9 of 10 conditions (the tenth tied at the grid's fastest point).
        drift_correction (`bool`, *optional*): with `target=output`, a computed step after skipped ones also moves
            the sampler back by the drift their forecasts caused, re-estimated by interpolating between the computed
            steps around them, and the forecast continues from outputs cleaned of that drift (`hooks/drift.py`).
            It models the sampler as taking Euler steps in the timestep, as diffusers'
            `FlowMatchEulerDiscreteScheduler` does (FLUX, SD3, Qwen-Image, HunyuanVideo, the embedded models).
            Default (null): on where the pipeline's scheduler is one (deterministic), off elsewhere (another
            scheduler, a bare transformer whose loop is the caller's). Bit-exact where nothing is skipped. Measured
            held out (README, Benchmarks): with it the uncalibrated default beats diffusers' TaylorSeerCache by
            >= 1.15x at 35-45 dB in all 30 cells of both embedded models (27 without), losing 2-5 % to no correction on four
            cells, where 6+ steps in a row are skipped.
        per_transformer (`dict`, defaults to `{}`): knob overrides per transformer.
    """

    name: str = "forecast"
    Fn: int = 0
    Bn: int = 0
    order: int = 1
    warmup: int = 1
    interval: float = 4.0
    compute_last_step: bool = False
    spacing: ForecastSpacing = ForecastSpacing.timestep
    compute_steps: list[int] | None = None
    reference_steps: int = 28
    tolerance: float | None = None
    forecast_axis: ForecastAxis | None = None
    target: ForecastTarget = ForecastTarget.output
    drift_correction: bool | None = None
    per_transformer: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_types(self)  # before the range checks below compare anything
        require(self.Fn >= 0 and self.Bn >= 0, f"`Fn` and `Bn` must be >= 0, got Fn={self.Fn}, Bn={self.Bn}.")
        require(0 <= self.order <= 3, f"`order` must be in [0, 3], got {self.order}.")
        require(self.warmup >= 1, f"`warmup` must be >= 1 (the first step has nothing to forecast from), got {self.warmup}.")
        require(self.interval >= 1, f"`interval` must be >= 1 (1 computes every step), got {self.interval}.")
        require(self.reference_steps >= 2, f"`reference_steps` must be >= 2, got {self.reference_steps}.")
        require(self.tolerance is None or self.tolerance > 0,
                f"`tolerance` must be > 0 (a relative error), or null for the schedule alone; got {self.tolerance}.")
        if self.compute_steps is not None:
            steps = list(self.compute_steps)
            require(
                bool(steps) and 0 in steps,
                f"`compute_steps` must include step 0 (nothing to forecast from before it), got {steps}.",
            )
            bad = [s for s in steps if not 0 <= s < self.reference_steps]
            require(not bad, f"`compute_steps` {bad} lie outside [0, {self.reference_steps - 1}] (`reference_steps`={self.reference_steps}).")
            self.compute_steps = sorted(set(steps))
        if self.target == ForecastTarget.output:
            require(self.Fn == 0 and self.Bn == 0,
                    f"`target=output` forecasts the transformer's whole output, so no block may run on a skipped step: "
                    f"set `Fn=0` and `Bn=0` (got Fn={self.Fn}, Bn={self.Bn}), or use `target=residual`.")
        if self.drift_correction:
            require(self.target == ForecastTarget.output,
                    "`drift_correction=true` corrects the sampler's latent through the transformer's output, which "
                    "`target=residual` does not forecast: set `target=output`, or `drift_correction=false`.")
            require(self.forecast_axis != ForecastAxis.step,
                    "`drift_correction=true` measures the sampler's moves in the timestep, and `forecast_axis=step` "
                    "forecasts in the step index: leave `forecast_axis` unset (the timestep), or `drift_correction=false`.")
        self.check_per_transformer()

    def resolved_for(self, target) -> "ForecastCacheConfig":
        """With `drift_correction` unset: on for `target=output` where `target`'s scheduler takes the Euler steps
        it models (`integrates_by_euler`), off elsewhere."""
        if self.drift_correction is not None:
            return self
        on = self.target == ForecastTarget.output and self.forecast_axis != ForecastAxis.step and integrates_by_euler(target)
        return dataclasses.replace(self, drift_correction=on)

    def check_stack_count(self, num_stacks: int, where: str = "the transformer") -> None:
        require(self.target != ForecastTarget.output or num_stacks == 1,
                f"`target=output` forecasts the transformer's output, which one engine must own, but {where} is cached "
                f"as {num_stacks} block stacks, each with its own schedule. Use `target=residual` there.")

    def spaced_by_time(self) -> bool:
        """Whether the uncalibrated schedule is decided online on the sampler's time (`spacing=timestep`)."""
        return self.compute_steps is None and self.spacing == ForecastSpacing.timestep and self.interval > 1

    def strify(self) -> str:
        if self.compute_steps is not None:
            schedule = f"S{len(self.compute_steps)}of{self.reference_steps}"
        else:
            schedule = f"W{self.warmup}I{self.interval:g}" + ("L" if self.compute_last_step else "")
            schedule += "T" if self.spacing == ForecastSpacing.timestep else ""
        target = "_Res" if self.target == ForecastTarget.residual else ""
        target += "_NoDrift" if self.drift_correction is False and self.target == ForecastTarget.output else ""
        return f"Forecast_F{self.Fn}B{self.Bn}_O{self.order}_{schedule}{target}"


def integrates_by_euler(pipe) -> bool:
    """Whether `pipe`'s scheduler moves the latent by ``(sigma_next - sigma) * output``, the step the drift
    correction models: diffusers' `FlowMatchEulerDiscreteScheduler` without its stochastic sampling."""
    scheduler = getattr(pipe, "scheduler", None)
    return isinstance(scheduler, FlowMatchEulerDiscreteScheduler) and not scheduler.config.get("stochastic_sampling", False)


def _nearest(x: float) -> int:
    """The integer nearest to `x >= 0`, halves up (Python's `round` takes halves to even, 2.5 -> 2, 3.5 -> 4)."""
    return int(x + 0.5)


def _placed(step: int, config: ForecastCacheConfig, num_steps: int) -> int:
    """Where step `step` of `config.reference_steps` lies in a call of `num_steps` steps: the step covering the middle
    of its share of the call's time (step 0 stays step 0: nothing to forecast from before it)."""
    return min(num_steps - 1, int((step + 0.5) * num_steps / config.reference_steps)) if step else 0


def first_difference_step(config: ForecastCacheConfig, num_steps: int) -> int:
    """The first step whose output enters the forecast in a difference (`TaylorSeerConfig.differences_from_step`):
    for a fitted schedule the boundary of `reference_steps` placed by time share like the schedule itself, so the
    steps that entered as values only where it was fitted still do. Not the index: at 50 steps a fitted
    ``[0, 1, 12, ...]`` computes ``[0, 2, 21, ...]``, and a slope through steps 0 and 2 (from pure noise) cost tiny
    FLUX 15 dB."""
    first = TaylorSeerConfig.differences_from_step
    if config.compute_steps is None or first == 0:
        return first
    return _placed(first - 1, config, num_steps) + 1


def computed_steps(config: ForecastCacheConfig, num_steps: int) -> frozenset[int]:
    """The steps that compute in a call of `num_steps` steps (the rules: `ForecastCacheConfig`); with
    `spacing=timestep` (decided online from the timesteps, `TimeSpacing`) those of evenly spaced timesteps, which uneven
    ones move."""
    if config.compute_steps is not None:
        return frozenset(_placed(s, config, num_steps) for s in config.compute_steps)
    steps = set(range(min(config.warmup, num_steps)))
    k = 1
    while (step := _nearest(config.warmup - 1 + k * config.interval)) < num_steps:
        steps.add(step)
        k += 1
    if config.compute_last_step:
        steps.add(num_steps - 1)
    return frozenset(steps)


def why_nothing_skips(config: ForecastCacheConfig, num_steps: int) -> str | None:
    """Why a call of `num_steps` steps skips no step, in words; None where the schedule skips some."""
    if len(computed_steps(config, num_steps)) < num_steps:
        return None
    if config.compute_steps is not None:
        return (f"`compute_steps` ({len(config.compute_steps)} of {config.reference_steps} steps, placed by time share) "
                f"land on every one of this call's {num_steps} steps: the schedule cannot skip at {num_steps} steps")
    return f"`warmup={config.warmup}` and `interval={config.interval:g}` compute every one of this call's {num_steps} steps"


_HALF_UP = 1e-3  # in steps: far above float32 rounding of the timesteps (1e-7 relative), far below any real gap


class TimeSpacing:
    """One branch's uncalibrated schedule on the sampler's time, decided step by step.

    A step's position is the time travelled since step 0 in mean steps, ``(t0 - t) / unit``. The unit is the mean
    gap between the call's steps, which lies between ``t0 / N`` (trailing timesteps, FLUX's: the last step still
    travels a full gap to 0) and ``t0 / (N - 1)`` (timesteps that end at t = 0, the tiny DiT's ends at 0.001): the
    first gap, clamped to that range (on evenly spaced timesteps it is the mean gap exactly, whatever the
    convention; under a shift it is smaller and the clamp gives ``t0 / N``, so the computed steps are about
    ``N / interval`` at any shift). After the warmup, the marks are the last warmup step's position
    + k * `interval`; a step computes where a mark lies in its cell, ``[position - gap / 2, position + gap / 2)``
    with `gap` its distance from the previous step: the step nearest the mark, judged with the next step's gap
    taken equal to this one's (unknown before it runs; exact on even timesteps, one step late at most under a
    shift); no mark past ``N - 1/2`` computes. Without a usable timestep (none, t0 <= 0, or a rising one) the
    position is the step index from that step on.
    """

    def __init__(self, num_steps: int, warmup: int, interval: float, compute_last_step: bool = False) -> None:
        self.num_steps, self.warmup, self.interval = num_steps, warmup, interval
        self.compute_last_step = compute_last_step
        self.first: float | None = None  # the timestep of step 0; None: positions are step indices
        self.unit = 1.0  # the mean gap between steps, in timestep units (fixed at step 1)
        self.position = 0.0  # of the last step seen
        self.mark = 0.0  # the next position that asks for a computed step (a mark)
        self.index = -1  # the last step seen
        self.computes = True  # whether that step is on the schedule
        self.steps_on_schedule = 0  # so far

    def observe(self, index: int, timestep: float | None) -> bool:
        """Whether step `index` is on the schedule (each step once, in order; asking again repeats the answer)."""
        if index != self.index:
            self._advance(index, timestep)
            self.steps_on_schedule += self.computes
        return self.computes

    def _advance(self, index: int, timestep: float | None) -> None:
        """A new step: place it on the time axis and decide it (`computes`)."""
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
            self.computes, self.mark = True, position + self.interval
            return
        upper = position + gap / 2 - _HALF_UP  # a mark on the boundary goes to the later step, as halves round up
        # nor a mark in the call's last half mean step: `computed_steps`' mark N - 1/2 rounds past the last step
        self.computes = self.mark < min(upper, self.num_steps - 0.5 - _HALF_UP)
        self.computes |= self.compute_last_step and index == self.num_steps - 1
        while self.mark < upper:  # every mark in this step's cell is served by it
            self.mark += self.interval


class SchedulePolicy(Policy):
    """Skip every step the schedule does not compute."""

    measures_change = False
    needs_step_count = True  # the schedule is sized by it

    def __init__(self, config: ForecastCacheConfig) -> None:
        self.config = config
        self.forecasts_output = config.target == ForecastTarget.output
        self.corrects_drift = bool(config.drift_correction)  # `resolved_for` decided an unset one
        self.forecast_axis = config.forecast_axis or (ForecastAxis.timestep if self.forecasts_output else ForecastAxis.step)
        self.estimates_forecast_error = config.tolerance is not None
        self.schedule: frozenset[int] = frozenset()  # this call's, sized by `begin_call`
        # its own calibrator settings: the forecast is the technique (the user's `taylorseer` is refused)
        self.forecast = TaylorSeerConfig(order=config.order, cache_type=TaylorSeerCacheType.residual, encoder=True)
        self.by_time = config.spaced_by_time()
        self.num_steps = 0
        self.spacings: dict[str, TimeSpacing] = {}  # per guidance branch (`spacing=timestep`)

    def begin_call(self, num_steps: int | None) -> None:
        if num_steps is None:
            raise ValueError(
                "`cache=forecast` schedules its steps from the call's step count, and this call has none (no "
                "`num_inference_steps`, no scheduler timesteps). Use `cache=dbcache` for pipelines without a step count."
            )
        self.schedule = computed_steps(self.config, num_steps)
        self.forecast.differences_from_step = first_difference_step(self.config, num_steps)
        self.num_steps, self.spacings = num_steps, {}

    def cannot_skip(self, num_steps: int | None) -> str | None:
        if num_steps is None or len(self.schedule) < num_steps:  # `begin_call` sized the schedule: it skips
            return None
        if self.by_time and self.config.warmup < num_steps:  # the timesteps decide, as they come: `skipped_none`
            return None
        return why_nothing_skips(self.config, num_steps)

    def skipped_none(self, step: StepContext) -> str | None:
        spacing = self.spacings.get(step.branch)
        if not self.by_time or spacing is None or spacing.steps_on_schedule < self.num_steps:
            return None
        return (f"`spacing=timestep` with `interval={self.config.interval:g}` scheduled every one of this call's "
                f"{self.num_steps} steps: each moved the sampler's time by about `interval` mean steps or more")

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


register(ForecastCacheConfig, policy=SchedulePolicy, check=_check)
