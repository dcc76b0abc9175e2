"""Forecast Cache `spacing=timestep` (issue 22): the uncalibrated schedule spaced evenly in the sampler's own time,
decided online from the timesteps the pipeline passes. Decision maths on synthetic schedules, exactness when
nothing is skipped, per-branch decisions under true CFG, and the measured schedule on the trained tiny FLUX."""

import pytest
import torch

import cachedit
from cachedit import ForecastCacheConfig
from cachedit.adapters.patterns import HIDDEN_OUT
from cachedit.caches.forecast import computed_steps
from cachedit.harness.schedule_fit import time_spaced_steps
from tests.helpers.toy import TOY_ADAPTERS, ToyPipeline, steady_inputs


def shifted(num_steps: int, shift: float = 3.0) -> list[float]:
    """FLUX's time shift of the trailing sigmas 1, (N-1)/N, ..., 1/N: late steps cover more time than early ones."""
    return [shift * x / (1 + (shift - 1) * x) for x in (1 - i / num_steps for i in range(num_steps))]


# ------------------------------------------------------------------ decision maths


def test_even_timesteps_compute_exactly_the_steps_of_the_step_index_rule():
    for num_steps in range(2, 60):
        even = [1 - i / num_steps for i in range(num_steps)]
        for interval in (1, 1.5, 2, 2.5, 2.8, 3, 3.5, 4, 28 / 6, 5.6, 7, 9, 12):
            for warmup, last in ((1, False), (2, False), (3, False), (1, True)):
                by_step = computed_steps(ForecastCacheConfig(interval=interval, warmup=warmup, compute_last_step=last), num_steps)
                assert time_spaced_steps(even, warmup, interval, last) == sorted(by_step), (num_steps, interval, warmup)


def test_even_timesteps_that_end_at_zero_compute_the_steps_of_the_step_index_rule_too():
    # the tiny DiT's convention: timesteps 1000 ... 1 (sigma_min), N - 1 gaps of 999 / (N - 1): with the mean step
    # taken as t0 / N it would run 3.6 % fast at 28 steps and compute step 27 (as measured before the unit was the
    # first gap, clamped to [t0 / N, t0 / (N - 1)])
    for num_steps in (8, 20, 28, 50):
        ending = [1000 - 999 * i / (num_steps - 1) for i in range(num_steps)]
        for interval in (2, 2.5, 2.8, 3, 3.5, 4, 28 / 6, 5.6, 7, 9, 12):
            by_step = computed_steps(ForecastCacheConfig(interval=interval), num_steps)
            assert time_spaced_steps(ending, 1, interval) == sorted(by_step), (num_steps, interval)


def test_shifted_timesteps_put_the_computed_steps_where_the_sampler_moves_fast():
    # 8 steps at shift 3: sigmas 1, .955, .9, .833, .75, .643, .5, .3, i.e. positions 8 * (1 - sigma) of
    # 0, .36, .8, 1.33, 2, 2.86, 4, 5.6 mean steps: marks 2, 4, 6 fall on steps 4, 6 and 7 (5.6 is nearest 6)
    assert time_spaced_steps(shifted(8), warmup=1, interval=2) == [0, 4, 6, 7]
    assert sorted(computed_steps(ForecastCacheConfig(interval=2), 8)) == [0, 2, 4, 6]  # the index rule: early
    # at 28 steps the same rule is denser late, as the calibrated tiny-FLUX preset [0, 1, 6, 11, 17, 21, 25, 27] is;
    # each is the step nearest its mark 4, 8, ..., 28 (positions 4.38, 7.78, 11.57, 15.4, 20.59, 25.2; the last
    # two marks share step 27)
    assert time_spaced_steps(shifted(28), warmup=1, interval=4) == [0, 9, 15, 19, 22, 25, 27]


