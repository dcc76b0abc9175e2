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
    """bench=pareto: fronts of every method (cachedit.harness.pareto)."""
    from cachedit.harness import pareto
    from cachedit.zoo.entries import get_entry
    from cachedit.harness.pipelines import load_pipeline

    model = OmegaConf.to_object(config.model)
    settings = pareto.expand(OmegaConf.to_container(config.bench.methods))

    def compose_cachedit(overrides: list[str]):
        run = OmegaConf.to_object(compose("generate", overrides=[f"model={model.name}", *overrides]))
        return run.cache, {"taylorseer": run.taylorseer, "scm": run.scm, "cfg": run.cfg}

    entry = get_entry(model.name)
    pipe = load_pipeline(model)
    pipe.set_progress_bar_config(disable=True)
    inputs = entry.inputs(pipe, model)
    reference, outcomes = pareto.run_pareto(pipe, inputs, settings, compose_cachedit, config.seed, entry.output, config.repeats)
    quality = (lambda images: entry.quality(images, inputs)) if entry.quality is not None else None
    table = pareto.rows(reference, outcomes, quality)
    output_dir = Path(HydraConfig.get().runtime.output_dir)
    title = f"{model.name}, {model.num_inference_steps} steps, seed {config.seed}, repeats {config.repeats}"
    with open(output_dir / "pareto.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for row in table for k in row)))
        writer.writeheader()
        writer.writerows(table)
    (output_dir / "pareto.md").write_text(pareto.markdown(table, title))
    pareto.plot(table, output_dir / "pareto.png", title)
    print(pareto.markdown(table, title) + f"-> {output_dir}")


if __name__ == "__main__":
    check_overrides(sys.argv[1:], "bench")
    main()
