"""Drift correction of the Forecast Cache (issue 22, sixth stop): the maths on tiny tensors against an independent
interpolation, nothing changed where nothing was skipped, when it is on (the pipeline's scheduler) and the refusals,
and what it measurably does on the trained tiny DiT and tiny FLUX."""

from copy import deepcopy

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler

import cachedit
from cachedit import ForecastCacheConfig
from cachedit.config_types import ConfigTypeError
from cachedit.harness.metrics import psnr
from cachedit.hooks.drift import JACOBIAN_SHARE, drift_corrected
from cachedit.hooks.taylorseer import TaylorSeerCalibrator
from cachedit.stats import format_summary
from cachedit.zoo.tiny_dit import load_tiny_dit
from cachedit.zoo.tiny_flux import digit_inputs, load_tiny_flux


def _forecast(points: dict[float, torch.Tensor], order: int = 1) -> TaylorSeerCalibrator:
    forecast = TaylorSeerCalibrator(order)
    for t, value in points.items():  # oldest first, falling timesteps
        forecast.update(t, value)
    return forecast


def _curve(t: float) -> torch.Tensor:
    """A velocity quadratic in the timestep, per element."""
    return torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64) * t * t + torch.tensor([0.3, 0.1, -1.0], dtype=torch.float64) * t


def test_nothing_changes_where_the_forecast_was_exact_or_nothing_was_skipped():
    line = {t: torch.tensor([2.0, -1.0], dtype=torch.float64) * t + 0.5 for t in (1.0, 0.9, 0.8, 0.5)}
    forecast = _forecast({1.0: line[1.0], 0.9: line[0.9]})
    sampled, anchor = drift_corrected(forecast, 1, line[0.5], 0.5, [0.8, 0.7, 0.6])
    assert torch.allclose(sampled, line[0.5], atol=1e-12) and torch.allclose(anchor, line[0.5], atol=1e-12)
    curve = _forecast({1.0: _curve(1.0), 0.9: _curve(0.9)})
    for skipped, t in (([], 0.8), ([0.85], 0.95)):  # nothing skipped; a rising timestep (no time axis to correct on)
        sampled, anchor = drift_corrected(curve, 1, _curve(t), t, skipped)
        assert sampled is anchor and torch.equal(sampled, _curve(t))


def test_the_drift_solves_its_own_interpolation_and_moves_the_sampler_back():
    # Anchors at 1.0 and 0.9 (order 1), steps 0.8, 0.7, 0.6 forecast, step 0.5 computed. The drift D is defined by
    # D = Σ_j g_j (forecast_j - p(t_j)), with p the parabola through (1.0, v), (0.9, v) and (0.5, anchor), and the
    # anchor the output less JACOBIAN_SHARE * D / t: checked here with numpy's own fit, not the module's algebra.
    times, t, skipped = [1.0, 0.9], 0.5, [0.8, 0.7, 0.6]
    forecast = _forecast({s: _curve(s) for s in times})
    output = _curve(t) + torch.tensor([0.05, -0.02, 0.01], dtype=torch.float64)  # computed on a drifted latent
    sampled, anchor = drift_corrected(forecast, 1, output, t, skipped)
    points = [*skipped, t]
    gaps = np.diff(points)
    drift = np.zeros(3)
    for e in range(3):
        parabola = np.polyfit([*times, t], [float(_curve(s)[e]) for s in times] + [float(anchor[e])], 2)
        for g, tj in zip(gaps, skipped):
            drift[e] += g * (float(forecast.predict(tj, 1)[e]) - np.polyval(parabola, tj))
    assert np.allclose(anchor.numpy(), output.numpy() - JACOBIAN_SHARE * drift / t, atol=1e-12)
    assert np.abs(drift).min() > 1e-3  # a real correction: the linear forecast misses the curve
    # the next step moves by -0.1 (the earlier gaps extrapolated): what is left of the drift after it, t_next / t, goes
    gap = -0.1
    assert np.allclose(sampled.numpy(), output.numpy() - drift * (t + gap) / t / gap, atol=1e-12)
    # at the last step (the next move would pass t = 0) the drift no longer matters: the output goes as it is
    sampled, _ = drift_corrected(_forecast({s: _curve(s) for s in (0.45, 0.35)}), 1, _curve(0.05), 0.05, [0.25, 0.15])
    assert torch.equal(sampled, _curve(0.05))


