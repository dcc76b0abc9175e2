"""One cached pipeline, many threads: calls are serialised, each result equals the same call run alone; a call
that raises leaves the next exact; a bare transformer caches per `cachedit.request` and matches pipeline mode."""

import threading

import pytest
import torch

import cachedit
from cachedit.zoo.model_config import ModelConfig
from cachedit.harness.pipelines import load_pipeline
from cachedit.hooks import has_cache_hooks

CACHE = {"Fn_compute_blocks": 1, "residual_diff_threshold": 0.2, "max_warmup_steps": 2}
CALL = dict(class_labels=[3, 7], num_inference_steps=8, guidance_scale=2.0, output_type="pt")


@pytest.fixture
def pipe():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matmuls: a second intra-op thread only adds spin-waits on a loaded machine
    pipe = load_pipeline(ModelConfig(name="tiny_dit", source="embedded", torch_dtype="float32"))
    pipe.set_progress_bar_config(disable=True)
    yield pipe
    for module in (pipe, pipe.transformer):
        if cachedit.is_cache_enabled(module):
            cachedit.disable_cache(module)
    torch.set_num_threads(threads)


def generate(pipe, seed: int, **overrides) -> torch.Tensor:
    return pipe(**{**CALL, **overrides}, generator=torch.Generator().manual_seed(seed)).images


def test_threads_on_one_cached_pipeline_equal_their_sequential_results(pipe):
    cachedit.enable_cache(pipe, CACHE)
    seeds = list(range(6))
    alone = {seed: generate(pipe, seed, num_inference_steps=6 + seed % 3) for seed in seeds}
    assert cachedit.summary(pipe)["cached_steps"] > 0  # the cache really skips work in these calls
    results, errors = {}, []
    start = threading.Barrier(len(seeds))

    def worker(seed):
        try:
            start.wait(timeout=30)
            results[seed] = generate(pipe, seed, num_inference_steps=6 + seed % 3)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in seeds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert all(torch.equal(results[seed], alone[seed]) for seed in seeds)


def test_a_call_that_raises_leaves_the_next_exact(pipe):
    cachedit.enable_cache(pipe, CACHE)
    expected = generate(pipe, 1)
    calls = {"n": 0}

    def fail_mid_call(module, args):
        calls["n"] += 1
        if calls["n"] == 5:  # step 5 of the call: the cache holds residuals of this call
            raise RuntimeError("client went away")

    hook = pipe.transformer.register_forward_pre_hook(fail_mid_call)
    with pytest.raises(RuntimeError, match="client went away"):
        generate(pipe, 2)
    hook.remove()
    assert torch.equal(generate(pipe, 1), expected)


def test_bare_transformer_matches_pipeline_mode_and_needs_a_boundary(pipe):
    cachedit.enable_cache(pipe, CACHE, scm=None)
    expected, expected_summary = generate(pipe, 0), dict(cachedit.summary(pipe))
    cachedit.disable_cache(pipe)

    transformer = pipe.transformer
    cachedit.enable_cache(transformer, CACHE)
    with pytest.raises(RuntimeError, match=r"outside a request boundary; wrap each request's sampling loop in "
                                           r"`with cachedit.request\(transformer, num_inference_steps=N\):`"):
        generate(pipe, 0)
    for _ in range(2):  # the failed call left nothing behind, and each request starts fresh
        with cachedit.request(transformer, num_inference_steps=CALL["num_inference_steps"]):
            assert torch.equal(generate(pipe, 0), expected)
        assert dict(cachedit.summary(transformer)) == expected_summary
    cachedit.disable_cache(transformer)
    assert not transformer._forward_pre_hooks and not cachedit.is_cache_enabled(transformer)
    generate(pipe, 0)  # uncached again: no boundary needed


def test_bare_transformer_step_mask_needs_the_step_count(pipe):
    cachedit.enable_cache(pipe.transformer, {**CACHE, "scm_steps_mask_policy": "fast", "scm_steps_policy": "static"})
    with pytest.raises(ValueError, match="needs the call's `num_inference_steps`"):
        with cachedit.request(pipe.transformer):
            pass
    with cachedit.request(pipe.transformer, num_inference_steps=8):
        generate(pipe, 0)
    assert cachedit.summary(pipe.transformer)["cached_steps"] > 0


def test_config_given_twice_is_refused(pipe):
    with pytest.raises(ValueError, match=r"`taylorseer` is given both in `config`"):
        cachedit.enable_cache(pipe, {**CACHE, "taylorseer_order": 1}, taylorseer=cachedit.TaylorSeerConfig(order=2))
    assert not cachedit.is_cache_enabled(pipe)


def test_a_copy_of_a_cached_bare_transformer_refuses_until_cached_itself_or_cleared(pipe):
    """Issue 21: the copy carried over the original's hooks and boundary check; it must never compute silently with
    the original's weights, caching it replaces what it carried over, and the original's disable_cache clears it."""
    import copy

    truth = copy.deepcopy(pipe.transformer)
    with torch.no_grad():
        for parameter in truth.parameters():
            parameter.mul_(1.05)
    pipe.transformer, original = truth, pipe.transformer
    expected_uncached = generate(pipe, 0)
    cachedit.enable_cache(truth, CACHE)
    with cachedit.request(truth, num_inference_steps=CALL["num_inference_steps"]):
        expected_cached = generate(pipe, 0)
    cachedit.disable_cache(truth)

    cachedit.enable_cache(original, CACHE)
    copies = [copy.deepcopy(original) for _ in range(2)]
    for copied in copies:
        with torch.no_grad():
            for parameter in copied.parameters():
                parameter.mul_(1.05)
    copies.append(copy.deepcopy(copies[1]))  # a copy of the copy
    pipe.transformer = copies[0]
    assert not cachedit.is_cache_enabled(copies[0])
    with pytest.raises(RuntimeError, match="is a copy of a module cached by cachedit"):
        with cachedit.request(original, num_inference_steps=8):  # inside the original's request: its hooks refuse
            generate(pipe, 0)
    with pytest.raises(RuntimeError, match="is a copy of a module cached by cachedit"):  # outside: its boundary check
        generate(pipe, 0)
    cachedit.enable_cache(copies[0], CACHE)  # replaces what the copy carried over
    with cachedit.request(copies[0], num_inference_steps=CALL["num_inference_steps"]):
        assert torch.equal(generate(pipe, 0), expected_cached)
    cachedit.disable_cache(original)  # clears the other copies, not the copy cached since
    assert cachedit.is_cache_enabled(copies[0])
    for copied in copies[1:]:
        assert not copied._forward_pre_hooks and not has_cache_hooks(copied)
        pipe.transformer = copied
        assert torch.equal(generate(pipe, 0), expected_uncached)
    cachedit.disable_cache(copies[0])
    assert not copies[0]._forward_pre_hooks and not has_cache_hooks(copies[0])
    pipe.transformer = original
