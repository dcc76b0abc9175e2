"""Modular Diffusers pipelines: the registry adapts them by class like classic pipelines, and the cache resets per
call with the step count the call passes as a keyword input (or the blocks' default)."""

from __future__ import annotations

import inspect

import pytest
import torch

import cachedit
from cachedit import DBCacheConfig
from cachedit.adapters import registry
from cachedit.hooks.lifecycle import call_steps
from cachedit.zoo.dit_families.modular import (
    MODULAR_ONLY_REPLICAS, MODULAR_REPLICAS, build_modular_only, modular_classes, modular_replica,
)
from cachedit.zoo.entries import get_entry

STEPS = 5
HIGH = dict(Fn=1, Bn=0, residual_diff_threshold=2.0, max_warmup_steps=1)
EXACT = dict(Fn=1, Bn=0, residual_diff_threshold=0.0, max_warmup_steps=0)


@pytest.fixture(scope="module")
def modular():
    cache = {}

    def get(modular_class: str):
        if modular_class not in cache:
            pipe, inputs = modular_replica(modular_class, STEPS)
            pipe.set_progress_bar_config(disable=True)
            run = lambda: pipe(**inputs, generator=torch.Generator().manual_seed(0))  # noqa: E731
            cache[modular_class] = (pipe, run, run())
        return cache[modular_class]

    return get


def _modular_classes() -> list:
    slow = {name for name, replica in MODULAR_ONLY_REPLICAS.items() if replica.slow}
    return [pytest.param(name, marks=pytest.mark.slow) if name in slow else name for name in modular_classes()]


@pytest.mark.parametrize("modular_class", _modular_classes())
def test_a_modular_pipeline_is_cached_like_its_classic_family(modular, modular_class):
    pipe, run, baseline = modular(modular_class)
    if modular_class in MODULAR_REPLICAS:  # modular-only families have no classic replica
        classic = get_entry(MODULAR_REPLICAS[modular_class]).pipeline_class
        assert registry.ADAPTERS[classic] is registry.ADAPTERS[modular_class]

    cachedit.enable_cache(pipe, DBCacheConfig(**EXACT))
    try:
        assert torch.equal(run(), baseline)
    finally:
        cachedit.disable_cache(pipe)

    cachedit.enable_cache(pipe, DBCacheConfig(**HIGH))
    try:
        cached = run()
        branches = cachedit.summary(pipe)["branches"]
    finally:
        cachedit.disable_cache(pipe)
    assert sum(b["decisions"].count("c") for b in branches.values()) > 0
    assert not torch.equal(cached, baseline) and torch.isfinite(cached).all()
    assert torch.equal(run(), baseline)  # disabled again


def test_every_modular_pipeline_of_a_registered_transformer_is_registered():
    import diffusers

    modular = [name for name in dir(diffusers) if name.endswith("ModularPipeline") and name != "ModularPipeline"]
    unet_only = {"StableDiffusionXLModularPipeline"}
    missing = [name for name in modular if name not in registry.ADAPTERS and name not in unet_only]
    assert not missing, f"modular pipelines without an adapter: {missing}"


def test_the_step_count_comes_from_keyword_inputs_or_the_blocks_default():
    class Modular:  # ModularPipeline.__call__(self, state=None, output=None, **kwargs)
        default_call_parameters = {"num_inference_steps": 28, "prompt": None}

        def __call__(self, state=None, output=None, **kwargs):
            pass

    class Classic:
        def __call__(self, prompt=None, num_inference_steps: int = 50):
            pass

    modular_signature = inspect.signature(Modular.__call__)
    assert call_steps(Modular(), modular_signature, (), {"num_inference_steps": 7}) == 7
    assert call_steps(Modular(), modular_signature, (), {"prompt": "a cat"}) == 28
    classic_signature = inspect.signature(Classic.__call__)
    assert call_steps(Classic(), classic_signature, ("a cat",), {}) == 50
    assert call_steps(Classic(), classic_signature, ("a cat", 9), {}) == 9


def test_a_modular_family_refuses_a_guidance_scale_its_call_would_ignore():
    from cachedit.zoo.model_config import ModelConfig, ModelSource
    from cachedit.harness.pipelines import load_pipeline

    model = ModelConfig(name="flux3", source=ModelSource.replica, num_inference_steps=2, guidance_scale=4.0)
    with pytest.raises(ValueError, match=r"`model.guidance_scale`: Flux3ModularPipeline takes no `guidance_scale`"):
        get_entry("flux3").inputs(load_pipeline(model), model)


def test_a_saved_modular_pipeline_loads_from_model_path(tmp_path):
    from cachedit.zoo.model_config import ModelConfig
    from cachedit.harness.pipelines import check_model, load_pipeline

    replica = build_modular_only("Flux3ModularPipeline")
    replica.save_pretrained(str(tmp_path))
    model = ModelConfig(name="flux3", path=str(tmp_path), torch_dtype="float32")
    assert check_model(model) == {"transformer": 10}  # the preflight reads the saved config only
    loaded = load_pipeline(model)
    assert type(loaded).__name__ == "Flux3ModularPipeline" and loaded.transformer is not replica.transformer
    for (name, saved), (_, reloaded) in zip(replica.transformer.state_dict().items(), loaded.transformer.state_dict().items()):
        assert torch.equal(saved, reloaded), name
    cachedit.enable_cache(loaded, DBCacheConfig(Fn=1))  # the registry adapts the loaded class
    cachedit.disable_cache(loaded)
