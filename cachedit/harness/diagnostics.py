"""Why a calibrator helps on one model and hurts on another: how well TaylorSeer forecasts the middle residual.

Runs the pipeline uncached, records the residual of the middle span (``Fn`` .. ``L - Bn``) at every step, then
replays the record: at each step t it forecasts ``r_t`` from computed steps ``gap`` apart that end ``gap`` steps
before t (as a cached step would), for each order, and reports the mean relative L1 error. Order 0 is plain reuse.
"""

from __future__ import annotations

import statistics

import torch

from ..adapters import adapters_for
from ..adapters.patterns import HIDDEN, StreamReader
from ..hooks import relative_l1
from ..hooks.taylorseer import TaylorSeerCalibrator

__all__ = [
    "record_middle_residuals", "forecast_errors"
]


def record_middle_residuals(pipe, inputs: dict, seed: int, Fn: int, Bn: int) -> list[torch.Tensor]:
    """The hidden-state residual of blocks ``[Fn, L - Bn)`` at every transformer call of one uncached run."""
    blocks = adapters_for(pipe)[0].blocks(pipe.transformer)
    (first, first_pattern), (last, last_pattern) = blocks[Fn], blocks[len(blocks) - Bn - 1]
    read_input = StreamReader(first, first_pattern)
    entering, residuals = [], []

    def on_enter(module, args, kwargs):
        entering.append(read_input(args, kwargs)[HIDDEN])

    def on_exit(module, args, kwargs, output):
        residuals.append(last_pattern.unpack(output)[HIDDEN] - entering.pop())

    hooks = [
        first.register_forward_pre_hook(on_enter, with_kwargs=True),
        last.register_forward_hook(on_exit, with_kwargs=True),
    ]
    try:
        pipe(**inputs, generator=torch.Generator().manual_seed(seed))
    finally:
        for hook in hooks:
            hook.remove()
    return residuals


def forecast_errors(residuals: list[torch.Tensor], orders=(0, 1, 2), gap: int = 2) -> dict[int, float]:
    """Mean relative L1 error of forecasting each residual `gap` steps past the last of ``order + 1`` points."""
    errors = {order: [] for order in orders}
    for t in range(gap * (max(orders) + 1), len(residuals)):
        for order in orders:
            state = TaylorSeerCalibrator(order)
            for step in range(t - gap * (order + 1), t, gap):
                state.update(step, residuals[step].float())
            errors[order].append(relative_l1(state.predict(t), residuals[t].float()))
    return {order: statistics.fmean(values) for order, values in errors.items()}
