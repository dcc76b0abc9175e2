"""How well TaylorSeer would forecast the skipped span on a model, per order (order 0 = plain reuse).

    python -m runners.forecast                                   # embedded model
    python -m runners.forecast model=flux model.source=replica cache.Fn=1

Uses the same config as runners.generate (model, seed, cache.Fn / cache.Bn) and prints one line per gap.
"""

import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from runners.conf_store import register_configs
from cachedit.harness.diagnostics import forecast_errors, record_middle_residuals
from cachedit.zoo.entries import get_entry
from cachedit.harness.pipelines import load_pipeline
from runners.overrides import check_overrides

register_configs()


@hydra.main(version_base="1.3", config_path="../conf", config_name="generate")
def main(config: DictConfig) -> None:
    run = OmegaConf.to_object(config)
    pipe = load_pipeline(run.model)
    pipe.set_progress_bar_config(disable=True)
    inputs = get_entry(run.model.name).inputs(pipe, run.model)
    residuals = record_middle_residuals(pipe, inputs, run.seed, run.cache.Fn, run.cache.Bn)
    for gap in (1, 2, 3):
        errors = forecast_errors(residuals, gap=gap)
        table = ", ".join(f"order {order}: {error:.3f}" for order, error in errors.items())
        print(f"{run.model.name} F{run.cache.Fn}B{run.cache.Bn}, forecast {gap} step(s) ahead, mean relative L1 error: {table}")


if __name__ == "__main__":
    check_overrides(sys.argv[1:], "generate")
    main()
