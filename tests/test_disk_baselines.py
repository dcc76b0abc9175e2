"""A sweep directory's disk baselines are keyed by what determines them: changed weights or scheduler recompute."""

import torch

from cachedit.harness import runs
from cachedit.zoo.model_config import ModelConfig
from cachedit.harness.run_config import RunConfig
from cachedit.zoo.entries import get_entry
from cachedit.harness.pipelines import load_pipeline


def test_a_disk_baseline_is_reused_only_for_the_same_weights_and_scheduler(tmp_path, monkeypatch):
    run = RunConfig(model=ModelConfig(name="tiny_dit", source="embedded", num_inference_steps=2, num_images=1,
                                      class_labels=[0]))
    pipe = load_pipeline(run.model)
    pipe.set_progress_bar_config(disable=True)
    inputs = get_entry("tiny_dit").inputs(pipe, run.model)

    def source() -> str:
        monkeypatch.setattr(runs, "_BASELINES", {})  # each call is a fresh job process
        return runs._baseline(pipe, run, inputs, tmp_path)[1]

    assert [source(), source()] == ["computed", "disk"]
    weight, shift = next(pipe.transformer.parameters()), pipe.scheduler.config.get("shift", 1.0)
    original = weight.detach().clone()
    try:  # the pipeline is shared by every test in this process (load_pipeline's cache): put it back afterwards
        with torch.no_grad():
            weight.add_(1e-3)  # retrained weights, same config
        assert [source(), source()] == ["computed", "disk"]
        pipe.scheduler.register_to_config(shift=shift + 1.0)
        assert source() == "computed" and len(list(tmp_path.glob("*.npz"))) == 3
    finally:
        with torch.no_grad():
            weight.copy_(original)  # bit for bit (adding and subtracting 1e-3 would round)
        pipe.scheduler.register_to_config(shift=shift)
