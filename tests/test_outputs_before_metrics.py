"""A run saves its images and stats.json before any metric runs: a metric that exhausts memory loses nothing."""

import json

import pytest

from cachedit.harness import runs
from cachedit.caches import DBCacheConfig
from cachedit.zoo.model_config import ModelConfig
from cachedit.harness.run_config import RunConfig


def test_images_and_stats_are_on_disk_when_the_metrics_run(tmp_path, monkeypatch):
    seen = []

    def exhausted(reference, test):
        seen.append(sorted(p.name for p in tmp_path.iterdir()))
        raise MemoryError("SSIM of a long video")

    monkeypatch.setattr(runs, "fidelity", exhausted)
    model = ModelConfig(name="tiny_dit", source="embedded", num_inference_steps=4, class_labels=[3], num_images=1)
    run = RunConfig(model=model, cache=DBCacheConfig(Fn=1, Bn=0, max_warmup_steps=1))
    with pytest.raises(MemoryError):
        runs.run_generation(run, tmp_path)
    assert seen == [["baseline.png", "image.png", "stats.json"]]
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["status"] == "measuring" and stats["cache"]["steps"] == 4 and stats["speedup"] > 0
