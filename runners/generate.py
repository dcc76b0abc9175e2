"""Generate with a cache setting and measure it against the uncached run.

    python -m runners.generate                                   # embedded tiny DiT, DBCache, baseline alongside
    python -m runners.generate model=flux model.source=replica cache=dbcache cache.Fn=8
    python -m runners.generate --multirun cache.residual_diff_threshold=0.05,0.1,0.2
    python -m runners.generate sweep=threshold                   # conf/sweep/: threshold, fn_bn_grid, algorithms, tune
    python -m runners.generate compile=regional                  # compiled blocks, eager cache decisions
    torchrun --nproc_per_node=2 -m runners.generate model=flux model.source=replica parallel=ulysses

Each run writes image.png, baseline.png and stats.json into its Hydra output directory; a sweep ends with
summary.csv, summary.md, pareto.png and grid.png (runners/callbacks.py). In a sweep a failing job is recorded
(``status: failed``) and the others go on; a single run that fails exits non-zero.
"""

import atexit
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from runners.conf_store import register_configs
from cachedit.harness.runs import run_generation, shared_output_dir, write_failure
from cachedit.harness.tuning import sweeper_value
from runners.overrides import check_overrides

register_configs()
log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path="../conf", config_name="generate")
def main(config: DictConfig) -> dict | float:
    """The stats dict; under ``sweep=tune`` the objective as a float (what Hydra's Optuna sweeper reads)."""
    hydra_config = HydraConfig.get()
    output_dir = Path(hydra_config.runtime.output_dir)
    multirun = hydra_config.mode == RunMode.MULTIRUN
    overrides = list(hydra_config.overrides.task)
    job = {
        "job": {"num": int(OmegaConf.select(hydra_config, "job.num", default=0)), "dir": str(output_dir)},
        "choices": {k: v for k, v in hydra_config.runtime.choices.items() if not k.startswith("hydra/")},
    }
    if not multirun and (output_dir / "stats.json").exists():  # a single run never overwrites an earlier one
        raise FileExistsError(f"`{output_dir}` already holds an earlier run's stats.json; choose another hydra.run.dir.")
    container = None
    try:
        container = OmegaConf.to_container(config, resolve=True, enum_to_str=True)
        run = OmegaConf.to_object(config)  # typed dataclasses; __post_init__ validates ranges
        output_dir = shared_output_dir(run, output_dir)  # under torchrun: rank 0's, so other ranks report there
        baselines = Path(hydra_config.sweep.dir) / "baselines" if multirun else None  # one baseline per sweep
        stats = run_generation(run, output_dir, container, overrides, extra=job, baseline_dir=baselines)
    except Exception as error:  # BasicLauncher runs every job in this process: record the failure and go on
        stats = write_failure(error, output_dir, container, overrides, extra=job)
        if not multirun:
            raise  # a single run with a bad setting fails loudly (non-zero exit)
        log.exception(f"Job {job['job']['num']} failed ({' '.join(overrides)}); recorded in {output_dir}/stats.json")
    if config.get("tune") is not None:
        return sweeper_value(stats, OmegaConf.to_object(config.tune))
    return stats


def _quiet_nonzero_rank(argv: list[str]) -> list[str]:
    """Under torchrun only rank 0 writes: the other ranks keep Hydra's config copy and log file to themselves, and
    run in a temporary directory removed at exit. Each rank resolves `${unique_dir:...}` on its own, so a non-zero
    rank given the default run dir would claim (and leave empty) a `_1` directory, or take the one rank 0 meant to
    use; its failure report goes to rank 0's directory instead (`shared_output_dir`, `write_failure`)."""
    rank = int(os.environ.get("RANK", "0"))
    if rank == 0:
        return argv
    scratch = tempfile.mkdtemp(prefix=f"cachedit-rank{rank}-")
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    argv = [arg for arg in argv if not arg.lstrip("+").startswith("hydra.run.dir=")]
    return [*argv, f"hydra.run.dir={scratch}", "hydra.output_subdir=null", "hydra/job_logging=stdout"]


def cli() -> None:
    """``python -m runners.generate ...``: check the overrides, then run."""
    check_overrides(sys.argv[1:])
    sys.argv = _quiet_nonzero_rank(sys.argv)
    main()


if __name__ == "__main__":
    cli()
