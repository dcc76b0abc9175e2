"""Typed configuration schemas.

Every Hydra group option (``conf/<group>/*.yaml``) extends one of these dataclasses, so a misspelt key or a value
of the wrong type fails when Hydra composes, and ``OmegaConf.to_object`` runs ``__post_init__``, where ranges are
checked. The same classes are the plain-Python API: ``cachedit.enable_cache(pipe, taylorseer=TaylorSeerConfig(order=1))``.
Every ``__post_init__`` starts with :func:`cachedit.config_types.check_types`, so a Python object or a
``load_config`` dict is held to the field types too (``"false"`` is no bool, ``2.5`` no int), before any range check.

Only ``int``/``float``/``bool``/``str``/``Enum``/``X | None``/lists/dicts are used: OmegaConf rejects
``torch.dtype`` and ``Literal``.

These are the core's schemas other than the caches' (TaylorSeer, SCM, CFG, parallel, and the compile modes); the
cache schemas live with their technique (:mod:`cachedit.caches`), the model schema in the zoo
(:mod:`cachedit.zoo.model_config`), the run and tune schemas in the harness (:mod:`cachedit.harness.run_config`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from .config_types import check_types

__all__ = [
    "require", "ForecastAxis", "TaylorSeerCacheType", "TaylorSeerConfig", "StepMaskName", "MaskedOffSteps",
    "StepMaskConfig", "CFGCacheConfig", "CompileMode", "ParallelMode", "ParallelConfig",
]


def require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


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
