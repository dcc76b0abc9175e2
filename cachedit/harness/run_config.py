"""The run schemas: what one ``runners.generate`` job runs (``RunConfig``, the root of ``conf/generate.yaml``) and what
``sweep=tune`` optimises (``TuneConfig``).

Harness schemas, not core ones: they bundle a zoo model with the core's cache, TaylorSeer, SCM, CFG, compile and
parallel configs, and only the harness, the server and the runners read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from omegaconf import MISSING

from ..config_types import check_types, short_repr
from ..caches import CACHE_CONFIGS, CacheConfig
from ..configs import (
    CFGCacheConfig,
    CompileMode,
    ParallelConfig,
    StepMaskConfig,
    StepMaskName,
    TaylorSeerConfig,
    require,
)
from ..zoo.model_config import ModelConfig

__all__ = ["DEFAULT_FEWER_STEPS", "RunConfig", "SpeedupMetric", "TuneConfig", "TuneObjective"]


class TuneObjective(str, Enum):
    psnr_at_speedup = "psnr_at_speedup"  # highest PSNR among settings at least `target_speedup` times faster
    speedup_above_psnr = "speedup_above_psnr"  # highest speedup among settings with PSNR >= `psnr_floor`


class SpeedupMetric(str, Enum):
    speedup = "speedup"  # measured wall time, uncached / cached (noisy on small CPU runs)
    ideal_speedup = "ideal_speedup"  # 1 / (1 - share of block computations skipped): deterministic


@dataclass
class TuneConfig:
    """What ``sweep=tune`` (Hydra's Optuna sweeper) optimises; each job returns the objective as a float.

    Args:
        objective (`TuneObjective`, defaults to `psnr_at_speedup`): `psnr_at_speedup` maximises PSNR against
            the uncached run among settings at least `target_speedup` times faster; `speedup_above_psnr`
            maximises the speedup among settings with PSNR >= `psnr_floor`. Infeasible settings score below
            every feasible one, closer misses higher, so the search is pulled towards the constraint.
        target_speedup (`float`, defaults to `1.5`): the speedup constraint of `psnr_at_speedup`.
        psnr_floor (`float`, defaults to `30.0`): the PSNR constraint (dB) of `speedup_above_psnr`.
        speedup_metric (`SpeedupMetric`, defaults to `ideal_speedup`): what the speedup of the objective counts:
            `ideal_speedup`, from the block executions skipped (deterministic), is the only one allowed. The measured
            speedup is reported next to it as a check: on short runs it is noise (a setting that skipped nothing
            measured 7.46x and won a tune).
        preset_name (`str`, *optional*): name of the winning preset; defaults to ``tuned_<model>_<cache>``.
    """

    objective: TuneObjective = TuneObjective.psnr_at_speedup
    target_speedup: float = 1.5
    psnr_floor: float = 30.0
    speedup_metric: SpeedupMetric = SpeedupMetric.ideal_speedup
    preset_name: str | None = None

    def __post_init__(self) -> None:
        check_types(self, "tune")
        require(
            self.speedup_metric == SpeedupMetric.ideal_speedup,
            "`tune.speedup_metric` must be `ideal_speedup`: tuning optimises counted work (block executions "
            "skipped), and the measured speedup is only a check (on short runs it is noise: a setting that skipped "
            f"nothing measured 7.46x). Got `{self.speedup_metric.value}`.",
        )
        require(self.target_speedup > 0, f"`tune.target_speedup` must be > 0, got {self.target_speedup}.")


# Fractions of the step count a sweep also runs uncached: dense where 35-45 dB usually lie (half to 9/10 of the steps).
DEFAULT_FEWER_STEPS = (0.25, 0.35, 0.5, 0.6, 0.7, 0.8, 0.9)


@dataclass
class RunConfig:
    """Root of ``conf/generate.yaml``.

    Args:
        seed (`int`, defaults to `0`): generator seed; the cached run and its baseline share it.
        compare_baseline (`bool`, defaults to `True`): also run uncached, and report speedup and fidelity against it.
        repeats (`int`, defaults to `1`): timed repeats of each run; the median is reported.
        save_images (`bool`, defaults to `True`): write the images next to ``stats.json``.
        tune (`TuneConfig`, *optional*): set by ``sweep=tune``; the runner then returns the objective (a float).
        compile (`CompileMode`, defaults to `none`): `regional` compiles each repeated block (see
            ``cachedit.compile``).
        parallel (`ParallelConfig`): context parallelism, chosen by the `parallel` group.
        fewer_steps (`list[float]`, *optional*): the honest reference every cache must beat: the same model run
            uncached with these fractions of `model.num_inference_steps` (each in (0, 1)), scored against the
            baseline like a cached run. `None` (the default) runs `DEFAULT_FEWER_STEPS` in a sweep (once per
            baseline, shared by its jobs) and nothing in a single run; `[]` runs none.
    """

    model: ModelConfig = MISSING
    cache: Any = MISSING  # NoCacheConfig | DBCacheConfig | DBPruneConfig, chosen by the `cache` group
    taylorseer: TaylorSeerConfig = field(default_factory=TaylorSeerConfig)
    cfg: CFGCacheConfig = field(default_factory=CFGCacheConfig)
    scm: StepMaskConfig = field(default_factory=StepMaskConfig)
    seed: int = 0
    compare_baseline: bool = True
    repeats: int = 1
    save_images: bool = True
    tune: TuneConfig | None = None
    compile: CompileMode = CompileMode.none
    parallel: ParallelConfig = field(default_factory=ParallelConfig)
    fewer_steps: list[float] | None = None

    def __post_init__(self) -> None:
        check_types(self)  # nested configs checked themselves when built
        require(
            self.cache == MISSING or isinstance(self.cache, CacheConfig),  # `Any` for OmegaConf: checked here
            f"`cache` must be a cache config ({', '.join(cls.__name__ for cls in CACHE_CONFIGS.values())}), "
            f"got {short_repr(self.cache)}.",
        )
        require(self.repeats >= 1, f"`repeats` must be >= 1, got {self.repeats}.")
        outside = [f for f in self.fewer_steps or [] if not 0 < f < 1]
        require(not outside, f"`fewer_steps` are fractions of `model.num_inference_steps` in (0, 1), got {outside}.")
        if self.scm.mask == StepMaskName.custom and not isinstance(self.model, str):  # checked before the baseline runs
            steps = self.model.num_inference_steps
            outside = [step for step in self.scm.compute_steps if step >= steps]
            require(not outside, f"`scm.compute_steps` {outside} lie beyond `model.num_inference_steps`={steps} (0-based).")
