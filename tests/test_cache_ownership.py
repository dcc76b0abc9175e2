"""Nothing shared by accident (issue 15): config snapshots, copies, pickling and pipelines that share a transformer."""

import copy
import pickle
from functools import partial

import pytest
import torch
from conftest import REPLICA_CALLS, Replica

from cachedit import DBCacheConfig, disable_cache, enable_cache, is_cache_enabled, summary
from cachedit.hooks import has_cache_hooks

CACHING = dict(residual_diff_threshold=0.5, Fn=1, Bn=0, max_warmup_steps=1)  # caches 6 of the 8 steps


@pytest.fixture
def tiny():
    """A fresh tiny DiT (not the session's shared replica: these tests enable caching and copy the pipeline)."""
    replica = Replica("tiny_dit", **REPLICA_CALLS["tiny_dit"])
    replica.baseline()
    yield replica
    if hasattr(replica.pipe, "_cachedit"):
        disable_cache(replica.pipe)


def run(replica: Replica, pipe, **overrides) -> torch.Tensor:
    kwargs = {**replica.inputs, "output_type": replica.output_type, **overrides}
    return pipe(**kwargs, generator=torch.Generator().manual_seed(0)).images


def test_changing_the_config_after_enable_has_no_effect(tiny):
    config = DBCacheConfig(**CACHING)
    enable_cache(tiny.pipe, config)
    cached = tiny()
    config.residual_diff_threshold, config.Fn = 0.0, 4  # would cache nothing and need 4 blocks
    assert torch.equal(tiny(), cached)
    stats = summary(tiny.pipe)
    assert stats["cached_steps"] == 6
    assert stats["settings"]["cache"]["type"] == "DBCacheConfig"
    assert stats["settings"]["cache"]["residual_diff_threshold"] == 0.5 and stats["settings"]["cache"]["Fn"] == 1


def test_a_deep_copy_is_an_independent_cached_pipeline(tiny):
    enable_cache(tiny.pipe, DBCacheConfig(**CACHING))
    cached = tiny()
    clone = copy.deepcopy(tiny.pipe)
    assert clone.transformer is not tiny.pipe.transformer
    assert torch.equal(run(tiny, clone), cached)
    assert summary(clone)["cached_steps"] == 6 and summary(clone)["steps"] == 8
    run(tiny, clone, num_inference_steps=4)
    assert summary(clone)["steps"] == 4 and summary(tiny.pipe)["steps"] == 8  # its own stats, not the original's
    disable_cache(clone)
    assert torch.equal(run(tiny, clone), tiny.baseline())  # its own hooks, removed without touching the original
    assert torch.equal(tiny(), cached)


def test_pickle_round_trips_a_cached_pipeline(tiny):
    enable_cache(tiny.pipe, DBCacheConfig(**CACHING))
    cached = tiny()
    loaded = pickle.loads(pickle.dumps(tiny.pipe))
    assert type(loaded).__name__ == type(tiny.pipe).__name__
    assert torch.equal(run(tiny, loaded), cached)
    assert summary(loaded)["cached_steps"] == 6
    assert summary(loaded)["settings"] == summary(tiny.pipe)["settings"]
    assert torch.equal(tiny(), cached)  # pickling left the original cached and working


def test_a_pipeline_sharing_the_transformer_computes_uncached_in_between(tiny):
    enable_cache(tiny.pipe, DBCacheConfig(**CACHING))
    cached = tiny()
    shared = type(tiny.pipe).__mro__[1](**tiny.pipe.components)  # the class before enable_cache's subclass
    shared.set_progress_bar_config(disable=True)
    assert shared.transformer is tiny.pipe.transformer
    assert torch.equal(run(tiny, shared), tiny.baseline())  # A, then B: B never enabled caching
    assert torch.equal(tiny(), cached)  # then A again: reset as usual, stats of A's call only
    assert summary(tiny.pipe)["steps"] == 8 and summary(tiny.pipe)["cached_steps"] == 6
    with pytest.raises(RuntimeError, match="caching was enabled on another pipeline that shares this transformer"):
        enable_cache(shared, DBCacheConfig(**CACHING))
    with pytest.raises(RuntimeError, match="Caching is not enabled"):
        summary(shared)


