"""TaylorSeer forecasting of a skipped span (https://arxiv.org/abs/2503.06923), as pure tensor maths.

From the features F (residual or hidden states) of the last ``order + 1`` computed steps, forecast F at a later
step. We use Newton's divided differences over the actual computed step indices: at order 1 this is exactly
DESIGN §3's ``F + ΔF · k / N`` (k steps after the last computed step, N the gap between the last two); at
higher orders it replaces the truncated Taylor series ``Σ Δⁱ F kⁱ / (i! Nⁱ)`` with the interpolating polynomial,
which is exact for features that are polynomials of degree <= order (the Taylor form is not, beyond order 1)
and stays exact when the computed steps are unevenly spaced, as they are under caching.

Memory: ``order + 1`` tensors per stream (the divided-difference diagonal), like TaylorSeer's derivatives.
"""

from __future__ import annotations

import torch

__all__ = [
    "TaylorSeerCalibrator"
]


class TaylorSeerCalibrator:
    """The `Calibrator` of one feature stream of one guidance branch; `reset()` restores what `__init__` set."""

    def __init__(self, order: int) -> None:
        self.order = order
        self.reset()

    def reset(self) -> None:
        self.steps: list[float] = []  # computed steps (or their timesteps), newest first
        self.coefficients: list[torch.Tensor] = []  # f[t0], f[t0,t1], f[t0,t1,t2], ...
        self._ratios: dict[int, float] = {}  # mean|f[t0..tk]| / mean|f[t0]| per k, read once per update

    @torch.compiler.disable
    def update(self, step: float, feature: torch.Tensor, value_only: bool = False) -> None:
        """Add the feature computed at `step` (a newer step than the previous update); `value_only`: it enters as a
        value only, no difference with older ones (a step before `TaylorSeerConfig.differences_from_step`)."""
        if value_only or (self.steps and feature.shape != self.coefficients[0].shape):
            self.reset()  # or a resolution or batch change: older features describe another tensor
        coefficients = [feature]
        for j, older in enumerate(self.coefficients[: self.order]):
            coefficients.append((coefficients[j] - older) / (step - self.steps[j]))
        self.coefficients = coefficients
        self.steps = [step, *self.steps][: self.order + 1]
        self._ratios = {}

    @torch.compiler.disable
    def predict(self, step: float, order: int | None = None) -> torch.Tensor:
        """The forecast at `step` of the given order (at most the state's; the newest ``order + 1`` steps); with a
        single computed step it is that step's feature unchanged."""
        if not self.coefficients:
            raise RuntimeError("TaylorSeer has no computed step to forecast from.")
        terms = len(self.coefficients) if order is None else min(order + 1, len(self.coefficients))
        forecast, basis = self.coefficients[0], 1.0
        for j in range(1, terms):
            basis = basis * (step - self.steps[j - 1])
            forecast = forecast + self.coefficients[j] * basis
        return forecast

    @torch.compiler.disable
    def error_estimate(self, step: float, order: int) -> float | None:
        """The relative error of the order-`order` forecast at `step`, estimated by the next Newton term:
        ``mean|f[t0..t(order+1)]| * |(t - t0)...(t - t_order)| / mean|f[t0]|`` (the embedded error estimate of an
        adaptive ODE solver). None until ``order + 2`` steps were computed (and the state keeps them)."""
        k = order + 1
        if len(self.coefficients) <= k:
            return None
        if k not in self._ratios:  # one device-to-host read per computed step
            scale = self.coefficients[0].float().abs().mean()
            self._ratios[k] = float(self.coefficients[k].float().abs().mean() / scale.clamp_min(1e-12))
        basis = 1.0
        for j in range(k):
            basis *= step - self.steps[j]
        return self._ratios[k] * abs(basis)
