"""Benchmark cache settings side by side on one pipeline: medians of interleaved repeats, ratios to uncached.

    python -m runners.bench                                         # conf/bench/algorithms.yaml, embedded model
    python -m runners.bench bench=overhead model=flux model.source=replica repeats=5
    python -m runners.bench bench=peers                             # diffusers' built-in caches, cache-dit 1.5.3

Writes bench.md and bench.csv into the run directory and prints the table.
"""

import csv
import sys
from pathlib import Path

import hydra
from hydra import compose
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from cachedit.benchmark import markdown, run_benchmark
from cachedit.conf_store import register_configs
from runners.overrides import check_overrides

register_configs()


@hydra.main(version_base="1.3", config_path="../conf", config_name="bench")
def main(config: DictConfig) -> None:
    settings = {}
    for label, overrides in config.bench.settings.items():
        check_overrides(list(overrides), "generate")  # a bench's settings are overrides too: same check
        # The bench's model group option too, so its presets (conf/preset/<model>_<cache>.yaml) apply as in a run.
        setting = compose("generate", overrides=[f"model={config.model.name}", *overrides])
        setting.model, setting.seed = config.model, config.seed  # every setting runs on the bench's model
        settings[label] = OmegaConf.to_object(setting)
    peers = OmegaConf.to_container(config.bench.get("peers", {}))  # other caches' rows (cachedit.peers)
    table = run_benchmark(settings, repeats=config.repeats, peers=peers)
    output_dir = Path(HydraConfig.get().runtime.output_dir)
    (output_dir / "bench.md").write_text(markdown(table) + "\n")
    with open(output_dir / "bench.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    print(f"model={config.model.name} ({config.model.source}) repeats={config.repeats}\n{markdown(table)}\n-> {output_dir}")


if __name__ == "__main__":
    check_overrides(sys.argv[1:], "bench")
    main()
