"""Forecast Cache (issue 10): schedule maths, exactness when nothing is skipped, forecasts on the timestep axis,
measured skips and fidelity on the trained model (calibration: tests/test_calibrate.py)."""

import pytest
import torch
from diffusers.models.cache_utils import CacheMixin

import cachedit
from cachedit import ForecastCacheConfig
from cachedit.adapters.patterns import HIDDEN_OUT
from cachedit.caches.forecast import computed_steps, first_difference_step, why_nothing_skips
from cachedit.harness.metrics import psnr
from cachedit.zoo.tiny_dit import load_tiny_dit
from tests.helpers.toy import TOY_ADAPTERS, ToyPipeline, steady_inputs

# ------------------------------------------------------------------ schedule maths


def test_default_schedule_spreads_the_computed_steps_evenly_from_step_0():
    assert sorted(computed_steps(ForecastCacheConfig(), 28)) == [0, 4, 8, 12, 16, 20, 24]  # no warmup, no last step
    assert sorted(computed_steps(ForecastCacheConfig(interval=28 / 6), 28)) == [0, 5, 9, 14, 19, 23]  # 4.67, 9.33, ...
    assert sorted(computed_steps(ForecastCacheConfig(interval=2.5), 10)) == [0, 3, 5, 8]  # 2.5 and 7.5 round up
    assert computed_steps(ForecastCacheConfig(interval=1), 10) == frozenset(range(10))


def test_interval_counts_from_the_last_warmup_step():
    assert sorted(computed_steps(ForecastCacheConfig(warmup=3, interval=4), 28)) == [0, 1, 2, 6, 10, 14, 18, 22, 26]
    assert sorted(computed_steps(ForecastCacheConfig(warmup=3, interval=4, compute_last_step=True), 28))[-1] == 27


def test_fitted_schedule_keeps_its_instants_at_other_step_counts():
    config = ForecastCacheConfig(compute_steps=[0, 4, 9, 13, 19, 23, 26], reference_steps=28)
    assert sorted(computed_steps(config, 28)) == [0, 4, 9, 13, 19, 23, 26]
    # step s covers the share [s, s + 1) / 28 of the call; at N steps the step covering its middle computes
    assert sorted(computed_steps(config, 56)) == [0, 9, 19, 27, 39, 47, 53]  # (s + 1/2) * 2, step 0 stays
    assert sorted(computed_steps(config, 14)) == [0, 2, 4, 6, 9, 11, 13]  # 4.5 / 2 -> 2, 26.5 / 2 -> 13
    assert sorted(computed_steps(config, 20)) == [0, 3, 6, 9, 13, 16, 18]  # 26 -> 18, not the last step
    assert sorted(computed_steps(config, 50)) == [0, 8, 16, 24, 34, 41, 47]
    assert why_nothing_skips(config, 20) is None
    assert sorted(computed_steps(config, 6)) == [0, 2, 4, 5] and why_nothing_skips(config, 6) is None
    assert computed_steps(config, 7) == frozenset(range(7)) and "cannot skip at 7 steps" in why_nothing_skips(config, 7)


def test_the_steps_that_enter_as_values_only_are_placed_with_a_fitted_schedule():
    fitted = ForecastCacheConfig(compute_steps=[0, 1, 12, 19, 25], reference_steps=28)
    # steps 0 and 1 of 28 enter as values only; at 50 steps step 1 computes as step 2, which must stay a value
    assert sorted(computed_steps(fitted, 50))[:2] == [0, 2] and first_difference_step(fitted, 50) == 3
    assert [first_difference_step(fitted, n) for n in (28, 20, 100)] == [2, 2, 6]
    assert first_difference_step(ForecastCacheConfig(interval=4), 50) == 2  # an uncalibrated schedule: the index


