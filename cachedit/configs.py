"""Typed configuration schemas.

Every Hydra group option (``conf/<group>/*.yaml``) extends one of these dataclasses, so a misspelt key or a value
of the wrong type fails when Hydra composes, and ``OmegaConf.to_object`` runs ``__post_init__``, where ranges are
checked. The same classes are the plain-Python API: ``cachedit.enable_cache(pipe, DBCacheConfig(Fn=8))``.

Only ``int``/``float``/``bool``/``str``/``Enum``/``X | None``/lists/dicts are used: OmegaConf rejects
``torch.dtype`` and ``Literal``, so dtypes are strings converted in :mod:`cachedit.pipelines`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

# Importing omegaconf here is fine (it does not import Hydra); MISSING marks the fields a YAML must fill.
from omegaconf import MISSING


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _check_cap(name: str, value: int) -> None:
    _require(value == -1 or value >= 0, f"`{name}` must be -1 (no limit) or >= 0, got {value}.")


def _enum(cls: type[Enum], value, name: str):
    """Accept an enum member or its string value (plain-Python callers pass strings)."""
    try:
        return cls(value)
    except ValueError:
        raise ValueError(f"`{name}` must be one of {[m.value for m in cls]}, got {value!r}.") from None


################################################################################
#                                    Caches                                    #
################################################################################


@dataclass
class NoCacheConfig:
    """Caching disabled: the pipeline runs exactly as diffusers ships it (``cache=none``)."""

    name: str = "none"


@dataclass
class DBCacheConfig:
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

    def __post_init__(self) -> None:
        _require(self.Fn >= 1, f"`Fn` must be >= 1 (the change signal needs at least one block), got {self.Fn}.")
        _require(self.Bn >= 0, f"`Bn` must be >= 0, got {self.Bn}.")
        _require(
            self.residual_diff_threshold >= 0,
            f"`residual_diff_threshold` must be >= 0 (0 disables skipping), got {self.residual_diff_threshold}.",
        )
        _require(self.max_warmup_steps >= 0, f"`max_warmup_steps` must be >= 0, got {self.max_warmup_steps}.")
        _check_cap("max_cached_steps", self.max_cached_steps)
        _check_cap("max_continuous_cached_steps", self.max_continuous_cached_steps)
        _require(
            self.non_compute_blocks_diff_threshold >= 0,
            f"`non_compute_blocks_diff_threshold` must be >= 0, got {self.non_compute_blocks_diff_threshold}.",
        )
        if self.Bn_compute_blocks_ids is not None:
            ids = list(self.Bn_compute_blocks_ids)
            _require(self.Bn > 0, f"`Bn_compute_blocks_ids`={ids} needs trailing blocks: set `Bn` > 0.")
            bad = [i for i in ids if not 0 <= i < self.Bn]
            _require(
                not bad,
                f"`Bn_compute_blocks_ids` are indices into the last `Bn`={self.Bn} blocks and must lie in "
                f"[0, {self.Bn - 1}]; got {bad}.",
            )
            _require(len(set(ids)) == len(ids), f"`Bn_compute_blocks_ids` has duplicates: {ids}.")

    def check_block_count(self, num_blocks: int, where: str = "the transformer") -> None:
        """Raise if `Fn + Bn` leaves no middle block to cache in a stack of `num_blocks` blocks."""
        _require(
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


################################################################################
#                     Calibrator, step mask and CFG routing                    #
################################################################################


@dataclass
class TaylorSeerConfig:
    """TaylorSeer forecasting of skipped spans.

    Args:
        order (`int`, defaults to `0`): Taylor expansion order; `0` (``taylorseer=none``) reuses cached residuals
            unchanged.
    """

    order: int = 0

    def __post_init__(self) -> None:
        _require(self.order >= 0, f"`taylorseer.order` must be >= 0 (0 disables TaylorSeer), got {self.order}.")


@dataclass
class StepMaskConfig:
    """Step computation mask (SCM): which steps must compute.

    Args:
        policy (`str`, defaults to `"none"`): `none` lets the cache decide at every step.
    """

    policy: str = "none"


@dataclass
class CFGCacheConfig:
    """How guidance branches share cache state.

    Args:
        enable_separate_cfg (`bool`, defaults to `True`):
            Keep one cache state per guidance branch when the pipeline calls the transformer separately for each
            (branches are told apart by the pipeline's ``cache_context`` name, never by call parity). Pipelines that
            batch both branches into one call have a single branch and need nothing.
    """

    enable_separate_cfg: bool = True


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
        name (`str`): family key, e.g. `flux`, `pixart_alpha`, `tiny_dit` (see ``cachedit.models.families``).
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
        self.source = _enum(ModelSource, self.source, "model.source")
        if self.torch_dtype is not None:
            self.torch_dtype = _enum(TorchDtype, self.torch_dtype, "model.torch_dtype")
        _require(self.num_inference_steps >= 1, f"`model.num_inference_steps` must be >= 1, got {self.num_inference_steps}.")
        _require(self.num_images >= 1, f"`model.num_images` must be >= 1, got {self.num_images}.")
        for side in ("height", "width"):
            value = getattr(self, side)
            _require(value is None or value > 0, f"`model.{side}` must be positive, got {value}.")


@dataclass
class RunConfig:
    """Root of ``conf/generate.yaml``.

    Args:
        seed (`int`, defaults to `0`): generator seed; the cached run and its baseline share it.
        compare_baseline (`bool`, defaults to `True`): also run uncached, and report speedup and fidelity against it.
        repeats (`int`, defaults to `1`): timed repeats of each run; the median is reported.
        save_images (`bool`, defaults to `True`): write the images next to ``stats.json``.
    """

    model: ModelConfig = MISSING
    cache: Any = MISSING  # NoCacheConfig | DBCacheConfig, chosen by the `cache` group
    taylorseer: TaylorSeerConfig = field(default_factory=TaylorSeerConfig)
    cfg: CFGCacheConfig = field(default_factory=CFGCacheConfig)
    scm: StepMaskConfig = field(default_factory=StepMaskConfig)
    seed: int = 0
    compare_baseline: bool = True
    repeats: int = 1
    save_images: bool = True

    def __post_init__(self) -> None:
        _require(self.repeats >= 1, f"`repeats` must be >= 1, got {self.repeats}.")
