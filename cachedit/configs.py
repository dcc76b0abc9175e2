"""Typed configuration schemas.

Every Hydra group option (``conf/<group>/*.yaml``) extends one of these dataclasses, so a misspelt key or a value
of the wrong type fails when Hydra composes, and ``OmegaConf.to_object`` runs ``__post_init__``, where ranges are
checked. The same classes are the plain-Python API: ``cachedit.enable_cache(pipe, taylorseer=TaylorSeerConfig(order=1))``.
The cache schemas live with their technique, in :mod:`cachedit.caches`. Every
``__post_init__`` starts with :func:`cachedit.config_types.check_types`, so a Python object or a ``load_config``
dict is held to the field types too (``"false"`` is no bool, ``2.5`` no int), before any range check.

Only ``int``/``float``/``bool``/``str``/``Enum``/``X | None``/lists/dicts are used: OmegaConf rejects
``torch.dtype`` and ``Literal``, so dtypes are strings converted in :mod:`cachedit.harness.pipelines`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

# Importing omegaconf here is fine (it does not import Hydra); MISSING marks the fields a YAML must fill.
from omegaconf import MISSING

from .config_types import check_types, convert, short_repr

__all__ = [
    "DEVICE_PATTERN", "require", "ForecastAxis", "TaylorSeerCacheType", "TaylorSeerConfig", "StepMaskName",
    "MaskedOffSteps", "StepMaskConfig", "CFGCacheConfig", "ModelSource", "TorchDtype", "ModelConfig", "TuneObjective",
    "SpeedupMetric", "TuneConfig", "CompileMode", "ParallelMode", "ParallelConfig", "DEFAULT_FEWER_STEPS",
    "RunConfig"
]

DEVICE_PATTERN = re.compile(r"auto|cpu|mps|(cuda|xpu)(:\d+)?")  # what torch.device accepts and cachedit runs on


def require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _enum(cls: type[Enum], value, name: str):
    """An enum member from the member or its exact value (plain-Python callers pass strings)."""
    return convert(value, cls, name)


################################################################################
#                     Calibrator, step mask and CFG routing                    #
################################################################################


class ForecastAxis(str, Enum):
    """What a calibrator's positions are, so what its forecast is polynomial in."""

    step = "step"  # the step index
    timestep = "timestep"  # the timestep the pipeline passes (the step index where it passes none)


class TaylorSeerCacheType(str, Enum):
    residual = "residual"  # forecast the skipped span's residual; estimate = input + forecast
    hidden_states = "hidden_states"  # forecast the span's output directly


@dataclass
class TaylorSeerConfig:
    """TaylorSeer (https://arxiv.org/abs/2503.06923): forecast a skipped span from the last computed steps instead
    of reusing it unchanged. Combines with DBCache (any Fn, Bn).

    Args:
        order (`int`, defaults to `0`): order of the forecast; `0` (``taylorseer=none``) disables it. Order `n`
            is exact for features that are polynomials of degree <= n in the step index. Until `n + 1` steps have
            been computed it forecasts from those there are (order 0 after one), so any warmup works.
        cache_type (`TaylorSeerCacheType`, defaults to `residual`): forecast the residual or the hidden states.
        encoder (`bool`, defaults to `True`): forecast the encoder stream too (else it reuses its residual).
        differences_from_step (`int`, defaults to `2`): steps before this one enter the forecast only as values,
            never in a difference: the feature jumps over the first steps (from pure noise), and a slope through
            them misleads every later forecast (cache-dit builds no derivative before its third step either).
            `0` uses every computed step.
    """

    order: int = 0
    cache_type: TaylorSeerCacheType = TaylorSeerCacheType.residual
    encoder: bool = True
    differences_from_step: int = 2

    def __post_init__(self) -> None:
        check_types(self, "taylorseer")
        require(0 <= self.order <= 4, f"`taylorseer.order` must be in [0, 4] (0 disables TaylorSeer), got {self.order}.")
        require(self.differences_from_step >= 0, f"`taylorseer.differences_from_step` must be >= 0, got {self.differences_from_step}.")


class StepMaskName(str, Enum):
    none = "none"
    slow = "slow"  # 18 of 28 steps compute
    medium = "medium"  # 15 of 28
    fast = "fast"  # 11 of 28
    ultra = "ultra"  # 8 of 28
    custom = "custom"  # `compute_steps`


class MaskedOffSteps(str, Enum):
    """What the steps a step mask leaves off do (the YAML key is `scm.policy`, from cache-dit)."""

    dynamic = "dynamic"  # they ask the technique's decision
    static = "static"  # they always reuse


@dataclass
class StepMaskConfig:
    """Step computation mask (SCM): steps that must compute, from a named budget or an explicit list.

    Args:
        mask (`StepMaskName`, defaults to `none`): `slow`, `medium`, `fast`, `ultra` compute 18, 15, 11, 8 of 28
            steps (rescaled to the actual step count); `custom` computes `compute_steps`; `none` disables the mask.
        policy (`MaskedOffSteps`, defaults to `dynamic`): what masked-off steps do: `dynamic` asks the cache
            decision (threshold, caps), `static` always reuses the cache.
        compute_steps (`list[int]`, *optional*): 0-based steps that must compute, for `mask=custom`.
    """

    mask: StepMaskName = StepMaskName.none
    policy: MaskedOffSteps = MaskedOffSteps.dynamic
    compute_steps: list[int] | None = None

    def __post_init__(self) -> None:
        check_types(self, "scm")
        if self.mask == StepMaskName.custom:
            require(bool(self.compute_steps), "`scm.mask=custom` needs `scm.compute_steps`, e.g. [0,1,2,4,8,12,16,20].")
            require(min(self.compute_steps) >= 0, f"`scm.compute_steps` must be >= 0, got {self.compute_steps}.")
        else:
            require(self.compute_steps is None, f"`scm.compute_steps` is only used with `scm.mask=custom` (mask is {self.mask.value}).")


