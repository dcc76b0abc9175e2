"""Fit a Forecast Cache schedule by calibration: which steps must compute for a given budget of computed steps.

Backward greedy elimination: start from every step computing, and repeatedly drop the step whose forecast costs
the least fidelity (PSNR against the uncached run on calibration inputs), recording the schedule at each budget.
One pass yields a nested family of schedules, i.e. a whole speed/fidelity front, in about ``num_steps² / 2``
cached runs of the calibration batch. Calibrate on inputs (seeds) you do not evaluate on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
from tqdm.auto import tqdm

from ..configs import ForecastCacheConfig
from .metrics import psnr

__all__ = [
    "Generate", "fit_compute_steps"
]

Generate = Callable[[ForecastCacheConfig | None], np.ndarray]  # config (None: uncached) -> images in [0, 1]


def fit_compute_steps(
    generate: Generate,
    num_steps: int,
    budgets: list[int],
    base: ForecastCacheConfig | None = None,
) -> dict[int, tuple[list[int], float]]:
    """For each budget (number of computed steps), the schedule found and its calibration PSNR.

    Args:
        generate: runs the calibration batch with a cache config (or uncached for `None`) and returns the images.
        num_steps: the calibrated call's step count; it becomes the schedules' `reference_steps`.
        budgets: computed-step counts to report, each in [1, num_steps].
        base: the other knobs (`Fn`, `Bn`, `order`); its schedule fields are replaced.
    """
    bad = [b for b in budgets if not 1 <= b <= num_steps]
    if bad:
        raise ValueError(f"`budgets` {bad} must lie in [1, {num_steps}] (computed steps of a {num_steps}-step call).")
    base = base if base is not None else ForecastCacheConfig()
    reference = generate(None)

    def score(steps: list[int]) -> float:
        config = dataclasses.replace(base, compute_steps=steps, reference_steps=num_steps, per_transformer={})
        return psnr(reference, generate(config))

    current = list(range(num_steps))
    found: dict[int, tuple[list[int], float]] = {}
    if num_steps in budgets:
        found[num_steps] = (current, float("inf"))
    total = sum(range(min(budgets), num_steps))  # candidate runs: one per removable step per round
    with tqdm(total=total, desc="calibrating schedule", leave=False) as progress:
        while len(current) > min(budgets):
            candidates = []
            for step in current[1:]:  # step 0 always computes: there is nothing to forecast from before it
                trial = [s for s in current if s != step]
                candidates.append((score(trial), step))
                progress.update()
            best_psnr, drop = max(candidates)
            current = [s for s in current if s != drop]
            if len(current) in budgets:
                found[len(current)] = (current, best_psnr)
    return found
