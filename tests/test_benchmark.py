"""The side-by-side benchmark: one row per setting plus the baseline, exact where nothing is skipped."""

import math

import pytest

from cachedit import DBCacheConfig
from cachedit.harness.run_config import RunConfig
from cachedit.harness.benchmark import BASELINE, markdown, run_benchmark
from cachedit.zoo.model_config import ModelConfig
from cachedit.harness.pipelines import load_pipeline


def test_benchmark_rows_ratios_and_exactness():
    model = ModelConfig(name="tiny_dit", source="replica", torch_dtype="float32", num_inference_steps=6, class_labels=[1, 2])
    settings = {
        "exact": RunConfig(model=model, cache=DBCacheConfig(Fn=1, residual_diff_threshold=0)),
        "cached": RunConfig(model=model, cache=DBCacheConfig(Fn=1, residual_diff_threshold=10.0, max_warmup_steps=2)),
    }
    table = {row["setting"]: row for row in run_benchmark(settings, repeats=2)}
    assert list(table) == [BASELINE, "exact", "cached"]
    assert table[BASELINE]["speedup"] == 1 and math.isinf(table["exact"]["psnr"]) and table["exact"]["max_abs_diff"] == 0
    assert table["cached"]["cached_steps"] == "4/6" and table["cached"]["skipped_share"] > 0
    assert math.isfinite(table["cached"]["psnr"])
    rows = [line for line in markdown(list(table.values())).split("\n") if line.startswith("|")]
    assert len(rows) == 5  # header, rule, three rows; notes may follow (a measured speedup above the ideal one)


def test_peer_rows_run_diffusers_caches_on_the_same_pipeline_and_leave_it_clean():
    model = ModelConfig(name="tiny_dit", source="replica", torch_dtype="float32", num_inference_steps=6, class_labels=[1, 2])
    settings = {"cachedit F1B0 R0.2": RunConfig(model=model, cache=DBCacheConfig(Fn=1, residual_diff_threshold=0.2))}
    peers = {"diffusers FBC 0": {"peer": "diffusers_fbc", "threshold": 0.0},
             "diffusers FBC 10": {"peer": "diffusers_fbc", "threshold": 10.0}}
    table = {row["setting"]: row for row in run_benchmark(settings, repeats=1, peers=peers)}
    assert list(table) == [BASELINE, "cachedit F1B0 R0.2", "diffusers FBC 0", "diffusers FBC 10"]
    assert math.isinf(table["diffusers FBC 0"]["psnr"]) and table["diffusers FBC 0"]["ideal_speedup"] == "-"
    assert table["diffusers FBC 10"]["max_abs_diff"] > 0  # it cached
    transformer = load_pipeline(model).transformer
    assert not any(m._diffusers_hook.hooks for m in transformer.modules() if hasattr(m, "_diffusers_hook"))


def test_an_unknown_peer_is_refused_before_any_work():
    model = ModelConfig(name="tiny_dit", source="replica", torch_dtype="float32", num_inference_steps=6)
    with pytest.raises(ValueError, match=r"Peer row `x`: `peer: fbc` is not a known peer. Known: diffusers_fbc, "):
        run_benchmark({"a": RunConfig(model=model)}, peers={"x": {"peer": "fbc"}})