def test_the_schedule_transfers_across_step_counts_on_the_time_axis():
    # `interval` counts mean steps: interval N/7 computes 7 steps at any N, at the sigmas the 28-step call computes
    # (each within one of its steps), although the steps of one call are not a rescaling of the other's
    at_28 = shifted(28)
    steps_28 = time_spaced_steps(at_28, 1, 4)
    assert steps_28 == [0, 9, 15, 19, 22, 25, 27]
    for num_steps in (20, 50, 56):
        sigmas = shifted(num_steps)
        steps = time_spaced_steps(sigmas, 1, num_steps / 7)
        as_28 = [min(range(28), key=lambda i: abs(at_28[i] - sigmas[s])) for s in steps]
        assert len(steps) == 7 and max(abs(a - b) for a, b in zip(as_28, steps_28)) <= 1, (num_steps, as_28)


def test_without_a_usable_timestep_the_step_index_decides():
    assert time_spaced_steps([None] * 12, warmup=1, interval=4) == [0, 4, 8]
    assert time_spaced_steps([0.0] * 12, warmup=1, interval=4) == [0, 4, 8]  # t0 = 0: no unit
    assert time_spaced_steps([float(i) for i in range(1, 13)], warmup=1, interval=4) == [0, 4, 8]  # rising


def test_bad_spacing_is_rejected_with_the_key_and_the_allowed_values():
    with pytest.raises(ValueError) as error:
        ForecastCacheConfig(spacing="sigma")
    assert "spacing" in str(error.value) and "'sigma'" in str(error.value) and "timestep" in str(error.value)
    assert ForecastCacheConfig(spacing="timestep").strify() == "Forecast_F0B0_O1_W1I4T"


# ------------------------------------------------------------------ the engine


@pytest.mark.parametrize("target", ["output", "residual"])
def test_interval_1_is_bit_exact_on_either_axis_with_guidance_branches(target):
    inputs = steady_inputs(8, drift=0.1)
    reference = ToyPipeline()(inputs, ("cond", "uncond"), contexts=False)
    pipe = ToyPipeline()
    cachedit.enable_cache(pipe, ForecastCacheConfig(interval=1, spacing="timestep", target=target), adapters=TOY_ADAPTERS)
    outputs = pipe(inputs, ("cond", "uncond"), num_inference_steps=8, contexts=False)
    assert all(torch.equal(a, b) for a, b in zip(outputs, reference))
    assert cachedit.summary(pipe)["cached_steps"] == 0


def test_flux_with_true_cfg_is_bit_exact_when_nothing_is_skipped(replicas):
    from tests.test_algorithms import true_cfg_inputs

    replica = replicas("flux")
    call = true_cfg_inputs(replica)
    baseline = replica(**call)
    cachedit.enable_cache(replica.pipe, ForecastCacheConfig(interval=1, spacing="timestep"))
    try:
        output = replica(**call)
    finally:
        cachedit.disable_cache(replica.pipe)
    assert torch.equal(output, baseline)


@pytest.fixture(scope="module")
def tiny_flux():
    from cachedit.zoo.tiny_flux import load_tiny_flux

    pipe = load_tiny_flux()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _digits(pipe, steps=28):
    from cachedit.zoo.tiny_flux import digit_inputs

    call = digit_inputs(pipe, [3, 7], true_cfg_scale=1.5, num_inference_steps=steps,
                        generator=torch.Generator().manual_seed(0))
    return pipe(**call, output_type="np").images


def _decisions(pipe, config, steps=28):
    cachedit.enable_cache(pipe, config)
    try:
        images = _digits(pipe, steps)
        summary = cachedit.summary(pipe)
    finally:
        cachedit.disable_cache(pipe)
    return images, {branch: s["decisions"] for branch, s in summary["branches"].items()}


def _computed(decisions: str) -> list[int]:
    return [i for i, d in enumerate(decisions) if d == "C"]