def test_on_by_default_only_where_the_scheduler_takes_euler_steps():
    pipe = load_tiny_dit()
    cachedit.enable_cache(pipe, ForecastCacheConfig())
    assert cachedit.summary(pipe)["settings"]["cache"]["drift_correction"] is True
    cachedit.disable_cache(pipe)
    for config in (ForecastCacheConfig(target="residual"), ForecastCacheConfig(forecast_axis="step")):
        cachedit.enable_cache(pipe, config)
        assert cachedit.summary(pipe)["settings"]["cache"]["drift_correction"] is False
        cachedit.disable_cache(pipe)
    pipe.scheduler = DDIMScheduler()  # another step than the one it models
    cachedit.enable_cache(pipe, ForecastCacheConfig())
    assert cachedit.summary(pipe)["settings"]["cache"]["drift_correction"] is False
    cachedit.disable_cache(pipe)
    cachedit.enable_cache(pipe, ForecastCacheConfig(drift_correction=True))  # asked for: kept
    assert cachedit.summary(pipe)["settings"]["cache"]["drift_correction"] is True



def test_a_scheduler_swapped_after_enable_is_refused_where_it_changes_the_decision_and_a_copy_decides_for_itself():
    pipe, digits = _tiny_dit_digits()
    reference, _ = _cached(pipe, ForecastCacheConfig(warmup=2, interval=4), digits)
    euler = pipe.scheduler
    config = ForecastCacheConfig(warmup=2, interval=4)
    cachedit.enable_cache(pipe, config)
    config.interval = 2  # the caller's object, edited after enabling: neither used nor taken for a change
    pipe.scheduler = type(euler).from_config(euler.config)  # the same step: the decision holds
    assert np.array_equal(digits(), reference)
    pipe.scheduler = type(euler).from_config(euler.config, stochastic_sampling=True)  # not the step it models
    last = dict(cachedit.summary(pipe))
    with pytest.raises(ValueError, match=r"its scheduler is now `FlowMatchEulerDiscreteScheduler`.*"
                                         r"`drift_correction` True -> False\. Call `cachedit.enable_cache` again"):
        digits()
    assert dict(cachedit.summary(pipe)) == last  # refused before the call started: the last call's summary stands
    copy = deepcopy(pipe)  # decides from its own scheduler, as `enable_cache` would
    assert cachedit.summary(copy)["settings"]["cache"]["drift_correction"] is False
    cachedit.disable_cache(pipe)
    explicit = ForecastCacheConfig(warmup=2, interval=4, drift_correction=True)  # asked for: kept
    cachedit.enable_cache(pipe, explicit)
    explicit.interval = 2  # edited after enabling: not taken for a change of the pipeline either
    digits()  # under the stochastic scheduler: no decision was the pipeline's, so nothing is refused
    assert cachedit.summary(pipe)["drift_corrected_steps"] > 0
    pipe.scheduler = euler
    assert np.array_equal(digits(), reference)
    cachedit.disable_cache(pipe)

def test_drift_correction_is_refused_where_it_cannot_work():
    with pytest.raises(ValueError, match=r"`drift_correction=true` .* `target=residual` does not forecast: set `target=output`"):
        ForecastCacheConfig(target="residual", drift_correction=True)
    with pytest.raises(ValueError, match=r"`drift_correction=true` .* `forecast_axis=step` .* leave `forecast_axis` unset"):
        ForecastCacheConfig(forecast_axis="step", drift_correction=True)
    with pytest.raises(ConfigTypeError, match="`drift_correction` must be a bool or None, got 'yes'"):
        ForecastCacheConfig(drift_correction="yes")


