"""Forecast Cache `target=output` (issue 22): a skipped step forecasts the transformer's output itself, polynomial in
the timestep, instead of the span's residual. Exactness when nothing is skipped, the forecast's maths on a
transformer whose output is a line in t, the refusals, and the measured skips on the trained tiny DiT (exactness when
nothing is skipped, with guidance branches: tests/test_forecast_spacing.py, for both targets)."""

import numpy as np
import pytest
import torch

import cachedit
from cachedit import BlockAdapter, ForecastCacheConfig
from cachedit.adapters.patterns import ENCODER_HIDDEN_OUT, HIDDEN_OUT
from cachedit.harness.metrics import psnr
from tests.test_forecast import UnevenTimePipeline

LINE = [BlockAdapter(block_lists=(("transformer_blocks", HIDDEN_OUT),))]


def _max_error(outputs, reference) -> float:
    return max(float((a - b).abs().max()) for a, b in zip(outputs, reference))


def test_an_output_linear_in_the_timestep_is_forecast_exactly_on_uneven_timesteps():
    # The output is x + t * d: a line in t. Steps 0 and 1 enter as values only (`differences_from_step`), so from
    # step 3 on (warmup 3: steps 0, 1, 2 compute, then every 3rd) each skipped output is the line through the outputs
    # of the last two computed steps, at the skipped step's timestep.
    reference = UnevenTimePipeline()()
    pipe = UnevenTimePipeline()
    cachedit.enable_cache(pipe, ForecastCacheConfig(warmup=3, interval=3, spacing="step", target="output"), adapters=LINE)
    outputs = pipe()
    assert cachedit.summary(pipe)["branches"]["transformer/default"]["decisions"] == "CCCccCccC"
    assert _max_error(outputs, reference) < 1e-5
    cachedit.disable_cache(pipe)
    by_index = ForecastCacheConfig(warmup=3, interval=3, spacing="step", target="output", forecast_axis="step")
    cachedit.enable_cache(pipe, by_index, adapters=LINE)
    assert _max_error(pipe(), reference) > 0.01  # an axis set explicitly is kept: a line in t is no line in the index
    cachedit.disable_cache(pipe)
    cachedit.enable_cache(pipe, ForecastCacheConfig(warmup=3, interval=3, spacing="step", target="output", order=0), adapters=LINE)
    reused = pipe()  # order 0 returns the last computed output: off on every skipped step
    assert torch.equal(reused[3], reference[2]) and torch.equal(reused[4], reference[2])
    assert _max_error(reused, reference) > 0.05


def test_tolerance_estimates_the_output_forecast_error():
    # as for the residual (tests/test_forecast.py): an output linear in t has no next Newton term, a quadratic one has
    config = ForecastCacheConfig(order=1, warmup=4, interval=100, tolerance=1e-3, target="output")
    decisions = {}
    for power in (1, 2):
        reference = UnevenTimePipeline(power)()
        pipe = UnevenTimePipeline(power)
        cachedit.enable_cache(pipe, config, adapters=LINE)
        outputs = pipe()
        decisions[power] = cachedit.summary(pipe)["branches"]["transformer/default"]["decisions"]
        assert _max_error(outputs, reference) < 1e-5
    assert decisions == {1: "CCCCccccc", 2: "CCCCCCCCC"}


def test_a_skipped_step_returns_the_forecast_in_the_type_the_transformer_returns():
    from diffusers.models.modeling_outputs import Transformer2DModelOutput

    class Wrapped(torch.nn.Module):
        def __init__(self, inner, kind):
            super().__init__()
            self.inner, self.kind = inner, kind
            self.transformer_blocks = inner.transformer_blocks

        def forward(self, hidden_states, timestep):
            out = self.inner(hidden_states, timestep)
            return Transformer2DModelOutput(sample=out) if self.kind == "output" else (out, "extra")

    for kind in ("output", "tuple"):
        pipe = UnevenTimePipeline()
        pipe.transformer = Wrapped(pipe.transformer, kind)
        cachedit.enable_cache(pipe, ForecastCacheConfig(warmup=3, interval=3, spacing="step", target="output"), adapters=LINE)
        outputs = pipe()
        assert all(type(o) is type(outputs[0]) for o in outputs)
        if kind == "tuple":
            assert [o[1] for o in outputs] == ["extra"] * len(outputs)
        assert cachedit.summary(pipe)["cached_steps"] == 4


class CountsCalls(torch.nn.Module):
    """Counts the calls its own forward runs; returns a diffusers output or a tuple, as `return_dict` says."""

    def __init__(self):
        super().__init__()
        self.inner = UnevenTimePipeline().transformer
        self.transformer_blocks = self.inner.transformer_blocks
        self.calls = 0

    def forward(self, hidden_states, timestep, return_dict=True):
        from diffusers.models.modeling_outputs import Transformer2DModelOutput

        self.calls += 1
        out = self.inner(hidden_states, timestep)
        return Transformer2DModelOutput(sample=out) if return_dict else (out,)


def _uncached_and_forecast(pipeline_class, transformer_class):
    """The outputs of `pipeline_class` with a `transformer_class` uncached, and with `target=output` (warmup 3, then
    every 3rd step), and the cached pipeline."""
    runs = []
    for cached in (False, True):
        pipe = pipeline_class()
        pipe.transformer = transformer_class()
        if cached:
            config = ForecastCacheConfig(warmup=3, interval=3, spacing="step", target="output")
            cachedit.enable_cache(pipe, config, adapters=LINE)
        runs.append(pipe())
    return runs[0], runs[1], pipe


