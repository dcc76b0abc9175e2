"""Benchmark cache settings side by side on one pipeline: medians of interleaved repeats, ratios to uncached.

    python -m runners.bench                                         # conf/bench/algorithms.yaml, embedded model
    python -m runners.bench bench=overhead repeats=5                # the FLUX replica, which the bench selects
    python -m runners.bench bench=peers                             # diffusers' built-in caches, cache-dit 1.5.3
    python -m runners.bench bench=pareto model.num_images=20        # every method's front vs fewer steps

Writes bench.md and bench.csv into the run directory and prints the table.
"""

import csv
import sys
from pathlib import Path

import hydra
from hydra import compose
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from cachedit.harness.benchmark import markdown, run_benchmark
from runners.conf_store import register_configs
from runners.overrides import check_overrides

register_configs()


def bench_settings(config: DictConfig) -> tuple[dict, dict]:
    """The bench's cachedit settings as RunConfigs, composed as `runners.generate` would, and its peer rows."""
    settings = {}
    for label, overrides in config.bench.settings.items():
        check_overrides(list(overrides), "generate")  # a bench's settings are overrides too: same check
        # The bench's model group option too, so its presets (conf/preset/<model>_<cache>.yaml) apply as in a run.
        setting = compose("generate", overrides=[f"model={config.model.name}", *overrides])
        setting.model, setting.seed = config.model, config.seed  # every setting runs on the bench's model
        settings[label] = OmegaConf.to_object(setting)
    peers = config.bench.get("peers")  # other caches' rows (cachedit.harness.peers); only the peers benches have them
    return settings, OmegaConf.to_container(peers) if peers is not None else {}


def write_tables(table: list[dict], output_dir: Path) -> None:
    (output_dir / "bench.md").write_text(markdown(table) + "\n")
    with open(output_dir / "bench.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)


@hydra.main(version_base="1.3", config_path="../conf", config_name="bench")
def main(config: DictConfig) -> None:
    if "methods" in config.bench:
        return run_pareto_bench(config)
    settings, peers = bench_settings(config)
    table = run_benchmark(settings, repeats=config.repeats, peers=peers)
    output_dir = Path(HydraConfig.get().runtime.output_dir)
    write_tables(table, output_dir)
    print(f"model={config.model.name} ({config.model.source}) repeats={config.repeats}\n{markdown(table)}\n-> {output_dir}")


def run_pareto_bench(config: DictConfig) -> None:
    """bench=pareto: fronts of every method (cachedit.harness.pareto), held out (cachedit.harness.heldout): schedules
    calibrated on `bench.calibration.seeds`, every method evaluated on each of `bench.conditions`."""
    import dataclasses

    from cachedit.harness import heldout, pareto
    from cachedit.harness.pipelines import load_pipeline
    from cachedit.zoo.entries import get_entry

    model = OmegaConf.to_object(config.model)
    bench = OmegaConf.to_container(config.bench)
    calibration = dict(bench.get("calibration") or {})
    unknown = sorted(set(calibration) - {"seeds", "num_images", "powers"})
    if unknown:
        raise SystemExit(f"Error: `bench.calibration` has unknown keys {unknown}; allowed: num_images, powers, seeds.")
    seeds = list(calibration.get("seeds") or [])
    methods = bench["methods"]
    calibrating = [m for m, spec in methods.items() if "calibrate" in spec]
    if calibrating and not seeds:
        raise SystemExit(f"Error: methods {calibrating} calibrate, but `bench.calibration.seeds` names no seed to fit on.")
    try:  # every spec and condition checked before any work
        pareto.expand({m: {k: v for k, v in spec.items() if k != "calibrate"} for m, spec in methods.items()})
        conditions = heldout.conditions(bench.get("conditions"), model, config.seed, seeds)
    except ValueError as error:
        raise SystemExit(f"Error: {error}") from None

    def compose_cachedit(overrides: list[str]):
        run = OmegaConf.to_object(compose("generate", overrides=[f"model={model.name}", *overrides]))
        return run.cache, {"taylorseer": run.taylorseer, "scm": run.scm, "cfg": run.cfg}

    entry = get_entry(model.name)
    pipe = load_pipeline(model)
    pipe.set_progress_bar_config(disable=True)
    output_dir = Path(HydraConfig.get().runtime.output_dir)
    report = [f"# bench=pareto, {model.name}: held out" if bench.get("conditions") else f"# bench=pareto, {model.name}"]
    if calibrating:
        call = entry.inputs(pipe, dataclasses.replace(model, num_images=calibration.get("num_images", model.num_images)))
        methods, fits = heldout.calibrated_methods(pipe, call, methods, compose_cachedit, seeds, entry.output,
                                                   tuple(calibration.get("powers", (0.25,))))
        images = next(iter(fits.values()))[1].images
        report += ["", f"Calibrated once, on seeds {seeds} ({images} images each, "
                   f"{model.num_inference_steps} steps, guidance {model.guidance_scale}); no condition below evaluates "
                   "these seeds.", "", "| method | pipeline calls | block executions | uncached generations | seconds | schedules |",
                   "|---|---|---|---|---|---|"]
        for method, (found, cost) in fits.items():
            report.append(f"| {method} | {cost.pipeline_calls} | {cost.block_executions} | {cost.generations:.2f} | "
                          f"{cost.seconds:.1f} | " + ", ".join(str(f.compute_steps) for _, f in sorted(found.items())) + " |")
    quality_of = entry.quality
    by_condition, rows = {}, []
    for condition in conditions:
        settings = pareto.expand(heldout.scaled_methods(methods, model.num_inference_steps, condition.model.num_inference_steps))
        inputs = entry.inputs(pipe, condition.model)
        reference, outcomes = pareto.run_pareto(pipe, inputs, settings, compose_cachedit, condition.seed, entry.output,
                                                config.repeats)
        quality = (lambda images, inputs=inputs: quality_of(images, inputs)) if quality_of is not None else None
        table = pareto.rows(reference, outcomes, quality)
        by_condition[condition.name] = table
        rows += [{"condition": condition.name, **row} for row in table]
        title = (f"{condition.name}: {model.name}, {condition.model.num_inference_steps} steps, guidance "
                 f"{condition.model.guidance_scale}, seed {condition.seed}, repeats {config.repeats}")
        report += ["", pareto.markdown(table, title).replace("# ", "## ", 1)]
        slug = "" if len(conditions) == 1 else "_" + "".join(c if c.isalnum() else "_" for c in condition.name)
        pareto.plot(table, output_dir / f"pareto{slug}.png", title)
    report += heldout.margins_markdown(by_condition, set(calibrating), pareto.levels_table)
    edges = [f"{name}: {edge}" for name, table in by_condition.items() for edge in heldout.grid_edges(table, methods)]
    report += ["", "Grids: every method's best setting at 35-50 dB lies inside its grid." if not edges else
               "Grids too narrow (a peer's: the margin may be inflated; ours: our front may be understated):", ""]
    report += [f"- {e}" for e in edges]
    with open(output_dir / "pareto.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for row in rows for k in row)))
        writer.writeheader()
        writer.writerows(rows)
    text = "\n".join(report) + "\n"
    (output_dir / "pareto.md").write_text(text)
    print(text + f"-> {output_dir}")


if __name__ == "__main__":
    check_overrides(sys.argv[1:], "bench")
    main()