def test_from_pipe_text_to_image_then_image_to_image_on_the_same_weights():
    from diffusers import FluxImg2ImgPipeline

    text = Replica("flux", **REPLICA_CALLS["flux"])
    baseline = text()
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    edit = FluxImg2ImgPipeline.from_pipe(text.pipe)
    edit.set_progress_bar_config(disable=True)
    edit_inputs = {**text.inputs, "image": image, "strength": 0.75, "output_type": "latent"}  # same prompt, sizes

    def edited() -> torch.Tensor:
        return edit(**edit_inputs, generator=torch.Generator().manual_seed(0)).images

    edit_reference = edited()
    enable_cache(text.pipe, DBCacheConfig(residual_diff_threshold=1.0, Fn=1, Bn=0, max_warmup_steps=1))
    try:
        cached = text()
        assert summary(text.pipe)["cached_steps"] > 0 and not torch.equal(cached, baseline)
        assert torch.equal(edited(), edit_reference)  # the image-to-image pipeline did not enable caching
        assert torch.equal(text(), cached)
    finally:
        disable_cache(text.pipe)


def _perturbed(transformer: torch.nn.Module) -> torch.nn.Module:
    """`transformer` with other weights, so a copy computing with the original's weights shows."""
    with torch.no_grad():
        for parameter in transformer.parameters():
            parameter.mul_(1.05)
    return transformer


def _with_transformer(replica: Replica, transformer):
    """A pipeline of the replica's class (never cached) with `transformer` instead of its own."""
    cls = type(replica.pipe).__mro__[1] if is_cache_enabled(replica.pipe) else type(replica.pipe)  # enable_cache's subclass
    pipe = cls(**{**replica.pipe.components, "transformer": transformer})
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _copy(transformer: torch.nn.Module, copying: str) -> torch.nn.Module:
    """A copy with weights of its own: deep-copied then changed, or quantized (`quantize_dynamic` copies first)."""
    if copying == "deepcopy":
        return _perturbed(copy.deepcopy(transformer))
    return torch.ao.quantization.quantize_dynamic(transformer, {torch.nn.Linear}, dtype=torch.qint8)


@pytest.mark.parametrize("copying", ["deepcopy", "quantize_dynamic"])
def test_a_copy_of_a_cached_transformer_refuses_to_run_the_originals_weights_until_cleared(tiny, copying):
    copy_of = partial(_copy, copying=copying)

    truth = run(tiny, _with_transformer(tiny, copy_of(tiny.pipe.transformer)))  # the copy's own weights, uncached
    assert not torch.equal(truth, tiny.baseline())
    enable_cache(tiny.pipe, DBCacheConfig(**CACHING))
    cached = tiny()
    original = tiny.pipe.transformer
    tiny.pipe.transformer = copy_of(original)  # e.g. `pipe.transformer = quantize_dynamic(pipe.transformer, ...)`
    with pytest.raises(RuntimeError, match=r"is a copy of a module cached by cachedit.*`cachedit.disable_cache`"):
        tiny()
    elsewhere = _with_transformer(tiny, tiny.pipe.transformer)  # nor does it run silently in another pipeline
    with pytest.raises(RuntimeError, match="is a copy of a module cached by cachedit"):
        run(tiny, elsewhere)
    tiny.pipe.transformer = original
    assert torch.equal(tiny(), cached)  # the original is untouched

    tiny.pipe.transformer = elsewhere.transformer
    disable_cache(tiny.pipe)  # the original's hooks and the copy's copied ones go
    assert not has_cache_hooks(original) and not has_cache_hooks(elsewhere.transformer)
    assert torch.equal(tiny(), truth)  # the copy computes with its own weights
    assert torch.equal(run(tiny, _with_transformer(tiny, original)), tiny.baseline())


@pytest.mark.parametrize("copying", ["deepcopy", "quantize_dynamic"])
def test_caching_enabled_on_a_copy_runs_with_the_copys_weights_and_state(tiny, copying):
    copy_of = partial(_copy, copying=copying)

    reference = _with_transformer(tiny, copy_of(tiny.pipe.transformer))  # never copied while cached
    enable_cache(reference, DBCacheConfig(**CACHING))
    expected = run(tiny, reference)
    enable_cache(tiny.pipe, DBCacheConfig(**CACHING))
    cached = tiny()
    second = copy_of(tiny.pipe.transformer)
    third = copy.deepcopy(second)  # a copy of the copy: cleared with it
    clone = enable_cache(_with_transformer(tiny, second), DBCacheConfig(**CACHING))  # its copied hooks are replaced
    assert torch.equal(run(tiny, clone), expected) and summary(clone)["cached_steps"] == summary(reference)["cached_steps"]
    assert torch.equal(tiny(), cached)
    disable_cache(tiny.pipe)  # clears the copies it left behind, never the copy's own cache
    assert not has_cache_hooks(tiny.pipe.transformer) and not has_cache_hooks(third)
    assert torch.equal(run(tiny, clone), expected) and has_cache_hooks(second)
    disable_cache(clone)
    assert not has_cache_hooks(second)