def test_a_step_placed_from_a_values_only_step_starts_the_forecast_afresh():
    # 9 steps of a schedule fitted at 5: [0, 1, 3] computes [0, 2, 6]; step 2 is where step 1 lies, so it enters as a
    # value (the skipped steps 3-5 return its output) and the line starts at step 6. On an output linear in t a line
    # through steps 0 and 2 would have been exact at step 3: the difference is visible
    reference = UnevenTimePipeline()()
    pipe = UnevenTimePipeline()
    config = ForecastCacheConfig(compute_steps=[0, 1, 3], reference_steps=5, target="output")
    cachedit.enable_cache(pipe, config, adapters=[cachedit.BlockAdapter(block_lists=(("transformer_blocks", HIDDEN_OUT),))])
    outputs = pipe()
    assert cachedit.summary(pipe)["branches"]["transformer/default"]["decisions"] == "CcCcccCcc"
    assert all(torch.equal(outputs[i], outputs[2]) for i in (3, 4, 5)) and not torch.allclose(outputs[3], reference[3])
    assert max(float((outputs[i] - reference[i]).abs().max()) for i in (6, 7, 8)) < 1e-5


def test_a_schedule_that_cannot_skip_says_so_by_name_in_the_summary():
    pipe = ToyPipeline()
    cachedit.enable_cache(pipe, ForecastCacheConfig(compute_steps=[0, 4, 9, 13, 19, 23, 26]), adapters=TOY_ADAPTERS)
    pipe(steady_inputs(5, drift=0.1), num_inference_steps=5)
    line = str(cachedit.summary(pipe))
    assert "cached 0/5 steps" in line
    assert ("NOTHING WAS CACHED: transformer: `compute_steps` (7 of 28 steps, placed by time share) land on every one "
            "of this call's 5 steps: the schedule cannot skip at 5 steps") in line
    assert "threshold" not in line
    pipe(steady_inputs(12, drift=0.1), num_inference_steps=12)  # a longer call of the same pipeline can skip
    assert cachedit.summary(pipe)["cannot_skip"] == {} and cachedit.summary(pipe)["cached_steps"] == 5


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(interval=0), "`interval` must be >= 1"),
        (dict(interval=0.5), "`interval` must be >= 1"),
        (dict(forecast_axis="sigma"), "`forecast_axis` must be one of ['step', 'timestep'] or None, got 'sigma'"),
        (dict(order=4), "`order` must be in [0, 3]"),
        (dict(warmup=0), "`warmup` must be >= 1"),
        (dict(compute_steps=[1, 5]), "`compute_steps` must include step 0"),
        (dict(compute_steps=[0, 28]), "`compute_steps` [28] lie outside [0, 27]"),
    ],
)
def test_bad_values_are_rejected_with_the_key(kwargs, message):
    with pytest.raises(ValueError) as error:
        ForecastCacheConfig(**kwargs)
    assert message in str(error.value)


def test_taylorseer_group_is_refused_beside_the_forecast_cache():
    with pytest.raises(ValueError, match="has its own `cache.order`"):
        cachedit.enable_cache(ToyPipeline(), ForecastCacheConfig(), adapters=TOY_ADAPTERS, taylorseer=cachedit.TaylorSeerConfig(order=1))


# ------------------------------------------------------------------ exactness and counted work on the toy stack


def test_nothing_skipped_is_bit_exact_with_guidance_branches():
    inputs = steady_inputs(8, drift=0.1)
    reference = ToyPipeline()(inputs, ("cond", "uncond"))
    pipe = ToyPipeline()
    cachedit.enable_cache(pipe, ForecastCacheConfig(interval=1), adapters=TOY_ADAPTERS)
    outputs = pipe(inputs, ("cond", "uncond"), num_inference_steps=8)
    assert all(torch.equal(a, b) for a, b in zip(outputs, reference))
    assert cachedit.summary(pipe)["cached_steps"] == 0


