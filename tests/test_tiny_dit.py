"""The embedded default model: shipped weights, pipeline behaviour, metrics, and the training runner."""

import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers.hooks import FirstBlockCacheConfig, apply_first_block_cache
from diffusers.models.cache_utils import CacheMixin

from cachedit.zoo import digits
from cachedit.zoo.tiny_dit import (
    NULL_CLASS,
    TINY_DIT_WEIGHTS,
    TinyDiTPipeline,
    build_tiny_dit_transformer,
    generate_per_class,
    load_tiny_dit,
)

REPO = Path(__file__).resolve().parents[1]
# measured on the shipped weights: 50/50 at 20 steps; the floor leaves room for platform float noise only
ACCURACY_FLOOR = 0.8


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    # on 2 shared cores, 2 torch threads run >10x slower than 1 whenever another process competes
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _load():
    pipe = load_tiny_dit()
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def pipe():
    return _load()


def _draw(pipe, seed, labels=(0, 3, 7), steps=8, **kwargs):
    generator = torch.Generator("cpu").manual_seed(seed)
    return pipe(list(labels), num_inference_steps=steps, generator=generator, output_type="pt", **kwargs).images


def test_shipped_weights_are_small_safetensors():
    files = [p for p in TINY_DIT_WEIGHTS.rglob("*") if p.is_file()]
    assert (TINY_DIT_WEIGHTS / "model_index.json").is_file()
    assert list(TINY_DIT_WEIGHTS.glob("transformer/*.safetensors"))
    assert not [p for p in files if p.suffix in (".bin", ".pt", ".pth", ".ckpt")]
    assert sum(p.stat().st_size for p in files) < 20 * 2**20


def test_generation_is_deterministic_per_seed(pipe):
    a, b, c = _draw(pipe, 0), _draw(pipe, 0), _draw(pipe, 1)
    assert a.shape == (3, 1, 16, 16) and a.dtype == torch.float32
    assert 0.0 <= a.min() and a.max() <= 1.0
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 0.1


def test_output_types(pipe):
    generator = torch.Generator("cpu").manual_seed(0)
    pil = pipe(4, num_inference_steps=2, generator=generator).images
    assert len(pil) == 1 and pil[0].mode == "L" and pil[0].size == (16, 16)
    arr = pipe([1, 2], num_inference_steps=2, output_type="np").images
    assert isinstance(arr, np.ndarray) and arr.shape == (2, 16, 16, 1)
    (images,) = pipe([5], num_inference_steps=2, output_type="pt", return_dict=False)
    assert images.shape == (1, 1, 16, 16)


def test_accuracy_on_requested_class(pipe):
    images, labels = generate_per_class(pipe, samples_per_class=5, seed=0, num_inference_steps=20)
    assert images.shape == (50, 16, 16)
    assert digits.accuracy(images, labels) >= ACCURACY_FLOOR


def test_guidance_runs_both_branches_in_one_call_inside_cache_context(pipe, monkeypatch):
    active, seen = [], []

    @contextmanager
    def recording_context(module, name, **kwargs):
        active.append((name, kwargs))
        yield
        active.pop()

    monkeypatch.setattr(CacheMixin, "cache_context", recording_context)
    handle = pipe.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append((list(active), args[0].shape[0], kwargs["class_labels"].tolist())),
        with_kwargs=True,
    )
    try:
        _draw(pipe, 0, labels=(2, 9), steps=3, guidance_scale=3.0)
        _draw(pipe, 0, labels=(2, 9), steps=3, guidance_scale=1.0)
    finally:
        handle.remove()
    assert [batch for _, batch, _ in seen] == [4, 4, 4, 2, 2, 2]
    assert seen[0][2] == [2, 9, NULL_CLASS, NULL_CLASS] and seen[3][2] == [2, 9]
    assert all(len(ctx) == 1 and ctx[0][0] == "cond" for ctx, _, _ in seen)
    assert [ctx[0][1]["step_index"] for ctx, _, _ in seen[:3]] == [0, 1, 2]


def test_diffusers_first_block_cache_drives_through_the_context():
    ref = _draw(_load(), 0, steps=10)
    pipe = _load()
    apply_first_block_cache(pipe.transformer, FirstBlockCacheConfig(threshold=0.0))
    assert torch.equal(_draw(pipe, 0, steps=10), ref)  # threshold 0 never reuses
    pipe = _load()
    apply_first_block_cache(pipe.transformer, FirstBlockCacheConfig(threshold=10.0))
    cached = _draw(pipe, 0, steps=10)  # every step after the first reuses the tail residual
    assert torch.isfinite(cached).all() and (cached - ref).abs().max() > 0


