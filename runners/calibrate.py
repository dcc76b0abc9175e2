"""Fit Forecast Cache schedules by calibration (cachedit.harness.calibrate) and write one preset per step budget.

    python -m runners.calibrate model.num_images=1                   # embedded model, budgets 5..14 of 28 steps
    python -m runners.calibrate model=tiny_flux model.num_images=1 budgets=[8]

Records one uncached call per calibration seed (`seeds`, default 1 and 4), chooses each budget's schedules offline
from the forecast errors along those trajectories (one schedule per proxy power in `powers`, and the one the
uncalibrated default computes, even on the sampler's time), verifies them with
real runs and keeps the best.
Writes to the run dir `calibration.md` (the schedules and what the fit cost: pipeline calls, block executions,
seconds), `schedules.yaml` (every budget's schedule) and `forecast_<budget>.yaml`: a preset whose comment holds the
command that reproduces it byte for byte (copy it to conf/preset/<model>_forecast.yaml).
"""

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from cachedit.harness.calibrate import calibrate
from cachedit.harness.pipelines import load_pipeline
from cachedit.zoo.entries import get_entry
from runners.conf_store import register_configs
from runners.overrides import check_overrides

register_configs()


def preset_command(task_overrides: list[str], budget: int) -> str:
    """The command that fits only `budget`: each budget's fit is independent of the others, so this reproduces it."""
    kept = [o for o in task_overrides if not o.lstrip("+~").startswith("budgets=") and not o.startswith("hydra.")]
    return " ".join(["python -m runners.calibrate", *kept, f"budgets=[{budget}]"])


def preset_text(model, base, seeds: list[int], images: int, fit, command: str) -> str:
    steps, default = model.num_inference_steps, type(base)()
    # a preset sets only what differs from the schema's defaults (tests/test_conf_defaults.py)
    kept = [(key, getattr(base, key)) for key in ("order", "Fn", "Bn") if getattr(base, key) != getattr(default, key)]
    return (
        "# @package _global_\n"
        f"# python -m runners.generate model={model.name} cache=forecast   (applied automatically for this pair)\n"
        f"# Fitted by `{command}`\n"
        f"# (seeds {seeds}, {images} images each; recorded trajectories, steps chosen from forecast errors, best of the\n"
        f"# verified candidates): {fit.budget} of {steps} steps compute, {steps / fit.budget:.2f}x ideal, "
        f"calibration PSNR {fit.psnr:.2f} dB.\n"
        "cache:\n"
        + "".join(f"  {key}: {value}\n" for key, value in kept)
        + f"  compute_steps: {fit.compute_steps}\n"
        + (f"  reference_steps: {steps}\n" if steps != default.reference_steps else "")
    )


@hydra.main(version_base="1.3", config_path="../conf", config_name="calibrate")
def main(config: DictConfig) -> None:
    model, base = OmegaConf.to_object(config.model), OmegaConf.to_object(config.cache)
    seeds, budgets = list(config.seeds), sorted(set(config.budgets))
    entry = get_entry(model.name)
    pipe = load_pipeline(model)
    pipe.set_progress_bar_config(disable=True)
    call = entry.inputs(pipe, model)
    try:
        fits, cost = calibrate(pipe, call, seeds, budgets, base, output=entry.output, powers=list(config.powers),
                               max_generations=config.max_generations)
    except ValueError as error:
        raise SystemExit(f"Error: {error}") from None
    output_dir = Path(HydraConfig.get().runtime.output_dir)
    task = list(HydraConfig.get().overrides.task)
    steps = model.num_inference_steps
    lines = [
        f"# Calibration: {model.name}, {steps} steps, order {base.order}, seeds {seeds}",
        "",
        "| pipeline calls | block executions | = uncached generations of the calibration inputs | seconds |",
        "|---|---|---|---|",
        f"| {cost.pipeline_calls} | {cost.block_executions} | {cost.generations:.2f} | {cost.seconds:.1f} |",
        "",
        "| computed steps | ideal speedup | calibration PSNR (dB) | compute_steps | candidates verified (even or proxy power: PSNR) |",
        "|---|---|---|---|---|",
    ]
    schedules = []
    for budget, fit in sorted(fits.items()):
        verified = "; ".join(f"{c[0]} ({c[1]}: {c[2]:.2f} dB)" for c in fit.candidates)
        lines.append(f"| {budget} | {steps / budget:.2f}x | {fit.psnr:.2f} | {fit.compute_steps} | {verified} |")
        schedules.append(f"  - {fit.compute_steps}")
        (output_dir / f"forecast_{budget}.yaml").write_text(
            preset_text(model, base, seeds, cost.images, fit, preset_command(task, budget)))
    (output_dir / "calibration.md").write_text("\n".join(lines) + "\n")
    (output_dir / "schedules.yaml").write_text(
        f"# python -m runners.calibrate {' '.join(task)}\ncompute_steps:\n" + "\n".join(schedules) + "\n")
    print("\n".join(lines) + f"\n-> {output_dir}")


if __name__ == "__main__":
    check_overrides(sys.argv[1:], "calibrate")
    main()