def test_skipped_steps_run_no_block_at_all():
    pipe = ToyPipeline()
    cachedit.enable_cache(pipe, ForecastCacheConfig(warmup=2, interval=3), adapters=TOY_ADAPTERS)
    pipe(steady_inputs(11, drift=0.1), num_inference_steps=11)
    summary = cachedit.summary(pipe)
    branch = summary["branches"]["transformer/cond"]
    assert branch["decisions"] == "CCccCccCccC"  # steps 0, 1, then every 3rd from 1: 4, 7, 10 compute
    assert summary["cached_steps"] == 6
    assert summary["skipped_share"] == pytest.approx(6 / 11)  # every block of a skipped step


def test_head_blocks_still_run_on_skipped_steps():
    pipe = ToyPipeline()
    cachedit.enable_cache(pipe, ForecastCacheConfig(Fn=1, Bn=1, warmup=2, interval=3, target="residual"), adapters=TOY_ADAPTERS)
    pipe(steady_inputs(11, drift=0.1), num_inference_steps=11)
    summary = cachedit.summary(pipe)
    assert summary["cached_steps"] == 6
    assert summary["skipped_share"] == pytest.approx(6 * 4 / (11 * 6))  # 4 of 6 blocks skipped on 6 steps


# ------------------------------------------------------------------ forecasts on the sampler's own time axis


class TimeLinearBlock(torch.nn.Module):
    """Adds a term linear in the timestep (or a power of it): the stack's residual is exactly that in t."""

    def __init__(self, seed: int, power: int = 1) -> None:
        super().__init__()
        self.direction = torch.nn.Parameter(torch.randn(8, generator=torch.Generator().manual_seed(seed)))
        self.power = power

    def forward(self, hidden_states, temb):
        return hidden_states + temb[:, None, None] ** self.power * self.direction


class TimeLinearTransformer(torch.nn.Module, CacheMixin):
    def __init__(self, power: int = 1) -> None:
        super().__init__()
        self.transformer_blocks = torch.nn.ModuleList(TimeLinearBlock(i, power) for i in range(3))

    def forward(self, hidden_states, timestep):
        for block in self.transformer_blocks:
            hidden_states = block(hidden_states, temb=timestep)
        return hidden_states


class UnevenTimePipeline:
    TIMESTEPS = [1.0, 0.97, 0.9, 0.8, 0.62, 0.45, 0.3, 0.12, 0.05]  # uneven, as under FLUX's shift

    def __init__(self, power: int = 1) -> None:
        self.transformer = TimeLinearTransformer(power)

    @torch.no_grad()
    def __call__(self, num_inference_steps=len(TIMESTEPS)):
        x = torch.ones(1, 4, 8)
        return [self.transformer(x, timestep=torch.tensor([t])) for t in self.TIMESTEPS]


def test_order_one_forecast_follows_uneven_timesteps_exactly():
    reference = UnevenTimePipeline()()
    adapters = [cachedit.BlockAdapter(block_lists=(("transformer_blocks", HIDDEN_OUT),))]
    pipe = UnevenTimePipeline()
    cachedit.enable_cache(pipe, ForecastCacheConfig(order=1, warmup=3, interval=3, forecast_axis="timestep", target="residual"), adapters=adapters)
    outputs = pipe()
    assert cachedit.summary(pipe)["cached_steps"] == 4
    assert max(float((a - b).abs().max()) for a, b in zip(outputs, reference)) < 1e-5
    cachedit.disable_cache(pipe)
    cachedit.enable_cache(pipe, ForecastCacheConfig(order=1, warmup=3, interval=3, target="residual"), adapters=adapters)
    by_index = pipe()  # the residual's default axis, the step index: a line in t is no line in the index when t is uneven
    assert max(float((a - b).abs().max()) for a, b in zip(by_index, reference)) > 0.01
    cachedit.disable_cache(pipe)
    cachedit.enable_cache(pipe, ForecastCacheConfig(order=0, warmup=3, interval=3, forecast_axis="timestep", target="residual"), adapters=adapters)
    reused = pipe()  # plain reuse of the last residual is off on every skipped step
    assert max(float((a - b).abs().max()) for a, b in zip(reused, reference)) > 0.05


