"""The embedded tiny FLUX: shipped weights in the real FluxPipeline, task quality, cachedit / diffusers / cache-dit
caches on it through their public APIs, and the training runner."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from diffusers import FluxPipeline, FluxTransformer2DModel

import cachedit
from cachedit import DBCacheConfig
from cachedit.zoo.model_config import ModelConfig, ModelSource
from cachedit.zoo import digits
from cachedit.zoo.tiny_flux import TINY_FLUX_WEIGHTS, digit_inputs, load_tiny_flux
from cachedit.harness.peers import PEERS
from cachedit.harness.pipelines import check_model
from runners.train_tiny_flux import generate_per_class

REPO = Path(__file__).resolve().parents[1]
STEPS = 10


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    # on 2 shared cores, 2 torch threads run >10x slower than 1 whenever another process competes
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def pipe():
    pipe = load_tiny_flux()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _draw(pipe, seed=0, labels=(0, 3, 7), steps=STEPS):
    generator = torch.Generator("cpu").manual_seed(seed)
    return pipe(**digit_inputs(pipe, list(labels), num_inference_steps=steps, generator=generator, output_type="pt")).images


@pytest.fixture(scope="module")
def reference(pipe):
    return _draw(pipe)


def test_shipped_weights_are_a_small_flux_in_the_plain_flux_pipeline(pipe):
    files = [p for p in TINY_FLUX_WEIGHTS.rglob("*") if p.is_file()]
    assert list(TINY_FLUX_WEIGHTS.glob("transformer/*.safetensors"))
    assert not [p for p in files if p.suffix in (".bin", ".pt", ".pth", ".ckpt")]
    assert sum(p.stat().st_size for p in files) < 20 * 2**20
    assert type(pipe) is FluxPipeline and type(pipe.transformer) is FluxTransformer2DModel
    dual, single = len(pipe.transformer.transformer_blocks), len(pipe.transformer.single_transformer_blocks)
    assert dual >= 2 and dual + single >= 12
    scheduler = pipe.scheduler.config  # FLUX.1's dynamic shift
    assert scheduler.use_dynamic_shifting and (scheduler.base_shift, scheduler.max_shift) == (0.5, 1.15)
    # counted from the configs alone (meta device), as runners do before loading
    assert check_model(ModelConfig(name="tiny_flux", source=ModelSource.embedded)) == {"transformer": dual + single}


def test_generation_is_deterministic_per_seed(pipe, reference):
    again, other = _draw(pipe), _draw(pipe, seed=1)
    assert reference.shape == (3, 1, 16, 16) and 0.0 <= reference.min() and reference.max() <= 1.0
    assert torch.equal(reference, again)
    assert (reference - other).abs().max() > 0.1


def test_accuracy_on_requested_class_uncached(pipe):
    images, labels = generate_per_class(pipe, samples_per_class=2, seed=0, num_inference_steps=16)
    assert images.shape == (20, 16, 16)
    assert digits.accuracy(images, labels) >= 0.9


@pytest.mark.parametrize(
    "kwargs, message",
    [(dict(class_labels=[1, 10]), "0..9"), (dict(class_labels=[]), "0..9"), (dict(class_labels=[1], height=32), "16x16")],
)
def test_invalid_inputs_raise_before_any_work(pipe, kwargs, message):
    with pytest.raises(ValueError, match=message):
        digit_inputs(pipe, **kwargs)


def test_missing_weights_name_path_and_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="runners.train_tiny_flux") as err:
        load_tiny_flux(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(err.value)


def _cachedit(pipe, **config):
    cachedit.enable_cache(pipe, DBCacheConfig(**config))
    try:
        return _draw(pipe), cachedit.summary(pipe)
    finally:
        cachedit.disable_cache(pipe)


def test_cachedit_threshold_zero_is_bit_exact(pipe, reference):
    images, summary = _cachedit(pipe, Fn=1, Bn=0, residual_diff_threshold=0.0, max_warmup_steps=0)
    assert torch.equal(images, reference)
    assert summary["cached_steps"] == 0 and summary["blocks_skipped"] == 0 and summary["blocks_total"] > 0


def test_cachedit_positive_threshold_caches_a_measured_number_of_steps(pipe, reference):
    images, summary = _cachedit(pipe, Fn=1, Bn=0, residual_diff_threshold=0.2, max_warmup_steps=2)
    # measured on the shipped weights: 6 of 20 steps (10 per branch of true CFG); each cached step skips the 11
    # blocks after the first
    assert summary["steps"] == 2 * STEPS and summary["cached_steps"] == 6
    assert summary["blocks_skipped"] == summary["cached_steps"] * 11
    assert 0 < (images - reference).abs().max() < 0.5


def test_the_text_stream_left_uncached_matters_only_through_trailing_blocks(pipe):
    """`cache_encoder=False`: text tokens pass a skipped span as they entered it. Only image tokens leave the
    transformer, so with Bn=0 the images are the same; with Bn=4 the trailing blocks see the stale text."""
    knobs = dict(residual_diff_threshold=0.3, max_warmup_steps=2)
    for Fn, Bn, same in ((4, 0, True), (4, 4, False)):
        cached, with_text = _cachedit(pipe, Fn=Fn, Bn=Bn, **knobs)
        passed, without_text = _cachedit(pipe, Fn=Fn, Bn=Bn, cache_encoder=False, **knobs)
        assert with_text["cached_steps"] == without_text["cached_steps"] > 0
        assert torch.equal(cached, passed) is same, (Fn, Bn)


def test_taylorseer_on_a_text_stream_left_uncached_is_refused():
    from cachedit.configs import TaylorSeerConfig
    from cachedit.caches import check_combination

    with pytest.raises(ValueError, match=r"set `taylorseer.encoder=false` too"):
        check_combination(DBCacheConfig(cache_encoder=False), TaylorSeerConfig(order=1))
    check_combination(DBCacheConfig(cache_encoder=False), TaylorSeerConfig(order=1, encoder=False))


@pytest.mark.parametrize("peer", ["diffusers_fbc", "cache_dit"])
def test_peer_caches_run_unmodified_exact_at_zero_and_caching_above(pipe, reference, peer):
    zero, high = {
        "diffusers_fbc": (dict(threshold=0.0), dict(threshold=10.0)),
        "cache_dit": (dict(Fn=1, Bn=0, residual_diff_threshold=0.0, max_warmup_steps=0),
                      dict(Fn=1, Bn=0, residual_diff_threshold=10.0, max_warmup_steps=2)),
    }[peer]  # fmt: skip
    for params, exact in ((zero, True), (high, False)):
        undo = PEERS[peer](pipe, **params)
        try:
            images = _draw(pipe)
        finally:
            undo()
        assert torch.equal(images, reference) == exact, params
        assert torch.isfinite(images).all()
    assert torch.equal(_draw(pipe), reference)  # undone: the pipeline is back as it was


@pytest.mark.slow  # a training subprocess, 13 s: a development tool, not a user path; keeps the default suite in budget
def test_training_runner_smoke(tmp_path):
    out = tmp_path / "weights"
    cmd = [
        sys.executable, "-m", "runners.train_tiny_flux", "iterations=3", "batch_size=4", "warmup_iterations=1",
        "checkpoint_every=2", f"output_dir={out}", f"hydra.run.dir={tmp_path / 'run'}", "eval_samples=10", "eval_steps=2",
    ]  # fmt: skip
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "uncached accuracy over 10 samples" in result.stderr + result.stdout
    assert (out / "checkpoints" / "iter_2" / "transformer" / "config.json").is_file()
    pipe = load_tiny_flux(out)
    pipe.set_progress_bar_config(disable=True)
    assert _draw(pipe, steps=2).shape == (3, 1, 16, 16)
    # 3 iterations moved the EMA weights away from the zero-initialised output layer
    assert pipe.transformer.proj_out.weight.any()


@pytest.mark.slow
def test_the_full_training_recipe_reaches_the_shipped_quality(tmp_path):
    """`python -m runners.train_tiny_flux` as shipped (about 25-45 CPU-minutes on 2 cores): accuracy >= 95 %."""
    out = tmp_path / "weights"
    cmd = [sys.executable, "-m", "runners.train_tiny_flux", f"output_dir={out}", f"hydra.run.dir={tmp_path / 'run'}"]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=4 * 3600)
    assert result.returncode == 0, result.stderr[-3000:]
    found = re.search(r"uncached accuracy over \d+ samples, \d+ steps: ([\d.]+)", result.stderr + result.stdout)
    assert found is not None and float(found.group(1)) >= 0.95, (result.stderr + result.stdout)[-2000:]
