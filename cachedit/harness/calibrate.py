"""Fit Forecast Cache schedules by calibration: which steps compute, for every budget of computed steps at once.

1. Record: one uncached call per calibration input (seed), keeping each step's timestep and what the target
   forecasts, the transformer's outputs or the span's residuals (`trajectories.record_trajectory`).
2. Choose offline: dynamic programming over the forecast errors along those trajectories gives, per budget, the
   schedules of least proxy error (`schedule_fit`); no pipeline call.
3. Verify: the proxy weighs an error at noise level σ by ``σ^-power`` (how much of it reaches the image depends on
   the model: the flow damps early errors in directions the data does not vary in); the best schedule of each
   power in `powers`, and the schedule the uncalibrated default computes for the budget (even on the sampler's
   time, `time_spaced_budget`: the proxy ignores how an early error moves every later step, and on the tiny DiT
   with `target=output` its picks lost up to 10 dB to that one), run cached on every calibration input; the one
   with the highest PSNR against the recorded uncached images is kept (the even one on a tie), so a fit never
   scores below the uncalibrated default on its own inputs.

The whole fit costs at most ``1 + (len(powers) + 1) · Σ_budgets k / N`` uncached calls of the calibration inputs in
block work (budgets 5..14 of 28 steps, 1 power: 7.8), is checked against `max_generations` before any work, and is
deterministic: the same inputs give the same schedules (ties go to earlier steps). Calibrate on inputs you do not
evaluate on.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..cache import disable_cache, enable_cache
from ..caches import ForecastCacheConfig
from ..plan import resolve_plan
from .metrics import psnr
from .pareto import BlockCounter
from .schedule_fit import best_schedules, gap_costs, time_spaced_budget
from .trajectories import record_trajectory

__all__ = ["EVEN", "CalibrationCost", "Fit", "calibrate", "planned_generations"]


EVEN = "even"  # the candidate the uncalibrated default computes (the others are named by their proxy power)


@dataclass
class Fit:
    """One budget's result: the kept schedule and every verified candidate ``(steps, source, PSNR)``, its source
    `EVEN` or the proxy power that chose it."""

    budget: int
    compute_steps: list[int]
    psnr: float
    candidates: list[tuple[list[int], str, float]] = field(default_factory=list)


@dataclass
class CalibrationCost:
    """What the fit ran: pipeline calls, block executions, seconds, and the block work of one uncached call of
    every calibration input (`generation_blocks`), the unit of `generations`; `images`: per calibration seed."""

    images: int = 0
    pipeline_calls: int = 0
    block_executions: int = 0
    generation_blocks: int = 0
    seconds: float = 0.0

    @property
    def generations(self) -> float:
        return self.block_executions / max(self.generation_blocks, 1)


def planned_generations(num_steps: int, num_blocks: int, budgets: list[int], candidates: int, Fn: int = 0,
                        Bn: int = 0) -> float:
    """The block work of a fit in uncached calls of the calibration inputs (at most; fewer if candidates coincide)."""
    always = min(Fn + Bn, num_blocks)
    verify = sum((k * num_blocks + (num_steps - k) * always) / (num_steps * num_blocks) for k in set(budgets))
    return 1.0 + candidates * verify


def calibrate(pipe, call: dict, seeds: list[int], budgets: list[int], base: ForecastCacheConfig | None = None, *,
              output: str = "images", powers: tuple[float, ...] = (0.25,), max_generations: float = 10.0) -> tuple[dict[int, Fit], CalibrationCost]:
    """Fit a schedule per budget on `pipe(**call)` with each of `seeds`; returns the fits and what they cost."""
    base = base if base is not None else ForecastCacheConfig()
    num_steps = call.get("num_inference_steps")
    if num_steps is None:
        raise ValueError("The calibration call needs `num_inference_steps`: schedules are fitted for a step count.")
    if not seeds:
        raise ValueError("`seeds` is empty: calibrate on at least one seed (not one you evaluate on).")
    powers = list(powers)
    if not powers or any(p < 0 for p in powers):
        raise ValueError(f"`powers` must be a non-empty list of numbers >= 0 (one verified schedule each), got {powers}.")
    candidates = len(powers) + 1  # and the even schedule
    bad = [k for k in budgets if not 1 <= k <= num_steps]
    if not budgets or bad:
        raise ValueError(f"`budgets` {sorted(budgets)} must be computed-step counts in [1, {num_steps}].")
    num_blocks = sum(len(stack.blocks) for stack in resolve_plan(pipe, base).stacks)
    planned = planned_generations(num_steps, num_blocks, budgets, candidates, base.Fn, base.Bn)
    if planned > max_generations:
        raise ValueError(
            f"Calibrating budgets {sorted(budgets)} with `powers={powers}` costs up to {planned:.1f} uncached "
            f"generations of block work, above `max_generations={max_generations:g}`: fit fewer `budgets` or `powers`."
        )
    cost = CalibrationCost()
    start = time.perf_counter()
    trajectories = []
    for seed in seeds:
        trajectories.append(record_trajectory(pipe, call, seed, output, base.target))
        cost.pipeline_calls += 1
        cost.block_executions += trajectories[-1].blocks
    cost.generation_blocks = cost.block_executions
    cost.images = len(trajectories[0].images)
    reference = np.concatenate([t.images for t in trajectories])
    found: dict[int, list[tuple[list[int], str]]] = {k: [] for k in sorted(set(budgets))}
    for budget in found:
        even = time_spaced_budget(trajectories[0].timesteps, base.warmup, budget)
        if even is not None:
            found[budget].append((even, EVEN))
    for power in powers:
        for budget, schedules in best_schedules(gap_costs(trajectories, base.order, power=power), budgets).items():
            if schedules[0][0] not in [steps for steps, _ in found[budget]]:
                found[budget].append((schedules[0][0], f"{power:g}"))
    counter = BlockCounter(pipe.transformer)
    fits = {}
    try:
        for budget, schedules in found.items():
            verified = []
            for steps, source in schedules:
                config = dataclasses.replace(base, compute_steps=steps, reference_steps=num_steps, per_transformer={})
                images = []
                for seed in seeds:
                    enable_cache(pipe, config)
                    try:
                        counter.count = 0
                        result = pipe(**call, generator=torch.Generator().manual_seed(seed))
                    finally:
                        disable_cache(pipe)
                    images.append(np.asarray(getattr(result, output), dtype=np.float32))
                    cost.pipeline_calls += 1
                    cost.block_executions += counter.count
                verified.append((steps, source, psnr(reference, np.concatenate(images))))
            # the highest verified PSNR; among equals, the earlier candidate (the even one first)
            kept = max(verified, key=lambda v: (v[2], -verified.index(v)))
            fits[budget] = Fit(budget, kept[0], kept[2], verified)
    finally:
        counter.remove()
    cost.seconds = time.perf_counter() - start
    return fits, cost