def test_tolerance_skips_where_the_estimated_error_is_small_and_computes_where_it_is_not():
    adapters = [cachedit.BlockAdapter(block_lists=(("transformer_blocks", HIDDEN_OUT),))]
    # steps 0 and 1 enter the forecast as values only (`differences_from_step`), so the estimate of an order-1
    # forecast exists once steps 1, 2, 3 computed: warmup 4, and the schedule alone would skip every later step
    config = ForecastCacheConfig(order=1, warmup=4, interval=100, tolerance=1e-3, forecast_axis="timestep", target="residual")
    decisions = {}
    for power in (1, 2):  # a residual linear in t: the estimate is 0; quadratic: every skip would err by > 1e-3
        reference = UnevenTimePipeline(power)()
        pipe = UnevenTimePipeline(power)
        cachedit.enable_cache(pipe, config, adapters=adapters)
        outputs = pipe()
        decisions[power] = cachedit.summary(pipe)["branches"]["transformer/default"]["decisions"]
        assert max(float((a - b).abs().max()) for a, b in zip(outputs, reference)) < 1e-5
    assert decisions == {1: "CCCCccccc", 2: "CCCCCCCCC"}


# ------------------------------------------------------------------ the trained model


@pytest.fixture(scope="module")
def tiny_dit():
    pipe = load_tiny_dit()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _digits(pipe, steps=28):
    generator = torch.Generator().manual_seed(0)
    return pipe(list(range(10)) * 2, num_inference_steps=steps, generator=generator, output_type="np").images


def test_trained_model_skips_the_measured_steps_and_beats_fewer_steps(tiny_dit):
    reference = _digits(tiny_dit)
    cachedit.enable_cache(tiny_dit, ForecastCacheConfig())  # the default: no calibration
    try:
        cached = _digits(tiny_dit)
        summary = cachedit.summary(tiny_dit)
    finally:
        cachedit.disable_cache(tiny_dit)
    assert summary["branches"]["transformer/cond"]["decisions"] == "Cccc" * 7  # computes 0, 4, ..., 24: 7 of 28
    fewer = _digits(tiny_dit, steps=7)  # the same work without a cache
    assert psnr(reference, cached) > psnr(reference, fewer) + 8


# ------------------------------------------------------------------ FLUX: two block lists, two streams, true CFG


def _flux_true_cfg(replica):
    from tests.test_algorithms import true_cfg_inputs

    return true_cfg_inputs(replica)


def test_flux_with_true_cfg_is_bit_exact_when_nothing_is_skipped(replicas):
    replica = replicas("flux")
    call = _flux_true_cfg(replica)
    baseline = replica(**call)
    cachedit.enable_cache(replica.pipe, ForecastCacheConfig(interval=1))
    try:
        output = replica(**call)
    finally:
        cachedit.disable_cache(replica.pipe)
    assert torch.equal(output, baseline)


def test_flux_forecasts_both_lists_and_streams_per_branch(replicas):
    replica = replicas("flux")  # 8 steps: warmup 3, interval 3 computes 0, 1, 2, 5
    cachedit.enable_cache(replica.pipe, ForecastCacheConfig(warmup=3, interval=3, per_transformer={"transformer": {"order": 2}}))
    try:
        output = replica(**_flux_true_cfg(replica))
        summary = cachedit.summary(replica.pipe)
    finally:
        cachedit.disable_cache(replica.pipe)
    assert {b: s["decisions"] for b, s in summary["branches"].items()} == {
        "transformer/cond": "CCCccCcc", "transformer/uncond": "CCCccCcc"}
    assert summary["skipped_share"] == pytest.approx(4 / 8)  # every block of both lists on 4 of 8 steps
    assert torch.isfinite(output).all()
