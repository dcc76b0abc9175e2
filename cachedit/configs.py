"""Typed configuration schemas.

Every Hydra group option (``conf/<group>/*.yaml``) extends one of these dataclasses, so a misspelt key or a value
of the wrong type fails when Hydra composes, and ``OmegaConf.to_object`` runs ``__post_init__``, where ranges are
checked. The same classes are the plain-Python API: ``cachedit.enable_cache(pipe, DBCacheConfig(Fn=8))``. Every
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

from .config_types import check_types, convert, field_types, short_repr

__all__ = [
    "DEVICE_PATTERN", "require", "CACHE_CONFIGS", "CacheConfig", "NoCacheConfig", "DBCacheConfig", "DBPruneConfig",
    "ForecastSpacing", "ForecastCacheConfig", "TaylorSeerCacheType", "TaylorSeerConfig", "StepMaskName", "StepMaskPolicy",
    "StepMaskConfig", "CFGCacheConfig", "ModelSource", "TorchDtype", "ModelConfig", "TuneObjective",
    "SpeedupMetric", "TuneConfig", "CompileMode", "ParallelMode", "ParallelConfig", "DEFAULT_FEWER_STEPS",
    "RunConfig"
]

DEVICE_PATTERN = re.compile(r"auto|cpu|mps|(cuda|xpu)(:\d+)?")  # what torch.device accepts and cachedit runs on


def _nearest(x: float) -> int:
    """The integer nearest to `x >= 0`, halves up (Python's `round` takes halves to even, 2.5 -> 2, 3.5 -> 4)."""
    return int(x + 0.5)


def require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _check_cap(name: str, value: int) -> None:
    require(value == -1 or value >= 0, f"`{name}` must be -1 (no limit) or >= 0, got {value}.")


def _enum(cls: type[Enum], value, name: str):
    """An enum member from the member or its exact value (plain-Python callers pass strings)."""
    return convert(value, cls, name)


################################################################################
#                                    Caches                                    #
################################################################################


CACHE_CONFIGS: dict[str, type] = {}  # `name` -> config class; every cache policy's config registers itself here


class CacheConfig:
    """Base of the cache configs: what a policy's config says about itself, so runs, sweeps, stats and benchmarks
    need no list of policies. Defining a subclass registers it under its `name` default: the YAML option
    ``cache=<name>``, the `name` key of ``cachedit.load_config``. Its engine registers in `cachedit.hooks.policies`.
    """

    name: str

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        CACHE_CONFIGS[cls.name] = cls

    @classmethod
    def from_dict(cls, values: dict) -> "CacheConfig":
        """The config a `stats.json` or container dict describes (its `name` picks the class)."""
        config_cls = CACHE_CONFIGS[values["name"]]
        return config_cls(**{k: v for k, v in values.items() if k in config_cls.__dataclass_fields__})

    def check_block_count(self, num_blocks: int, where: str = "the transformer") -> None:
        """Raise if a stack of `num_blocks` blocks leaves this policy nothing to cache."""
        require(
            self.Fn + self.Bn < num_blocks,
            f"`Fn` + `Bn` = {self.Fn + self.Bn} leaves no block to cache among the {num_blocks} blocks of {where}; "
            f"allowed: Fn + Bn <= {num_blocks - 1}.",
        )

    def strify(self) -> str:
        """Short run name, e.g. ``DBCache_F8B0_W8_M-1_MC-1_R0.08``."""
        raise NotImplementedError

    def series(self) -> str:
        """The knobs that make one line of a sweep's plot (settings on it differ only in `setting()`)."""
        return f"F{self.Fn}B{self.Bn}"

    def setting(self) -> str:
        """The setting within its series, e.g. ``R0.08`` (a threshold) or the run name (a schedule)."""
        return self.strify()


@dataclass
class NoCacheConfig(CacheConfig):
    """Caching disabled: the pipeline runs exactly as diffusers ships it (``cache=none``)."""

    name: str = "none"

    def __post_init__(self) -> None:
        check_types(self)

    def check_block_count(self, num_blocks: int, where: str = "the transformer") -> None:
        pass

    def strify(self) -> str:
        return "NoCache"

    def series(self) -> str:
        return ""

    def setting(self) -> str:
        return ""


@dataclass
class DBCacheConfig(CacheConfig):
    r"""Dual-Block Cache: compute the first `Fn` and last `Bn` blocks every step, skip the middle when the first
    blocks' residual barely changed. FBCache (First Block Cache, https://github.com/chengzeyi/ParaAttention) is
    ``Fn=1, Bn=0``. Definitions: DESIGN.md §3.

    Args:
        Fn (`int`, defaults to `8`):
            Leading blocks computed at every step; their residual is the change signal. More blocks give a more
            reliable signal and better fidelity, fewer give more speed.
        Bn (`int`, defaults to `0`):
            Trailing blocks computed at every step to correct the cached estimate.
        residual_diff_threshold (`float`, defaults to `0.08`):
            Relative L1 change of the first-`Fn` residual (``mean|r_t - r_ref| / mean|r_ref|``, with `r_ref` the
            residual of the last step that computed the middle blocks) below which the middle is skipped. `0`
            never skips; larger values skip more and cost fidelity.
        max_warmup_steps (`int`, defaults to `8`):
            Steps (per guidance branch) that always compute, at the start of each pipeline call.
        max_cached_steps (`int`, defaults to `-1`):
            Most steps that may be cached in one pipeline call; `-1` means no limit.
        max_continuous_cached_steps (`int`, defaults to `-1`):
            Most consecutive cached steps before a forced compute; `-1` means no limit.
        Bn_compute_blocks_ids (`list[int]`, *optional*):
            Indices into the last `Bn` blocks (0 .. Bn-1) that always compute. The other trailing blocks reuse their
            own cached residual on cached steps unless the change exceeds `non_compute_blocks_diff_threshold`.
            `None` means all `Bn` blocks always compute.
        non_compute_blocks_diff_threshold (`float`, defaults to `0.08`):
            Change above which trailing blocks outside `Bn_compute_blocks_ids` compute even on cached steps.
        cache_encoder (`bool`, defaults to `True`): on a skipped span, move the encoder (text) stream of
            dual-stream blocks (FLUX, SD3, ...) by its cached residual too. `False` leaves the text tokens as they
            entered the span. Only the image tokens leave the transformer, so this changes the output only
            through the trailing `Bn` blocks: with `Bn=0` both give the same images.
        per_transformer (`dict`, defaults to `{}`): knob overrides per transformer of a multi-transformer
            pipeline, e.g. Wan 2.2 ``{transformer_2: {max_warmup_steps: 2, residual_diff_threshold: 0.12}}``.
    """

    name: str = "dbcache"
    Fn: int = 8
    Bn: int = 0
    residual_diff_threshold: float = 0.08
    max_warmup_steps: int = 8
    max_cached_steps: int = -1
    max_continuous_cached_steps: int = -1
    Bn_compute_blocks_ids: list[int] | None = None
    non_compute_blocks_diff_threshold: float = 0.08
    cache_encoder: bool = True
    per_transformer: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_types(self)  # before the range checks below compare anything
        require(self.Fn >= 1, f"`Fn` must be >= 1 (the change signal needs at least one block), got {self.Fn}.")
        require(self.Bn >= 0, f"`Bn` must be >= 0, got {self.Bn}.")
        require(
            self.residual_diff_threshold >= 0,
            f"`residual_diff_threshold` must be >= 0 (0 disables skipping), got {self.residual_diff_threshold}.",
        )
        require(self.max_warmup_steps >= 0, f"`max_warmup_steps` must be >= 0, got {self.max_warmup_steps}.")
        _check_cap("max_cached_steps", self.max_cached_steps)
        _check_cap("max_continuous_cached_steps", self.max_continuous_cached_steps)
        require(
            self.non_compute_blocks_diff_threshold >= 0,
            f"`non_compute_blocks_diff_threshold` must be >= 0, got {self.non_compute_blocks_diff_threshold}.",
        )
        if self.Bn_compute_blocks_ids is not None:
            ids = list(self.Bn_compute_blocks_ids)
            require(self.Bn > 0, f"`Bn_compute_blocks_ids`={ids} needs trailing blocks: set `Bn` > 0.")
            bad = [i for i in ids if not 0 <= i < self.Bn]
            require(
                not bad,
                f"`Bn_compute_blocks_ids` are indices into the last `Bn`={self.Bn} blocks and must lie in "
                f"[0, {self.Bn - 1}]; got {bad}.",
            )
            require(len(set(ids)) == len(ids), f"`Bn_compute_blocks_ids` has duplicates: {ids}.")
        _check_per_transformer(self)

    def check_block_count(self, num_blocks: int, where: str = "the transformer") -> None:
        """Raise if `Fn + Bn` leaves no middle block to cache in a stack of `num_blocks` blocks."""
        require(
            self.Fn + self.Bn < num_blocks,
            f"`Fn` + `Bn` = {self.Fn} + {self.Bn} = {self.Fn + self.Bn} must be smaller than the {num_blocks} "
            f"blocks of {where}, so that at least one middle block can be cached. Allowed: Fn >= 1, Bn >= 0, "
            f"Fn + Bn <= {num_blocks - 1}.",
        )

    def strify(self) -> str:
        """Short run name, e.g. ``DBCache_F8B0_W8_M-1_MC-1_R0.08``."""
        return (
            f"DBCache_F{self.Fn}B{self.Bn}_W{self.max_warmup_steps}_M{self.max_cached_steps}"
            f"_MC{self.max_continuous_cached_steps}_R{self.residual_diff_threshold:g}"
        )

    def setting(self) -> str:
        return f"R{self.residual_diff_threshold:g}"


def _check_per_transformer(config) -> None:
    """Every per-transformer override must name a field of the same config and have its type (ranges are
    checked when applied, on the config it makes)."""
    types = field_types(type(config))
    allowed = {f for f in config.__dataclass_fields__ if f not in ("name", "per_transformer")}
    for transformer, overrides in config.per_transformer.items():
        bad = sorted(set(overrides) - allowed)
        require(
            not bad,
            f"`per_transformer.{transformer}` sets unknown keys {bad}; allowed: {', '.join(sorted(allowed))}.",
        )
        for key, value in overrides.items():
            overrides[key] = convert(value, types[key], f"per_transformer.{transformer}.{key}")


@dataclass
class DBPruneConfig(CacheConfig):
    r"""Dynamic Block Prune: the DBCache decision made per block. Each prunable block keeps its own residual; a
    block whose input changed less than the threshold since it last computed returns ``input + its residual``.
    Uses one residual per block (more memory than DBCache) for finer-grained skipping. DESIGN.md §3.

    Args:
        Fn (`int`, defaults to `1`): leading blocks never pruned.
        Bn (`int`, defaults to `0`): trailing blocks never pruned.
        residual_diff_threshold (`float`, defaults to `0.05`):
            Relative L1 change of a block's input since its last computation below which it is pruned.
        max_warmup_steps (`int`, defaults to `8`): steps (per branch) that prune nothing.
        max_pruned_steps (`int`, defaults to `-1`): most steps per call in which blocks may be pruned; -1: no limit.
        non_prune_blocks_ids (`list[int]`, *optional*): global block indices that are never pruned.
        enable_dynamic_prune_threshold (`bool`, defaults to `False`):
            Raise the threshold within a step to ``relax_ratio x`` the mean change already measured at that step
            (never above `max_dynamic_prune_threshold`): blocks that change no more than their neighbours prune.
        dynamic_prune_threshold_relax_ratio (`float`, defaults to `1.25`): see above; larger prunes more.
        max_dynamic_prune_threshold (`float`, *optional*): cap of the dynamic threshold; default 2x the threshold.
        residual_cache_update_interval (`int`, defaults to `4`):
            A block pruned this many steps in a row computes at the next step, refreshing its residual.
        per_transformer (`dict`, defaults to `{}`): knob overrides per transformer, e.g. ``{transformer_2: {Fn: 2}}``.
    """

    name: str = "dbprune"
    Fn: int = 1
    Bn: int = 0
    residual_diff_threshold: float = 0.05
    max_warmup_steps: int = 8
    max_pruned_steps: int = -1
    non_prune_blocks_ids: list[int] | None = None
    enable_dynamic_prune_threshold: bool = False
    dynamic_prune_threshold_relax_ratio: float = 1.25
    max_dynamic_prune_threshold: float | None = None
    residual_cache_update_interval: int = 4
    per_transformer: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_types(self)  # before the range checks below compare anything
        require(self.Fn >= 0 and self.Bn >= 0, f"`Fn` and `Bn` must be >= 0, got Fn={self.Fn}, Bn={self.Bn}.")
        require(self.residual_diff_threshold >= 0, f"`residual_diff_threshold` must be >= 0, got {self.residual_diff_threshold}.")
        require(self.max_warmup_steps >= 0, f"`max_warmup_steps` must be >= 0, got {self.max_warmup_steps}.")
        _check_cap("max_pruned_steps", self.max_pruned_steps)
        require(
            self.dynamic_prune_threshold_relax_ratio >= 1,
            f"`dynamic_prune_threshold_relax_ratio` must be >= 1, got {self.dynamic_prune_threshold_relax_ratio}.",
        )
        cap = self.max_dynamic_prune_threshold
        require(cap is None or cap >= self.residual_diff_threshold,
                f"`max_dynamic_prune_threshold` ({cap}) must be >= `residual_diff_threshold` ({self.residual_diff_threshold}).")
        require(self.residual_cache_update_interval >= 1,
                f"`residual_cache_update_interval` must be >= 1, got {self.residual_cache_update_interval}.")
        require(all(i >= 0 for i in self.non_prune_blocks_ids or []), f"`non_prune_blocks_ids` must be >= 0, got {self.non_prune_blocks_ids}.")
        _check_per_transformer(self)

    def check_block_count(self, num_blocks: int, where: str = "the transformer") -> None:
        require(
            self.Fn + self.Bn < num_blocks,
            f"`Fn` + `Bn` = {self.Fn + self.Bn} leaves no prunable block among the {num_blocks} blocks of {where}; "
            f"allowed: Fn + Bn <= {num_blocks - 1}.",
        )
        bad = [i for i in self.non_prune_blocks_ids or [] if i >= num_blocks]
        require(not bad, f"`non_prune_blocks_ids` {bad} are out of range for the {num_blocks} blocks of {where}.")

    def strify(self) -> str:
        dynamic = f"_D{self.dynamic_prune_threshold_relax_ratio:g}" if self.enable_dynamic_prune_threshold else ""
        return f"DBPrune_F{self.Fn}B{self.Bn}_W{self.max_warmup_steps}_R{self.residual_diff_threshold:g}{dynamic}"

    def setting(self) -> str:
        return f"R{self.residual_diff_threshold:g}"


class ForecastSpacing(str, Enum):
    step = "step"  # `interval` counts step indices
    timestep = "timestep"  # `interval` counts the sampler's time travelled, in mean steps (denser where it runs fast)


@dataclass
class ForecastCacheConfig(CacheConfig):
    r"""Forecast Cache: on scheduled steps compute the blocks, on every other step compute none of the middle and
    forecast its residual from the computed steps with a Newton polynomial in the step index (or the timestep:
    `forecast_axis`; TaylorSeer's idea applied to the whole span). A skipped step costs only the `Fn` + `Bn` blocks
    that always run (none by default), so the work saved is the share of skipped steps.

    Why it beats reuse: a cached residual reused unchanged is at best what running fewer steps gives (the
    Euler step with a constant velocity is the same update); a forecast of order 1 is a multistep method that
    follows the trajectory's trend between computed steps.

    Without `compute_steps` (the default, no calibration): step 0 computes, then the step nearest to every
    `interval`-th position after it (0, 4, 8, ... at `interval=4`; 0, 5, 9, 14, ... at 4.67), so the computed steps
    are spread evenly over the whole call; positions are measured on the sampler's own time (`spacing`), which
    on evenly spaced timesteps is the step index. Why this and not the former warmup of 2 then every `interval`-th step
    (which trailed diffusers' TaylorSeer on whole blocks): replaying diffusers' own computed steps, this forecast (the
    whole span's residual, in the timestep) scores 0.8-1.1 dB above diffusers' (each block's output, in the step
    index) on the tiny DiT, so diffusers led by its schedule alone: it spends no step right after its warmup and
    often none at the end, where the former schedule spent both. A warmup step buys less fidelity than a step
    spent later (the first residual reused over the first gap is a small error), and the last steps are forecast
    well from the trend. At 45 dB and above `warmup=2` is the better setting (the bench sweeps both).

    A fitted schedule (`compute_steps`, from ``python -m runners.calibrate``) is a set of stretches of the call's
    time: step `s` of `reference_steps` covers the share ``[s, s + 1) / reference_steps`` of the call; a call of `N`
    steps computes the step covering the middle of each (``floor((s + 1/2) * N / reference_steps)``; step 0 stays). The
    forecast's errors follow the gaps on that axis, which this keeps, so the fidelity stays about that of the
    fitted step count, and the schedule computes as many steps as it lists (fewer where two land on one step; a
    call too short to skip anything says so in its summary). Not the nearest start (``s * N / reference_steps``
    rounded): that moves a step fitted just before the end onto the last step (26 of 28 -> 19 of 20), which
    measured 4 dB worse at 20 steps.

    Args:
        Fn (`int`, defaults to `0`): leading blocks computed at every step (0: skip the whole stack).
        Bn (`int`, defaults to `0`): trailing blocks computed at every step, correcting the forecast.
        order (`int`, defaults to `1`): order of the forecast (0 reuses the last residual, 1 is linear in the
            timestep, 2 quadratic). Order 1 is the robust choice on trained models; higher orders amplify noise.
        warmup (`int`, defaults to `1`): steps at the start of each call that always compute (without
            `compute_steps`); the interval counts from the last of them.
        interval (`float`, defaults to `4.0`): after the warmup, the step nearest to every `interval`-th position
            computes (1 never skips; a fraction spreads the computed steps evenly, e.g. 28 / 6 = 4.67).
        compute_last_step (`bool`, defaults to `False`): also compute the last step (without `compute_steps`).
        spacing (`ForecastSpacing`, defaults to `timestep`): the axis `interval` is measured on (without
            `compute_steps`). ``step``: step indices. ``timestep``: the sampler's own time, the timestep the pipeline
            passes, in mean steps (the mean gap between the call's steps), so a step computes where the time
            travelled reaches the next multiple of `interval` (the step whose time lies nearest to it, decided
            online from the timesteps seen so far: no calibration, no block, no device read). On evenly spaced
            timesteps (the tiny DiT) both compute the same steps; under a shift (FLUX) ``timestep`` computes as
            many steps, denser late where the sampler moves fastest, as the calibrated tiny-FLUX preset does, and
            it transfers across step counts and shifts by construction. Measured held out on tiny FLUX
            (`bench=spacing`, 20 digits, ours / diffusers' TaylorSeerCache at 35/40/45 dB): ``timestep``
            1.10-1.53x on every condition, ``step`` 0.94-1.37x (it lost at guidance 4.0). Where the pipeline
            passes no timestep (or a rising one), the step index. `interval=1` computes every step either way.
        compute_steps (`list[int]`, *optional*): the 0-based steps that compute, fitted for a call of
            `reference_steps` steps and placed by time share at other step counts; overrides warmup/interval/spacing.
        reference_steps (`int`, defaults to `28`): the step count `compute_steps` was fitted for.
        tolerance (`float`, *optional*): decide online instead: skip a step only while the estimated relative
            error of the forecast there stays at most this. The estimate is the next Newton term (the forecast's
            divided difference of order + 1 times the gaps to the computed steps, as an adaptive ODE solver's
            embedded error estimate): no block runs for it, one device-to-host read per computed step. Until
            `order` + 2 steps computed, the schedule decides. Measured on the tiny DiT it does not beat the even
            schedule, so it is off by default.
        forecast_axis (`str`, defaults to `"step"`): what the forecast is polynomial in: ``"step"`` (the step
            index) or ``"timestep"`` (the timestep the pipeline passes, uneven under FLUX's shift). Under tiny FLUX's
            shift, replaying diffusers' TaylorSeer schedules, the step axis scored 0.0-0.2 dB above diffusers and the
            timestep axis 1.9-2.3 dB below it; where timesteps are evenly spaced (the tiny DiT) both are the same.
        per_transformer (`dict`, defaults to `{}`): knob overrides per transformer.
    """

    name: str = "forecast"
    Fn: int = 0
    Bn: int = 0
    order: int = 1
    warmup: int = 1
    interval: float = 4.0
    compute_last_step: bool = False
    spacing: ForecastSpacing = ForecastSpacing.timestep
    compute_steps: list[int] | None = None
    reference_steps: int = 28
    tolerance: float | None = None
    forecast_axis: str = "step"
    per_transformer: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_types(self)  # before the range checks below compare anything
        require(self.Fn >= 0 and self.Bn >= 0, f"`Fn` and `Bn` must be >= 0, got Fn={self.Fn}, Bn={self.Bn}.")
        require(0 <= self.order <= 3, f"`order` must be in [0, 3], got {self.order}.")
        require(self.warmup >= 1, f"`warmup` must be >= 1 (the first step has nothing to forecast from), got {self.warmup}.")
        require(self.interval >= 1, f"`interval` must be >= 1 (1 computes every step), got {self.interval}.")
        require(self.reference_steps >= 2, f"`reference_steps` must be >= 2, got {self.reference_steps}.")
        require(self.forecast_axis in ("step", "timestep"),
                f"`forecast_axis` must be one of step, timestep; got {self.forecast_axis!r}.")
        require(self.tolerance is None or self.tolerance > 0,
                f"`tolerance` must be > 0 (a relative error), or null for the schedule alone; got {self.tolerance}.")
        if self.compute_steps is not None:
            steps = list(self.compute_steps)
            require(
                bool(steps) and 0 in steps,
                f"`compute_steps` must include step 0 (nothing to forecast from before it), got {steps}.",
            )
            bad = [s for s in steps if not 0 <= s < self.reference_steps]
            require(not bad, f"`compute_steps` {bad} lie outside [0, {self.reference_steps - 1}] (`reference_steps`={self.reference_steps}).")
            self.compute_steps = sorted(set(steps))
        _check_per_transformer(self)

    def scheduled_steps(self, num_steps: int) -> frozenset[int]:
        """The steps that compute in a call of `num_steps` steps: with `spacing=timestep` (decided online from the
        timesteps) those of evenly spaced timesteps, which the uneven ones move (`spaced_by_time`)."""
        if self.compute_steps is not None:
            share = num_steps / self.reference_steps
            # step 0 stays step 0: nothing to forecast from before it
            return frozenset(min(num_steps - 1, int((s + 0.5) * share)) if s else 0 for s in self.compute_steps)
        steps = set(range(min(self.warmup, num_steps)))
        k = 1
        while (step := _nearest(self.warmup - 1 + k * self.interval)) < num_steps:
            steps.add(step)
            k += 1
        if self.compute_last_step:
            steps.add(num_steps - 1)
        return frozenset(steps)

    def why_nothing_skips(self, num_steps: int) -> str | None:
        """Why a call of `num_steps` steps skips no step, in words; None where the schedule skips some."""
        if len(self.scheduled_steps(num_steps)) < num_steps:
            return None
        if self.compute_steps is not None:
            return (f"`compute_steps` ({len(self.compute_steps)} of {self.reference_steps} steps, placed by time share) "
                    f"land on every one of this call's {num_steps} steps: the schedule cannot skip at {num_steps} steps")
        return f"`warmup={self.warmup}` and `interval={self.interval:g}` compute every one of this call's {num_steps} steps"

    def spaced_by_time(self) -> bool:
        """Whether the uncalibrated schedule is decided online on the sampler's time (`spacing=timestep`)."""
        return self.compute_steps is None and self.spacing == ForecastSpacing.timestep and self.interval > 1

    def strify(self) -> str:
        if self.compute_steps is not None:
            schedule = f"S{len(self.compute_steps)}of{self.reference_steps}"
        else:
            schedule = f"W{self.warmup}I{self.interval:g}" + ("L" if self.compute_last_step else "")
            schedule += "T" if self.spacing == ForecastSpacing.timestep else ""
        return f"Forecast_F{self.Fn}B{self.Bn}_O{self.order}_{schedule}"


################################################################################
#                     Calibrator, step mask and CFG routing                    #
################################################################################


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


class StepMaskPolicy(str, Enum):
    dynamic = "dynamic"  # masked-off steps still ask the cache decision
    static = "static"  # masked-off steps always reuse


@dataclass
class StepMaskConfig:
    """Step computation mask (SCM): steps that must compute, from a named budget or an explicit list.

    Args:
        mask (`StepMaskName`, defaults to `none`): `slow`, `medium`, `fast`, `ultra` compute 18, 15, 11, 8 of 28
            steps (rescaled to the actual step count); `custom` computes `compute_steps`; `none` disables the mask.
        policy (`StepMaskPolicy`, defaults to `dynamic`): what masked-off steps do: `dynamic` asks the cache
            decision (threshold, caps), `static` always reuses the cache.
        compute_steps (`list[int]`, *optional*): 0-based steps that must compute, for `mask=custom`.
    """

    mask: StepMaskName = StepMaskName.none
    policy: StepMaskPolicy = StepMaskPolicy.dynamic
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