def test_a_skipped_step_runs_nothing_of_the_transformer_and_counts_its_blocks_skipped():
    counted = {}
    for target in ("output", "residual"):
        pipe = UnevenTimePipeline()
        pipe.transformer = CountsCalls()
        cachedit.enable_cache(pipe, ForecastCacheConfig(warmup=3, interval=3, spacing="step", target=target), adapters=LINE)
        outputs = pipe()
        summary = cachedit.summary(pipe)
        assert summary["branches"]["transformer/default"]["decisions"] == "CCCccCccC"
        counted[target] = (pipe.transformer.calls, summary["blocks_total"], summary["blocks_skipped"])
        assert all(type(o) is type(outputs[0]) for o in outputs)
    # the residual's skipped steps still run the transformer (embeddings, output layers); the output's run nothing,
    # and charge the 3 blocks of the last call that ran as skipped
    assert counted == {"output": (5, 27, 12), "residual": (9, 27, 12)}


def test_a_skipped_call_that_asks_for_another_form_of_output_runs():
    class AlternatingForms(UnevenTimePipeline):
        @torch.no_grad()
        def __call__(self, num_inference_steps=len(UnevenTimePipeline.TIMESTEPS)):
            x = torch.ones(1, 4, 8)
            return [self.transformer(x, timestep=torch.tensor([t]), return_dict=i % 2 == 0)
                    for i, t in enumerate(self.TIMESTEPS)]

    expected, outputs, pipe = _uncached_and_forecast(AlternatingForms, CountsCalls)
    assert cachedit.summary(pipe)["cached_steps"] == 4
    assert pipe.transformer.calls == 9  # each call asks for the other form than the last: every one runs
    assert [type(o) for o in outputs] == [type(o) for o in expected]
    assert _max_error([o[0] for o in outputs], [o[0] for o in expected]) < 1e-5


class ReturnsNested(CountsCalls):
    """Returns its output as a video and an audio tensor, the video as a list of one latent per image."""

    def __init__(self, nothing: bool = False):
        super().__init__()
        self.nothing = nothing

    def forward(self, hidden_states, timestep):
        out = self.inner(hidden_states, timestep)
        return None if self.nothing else ([out[:1]], 2 * out + timestep)


def test_every_tensor_of_a_nested_output_is_forecast_and_returned_in_its_place():
    expected, outputs, pipe = _uncached_and_forecast(UnevenTimePipeline, ReturnsNested)
    assert cachedit.summary(pipe)["cached_steps"] == 4
    for (video, audio), (video_ref, audio_ref) in zip(outputs, expected):
        assert isinstance(video, list) and len(video) == 1  # the structure, rebuilt
        assert float((video[0] - video_ref[0]).abs().max()) < 1e-5 and float((audio - audio_ref).abs().max()) < 1e-5


def test_a_transformer_that_returns_no_tensor_is_refused_by_name():
    pipe = UnevenTimePipeline()
    pipe.transformer = ReturnsNested(nothing=True)
    cachedit.enable_cache(pipe, ForecastCacheConfig(interval=2, target="output"), adapters=LINE)
    with pytest.raises(TypeError, match=r"`target=output` .* returns NoneType without any\. Use `target=residual`"):
        pipe()


def test_target_output_needs_no_block_to_run_on_a_skipped_step():
    with pytest.raises(ValueError, match=r"`target=output` .*set `Fn=0` and `Bn=0` \(got Fn=1, Bn=0\)"):
        ForecastCacheConfig(Fn=1, target="output")
    with pytest.raises(ValueError, match=r"`target` must be one of .*residual.*output.*got 'outptu'"):
        ForecastCacheConfig(target="outptu")


def test_a_transformer_cached_as_several_stacks_is_refused_before_any_hook():
    from tests.test_families import CustomPipeline

    pipe = CustomPipeline()
    adapters = [BlockAdapter(block_lists=(("dual_blocks", ENCODER_HIDDEN_OUT, {"Fn": 0}),
                                          ("single_blocks", ENCODER_HIDDEN_OUT, {"Fn": 0})))]
    with pytest.raises(ValueError, match=r"`target=output` .* `transformer` is cached as 2 block stacks"):
        cachedit.enable_cache(pipe, ForecastCacheConfig(target="output"), adapters=adapters)
    assert not cachedit.hooks.has_cache_hooks(pipe.transformer)


def test_trained_dit_skips_the_scheduled_steps_and_stays_close():
    from cachedit.zoo.tiny_dit import load_tiny_dit

    pipe = load_tiny_dit()
    pipe.set_progress_bar_config(disable=True)
    call = dict(class_labels=[0, 3, 7, 9], num_inference_steps=28, output_type="np")
    reference = pipe(**call, generator=torch.Generator().manual_seed(2)).images
    images = {}
    for target in ("residual", "output"):
        cachedit.enable_cache(pipe, ForecastCacheConfig(interval=4, target=target))
        images[target] = pipe(**call, generator=torch.Generator().manual_seed(2)).images
        summary = cachedit.summary(pipe)
        cachedit.disable_cache(pipe)
        assert summary["branches"]["transformer/cond"]["decisions"] == "CcccCcccCcccCcccCcccCcccCccc"
        assert summary["cached_steps"] == 21
    assert not np.array_equal(images["output"], images["residual"])  # another forecast of the same skipped steps
    assert psnr(reference, images["output"]) > 40.0
