"""DBCache on real diffusers pipelines (offline replicas): exactness, measured caching, no state leaks."""

import pytest
import torch

import cachedit
from cachedit import DBCacheConfig, NoCacheConfig

FAMILIES = ["flux", "pixart_alpha", "tiny_dit"]
# Random weights change a lot from step to step (DESIGN §4), so "caches something" needs a high threshold.
HIGH = dict(residual_diff_threshold=1.0, max_warmup_steps=2)


def cached(replica, config, **call):
    cachedit.enable_cache(replica.pipe, config)
    try:
        return replica(**call), cachedit.summary(replica.pipe)
    finally:
        cachedit.disable_cache(replica.pipe)


@pytest.mark.parametrize("family", FAMILIES)
def test_threshold_zero_reproduces_the_uncached_output_bit_for_bit(replicas, family):
    replica = replicas(family)
    baseline = replica.baseline()
    output, summary = cached(replica, DBCacheConfig(Fn=1, residual_diff_threshold=0.0, max_warmup_steps=0))
    assert torch.equal(output, baseline)
    assert summary["cached_steps"] == 0 and summary["steps"] > 0


@pytest.mark.parametrize("family", FAMILIES)
def test_no_cache_config_reproduces_the_uncached_output(replicas, family):
    replica = replicas(family)
    baseline = replica.baseline()
    output, summary = cached(replica, NoCacheConfig())
    assert torch.equal(output, baseline)
    assert summary["steps"] == 0


@pytest.mark.parametrize("family", FAMILIES)
def test_a_high_threshold_caches_a_measured_number_of_steps(replicas, family):
    replica = replicas(family)
    baseline = replica.baseline()
    output, summary = cached(replica, DBCacheConfig(Fn=1, **HIGH))
    steps = replica.model.num_inference_steps
    cached_steps = sum(b["cached_steps"] for b in summary["branches"].values())
    assert 0 < summary["cached_steps"] == cached_steps <= steps - 2
    assert summary["blocks_skipped"] > 0
    assert not torch.equal(output, baseline)  # something really was skipped
    assert torch.isfinite(output).all()


def test_flux_caches_both_streams_across_both_block_lists(replicas):
    replica = replicas("flux")
    transformer = replica.pipe.transformer
    num_blocks = len(transformer.transformer_blocks) + len(transformer.single_transformer_blocks)
    _, summary = cached(replica, DBCacheConfig(Fn=2, Bn=2, **HIGH))
    steps = replica.model.num_inference_steps
    assert summary["blocks_total"] == steps * num_blocks
    # Every skipped block is a middle block of a cached step: the middle spans both lists here.
    assert summary["blocks_skipped"] == summary["cached_steps"] * (num_blocks - 4)


@pytest.mark.parametrize("family", ["flux", "tiny_dit"])
def test_calls_a_b_a_give_identical_a_outputs(replicas, family):
    replica = replicas(family)
    cachedit.enable_cache(replica.pipe, DBCacheConfig(Fn=1, **HIGH))
    try:
        first = replica(seed=0)
        cached_first = cachedit.summary(replica.pipe)["cached_steps"]
        replica(seed=1, num_inference_steps=5)
        again = replica(seed=0)
        assert cachedit.summary(replica.pipe)["cached_steps"] == cached_first > 0
    finally:
        cachedit.disable_cache(replica.pipe)
    assert torch.equal(first, again)


@pytest.mark.parametrize("family", FAMILIES)
def test_disable_restores_the_original_pipeline_exactly(replicas, family):
    replica = replicas(family)
    pipe_class = type(replica.pipe)
    before = replica.baseline()
    cachedit.enable_cache(replica.pipe, DBCacheConfig(Fn=1, **HIGH))
    replica()
    cachedit.disable_cache(replica.pipe)
    assert type(replica.pipe) is pipe_class
    assert not cachedit.is_cache_enabled(replica.pipe)
    hooks = [m._diffusers_hook.hooks for m in replica.pipe.transformer.modules() if hasattr(m, "_diffusers_hook")]
    assert all(not any(name.startswith("cachedit") for name in h) for h in hooks)
    assert torch.equal(replica(), before)


def test_an_unknown_pipeline_is_refused_with_the_way_out():
    class MyPipeline:
        transformer = torch.nn.Linear(2, 2)

    with pytest.raises(ValueError, match=r"MyPipeline is not a supported pipeline\. Supported: .*FluxPipeline.*BlockAdapter"):
        cachedit.enable_cache(MyPipeline(), DBCacheConfig())


def test_summary_prints_one_line_and_warns_when_nothing_was_cached(replicas):
    replica = replicas("pixart_alpha")
    _, summary = cached(replica, DBCacheConfig(Fn=1, residual_diff_threshold=0.0))
    line = str(cachedit.cache.CacheSummary(summary))
    assert "cached 0/8 steps" in line and "NOTHING WAS CACHED" in line
