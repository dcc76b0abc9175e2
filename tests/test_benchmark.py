"""The side-by-side benchmark: one row per setting plus the baseline, exact where nothing is skipped."""

import math

from cachedit import DBCacheConfig, RunConfig
from cachedit.benchmark import BASELINE, markdown, run_benchmark
from cachedit.configs import ModelConfig


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
    assert markdown(list(table.values())).count("\n") == 4  # header, rule, three rows
