"""The README's `BlockAdapter` examples run as written on the FLUX replica (the architecture they name)."""

import ast
import re
from pathlib import Path

import numpy as np
import pytest

import cachedit
from cachedit.zoo.model_config import ModelConfig
from cachedit.harness.runs import generate
from cachedit.zoo.entries import get_entry
from cachedit.harness.pipelines import load_pipeline

README = Path(__file__).resolve().parents[1] / "README.md"


def adapter_statements() -> list[str]:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    statements = [ast.get_source_segment(b, node) for b in blocks if "BlockAdapter(" in b for node in ast.parse(b).body]
    assert statements, "the README has no BlockAdapter example"
    return statements


@pytest.mark.parametrize("statement", adapter_statements())
def test_each_readme_block_adapter_example_caches_the_flux_replica(statement):
    model = ModelConfig(name="flux", source="replica", height=64, width=64, num_inference_steps=6)
    pipe, entry = load_pipeline(model), get_entry("flux")
    inputs = entry.inputs(pipe, model)
    pipe.set_progress_bar_config(disable=True)

    uncached = generate(pipe, inputs, seed=0, repeats=1, output=entry.output).images
    for threshold in (0.0, 1e9):  # 0: computes every step, exactly; 1e9: reuses every step after the warm-up
        config = cachedit.DBCacheConfig(Fn=1, Bn=0, residual_diff_threshold=threshold, max_warmup_steps=1)
        exec(statement, {"cachedit": cachedit, "pipe": pipe, "config": config})
        try:
            cached = generate(pipe, inputs, seed=0, repeats=1, output=entry.output).images
            stats = cachedit.summary(pipe)
        finally:
            cachedit.disable_cache(pipe)
        assert (stats["cached_steps"] > 0) == (threshold > 0), stats  # a wrong pattern fails the call instead
        assert np.array_equal(cached, uncached) == (threshold == 0)
