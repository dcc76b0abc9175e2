"""Generate with a cache setting and measure it against the uncached run.

    python -m runners.generate                                   # embedded tiny DiT, DBCache, baseline alongside
    python -m runners.generate model=flux model.source=replica cache=dbcache cache.Fn=8
    python -m runners.generate --multirun cache.residual_diff_threshold=0.05,0.1,0.2

Each run writes image.png, baseline.png and stats.json into its Hydra output directory.
"""

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from cachedit.conf_store import register_configs
from cachedit.experiment import run_generation
from runners.overrides import check_overrides

register_configs()


@hydra.main(version_base="1.3", config_path="../conf", config_name="generate")
def main(config: DictConfig) -> dict:
    run = OmegaConf.to_object(config)  # typed dataclasses; __post_init__ validates ranges
    hydra_config = HydraConfig.get()
    return run_generation(
        run,
        Path(hydra_config.runtime.output_dir),
        config=OmegaConf.to_container(config, resolve=True, enum_to_str=True),
        overrides=list(hydra_config.overrides.task),
    )


if __name__ == "__main__":
    check_overrides(sys.argv[1:])
    main()