def test_save_pretrained_round_trip_is_bit_exact(pipe, tmp_path):
    pipe.save_pretrained(tmp_path)
    assert list((tmp_path / "transformer").glob("*.safetensors"))
    loaded = TinyDiTPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    for key, value in pipe.transformer.state_dict().items():
        assert torch.equal(value, loaded.transformer.state_dict()[key]), key
    assert dict(loaded.scheduler.config) == dict(pipe.scheduler.config)
    assert torch.equal(_draw(loaded, 3), _draw(pipe, 3))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(class_labels=[1, 10]), "0..9"),
        (dict(class_labels=-1), "0..9"),
        (dict(class_labels=[2.0]), "0..9"),
        (dict(class_labels=[]), "at least one"),
        (dict(class_labels=[1], num_inference_steps=0), ">= 1"),
        (dict(class_labels=[1], output_type="latent"), "output_type"),
        (dict(class_labels=[1], guidance_scale=-1.0), "guidance_scale"),
    ],
)
def test_invalid_inputs_raise(pipe, kwargs, message):
    with pytest.raises(ValueError, match=message):
        pipe(**kwargs)


def test_missing_weights_name_path_and_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="runners.train_tiny") as err:
        load_tiny_dit(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(err.value)


def test_dit_initialisation():
    model = build_tiny_dit_transformer()
    assert model.config.num_embeds_ada_norm == 10 and model.config.out_channels == 1
    for block in model.transformer_blocks:
        assert not block.norm1.linear.weight.any() and not block.norm1.linear.bias.any()
        assert block.norm1.emb.class_embedder.embedding_table.num_embeddings == NULL_CLASS + 1
    for layer in (model.proj_out_1, model.proj_out_2):
        assert not layer.weight.any() and not layer.bias.any()
    assert any(p.any() for p in model.transformer_blocks[0].attn1.parameters())  # the rest is not zeroed
    x = torch.randn(2, 1, 16, 16)
    out = model(x, timestep=torch.tensor([500.0, 10.0]), class_labels=torch.tensor([3, NULL_CLASS])).sample
    assert out.shape == x.shape and not out.any()  # zero final layer: the untrained model predicts 0
    # a random-weight replica skips the DiT initialisation, so its blocks do something
    replica = build_tiny_dit_transformer(dit_init=False)
    assert replica.proj_out_2.weight.any() and replica.transformer_blocks[0].norm1.linear.weight.any()
    # train mode must not drop labels by itself (the training loop does, once per sample)
    run = lambda: replica(x, timestep=torch.tensor([500.0, 10.0]), class_labels=torch.tensor([3, 4])).sample
    assert replica.training and torch.equal(run(), run())


def test_digits_split_and_metrics():
    train_x, train_y = digits.load_split("train")
    test_x, test_y = digits.load_split("test")
    all_x, _ = digits.load_split("all")
    assert len(train_x) + len(test_x) == len(all_x) == 1797 and train_x.shape[1:] == (16, 16)
    assert 0.0 <= all_x.min() and all_x.max() <= 1.0
    train_idx, test_idx = digits._split_indices()
    assert not set(train_idx) & set(test_idx)
    assert np.array_equal(digits.load_split("train")[1], train_y)
    assert digits.accuracy(test_x, test_y) > 0.95  # held-out accuracy of the reference classifier
    assert np.array_equal(digits.classify(test_x[:, None]), digits.classify(test_x))  # (N,1,16,16) accepted
    floor = digits.real_vs_real_frechet()
    noise = np.random.default_rng(0).random((500, 16, 16), dtype=np.float32)
    assert 0 < floor < 1.0 < digits.frechet_distance(noise, all_x)
    assert digits.frechet_distance(test_x, test_x) == pytest.approx(0.0, abs=1e-6)
    x, y = digits.training_tensors()
    assert torch.equal(y, torch.from_numpy(train_y)) and x.shape == (len(train_x), 1, 16, 16)
    assert -1.0 <= x.min() and x.max() <= 1.0
    with pytest.raises(ValueError, match="shaped"):
        digits.classify(np.zeros((3, 8, 8)))


@pytest.mark.slow  # a training subprocess, 13 s: a development tool, not a user path; keeps the default suite in budget
def test_training_runner_smoke(tmp_path):
    out = tmp_path / "weights"
    cmd = [
        sys.executable, "-m", "runners.train_tiny", "iterations=3", "batch_size=8", "warmup_iterations=1",
        f"output_dir={out}", f"hydra.run.dir={tmp_path / 'run'}", "eval_samples=20", "eval_steps=2",
    ]  # fmt: skip
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "uncached accuracy over 20 samples" in result.stderr + result.stdout
    pipe = load_tiny_dit(out)
    pipe.set_progress_bar_config(disable=True)
    assert _draw(pipe, 0, steps=2).shape == (3, 1, 16, 16)
    # 3 iterations moved the EMA weights away from the zero-initialised output layer
    assert pipe.transformer.proj_out_2.weight.any()
