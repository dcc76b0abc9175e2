"""Drift correction of a forecast output (`ForecastCacheConfig.drift_correction`), as pure tensor maths.

A skipped step hands the sampler a forecast, extrapolated from the computed steps before it; the sampler integrates
it, so by the next computed step `k` the latent has drifted from where exact outputs would have taken it by
``D = Σ_j g_j (forecast_j - v_j)`` (``g_j``: step j's move in the timestep, the sampler's Euler step being
``x += g_j · output`` on a flow-matching time proportional to the timestep). Step `k` computes, so the skipped
outputs ``v_j`` can now be *interpolated* between the computed steps around them (quadratic through the last three,
linear through two), far better than they were extrapolated. Two uses of ``D``:

- step `k`'s output moves the sampler back: ``output + c`` with ``g_k c`` = the drift the step would keep;
- step `k`'s own output was computed on the drifted latent. Modelling the transformer as predicting a clean image
  that absorbs a drift only partly (its output moves by ``kappa · D / t_k``, ``kappa = 1/2``; 1 is an image that
  ignores the drift, the velocity of ``(x - image) / t``), the anchor of the next forecast is that output with the
  drift's share removed, and the interpolation itself is solved for it (``D`` appears on both sides, linearly).

Nothing changes where no step was skipped since the last computed one (``D = 0``). Measured (README, Benchmarks):
without the anchors' cleaning a long skipped span over-corrects; `kappa` was chosen on seed 0 of both embedded
models (0.25 / 0.5 / 0.75 / 1) and judged on held-out conditions.
"""

from __future__ import annotations

import torch

from .taylorseer import TaylorSeerCalibrator

__all__ = ["JACOBIAN_SHARE", "drift_corrected", "time_falls_to"]

JACOBIAN_SHARE = 0.5  # kappa: the share of a drift the transformer's output follows, per unit of the drift / t


def time_falls_to(t: float, forecast: TaylorSeerCalibrator) -> bool:
    """Whether the timesteps fell from the forecast's newest computed step to a positive `t`: the sampler time the
    correction models. Not so where a pipeline passes rising timesteps (Lumina2's ``1 - sigma``) or none (`t` is then
    the step index, which rises)."""
    return 0 < t < forecast.steps[0]


def _next_gap(t: float, earlier: list[float]) -> float:
    """The timestep move of the step at `t` (unknown until the next step arrives), extrapolated linearly from the
    moves of the steps at `earlier` (oldest first, at least one): exact on evenly spaced and on quadratic
    schedules."""
    gap = t - earlier[-1]
    return 2 * gap - (earlier[-1] - earlier[-2]) if len(earlier) > 1 else gap


@torch.compiler.disable
def drift_corrected(forecast: TaylorSeerCalibrator, order: int, output: torch.Tensor, t: float,
                    skipped: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """For a computed step at timestep `t` whose preceding steps at `skipped` (oldest first, after the forecast's
    newest computed step) were forecast by `forecast` at `order`: the output the sampler gets and the anchor the
    forecast keeps (both `output` where the timesteps do not fall to a positive `t`)."""
    t_b, v_b = forecast.steps[0], forecast.coefficients[0]
    if not skipped or not time_falls_to(t, forecast):
        return output, output
    span = t - t_b
    points = [*skipped, t]
    gaps = [after - before for before, after in zip(points, points[1:])]
    # Σ_j g_j forecast_j, from the Newton form: coefficient i times Σ_j g_j Π_{m<i} (t_j - t_m)
    terms = min(order + 1, len(forecast.coefficients))
    bases = [1.0] * len(skipped)
    forecast_sum = v_b * sum(gaps)
    for i in range(1, terms):
        bases = [b * (tj - forecast.steps[i - 1]) for b, tj in zip(bases, skipped)]
        forecast_sum = forecast_sum + forecast.coefficients[i] * sum(g * b for g, b in zip(gaps, bases))
    # Σ_j g_j interpolation_j = G v_b + slope W + curvature W2 (curvature through the older anchor, if any)
    weight = sum(g * (tj - t_b) for g, tj in zip(gaps, skipped))
    slope = (output - v_b) / span
    interpolated = v_b * sum(gaps) + slope * weight
    response = weight  # how Σ_j g_j interpolation_j moves per unit of the anchor's output, times span
    if len(forecast.steps) > 1:
        t_a = forecast.steps[1]
        curved = sum(g * (tj - t_b) * (tj - t) for g, tj in zip(gaps, skipped)) / (t - t_a)
        interpolated = interpolated + (slope - forecast.coefficients[1]) * curved
        response = response + curved
    # D = D0 + kappa D / t * response / span  ->  D = D0 / (1 - kappa response / (span t))
    drift = (forecast_sum - interpolated) / (1 - JACOBIAN_SHARE * response / (span * t))
    anchor = output - JACOBIAN_SHARE * drift / t
    gap = _next_gap(t, [t_b, *skipped])
    if gap >= 0 or t + gap <= 0:  # the last step, or a schedule ending: the drift no longer matters
        return output, anchor
    # under the clean-image model this step's update alone would leave t_next / t of the drift: cancel that
    return output - drift * ((t + gap) / t / gap), anchor