def test_trained_flux_computes_the_time_spaced_steps_in_both_branches(tiny_flux):
    _, by_step = _decisions(tiny_flux, ForecastCacheConfig(interval=4, spacing="step"))
    _, by_time = _decisions(tiny_flux, ForecastCacheConfig(interval=4))  # the default: spacing=timestep
    assert {b: _computed(d) for b, d in by_step.items()} == {
        "transformer/cond": [0, 4, 8, 12, 16, 20, 24], "transformer/uncond": [0, 4, 8, 12, 16, 20, 24]}
    # the same 7 of 28 steps' work, moved late, where tiny FLUX's shifted sigmas travel fastest
    assert {b: _computed(d) for b, d in by_time.items()} == {
        "transformer/cond": [0, 6, 11, 15, 19, 22, 25], "transformer/uncond": [0, 6, 11, 15, 19, 22, 25]}


def test_per_transformer_override_sets_the_spacing(tiny_flux):
    config = ForecastCacheConfig(interval=4, per_transformer={"transformer": {"spacing": "step"}})
    _, decisions = _decisions(tiny_flux, config)
    assert _computed(decisions["transformer/cond"]) == [0, 4, 8, 12, 16, 20, 24]


class TwoLoopPipeline:
    """One call that runs two sampling loops over the same shifted timesteps (a chunked or staged pipeline)."""

    def __init__(self) -> None:
        from tests.test_forecast import TimeLinearTransformer

        self.transformer = TimeLinearTransformer()

    @torch.no_grad()
    def __call__(self, num_inference_steps=8):
        x = torch.ones(1, 4, 8)
        return [self.transformer(x, timestep=torch.tensor([t])) for _ in range(2) for t in shifted(num_inference_steps)]


def test_each_sampling_loop_of_a_call_restarts_the_time_axis():
    adapters = [cachedit.BlockAdapter(block_lists=(("transformer_blocks", HIDDEN_OUT),))]
    pipe = TwoLoopPipeline()
    cachedit.enable_cache(pipe, ForecastCacheConfig(interval=2), adapters=adapters)
    pipe()
    decisions = cachedit.summary(pipe)["branches"]["transformer/default"]["decisions"]
    assert decisions == "CcccCcCC" * 2  # steps 0, 4, 6, 7 of each loop, as `time_spaced_steps` gives


class OneLoopPipeline(TwoLoopPipeline):
    """One sampling loop over timesteps shifted by `shift`."""

    @torch.no_grad()
    def __call__(self, num_inference_steps=8, shift=3.0):
        x = torch.ones(1, 4, 8)
        return [self.transformer(x, timestep=torch.tensor([t])) for t in shifted(num_inference_steps, shift)]


@pytest.mark.parametrize("steps, shift, interval, warmup, expected", [
    (4, 1.5, 1.5, 3, "CCCC"),  # the time rule schedules every step where the index rule would skip one
    (3, 1.5, 1.2, 1, "CcC"),  # the index rule would compute every step where the time rule skips one
])
def test_the_summary_names_why_a_time_spaced_call_skipped_nothing_and_only_then(steps, shift, interval, warmup, expected):
    adapters = [cachedit.BlockAdapter(block_lists=(("transformer_blocks", HIDDEN_OUT),))]
    assert time_spaced_steps(shifted(steps, shift), warmup, interval) == [i for i, d in enumerate(expected) if d == "C"]
    index_rule = computed_steps(ForecastCacheConfig(interval=interval, warmup=warmup, spacing="step"), steps)
    assert (len(index_rule) == steps) == ("c" in expected)  # the two rules disagree on whether the call can skip
    pipe = OneLoopPipeline()
    cachedit.enable_cache(pipe, ForecastCacheConfig(interval=interval, warmup=warmup), adapters=adapters)
    pipe(steps, shift)
    summary = cachedit.summary(pipe)
    assert summary["branches"]["transformer/default"]["decisions"] == expected
    if "c" in expected:
        assert summary["cannot_skip"] == {}
    else:
        assert summary["cannot_skip"] == {"transformer": (
            f"`spacing=timestep` with `interval={interval:g}` scheduled every one of this call's {steps} steps: each "
            f"moved the sampler's time by about `interval` mean steps or more")}
        assert "NOTHING WAS CACHED: transformer: `spacing=timestep`" in cachedit.format_summary(summary)