def _cached(pipe, config, generate):
    """`generate()`'s images with `config` enabled on `pipe` (None: uncached) and the cache's summary."""
    if config is None:
        return generate(), None
    cachedit.enable_cache(pipe, config)
    try:
        return generate(), cachedit.summary(pipe)
    finally:
        cachedit.disable_cache(pipe)


def _tiny_dit_digits():
    """The trained tiny DiT and a call drawing digits 0-9 with it (seed 0, 28 steps, guidance 1.5)."""
    pipe = load_tiny_dit()
    pipe.set_progress_bar_config(disable=True)

    def digits():
        generator = torch.Generator().manual_seed(0)
        return pipe(list(range(10)), generator=generator, num_inference_steps=28, guidance_scale=1.5, output_type="np").images
    return pipe, digits


def test_on_the_trained_tiny_dit_it_is_exact_without_skips_and_gains_where_it_skips():
    pipe, digits = _tiny_dit_digits()
    reference, _ = _cached(pipe, None, digits)
    every, _ = _cached(pipe, ForecastCacheConfig(interval=1, drift_correction=True), digits)
    assert np.array_equal(every, reference)
    scores, skipped = {}, {}
    for on in (True, False):
        images, summary = _cached(pipe, ForecastCacheConfig(warmup=2, interval=4, drift_correction=on), digits)
        scores[on], skipped[on] = psnr(reference, images), summary["cached_steps"]
    assert skipped[True] == skipped[False] == 20  # the schedule is the same: 0, 1, then every 4th of the time
    assert scores[True] > scores[False] + 2.0, scores  # measured 50.4 dB against 46.2 (README, Benchmarks)


def test_on_tiny_flux_each_guidance_branch_corrects_its_own_drift():
    pipe = load_tiny_flux()
    pipe.set_progress_bar_config(disable=True)
    inputs = digit_inputs(pipe, list(range(10)), true_cfg_scale=4.0, num_inference_steps=28)
    def digits():
        return pipe(**inputs, generator=torch.Generator().manual_seed(0), output_type="np").images
    reference, _ = _cached(pipe, None, digits)
    scores = {}
    for on in (True, False):
        images, summary = _cached(pipe, ForecastCacheConfig(warmup=2, interval=3.5, drift_correction=on), digits)
        assert set(summary["branches"]) == {"transformer/cond", "transformer/uncond"}
        scores[on] = psnr(reference, images)
    assert scores[True] > scores[False] + 1.0, scores


def test_the_summary_counts_the_corrected_steps_and_says_when_the_correction_could_not_apply():
    pipe, digits = _tiny_dit_digits()
    schedule = [0, 1, 5, 10, 14, 19, 23]
    _, summary = _cached(pipe, ForecastCacheConfig(compute_steps=schedule), digits)
    # every computed step after a skipped one, past the values-only steps 0 and 1
    assert summary["branches"]["transformer/cond"]["drift_corrected_steps"] == [5, 10, 14, 19, 23]
    assert summary["drift_corrected_steps"] == 5 and summary["drift_not_corrected"] == {}
    assert format_summary(summary).endswith("drift corrected at 5 computed steps")
    _, summary = _cached(pipe, ForecastCacheConfig(compute_steps=schedule, drift_correction=False), digits)
    assert summary["drift_corrected_steps"] == 0 and summary["drift_not_corrected"] == {}
    # a pipeline passing rising timesteps (as Lumina2 passes 1 - sigma): on, but nothing to correct along
    rising = pipe.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: (args, {**kwargs, "timestep": 1000 - kwargs["timestep"]}), with_kwargs=True)
    try:
        _, summary = _cached(pipe, ForecastCacheConfig(compute_steps=schedule, drift_correction=True), digits)
    finally:
        rising.remove()
    assert summary["cached_steps"] == 21 and summary["drift_corrected_steps"] == 0
    assert "do not fall toward 0" in summary["drift_not_corrected"]["transformer"]
    assert "DRIFT CORRECTION DID NOT APPLY (transformer): the timesteps this pipeline passes" in format_summary(summary)
