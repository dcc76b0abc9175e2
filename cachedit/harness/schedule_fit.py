"""Choose which steps compute, offline, from recorded uncached trajectories (`cachedit.harness.trajectories`).

The Forecast Cache forecasts a skipped step's feature (its span's residual, or with `target=output` the transformer's
output) from the last computed steps only (order 1: the last two; order 0: the last one), so the error of a skipped
step depends only on those steps and itself. The proxy for the
fidelity a schedule loses is, per gap between computed steps b and c (a the computed step before b):

    gap(a, b, c) = Σ_branches ‖ Σ_{b<s<c} (t_s - t_{s+1}) · (t_0 / t_s)^power · (forecast_s(a, b) - feature_s) ‖²

the forecast error of every step in the gap, weighted by the time that step advances (an error in the velocity
moves the latent by `dt` times it) and by how much of it reaches the image (the flow from noise level σ damps an
error by about σ_data / σ in directions the data does not vary in: `power` 1 is full damping, 0 none), summed as
vectors within a gap (the errors of one extrapolation share their sign) and as squares across gaps. The total is additive over gaps, so dynamic programming over the last two computed
steps finds, for every budget of computed steps at once, the schedule of least proxy error (O(budget · N³)).
Forecasts are those of the engine itself (`TaylorSeerCalibrator`, the same `differences_from_step` rule).
"""

from __future__ import annotations

import numpy as np
import torch

from ..caches.forecast import TimeSpacing
from ..hooks.taylorseer import TaylorSeerCalibrator
from .trajectories import Trajectory

__all__ = ["FORECAST_ORDERS", "best_schedules", "gap_costs", "time_spaced_budget", "time_spaced_steps"]

FORECAST_ORDERS = (0, 1)  # the proxy's state is the last two computed steps: enough for these orders


def _forecaster(features, timesteps, order, differences_from_step, a, b):
    state = TaylorSeerCalibrator(order)
    for step in (a, b):
        if step >= 0:
            state.update(timesteps[step], features[step], step < differences_from_step)
    return state


def gap_costs(trajectories: list[Trajectory], order: int, differences_from_step: int = 2, power: float = 0.0) -> np.ndarray:
    """``costs[a + 1, b, c]``: the proxy error of skipping every step strictly between computed steps b and c
    (c = N: to the end), a being the computed step before b (-1: none). Invalid triples are ``inf``."""
    if order not in FORECAST_ORDERS:
        raise ValueError(f"The calibrator fits schedules for `cache.order` in {list(FORECAST_ORDERS)}, got {order}.")
    steps = len(trajectories[0].timesteps)
    if any(len(t.timesteps) != steps for t in trajectories):
        raise ValueError(f"Every calibration input must run the same steps, got {[len(t.timesteps) for t in trajectories]}.")
    costs = np.full((steps + 1, steps, steps + 1), np.inf)
    for b in range(steps):
        for a in range(-1, b):
            if (a == -1) != (b == 0):
                continue  # only step 0 has no computed step before it, and it always computes
            total = np.zeros(steps - b)  # total[c - b - 1] for c in b + 1 .. N
            for trajectory in trajectories:
                times = torch.tensor(trajectory.timesteps, dtype=torch.float64)
                advance = (times - torch.cat([times[1:], times.new_zeros(1)])).abs()
                advance = advance * (times[0] / times.clamp(min=1e-6 * times[0])).abs() ** power
                for branch in trajectory.features:
                    if b + 1 == steps:
                        continue  # nothing after the last step: every gap from it is empty
                    forecaster = _forecaster(branch, trajectory.timesteps, order, differences_from_step, a, b)
                    later = torch.stack(branch[b + 1:]).double()
                    forecast = forecaster.predict(times[b + 1:, None].to(later.dtype))
                    errors = (forecast.double() - later) * advance[b + 1:, None]
                    # the gap to c sums the errors of the steps b + 1 .. c - 1
                    summed = torch.cat([errors.new_zeros(1, errors.shape[1]), errors.cumsum(0)])
                    total += summed.square().sum(1).numpy()
            costs[a + 1, b, b + 1:] = total
    return costs


def best_schedules(costs: np.ndarray, budgets: list[int], candidates: int = 1) -> dict[int, list[tuple[list[int], float]]]:
    """Per budget (computed steps), up to `candidates` schedules of least proxy error, best first, with that error.

    Candidates differ in their last two computed steps (each is the best schedule that ends with them). Ties go to
    the earlier steps (argmin's first index), so the result is deterministic."""
    steps = costs.shape[1]
    bad = [k for k in budgets if not 1 <= k <= steps]
    if bad:
        raise ValueError(f"`budgets` {bad} must lie in [1, {steps}] (computed steps of a {steps}-step call).")
    # best[k][a + 1, b]: least error with k computed steps, the last two a < b; parent[k][a + 1, b]: the step before a
    best = [None, np.full((steps + 1, steps), np.inf)]
    best[1][0, 0] = 0.0
    parents = [None, None]
    for _ in range(2, max(budgets) + 1):
        total = best[-1][:, :, None] + costs[:, :, :steps]  # [a + 1, b, c]
        parent = np.argmin(total, axis=0)  # the best a for each (b, c)
        following = np.full((steps + 1, steps), np.inf)
        following[1:, :] = np.take_along_axis(total, parent[None], axis=0)[0]
        best.append(following)
        parents.append(parent - 1)
    found = {}
    for k in sorted(set(budgets)):
        final = best[k] + costs[:, :, steps]
        order = np.argsort(final, axis=None, kind="stable")
        schedules = []
        for flat in order[:candidates]:
            if not np.isfinite(final.flat[flat]):
                break
            a, b = np.unravel_index(flat, final.shape)
            a = int(a) - 1
            schedule = [int(b)]
            level = k
            while a >= 0:
                schedule.append(a)
                a, b = int(parents[level][a, b]), a
                level -= 1
            schedules.append((sorted(schedule), float(final.flat[flat])))
        found[k] = schedules
    return found


def time_spaced_steps(timesteps: list[float | None], warmup: int, interval: float, compute_last_step: bool = False) -> list[int]:
    """The steps `TimeSpacing` computes along a whole call's `timesteps` (what the engine decides online)."""
    spacing = TimeSpacing(len(timesteps), warmup, interval, compute_last_step)
    return [i for i, t in enumerate(timesteps) if spacing.observe(i, t)]


def time_spaced_budget(timesteps: list[float | None], warmup: int, budget: int) -> list[int] | None:
    """The steps `TimeSpacing` computes along `timesteps` at the smallest interval that computes `budget` of them (the
    last computed step earliest: on the tiny DiT it scored higher than the largest such interval at 8 of the
    budgets 5..14); None where no interval computes exactly that many."""
    low, high = 1.0, float(len(timesteps) + 1)  # interval 1 computes every step; above N only the warmup
    for _ in range(50):  # bisection: the count falls as the interval grows
        middle = (low + high) / 2
        low, high = (low, middle) if len(time_spaced_steps(timesteps, warmup, middle)) <= budget else (middle, high)
    steps = time_spaced_steps(timesteps, warmup, high)
    return steps if len(steps) == budget else None
