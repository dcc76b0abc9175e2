"""Fit Forecast Cache schedules by calibration (cachedit.harness.calibrate) and write one preset per step budget.

    python -m runners.calibrate                                      # embedded model, budgets 5..14 of 28 steps
    python -m runners.calibrate model=tiny_flux budgets=[6,8,10]

Calibrates on `seed` (default 1) with the model's own call (`model.num_images` per class or prompt), writes
`calibration.md` and `forecast_<budget>.yaml` (paste one into conf/preset/<model>_forecast.yaml) to the run dir.
"""

import sys
from pathlib import Path

import hydra
import numpy as np
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from cachedit import disable_cache, enable_cache
from cachedit.harness.calibrate import fit_compute_steps
from runners.conf_store import register_configs
from cachedit.zoo.entries import get_entry
from cachedit.harness.pipelines import load_pipeline
from runners.overrides import check_overrides

register_configs()


@hydra.main(version_base="1.3", config_path="../conf", config_name="calibrate")
def main(config: DictConfig) -> None:
    model, base = OmegaConf.to_object(config.model), OmegaConf.to_object(config.cache)
    budgets = sorted(set(config.budgets))
    if not budgets or not all(1 <= b <= model.num_inference_steps for b in budgets):
        raise SystemExit(f"`budgets` {budgets} must be computed-step counts in [1, {model.num_inference_steps}].")
    entry = get_entry(model.name)
    pipe = load_pipeline(model)
    pipe.set_progress_bar_config(disable=True)
    inputs = entry.inputs(pipe, model)

    def generate(cache_config):
        if cache_config is not None:
            enable_cache(pipe, cache_config)
        try:
            result = pipe(**inputs, generator=torch.Generator().manual_seed(config.seed))
        finally:
            if cache_config is not None:
                disable_cache(pipe)
        return np.asarray(getattr(result, entry.output), dtype=np.float32)

    found = fit_compute_steps(generate, model.num_inference_steps, budgets, base)
    output_dir = Path(HydraConfig.get().runtime.output_dir)
    lines = ["| computed steps | ideal speedup | calibration PSNR (dB) | compute_steps |", "|---|---|---|---|"]
    for budget, (steps, value) in sorted(found.items()):
        lines.append(f"| {budget} | {model.num_inference_steps / budget:.2f}x | {value:.2f} | {steps} |")
        (output_dir / f"forecast_{budget}.yaml").write_text(
            f"# @package _global_\n# python -m runners.calibrate model={model.name} seed={config.seed}: calibration PSNR {value:.2f} dB\n"
            f"cache:\n  order: {base.order}\n  Fn: {base.Fn}\n  Bn: {base.Bn}\n"
            f"  compute_steps: {steps}\n  reference_steps: {model.num_inference_steps}\n"
        )
    (output_dir / "calibration.md").write_text("\n".join(lines) + "\n")
    print(f"model={model.name} seed={config.seed} order={base.order} Fn={base.Fn} Bn={base.Bn}\n" + "\n".join(lines) + f"\n-> {output_dir}")


if __name__ == "__main__":
    check_overrides(sys.argv[1:], "calibrate")
    main()
