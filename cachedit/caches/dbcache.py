"""DBCache (Fn/Bn) and FBCache (its F1B0 case): skip the middle blocks while the first blocks' residual barely
changed since the last step that computed them. Definitions: DESIGN.md §3."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..config_types import check_types
from ..configs import TaylorSeerConfig, require
from ..hooks.protocol import Policy, StepContext
from . import CacheConfig, check_cap, register

__all__ = ["DBCacheConfig", "FBCacheConfig", "ThresholdPolicy"]


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
        check_cap("max_cached_steps", self.max_cached_steps)
        check_cap("max_continuous_cached_steps", self.max_continuous_cached_steps)
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
        self.check_per_transformer()

    def strify(self) -> str:
        """Short run name, e.g. ``DBCache_F8B0_W8_M-1_MC-1_R0.08``."""
        return (
            f"DBCache_F{self.Fn}B{self.Bn}_W{self.max_warmup_steps}_M{self.max_cached_steps}"
            f"_MC{self.max_continuous_cached_steps}_R{self.residual_diff_threshold:g}"
        )

    def setting(self) -> str:
        return f"R{self.residual_diff_threshold:g}"


@dataclass
class FBCacheConfig(DBCacheConfig):
    """First Block Cache (https://github.com/chengzeyi/ParaAttention): DBCache with ``Fn=1, Bn=0``, the first block
    alone as the change signal. It is DBCache in everything it produces (``cache=fbcache``, ``name`` ``dbcache`` in
    stats, ``DBCache_F1B0...`` run names), so it registers nothing of its own."""

    Fn: int = 1
    Bn: int = 0


class ThresholdPolicy(Policy):
    """Skip while the change stays below `residual_diff_threshold`, within the warm-up and the caps; trailing blocks
    outside `Bn_compute_blocks_ids` reuse their own residual while the change stays below
    `non_compute_blocks_diff_threshold`."""

    def __init__(self, config: DBCacheConfig) -> None:
        self.config = config
        self.moves_encoder = config.cache_encoder

    def decide(self, step: StepContext, change: float | None) -> bool:
        c, state = self.config, step.state
        return (
            step.index >= c.max_warmup_steps
            and (c.max_cached_steps < 0 or state.cached_steps < c.max_cached_steps)
            and (c.max_continuous_cached_steps < 0 or state.continuous_cached_steps < c.max_continuous_cached_steps)
            and change < c.residual_diff_threshold
        )

    def optional_tail(self) -> set[int]:
        always = self.config.Bn_compute_blocks_ids
        return set() if always is None else set(range(self.config.Bn)) - set(always)

    def tail_reuses(self, change: float) -> bool:
        return change <= self.config.non_compute_blocks_diff_threshold


def _check(config: DBCacheConfig, taylorseer: TaylorSeerConfig | None) -> None:
    if taylorseer is not None and taylorseer.order and not config.cache_encoder and taylorseer.encoder:
        raise ValueError(
            "`cache.cache_encoder=false` leaves the text stream as it entered a skipped span, so there is nothing "
            "to forecast on it: set `taylorseer.encoder=false` too (TaylorSeer on the image stream only)."
        )


register(DBCacheConfig, policy=ThresholdPolicy, takes_taylorseer=True, check=_check)