@dataclass
class CFGCacheConfig:
    """How guidance branches share cache state. Branches are told apart by the pipeline's ``cache_context`` name
    (`cond` / `uncond`), never by call parity. Pipelines that batch both branches in one call have one branch.

    Args:
        enable_separate_cfg (`bool`, defaults to `True`): one cache state per branch. `False` runs every call
            through a single state (each call counts as a step).
        cfg_compute_first (`bool`, defaults to `False`): `True` if the pipeline calls the unconditional branch
            first; the first branch leads when decisions are shared.
        cfg_diff_compute_separate (`bool`, defaults to `True`): each branch measures its own change. `False`: the
            second branch reuses the first branch's decision at the same step (less work, coupled branches).
    """

    enable_separate_cfg: bool = True
    cfg_compute_first: bool = False
    cfg_diff_compute_separate: bool = True

    def __post_init__(self) -> None:
        check_types(self, "cfg")
        require(
            self.enable_separate_cfg or self.cfg_diff_compute_separate,
            "`cfg.cfg_diff_compute_separate=false` shares decisions between separate branch states; it needs "
            "`cfg.enable_separate_cfg=true`.",
        )

    @property
    def leader(self) -> str:
        return "uncond" if self.cfg_compute_first else "cond"


################################################################################
#                              Model and run                                   #
################################################################################


class ModelSource(str, Enum):
    hub = "hub"  # from_pretrained(repo_id), or model.path when set
    replica = "replica"  # the same diffusers classes, scaled down, seeded random weights
    embedded = "embedded"  # the weights shipped in this repository


class TorchDtype(str, Enum):
    float32 = "float32"
    float16 = "float16"
    bfloat16 = "bfloat16"


@dataclass
class ModelConfig:
    """What to load and how to call it.

    Args:
        name (`str`): zoo model name, e.g. `flux`, `pixart_alpha`, `tiny_dit` (see ``cachedit.zoo.entries.MODELS``).
        repo_id (`str`, *optional*): the real checkpoint on the hub.
        source (`ModelSource`, defaults to `hub`): `hub`, `replica` or `embedded`.
        path (`str`, *optional*): a local ``save_pretrained`` directory; loaded instead of `repo_id`.
        replica (`dict`, defaults to `{}`): overrides of the replica's transformer config (e.g. `num_layers`).
        torch_dtype (`TorchDtype`, *optional*): `float32`, `float16` or `bfloat16`; by default bfloat16 on CUDA and
            float32 on CPU (where bfloat16 kernels are slow).
        device (`str`, defaults to `"auto"`): `auto`, `cpu`, `cuda`, `cuda:1`, ...
        num_images (`int`, defaults to `1`): images per prompt, or per class label.
    """

    name: str = MISSING
    repo_id: str | None = None
    source: ModelSource = ModelSource.hub
    path: str | None = None
    torch_dtype: TorchDtype | None = None  # None: bfloat16 on CUDA, float32 on CPU
    device: str = "auto"  # auto: cuda when available, else cpu
    num_inference_steps: int = 28
    guidance_scale: float | None = None
    height: int | None = None
    width: int | None = None
    prompt: str | None = None
    negative_prompt: str | None = None
    class_labels: list[int] | None = None
    num_images: int = 1
    replica: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_types(self, "model")
        require(self.num_inference_steps >= 1, f"`model.num_inference_steps` must be >= 1, got {self.num_inference_steps}.")
        require(self.num_images >= 1, f"`model.num_images` must be >= 1, got {self.num_images}.")
        require(
            DEVICE_PATTERN.fullmatch(self.device) is not None,
            f"`model.device` must be auto, cpu, mps, cuda[:N] or xpu[:N], got `{self.device}`.",
        )
        for side in ("height", "width"):
            value = getattr(self, side)
            require(value is None or value > 0, f"`model.{side}` must be positive, got {value}.")


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


################################################################################
#                          Compile and parallelism                             #
################################################################################


class CompileMode(str, Enum):
    none = "none"  # eager
    regional = "regional"  # each repeated block's own forward; cache decisions stay eager (recommended)
    full = "full"  # the whole transformer; only without cache hooks (an error names `regional` otherwise)


class ParallelMode(str, Enum):
    none = "none"
    ulysses = "ulysses"  # all-to-all over heads; runs on CPU/gloo
    ring = "ring"  # K/V passed around a ring; needs an attention backend that returns the LSE (not on CPU)


@dataclass
class ParallelConfig:
    """Context parallelism through diffusers' ``ContextParallelConfig`` (``parallel=ulysses``).

    Args:
        mode (`ParallelMode`, defaults to `none`): `ulysses`, `ring` or `none`.
        degree (`int`, defaults to `1`): ranks that share one sequence; must equal torchrun's ``--nproc_per_node``.
        timeout_s (`float`, defaults to `120.0`): collective timeout, so ranks that disagree fail instead of hanging.
    """

    mode: ParallelMode = ParallelMode.none
    degree: int = 1
    timeout_s: float = 120.0

    def __post_init__(self) -> None:
        check_types(self, "parallel")
        require(self.degree >= 1, f"`parallel.degree` must be >= 1, got {self.degree}.")
        require(
            self.mode != ParallelMode.none or self.degree == 1,
            f"`parallel.degree={self.degree}` needs `parallel=ulysses` or `parallel=ring`.",
        )
        require(self.timeout_s > 0, f"`parallel.timeout_s` must be > 0, got {self.timeout_s}.")


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
        from .caches import CACHE_CONFIGS, CacheConfig  # the cache schemas register there, and import this module

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
